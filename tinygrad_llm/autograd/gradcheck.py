"""Check analytic gradients against central finite differences in float64.

For an op y = f(x_1, ..., x_n) and a fixed upstream gradient v (random, or one-hot per
output element for small outputs, which checks the whole Jacobian), the engine's backward
gives g_i = v^T (dy/dx_i). Each element j of g_i is compared with

    sum(v * (f(x_i + eps e_j) - f(x_i - eps e_j))) / (2 eps),

whose error is O(eps^2). (The outputs are subtracted before the sum with v, so that large
constant outputs, like -1e9 from a masked_fill, cancel exactly instead of drowning the
difference in rounding error.) Inputs with more than ``max_elements`` elements are checked along a
few random directions u instead (g_i . u against the difference quotient along u).
Also checked: each gradient's shape, that a zero upstream gradient gives zero gradients,
and that two backward passes over fresh graphs agree.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from tinygrad_llm.tensor import Tensor, default_dtype, no_grad


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with finite differences (the message says where)."""


def _prepare(inputs) -> list:
    out = []
    for i, x in enumerate(inputs):
        arr = x.data if isinstance(x, Tensor) else x
        if isinstance(arr, np.ndarray) and arr.dtype.kind == "f":
            if arr.dtype != np.float64:
                warnings.warn(
                    f"gradcheck: input {i} is {arr.dtype}; finite differences need float64, "
                    f"so it is checked as float64", stacklevel=3)
            needs = x.requires_grad if isinstance(x, Tensor) else True
            # a C-ordered copy: the checker perturbs it through a flat view, which a
            # transposed (F-ordered) array would not give
            data = np.array(arr, dtype=np.float64, order="C")
            out.append(Tensor(data, requires_grad=needs, dtype=np.float64))
        else:
            out.append(x)  # a constant (integer ids, masks, numbers): passed as it is
    return out


def _run(fn: Callable, inputs: list) -> Tensor:
    with default_dtype(np.float64):
        y = fn(*inputs)
    if not isinstance(y, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(y).__name__}")
    return y


def _fresh(inputs: list) -> list:
    return [Tensor(x.data.copy(), requires_grad=x.requires_grad, dtype=np.float64)
            if isinstance(x, Tensor) else x for x in inputs]


def _analytic(fn, inputs, v) -> list:
    xs = _fresh(inputs)
    y = _run(fn, xs)
    y.backward(np.asarray(v, dtype=y.dtype).reshape(y.shape))
    grads = []
    for i, x in enumerate(xs):
        if isinstance(x, Tensor) and x.requires_grad:
            g = x.grad if x.grad is not None else np.zeros_like(x.data)
            if g.shape != x.shape:
                raise GradcheckError(f"input {i}: gradient shape {g.shape} != input {x.shape}")
            grads.append(g)
        else:
            grads.append(None)
    return grads


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence, eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, max_elements: int = 512,
              n_directions: int = 4, seed: int = 0) -> bool:
    """Return True if fn's gradients match central differences; raise GradcheckError if not.

    Args:
        fn: takes the inputs (float ones as float64 Tensors) and returns a Tensor.
        inputs: Tensors or arrays; float ones are differentiated (unless a Tensor has
            requires_grad=False), anything else is passed through unchanged.
        eps, atol, rtol: step and tolerance: |numeric - analytic| <= atol + rtol |numeric|.
        max_elements: inputs larger than this are checked along random directions.
    """
    xs = _prepare(inputs)
    rng = np.random.default_rng(seed)
    with no_grad():
        y0 = _run(fn, xs)
    m = y0.size
    # one-hot upstream gradients check the full Jacobian of small outputs; else one random v
    vs = np.eye(m) if 0 < m <= 16 else rng.standard_normal((1, m))  # (1, 0) if empty

    analytic = [_analytic(fn, xs, v) for v in vs]  # [v][input] -> grad

    def f_flat(inputs_now) -> np.ndarray:  # f(x) as a flat float64 vector
        with no_grad():
            return _run(fn, inputs_now).data.reshape(-1).astype(np.float64)

    for i, x in enumerate(xs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        flat = x.data.reshape(-1)  # a view: perturbing it perturbs x
        if x.size <= max_elements:
            numeric = np.empty((len(vs), x.size))
            for j in range(x.size):
                old = flat[j]
                flat[j] = old + eps
                plus = f_flat(xs)
                flat[j] = old - eps
                minus = f_flat(xs)
                flat[j] = old
                numeric[:, j] = vs @ (plus - minus) / (2 * eps)
            got = np.stack([a[i].reshape(-1) for a in analytic])
            where = "element"
        else:
            us = rng.standard_normal((n_directions, x.size))
            numeric = np.empty((len(vs), n_directions))
            base = flat.copy()
            for j, u in enumerate(us):
                flat[:] = base + eps * u
                plus = f_flat(xs)
                flat[:] = base - eps * u
                minus = f_flat(xs)
                numeric[:, j] = vs @ (plus - minus) / (2 * eps)
            flat[:] = base
            got = np.stack([us @ a[i].reshape(-1) for a in analytic])
            where = "random direction"
        err = np.abs(numeric - got)
        bad = err > atol + rtol * np.abs(numeric)
        if bad.any():
            k = np.unravel_index(np.argmax(np.where(bad, err, -1)), err.shape)
            idx = np.unravel_index(k[1], x.shape) if where == "element" else k[1]
            idx = tuple(int(i) for i in idx) if where == "element" else int(idx)
            raise GradcheckError(
                f"gradcheck: input {i} (shape {x.shape}), {where} {idx}"
                f"{f', output element {k[0]}' if m <= 16 else ''}: numeric {numeric[k]:.8g}, "
                f"analytic {got[k]:.8g}, abs error {err[k]:.3g}, "
                f"rel error {err[k] / max(abs(numeric[k]), 1e-300):.3g} "
                f"({bad.sum()} of {bad.size} values outside atol={atol}, rtol={rtol})"
            )

    zero = _analytic(fn, xs, np.zeros(m))
    for i, g in enumerate(zero):
        if g is not None and np.any(g != 0):
            raise GradcheckError(f"gradcheck: input {i}: a zero upstream gradient gave a "
                                 f"non-zero gradient (max |g| {np.abs(g).max():.3g})")
    again = _analytic(fn, xs, vs[0])
    for i, (g1, g2) in enumerate(zip(analytic[0], again)):
        if g1 is not None and not np.allclose(g1, g2, rtol=1e-10, atol=1e-12):
            raise GradcheckError(f"gradcheck: input {i}: two backward passes over fresh graphs "
                                 f"disagree (max diff {np.abs(g1 - g2).max():.3g})")
    return True
