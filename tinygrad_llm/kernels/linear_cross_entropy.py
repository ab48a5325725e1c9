"""The output head and the loss in one op: loss = cross_entropy(x @ w^T + b, targets).

x (N, C) hidden states, w (V, C) the head's weight (PyTorch layout), b (V,) or None,
targets (N,) int; rows whose target is ``ignore_index`` do not count. With
logits = x w^T + b and lse the row log-sum-exp:
    loss = mean over kept rows of (lse_n - logits[n, t_n])
    dlogits = (softmax(logits) - onehot(t)) * dout / n_kept     (0 on ignored rows)
    dx = dlogits w,   dw = dlogits^T x,   db = sum over rows of dlogits

Why fuse: at GPT-2 sizes the (N, V) logits are the largest arrays of a training step
(N = 1024 tokens x V = 50257 = 196 MiB in float32), and the unfused head keeps them for
backward and then makes a second (N, V) array for dlogits. Here neither ever exists.

Numba version: the vocabulary is walked in chunks of ``Vc`` columns, Vc chosen so that one
(N, Vc) block holds at most ``CHUNK_ELEMENTS`` numbers (8 Mi, 32 MiB in float32: at
N = 1024, Vc = 8192 and 7 chunks). The block products stay BLAS GEMMs of good shape
((N, C) x (C, Vc), (N, Vc) x (Vc, C), (Vc, N) x (N, C)).
  forward:  per chunk S = x w_c^T + b_c, then a parallel kernel folds S into a running row
            max m and sum s (s is rescaled by exp(m_old - m_new) when the max grows, as in
            flash attention); lse = m + log s. The picked logit is x_n . w[t_n] + b[t_n].
            Only lse (N,) is kept for backward.
  backward: per chunk the block is recomputed, turned into dlogits in place
            (exp(S - lse) * dout / n_kept, minus that scale at the target column), and used
            at once: dw[chunk] = dS^T x (each chunk writes its own rows of dw: no
            accumulation), dx += dS w_c, db[chunk] = column sums.
The price is the recomputed GEMM in backward: one more (N, C) x (C, V) product, a third more
FLOPs in the head. What it buys: peak memory lower by two (N, V) arrays and no page faults
from allocating them every step (benchmarks/bench_train.py reports both).
The NumPy reference is the unfused computation, written plainly; tests hold the two equal.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tinygrad_llm.kernels import dispatch
from tinygrad_llm.kernels._numba import FASTMATH, fexp, same_float, vmax
from tinygrad_llm.kernels.cross_entropy import (
    _targets,
    cross_entropy_backward_ref,
    cross_entropy_forward_ref,
)

CHUNK_ELEMENTS = 1 << 23  # numbers in one (N, Vc) block of logits


def _logits(x, w, b):
    out = x @ w.T
    if b is not None:
        out += b
    return out


def linear_cross_entropy_forward_ref(x, w, b, targets, ignore_index: int, chunk_elements=None):
    """Return (loss as a 0-d array of x.dtype, lse (N,))."""
    return cross_entropy_forward_ref(_logits(x, w, b), targets, ignore_index)


def linear_cross_entropy_backward_ref(dout, x, w, b, targets, lse, ignore_index: int,
                                      chunk_elements=None, need=(True, True, True)):
    """Return (dx (N, C), dw (V, C), db (V,) or None); ``need`` (dx, dw, db) skips the
    gradients nobody asked for (None in their place)."""
    dlogits = cross_entropy_backward_ref(dout, _logits(x, w, b), targets, lse, ignore_index)
    dx = dlogits @ w if need[0] else None
    dw = dlogits.T @ x if need[1] else None
    db = dlogits.sum(axis=0) if b is not None and need[2] else None
    return dx, dw, db


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _lse_update_kernel(s, m, total):
    """s (N, Vc) a block of logits; m, total (N,) the running row max and sum of
    exp(logit - m) over the blocks seen so far (m = -inf, total = 0 before the first),
    updated in place. All one float dtype, C-contiguous."""
    n, vc = s.shape
    for i in prange(n):
        si = s[i]
        mx = m[i]
        for j in range(vc):
            mx = vmax(mx, si[j])
        acc = si.dtype.type(0.0)
        for j in range(vc):
            acc += fexp(si[j] - mx)
        total[i] = total[i] * fexp(m[i] - mx) + acc
        m[i] = mx


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _softmax_scaled_kernel(s, lse, scale):
    """s (N, Vc) logits -> exp(s - lse_n) * scale_n, in place; lse, scale (N,)."""
    n, vc = s.shape
    for i in prange(n):
        si = s[i]
        li = lse[i]
        sc = scale[i]
        for j in range(vc):
            si[j] = fexp(si[j] - li) * sc


def _chunk_cols(n: int, v: int, chunk_elements: int | None) -> int:
    budget = CHUNK_ELEMENTS if chunk_elements is None else chunk_elements
    return max(1, min(v, budget // max(n, 1)))


def _supported(x, w, b, targets) -> bool:
    return (same_float(x, w, *(() if b is None else (b,))) and x.ndim == 2 and w.ndim == 2
            and x.shape[1] == w.shape[1] and w.shape[0] > 0 and targets.shape == x.shape[:1])


def linear_cross_entropy_forward_nb(x, w, b, targets, ignore_index: int, chunk_elements=None):
    """Return (loss as a 0-d array of x.dtype, lse (N,))."""
    if not _supported(x, w, b, targets):
        return linear_cross_entropy_forward_ref(x, w, b, targets, ignore_index)
    n, v = x.shape[0], w.shape[0]
    t, n_kept = _targets(targets, ignore_index, v)
    x = np.ascontiguousarray(x)
    vc = _chunk_cols(n, v, chunk_elements)
    block = np.empty((n, vc), dtype=x.dtype)
    m = np.full(n, -np.inf, dtype=x.dtype)
    total = np.zeros(n, dtype=x.dtype)
    for v0 in range(0, v, vc):
        s = block[:, : min(vc, v - v0)]
        np.matmul(x, w[v0 : v0 + vc].T, out=s)
        if b is not None:
            s += b[v0 : v0 + vc]
        _lse_update_kernel(s, m, total)
    lse = m + np.log(total)
    keep = t != ignore_index
    tk = np.where(keep, t, 0)
    picked = np.einsum("nc,nc->n", x, w[tk])  # (N,) the targets' logits
    if b is not None:
        picked += b[tk]
    rowloss = np.where(keep, lse - picked, 0.0)
    loss = rowloss.sum(dtype=np.float64) / n_kept if n_kept else np.nan
    return np.asarray(loss, dtype=x.dtype), lse


def linear_cross_entropy_backward_nb(dout, x, w, b, targets, lse, ignore_index: int,
                                     chunk_elements=None, need=(True, True, True)):
    """Return (dx (N, C), dw (V, C), db (V,) or None); ``need`` (dx, dw, db) skips the
    gradients nobody asked for (None in their place)."""
    if not (_supported(x, w, b, targets) and same_float(x, lse)):
        return linear_cross_entropy_backward_ref(dout, x, w, b, targets, lse, ignore_index,
                                                 need=need)
    n, v = x.shape[0], w.shape[0]
    t, n_kept = _targets(targets, ignore_index, v)
    x = np.ascontiguousarray(x)
    keep = t != ignore_index
    # dout / n_kept on kept rows, 0 on ignored ones; all NaN when nothing is kept (0 / 0,
    # as in the reference)
    scale = np.where(keep | (n_kept == 0), float(dout) / n_kept if n_kept else np.nan, 0.0)
    scale = scale.astype(x.dtype)
    lse = np.ascontiguousarray(lse)
    vc = _chunk_cols(n, v, chunk_elements)
    block = np.empty((n, vc), dtype=x.dtype)
    dx = np.zeros_like(x) if need[0] else None
    dx_part = np.empty_like(x) if need[0] else None
    dw = np.empty(w.shape, dtype=x.dtype) if need[1] else None
    db = np.empty(v, dtype=x.dtype) if b is not None and need[2] else None
    rows = np.flatnonzero(keep)
    for v0 in range(0, v, vc):
        width = min(vc, v - v0)
        s = block[:, :width]
        wc = w[v0 : v0 + width]
        np.matmul(x, wc.T, out=s)
        if b is not None:
            s += b[v0 : v0 + width]
        _softmax_scaled_kernel(s, lse, scale)
        here = rows[(t[rows] >= v0) & (t[rows] < v0 + width)]  # kept rows whose target is here
        s[here, t[here] - v0] -= scale[here]
        if dw is not None:
            np.matmul(s.T, x, out=dw[v0 : v0 + width])
        if dx is not None:
            np.matmul(s, wc, out=dx_part)
            dx += dx_part
        if db is not None:
            db[v0 : v0 + width] = s.sum(axis=0)
    return dx, dw, db


linear_cross_entropy_forward = dispatch(linear_cross_entropy_forward_ref,
                                        linear_cross_entropy_forward_nb)
linear_cross_entropy_backward = dispatch(linear_cross_entropy_backward_ref,
                                         linear_cross_entropy_backward_nb)
