"""Causal scaled dot-product attention, fused, forward and backward.

q (B, H, Tq, D), k and v (B, H, Tk, D) with Tq <= Tk: query i sits at absolute position
Tk - Tq + i and sees keys 0 .. Tk - Tq + i (so Tq == Tk is plain causal attention and
Tq < Tk is decoding with a KV cache).

    s = q k^T * scale, masked above the diagonal;  p = softmax(s);  out = p v

Forward returns ``out`` and the row log-sum-exp ``lse`` (B, H, Tq) of the masked scores.
Backward recomputes p = exp(s - lse) instead of storing a (Tq, Tk) matrix per head:
    dv = p^T dout
    dp = dout v^T
    ds = p * (dp - rowsum(dout * out))      (softmax backward; rowsum(dp * p) == rowsum(dout * out))
    dq = ds k * scale,  dk = ds^T q * scale

Numba version: the block products go to BLAS (np.matmul), the softmax steps to small Numba
kernels working in place on the products. Per batch element, the (H, Tq) queries are cut
into tiles of _BQ = 128 queries x as many heads as fit in _TILE_BYTES = 4 MiB of scores
against keys 0 .. kend - 1, where kend = Tk - Tq + q1 is the last key the tile's last query
sees: keys past it are never computed (at T = 256, 3/4 of the full Q K^T is; at T = 1024,
9/16). Per tile:
  forward:  S = Q K^T                      np.matmul, one sgemm per head
            P = softmax(S * scale), lse    _softmax_tile: hidden keys set to -inf, then row
                                           max, exp (fexp) and sum, 1/sum over whole rows
            out = P V                      np.matmul straight into the output
  backward: delta = rowsum(dout * out) for all rows first (einsum); then per tile, query
            tiles last to first:
            S = Q K^T, dP = dO V^T
            P, dS * scale                  _softmax_grad_tile, in place in S and dP
            dq = dS K; dv = P^T dO, dk = dS^T Q: the last tile sees every key and writes dk,
            dv; each earlier one adds to their first kend rows
Memory besides inputs and outputs: one tile of scores (<= 4 MiB) in forward; in backward two
tiles and a (heads, Tk, D) block (10 MiB at (1, 12, 1024, 64) float32). No (Tq, Tk) matrix
per head is kept between calls. Inputs are never copied: np.matmul reads the
(B, T, H, D)-strided views the model hands over and KV-cache slices as they are. The outputs
out, dq, dk, dv are (B, H, T, D) views of C-contiguous (B, T, H, D) arrays, so the model's
next reshape to (B, T, H * D) is free. Tiles of fewer than _PARALLEL_MIN = 32768 scores
(decoding: 12 heads x 1 query x Tk keys) run serial copies of the kernels: a parallel launch
costs 10-30 us.

Why (measured float32 on this 2-core Zen4 box, which was shared, so wall times were noisy; the
1-thread CPU times, with OPENBLAS_NUM_THREADS=NUMBA_NUM_THREADS=1 and time.process_time, were
stable to a few %):
  - np.matmul does 80-95 GF/s per thread on these tiles ((128, 64) x (64, 256),
    (128, 256) x (256, 64)); the previous fused kernels' hand-written block product (dot
    products along rows, eight at a time) 45-53 GF/s, and rank-1-update loops with four rows
    29-48 GF/s. Those kernels computed 10/16 of the full Q K^T at T = 256 (64 x 64 blocks up
    to the diagonal), these 12/16, at nearly twice the speed.
  - 1-thread CPU ms per call, previous fused kernels -> these (numpy reference):
        (4, 12, 256, 64)    fwd 15.4 -> 10.5 (22.8),  bwd 33.7 -> 22.3 (41.1)
        (1, 12, 1024, 64)   fwd 52.2 -> 27.5 (101),   bwd 124 -> 64 (168)
        decode (1, 12, 1, 64) over 1024 cached keys: 3.5 -> 0.18 (0.17); the old kernels
        copied the strided cache views to contiguous (B*H, T, D) arrays on every call
    The Numba kernels are 20-30 % of the forward, 3-10 % of the backward; the rest is BLAS.
    _BQ = 64 did 1-12 % less work at T = 256 (none less at T = 1024) with twice the BLAS
    calls; _BQ = 256 did 25 % more.
  - 2 threads, fastest of 15 calls (medians were 1.5-3x that): (4, 12, 256, 64) fwd 8.3 ms,
    bwd 15.2 ms (old kernels 8.4, 18.3). Right after a GEMM, as in the model, where
    OpenBLAS's idle worker still spins on one core: fwd 7.8, bwd 15.0 ms (old 13.6, 31.4);
    (1, 12, 1024, 64) fwd 19.8, bwd 63.7 ms (old 46.5, 157.5).
  - The cost: two threads scale worse (1.3-1.6x; OpenBLAS synchronises its threads on every
    small sgemm, 200-500 of them per call), and on a loaded machine each synchronisation can
    wait for a time slice, so times vary far more than the old kernels' (one parallel region
    per call): under load from other processes medians were 1.5-3x the minimum, some
    calls took seconds; the numpy reference (also BLAS) varied as much.
Accumulation is in the input dtype (sgemm / dgemm and the kernels). Tests hold
|nb - ref| <= tol (|ref| + s), tol 2e-5 (float32) / 1e-12 (float64), with s the size of the
summed terms: max|v| for out, the score size for lse, and for dq, dk the cancelling
ds = p (dp - delta) times the keys / queries summed over (measured max differences relative
to max|ref|: 1.3e-6 float32, 2.5e-15 float64 at the shapes above).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tinygrad_llm.kernels import dispatch
from tinygrad_llm.kernels._numba import FASTMATH, fexp, same_float, vmax


def _masked_scores(q, k, scale):
    tq, tk = q.shape[-2], k.shape[-2]
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * float(scale)  # (B, H, Tq, Tk)
    future = np.triu(np.ones((tq, tk), dtype=bool), k=tk - tq + 1)
    return np.where(future, -np.inf, s).astype(q.dtype, copy=False)


def attention_forward_ref(q, k, v, scale: float):
    """Return (out (B, H, Tq, D), lse (B, H, Tq))."""
    s = _masked_scores(q, k, scale)
    m = s.max(axis=-1, keepdims=True)
    e = np.exp(s - m)
    denom = e.sum(axis=-1, keepdims=True)
    out = np.matmul(e / denom, v)
    lse = (m + np.log(denom))[..., 0]
    return out, lse


def attention_backward_ref(dout, q, k, v, out, lse, scale: float):
    """Return (dq, dk, dv)."""
    scale = float(scale)  # a NumPy float64 scale would turn float32 dq, dk into float64
    p = np.exp(_masked_scores(q, k, scale) - lse[..., None])  # (B, H, Tq, Tk)
    dv = np.matmul(np.swapaxes(p, -1, -2), dout)
    dp = np.matmul(dout, np.swapaxes(v, -1, -2))
    delta = (dout * out).sum(axis=-1, keepdims=True)
    ds = p * (dp - delta)
    dq = np.matmul(ds, k) * scale
    dk = np.matmul(np.swapaxes(ds, -1, -2), q) * scale
    return dq, dk, dv


_TILE_BYTES = 4 << 20  # at most this many bytes of scores per tile (two tiles in backward)
_BQ = 128  # query rows per tile: keys past the tile's last visible one are never computed
_PARALLEL_MIN = 1 << 15  # tiles with fewer scores use the serial kernels (no thread launch)


@njit(cache=True, fastmath=FASTMATH)
def _softmax_row(si, nv, scale):
    """si: one row of raw scores q k^T, of which keys 0 .. nv-1 are visible (nv >= 1) ->
    in place p = softmax(si * scale) over the visible keys, 0 past them. Returns the
    log-sum-exp of the visible scaled scores. scale > 0, so max(si) * scale is their max."""
    T = si.dtype.type
    for j in range(nv, si.size):
        si[j] = -np.inf  # exp(-inf) = 0: the loops below run over the whole row, no masks
    mx = T(-np.inf)
    for j in range(si.size):
        mx = vmax(mx, si[j])
    mx *= scale
    tot = T(0.0)
    for j in range(si.size):
        e = fexp(si[j] * scale - mx)
        si[j] = e
        tot += e
    inv = T(1.0) / tot
    for j in range(si.size):
        si[j] *= inv
    return mx + np.log(tot)


@njit(cache=True, fastmath=FASTMATH)
def _softmax_grad_row(si, di, nv, scale, lse, delta):
    """si: one row of raw scores (keys 0 .. nv-1 visible) -> p = exp(si * scale - lse), 0 past
    the visible keys; di: the row of dp = dout v^T -> ds = p (dp - delta) * scale."""
    for j in range(nv, si.size):
        si[j] = -np.inf
    for j in range(si.size):
        p = fexp(si[j] * scale - lse)
        si[j] = p
        di[j] = p * (di[j] - delta) * scale


# The tile kernels: s (and dp) of shape (n, r, kend) hold heads h0 .. h0+n-1 x queries
# q0 .. q0+r-1 against keys 0 .. kend-1; query q0 + i sees keys 0 .. off + q0 + i. lse and
# delta are (H, Tq) arrays of one batch element. Each comes in a parallel version and a serial
# one (no thread launch) for small tiles; they are separate functions because Numba's cache
# keys a compiled kernel on its Python function, not on the parallel flag.


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _softmax_tile_par(s, scale, q0, off, lse, h0):
    n, r = s.shape[0], s.shape[1]
    for row in prange(n * r):
        h, i = row // r, row % r
        lse[h0 + h, q0 + i] = _softmax_row(s[h, i], off + q0 + i + 1, scale)


@njit(cache=True, fastmath=FASTMATH)
def _softmax_tile_ser(s, scale, q0, off, lse, h0):
    n, r = s.shape[0], s.shape[1]
    for row in range(n * r):
        h, i = row // r, row % r
        lse[h0 + h, q0 + i] = _softmax_row(s[h, i], off + q0 + i + 1, scale)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _softmax_grad_tile_par(s, dp, scale, q0, off, lse, delta, h0):
    n, r = s.shape[0], s.shape[1]
    for row in prange(n * r):
        h, i = row // r, row % r
        li, de = lse[h0 + h, q0 + i], delta[h0 + h, q0 + i]
        _softmax_grad_row(s[h, i], dp[h, i], off + q0 + i + 1, scale, li, de)


@njit(cache=True, fastmath=FASTMATH)
def _softmax_grad_tile_ser(s, dp, scale, q0, off, lse, delta, h0):
    n, r = s.shape[0], s.shape[1]
    for row in range(n * r):
        h, i = row // r, row % r
        li, de = lse[h0 + h, q0 + i], delta[h0 + h, q0 + i]
        _softmax_grad_row(s[h, i], dp[h, i], off + q0 + i + 1, scale, li, de)


def _supported(q, k, v, scale, *more) -> bool:
    return (
        same_float(q, k, v, *more)
        and q.ndim == 4
        and k.shape == v.shape
        and q.shape[:2] == k.shape[:2]
        and q.shape[3] == k.shape[3]
        and 0 < q.shape[2] <= k.shape[2]
        and q.shape[3] > 0
        and 0.0 < float(scale) < np.inf
    )


def _tile_shape(h: int, tq: int, tk: int, itemsize: int) -> tuple[int, int]:
    """(heads, queries) per tile: _BQ queries (fewer if Tq is smaller, or if _BQ rows of Tk
    scores would not fit in _TILE_BYTES; at least one) of as many heads as fit."""
    row = itemsize * tk
    bq = max(1, min(_BQ, tq, _TILE_BYTES // row))
    return max(1, min(h, _TILE_BYTES // (row * bq))), bq


def _tiles(h: int, tq: int, nh: int, bq: int):
    """Yield (h0, h1, q0, q1): heads h0 .. h1-1 x queries q0 .. q1-1."""
    for h0 in range(0, h, nh):
        for q0 in range(0, tq, bq):
            yield h0, min(h, h0 + nh), q0, min(tq, q0 + bq)


def _bthd(b: int, h: int, t: int, d: int, dtype) -> np.ndarray:
    """A (B, H, T, D) view of a new C-contiguous (B, T, H, D) array: the layout the model
    reshapes to (B, T, H * D) next, which then costs no copy."""
    return np.empty((b, t, h, d), dtype).swapaxes(1, 2)


def attention_forward_nb(q, k, v, scale: float):
    """Return (out (B, H, Tq, D), lse (B, H, Tq))."""
    if not _supported(q, k, v, scale):
        return attention_forward_ref(q, k, v, scale)
    b, h, tq, d = q.shape
    tk = k.shape[2]
    off = tk - tq  # query i sees keys 0 .. off + i
    dt = q.dtype
    scale = dt.type(scale)
    out = _bthd(b, h, tq, d, dt)
    lse = np.empty((b, h, tq), dt)
    nh, bq = _tile_shape(h, tq, tk, dt.itemsize)
    buf = np.empty(nh * bq * tk, dt)
    for bi in range(b):
        for h0, h1, q0, q1 in _tiles(h, tq, nh, bq):
            kend = off + q1  # keys kend.. are hidden from every query of the tile
            s = buf[: (h1 - h0) * (q1 - q0) * kend].reshape(h1 - h0, q1 - q0, kend)
            np.matmul(q[bi, h0:h1, q0:q1], k[bi, h0:h1, :kend].swapaxes(1, 2), out=s)
            softmax = _softmax_tile_par if s.size >= _PARALLEL_MIN else _softmax_tile_ser
            softmax(s, scale, q0, off, lse[bi], h0)
            np.matmul(s, v[bi, h0:h1, :kend], out=out[bi, h0:h1, q0:q1])
    return out, lse


def attention_backward_nb(dout, q, k, v, out, lse, scale: float):
    """Return (dq, dk, dv)."""
    ok = _supported(q, k, v, scale, dout, out, lse)
    if not (ok and dout.shape == out.shape == q.shape and lse.shape == q.shape[:3]):
        return attention_backward_ref(dout, q, k, v, out, lse, scale)
    b, h, tq, d = q.shape
    tk = k.shape[2]
    off = tk - tq
    dt = q.dtype
    scale = dt.type(scale)
    lse = np.ascontiguousarray(lse)
    delta = np.einsum("bhtd,bhtd->bht", dout, out)  # rowsum(dout * out) == rowsum(dp * p)
    dq, dk, dv = _bthd(b, h, tq, d, dt), _bthd(b, h, tk, d, dt), _bthd(b, h, tk, d, dt)
    nh, bq = _tile_shape(h, tq, tk, dt.itemsize)
    buf_s, buf_dp = np.empty(nh * bq * tk, dt), np.empty(nh * bq * tk, dt)
    buf_kv = np.empty((nh, tk, d), dt)
    for bi in range(b):
        # query tiles last to first: the last one sees every key and writes dk, dv whole,
        # the earlier ones add to their first kend rows
        for h0, h1, q0, q1 in reversed(list(_tiles(h, tq, nh, bq))):
            kend = off + q1
            n = (h1 - h0) * (q1 - q0) * kend
            s = buf_s[:n].reshape(h1 - h0, q1 - q0, kend)
            dp = buf_dp[:n].reshape(h1 - h0, q1 - q0, kend)
            q_t, do_t = q[bi, h0:h1, q0:q1], dout[bi, h0:h1, q0:q1]  # the tile's queries
            k_t, v_t = k[bi, h0:h1, :kend], v[bi, h0:h1, :kend]  # the keys they see
            np.matmul(q_t, k_t.swapaxes(1, 2), out=s)
            np.matmul(do_t, v_t.swapaxes(1, 2), out=dp)
            grad = _softmax_grad_tile_par if n >= _PARALLEL_MIN else _softmax_grad_tile_ser
            grad(s, dp, scale, q0, off, lse[bi], delta[bi], h0)  # s -> p, dp -> ds * scale
            np.matmul(dp, k_t, out=dq[bi, h0:h1, q0:q1])  # dq = ds k * scale
            if q1 == tq:
                np.matmul(s.swapaxes(1, 2), do_t, out=dv[bi, h0:h1])  # dv = p^T dout
                np.matmul(dp.swapaxes(1, 2), q_t, out=dk[bi, h0:h1])  # dk = ds^T q * scale
            else:
                tmp = buf_kv[: h1 - h0, :kend]
                np.matmul(s.swapaxes(1, 2), do_t, out=tmp)
                dv[bi, h0:h1, :kend] += tmp
                np.matmul(dp.swapaxes(1, 2), q_t, out=tmp)
                dk[bi, h0:h1, :kend] += tmp
    return dq, dk, dv


attention_forward = dispatch(attention_forward_ref, attention_forward_nb)
attention_backward = dispatch(attention_backward_ref, attention_backward_nb)
