"""One AdamW step (Loshchilov & Hutter), in place on the parameter and both moments.

p <- p * (1 - lr * weight_decay)                 (decoupled weight decay, first)
m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g^2
p <- p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
t is the 1-based step count. Arrays may have any shape; p, m, v are updated in place.

Numba version: one fused parallel (prange) pass reading p, g, m, v once and writing p, m, v
once (the reference makes ~10 passes and several temporaries). The scalar coefficients are
rounded to the arrays' dtype first and the arithmetic runs in that dtype, in the
reference's order, so the two agree to within a few ulp per step (FMA contraction is the
only difference). p, m, v must be contiguous in one order (C or Fortran) to be updated
through flat views; otherwise the step runs on contiguous copies that are written back.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tinygrad_llm.kernels import dispatch
from tinygrad_llm.kernels._numba import JIT, same_float


def adamw_step_ref(p, g, m, v, lr, beta1, beta2, eps, weight_decay, t) -> None:
    """Update p, m and v in place."""
    p *= 1.0 - lr * weight_decay
    m *= beta1
    m += (1.0 - beta1) * g
    v *= beta2
    v += (1.0 - beta2) * g * g
    mhat = m / (1.0 - beta1**t)
    vhat = v / (1.0 - beta2**t)
    p -= (lr * mhat / (np.sqrt(vhat) + eps)).astype(p.dtype, copy=False)


@njit(parallel=True, **JIT)
def _adamw_kernel(p, g, m, v, coef):
    """p, g, m, v (n,) float32|float64 contiguous, one dtype; coef (9,) of that dtype:
    1 - lr weight_decay, beta1, 1 - beta1, beta2, 1 - beta2, 1 - beta1^t, 1 - beta2^t, lr,
    eps. Updates p, m, v in place."""
    decay, b1, c1, b2, c2 = coef[0], coef[1], coef[2], coef[3], coef[4]
    bc1, bc2, lr, eps = coef[5], coef[6], coef[7], coef[8]
    for i in prange(p.size):
        gi = g[i]
        mi = b1 * m[i] + c1 * gi
        vi = b2 * v[i] + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] * decay - lr * (mi / bc1) / (np.sqrt(vi / bc2) + eps)


def _flat(a: np.ndarray, order: str) -> np.ndarray:
    return a.reshape(-1, order=order)


def adamw_step_nb(p, g, m, v, lr, beta1, beta2, eps, weight_decay, t) -> None:
    """Update p, m and v in place."""
    g = np.asarray(g)
    if not same_float(p, g, m, v) or not (p.shape == g.shape == m.shape == v.shape):
        adamw_step_ref(p, g, m, v, lr, beta1, beta2, eps, weight_decay, t)
        return
    coef = np.array(
        [
            1.0 - lr * weight_decay,
            beta1,
            1.0 - beta1,
            beta2,
            1.0 - beta2,
            1.0 - beta1**t,
            1.0 - beta2**t,
            lr,
            eps,
        ],
        dtype=p.dtype,
    )
    for order, flag in (("C", "C_CONTIGUOUS"), ("F", "F_CONTIGUOUS")):
        if p.flags[flag] and m.flags[flag] and v.flags[flag]:
            gf = np.ascontiguousarray(g) if order == "C" else np.asfortranarray(g)
            _adamw_kernel(_flat(p, order), _flat(gf, order), _flat(m, order), _flat(v, order), coef)
            return
    # strided views: step on contiguous copies, then write back into the caller's arrays
    pc, mc, vc = (np.ascontiguousarray(a).reshape(-1) for a in (p, m, v))
    _adamw_kernel(pc, np.ascontiguousarray(g).reshape(-1), mc, vc, coef)
    p[...] = pc.reshape(p.shape)
    m[...] = mc.reshape(m.shape)
    v[...] = vc.reshape(v.shape)


adamw_step = dispatch(adamw_step_ref, adamw_step_nb)
