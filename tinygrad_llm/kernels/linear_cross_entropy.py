"""The output head and the loss in one op: loss = cross_entropy(x @ w^T + b, targets).

x (N, C) hidden states, w (V, C) the head's weight (PyTorch layout), b (V,) or None,
targets (N,) int; rows whose target is ``ignore_index`` do not count. With
logits = x w^T + b and lse the row log-sum-exp:
    loss = mean over kept rows of (lse_n - logits[n, t_n])
    dlogits = (softmax(logits) - onehot(t)) / n_kept     (0 on ignored rows)
    dx = dlogits w,   dw = dlogits^T x,   db = sum over rows of dlogits
These are the gradients for an upstream gradient dout = 1; the loss is a scalar, so the op
multiplies them by dout in backward. Both kernels return (loss, dx, dw, db), computing only
the gradients flagged in ``need`` (all None under no_grad).

Why fuse: at GPT-2 sizes the (N, V) logits are the largest arrays of a training step
(N = 1024 tokens x V = 50257 = 196 MiB in float32), and the unfused head keeps them for
backward and then makes a second (N, V) array for dlogits. Here neither ever exists.

Numba version: the rows are taken in chunks, as few as keep one (R, V) block of logits under
``CHUNK_ELEMENTS`` numbers (16 Mi, 64 MiB in float32: at N = 1024, V = 50257 that is 4 chunks
of 256 rows). For each chunk, in the forward pass:
    S = x_r w^T + b                       BLAS, into one reused block
    lse_r, loss terms                     the cross-entropy kernel (kernels/cross_entropy.py)
    S <- (exp(S - lse) - onehot) / n_kept  in place: S is now dlogits_r
    dx_r = S w                            BLAS, straight into dx's rows
    dw += S^T x_r,  db += column sums     the first chunk writes dw, later ones add to it
                                          through a small (Vb, C) scratch block
The gradient is complete when forward ends, so backward only scales it by dout. Nothing is
computed twice (a vocabulary-chunked design that recomputes the logits in backward costs a
third more FLOPs in the head); the price is the additions into dw, one read and write of
dw per extra chunk, and gradients computed even if backward never runs (a training step
always runs it; evaluation runs under no_grad, which computes none).
The NumPy reference is the unfused computation, written plainly; tests hold the two equal.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from tinygrad_llm.kernels import dispatch
from tinygrad_llm.kernels._numba import JIT, fexp, same_float
from tinygrad_llm.kernels.cross_entropy import (
    _ce_fwd_kernel,
    _targets,
    cross_entropy_backward_ref,
    cross_entropy_forward_ref,
)

CHUNK_ELEMENTS = 1 << 24  # at most this many numbers in one (R, V) block of logits
_SCRATCH_ELEMENTS = 1 << 22  # the (Vb, C) block through which later chunks add into dw
ALL = (True, True, True)


def linear_cross_entropy_ref(x, w, b, targets, ignore_index: int, need=ALL,
                             chunk_elements=None):
    """Return (loss as a 0-d array of x.dtype, dx (N, C), dw (V, C), db (V,)), the
    gradients for dout = 1, None where ``need`` (dx, dw, db) is False or there is no bias."""
    logits = x @ w.T
    if b is not None:
        logits += b
    loss, lse = cross_entropy_forward_ref(logits, targets, ignore_index)
    if not any(need):
        return loss, None, None, None
    dlogits = cross_entropy_backward_ref(1.0, logits, targets, lse, ignore_index)
    dx = dlogits @ w if need[0] else None
    dw = dlogits.T @ x if need[1] else None
    db = dlogits.sum(axis=0) if b is not None and need[2] else None
    return loss, dx, dw, db


@njit(parallel=True, **JIT)
def _softmax_scaled_kernel(s, lse, scale):
    """s (R, V) logits -> exp(s - lse_r) * scale_r, in place; lse, scale (R,); one float
    dtype, C-contiguous."""
    n, v = s.shape
    for i in prange(n):
        si = s[i]
        li = lse[i]
        sc = scale[i]
        for j in range(v):
            si[j] = fexp(si[j] - li) * sc


def _add_products(dw, a, b, scratch):
    """dw += a^T @ b for a (R, V), b (R, C), a block of dw's rows at a time through scratch
    (NumPy's matmul cannot add into its output)."""
    vb = scratch.shape[0]
    for v0 in range(0, dw.shape[0], vb):
        part = scratch[: min(vb, dw.shape[0] - v0)]
        np.matmul(a[:, v0 : v0 + vb].T, b, out=part)
        dw[v0 : v0 + vb] += part


def _supported(x, w, b, targets) -> bool:
    return (same_float(x, w, *(() if b is None else (b,))) and x.ndim == 2 and w.ndim == 2
            and x.shape[1] == w.shape[1] and w.shape[0] > 0 and x.shape[0] > 0
            and targets.shape == x.shape[:1])


def linear_cross_entropy_nb(x, w, b, targets, ignore_index: int, need=ALL,
                            chunk_elements=None):
    """Return (loss as a 0-d array of x.dtype, dx (N, C), dw (V, C), db (V,)), the
    gradients for dout = 1, None where ``need`` (dx, dw, db) is False or there is no bias."""
    if not _supported(x, w, b, targets):
        return linear_cross_entropy_ref(x, w, b, targets, ignore_index, need)
    (n, c), v = x.shape, w.shape[0]
    t, n_kept = _targets(targets, ignore_index, v)
    x = np.ascontiguousarray(x)
    budget = CHUNK_ELEMENTS if chunk_elements is None else chunk_elements
    chunks = max(1, math.ceil(n * v / budget))
    rows = math.ceil(n / chunks)
    block = np.empty((rows, v), dtype=x.dtype)
    lse = np.empty(n, dtype=x.dtype)
    rowloss = np.empty(n, dtype=x.dtype)
    keep = t != ignore_index
    # 1 / n_kept on kept rows, 0 on ignored ones; NaN everywhere if nothing is kept (0 / 0)
    scale = np.where(keep | (n_kept == 0), 1.0 / n_kept if n_kept else np.nan, 0.0)
    scale = scale.astype(x.dtype)
    dx = np.empty_like(x) if need[0] else None
    dw = np.empty(w.shape, dtype=x.dtype) if need[1] else None
    db = np.zeros(v, dtype=x.dtype) if b is not None and need[2] else None
    scratch = None
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        s = block[: r1 - r0]
        np.matmul(x[r0:r1], w.T, out=s)  # (R, V) logits
        if b is not None:
            s += b
        _ce_fwd_kernel(s, t[r0:r1], np.int64(ignore_index), lse[r0:r1], rowloss[r0:r1])
        if not any(need):
            continue
        _softmax_scaled_kernel(s, lse[r0:r1], scale[r0:r1])
        mine = np.flatnonzero(keep[r0:r1])  # kept rows of this chunk
        s[mine, t[r0 + mine]] -= scale[r0 + mine]  # S is now dlogits of rows r0..r1
        if dx is not None:
            np.matmul(s, w, out=dx[r0:r1])
        if dw is not None:
            if r0 == 0:
                np.matmul(s.T, x[r0:r1], out=dw)
            else:
                if scratch is None:
                    scratch = np.empty((max(1, min(v, _SCRATCH_ELEMENTS // c)), c), x.dtype)
                _add_products(dw, s, x[r0:r1], scratch)
        if db is not None:
            db += s.sum(axis=0)
    loss = rowloss.sum(dtype=np.float64) / n_kept if n_kept else np.nan
    return np.asarray(loss, dtype=x.dtype), dx, dw, db


linear_cross_entropy = dispatch(linear_cross_entropy_ref, linear_cross_entropy_nb)
