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

Numba versions.
  Training and prefill (Tq > _FEW_QUERIES = 4): fused kernels, parallel over the B*H heads
  (prange; 48 at GPT-2 small's training shape, 12 at batch 1), each head walked in blocks of
  _BQ = 64 queries. No (Tq, Tk) matrix exists at any time: per thread the scratch is a few
  (64, Tk) and (D, Tk) blocks (OpenBLAS path at T = 1024 float32: 0.5 MiB forward, 1 MiB
  backward), plus, on the plain-Numba path, (T, D) copies of the head's rows.
    forward:  S = Q K^T * scale against every key up to the block's last visible one, causal
              mask (-inf), row max, exp, sum, then out = (E V) / sum, lse = max + log sum;
              whole rows, so no running max and no rescaling of a partial E V as in the
              online (flash) softmax.
    backward: S and P = exp(S - lse) recomputed, dP = dO V^T, dS = P (dP - delta) * scale with
              delta = rowsum(dO out), then dV += P^T dO, dK += dS^T Q, dQ += dS K,
              accumulated in the head's slices of the outputs (a head belongs to one thread).
  The block products come in two versions:
    _attn_fwd_blas / _attn_bwd_blas (used when kernels/_blas.py finds NumPy's OpenBLAS, as in
      NumPy's Linux and Windows wheels): each product is one cblas_?gemm call on the calling
      thread, straight on the caller's memory. A head's rows inside the (B, T, H, D) array the
      model hands over are a matrix whose leading dimension is the row stride, so Q, dO and V
      are read in place and E V is written into ``out`` in place; only K (and V in backward)
      is transposed once per head, for S = Q K^T (and dP = dO V^T) as NN products. Backward
      walks query blocks against keys [0, block end): S and dP for the block, then the five
      products.
    _attn_fwd_kernel / _attn_bwd_kernel (any other NumPy build): the products in plain Numba.
      Each head's rows are first gathered into contiguous per-thread arrays (_gather; _rows
      gives row views of the caller's arrays and KV-cache slices without copying them whole),
      ``_abt`` computes out = A B^T as dot products along contiguous rows, eight rows of B at
      a time sharing the loads of A's row, and the products whose contraction runs over rows
      (P^T dO, dS^T Q, dS K, E V) use transposed copies made once per head or per block,
      their rows padded (_padded) so that a column's elements are not 4 KiB apart. Backward
      walks key blocks of _BK = 64 and the query blocks that see them.
  Decoding (Tq <= 4): S = Q K^T and out = P V by np.matmul per batch element and group of
  heads (at most _TILE_BYTES = 4 MiB of scores), on the arrays as given, with a serial
  softmax kernel in between. Each product then has at most 4 * Tk * D multiply-adds (2^18 at
  Tk = 1024), which OpenBLAS runs on the calling thread: no thread is woken, nothing copied.
  The fused OpenBLAS kernel took 0.14-0.25 ms per call there against this path's 0.01-0.11 ms
  (one query, 12 heads, 17-1024 cached keys).
  out is returned as a (B, H, Tq, D) view of a C-contiguous (B, Tq, H, D) array, the layout
  the model reshapes to (B, Tq, H * D) next (no copy there).

Measured (float32, this 2-core VM, shared with other work: wall times varied 1.5-3x between
runs), ms per call on 2 threads, medians, one run of benchmarks/bench_kernels.py (its rows
"... plain Numba" turn USE_BLAS off):
                        OpenBLAS products       plain Numba
    (4, 12, 256, 64)    fwd 4.8   bwd 9.8       fwd 7.3   bwd 15.8
    (1, 12, 1024, 64)   fwd 12.3  bwd 27.2      fwd 25.3  bwd 50.2
  The first OpenBLAS version, with S = Q K^T and dP = dO V^T as NT products on the rows in
  place (no K^T, V^T), measured fwd 6.1 / bwd 15.9 and fwd 14.8 / bwd 35.8 in the same table.
  A 1,024-token prefill of GPT-2 small went from 0.97x the plain PyTorch model's speed to
  0.98-1.08x (four runs) with the first version and 1.03x with this one
  (benchmarks/bench_generate.py --vs-torch; the rest of the prefill is mostly GEMMs).
  Earlier measurements of the plain-Numba path (1-thread CPU time, OPENBLAS_NUM_THREADS=
  NUMBA_NUM_THREADS=1): fwd 14.0 / bwd 31.6 at (4, 12, 256, 64), fwd 43.6 / bwd 110 at
  (1, 12, 1024, 64); its block products run at 45-53 GF/s per thread. Tried there:
  - Products by np.matmul from Python (tiles of 128 queries x heads, Numba kernels for the
    softmax steps): each of the 200-500 small products per call was an OpenBLAS call that
    woke and synchronised its sleeping threads (15-50 ms forward at (4, 12, 256, 64)). The
    BLAS kernels above avoid that: one parallel region per call, OpenBLAS on one thread
    inside it (_blas.one_thread).
  - Register-tiled outer-product micro-kernels in plain Numba (accumulator tiles of 4 x 32
    in a local array, or 32 scalar accumulators): 8-39 GF/s; LLVM keeps neither in
    registers. Rank-1-update loops over four rows: 29-48 GF/s.
  - _abt reading the strided rows of the caller's arrays in place instead of gathering them:
    30-40 % slower.
Accumulation is in the input dtype, as in flash attention. Tests hold
|nb - ref| <= tol (|ref| + s), tol 2e-5 (float32) / 1e-12 (float64), with s the size of the
summed terms: max|v| for out, the score size for lse, and for dq, dk the cancelling
ds = p (dp - delta) times the keys / queries summed over (measured max differences relative
to max|ref|: 1.3e-6 float32, 2.5e-15 float64 at the shapes above).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tinygrad_llm.kernels import _blas, dispatch
from tinygrad_llm.kernels._numba import JIT, fexp, same_float, vmax


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


_BQ = 64  # queries per block of the fused kernels
_BK = 64  # keys per block of the fused kernels
_FEW_QUERIES = 4  # forward with at most this many queries (decoding) takes the np.matmul path
_TILE_BYTES = 4 << 20  # np.matmul path: at most this many bytes of scores at a time
_ROW_MAJOR, _NO_TRANS, _TRANS = _blas.ROW_MAJOR, _blas.NO_TRANS, _blas.TRANS
USE_BLAS = True  # the fused kernels call OpenBLAS when _blas found it (tests switch this)


@njit(**JIT)
def _abt(a, a0, ast, ak, b, b0, bst, bk, m, p, n, out, alpha, accumulate):
    """out[i, j] (+)= alpha * sum_{c < n} a[a0 + i ast, ak + c] * b[b0 + j bst, bk + c]
    for i < m, j < p.

    a, b, out: 2-D C-contiguous arrays of one dtype (float32|float64), a and b read at rows
    a0, a0 + ast, ... and b0, b0 + bst, ... (row views of strided inputs, see _rows); alpha of
    that dtype;
    accumulate: bool, add to out instead of overwriting it. Dot products along contiguous
    rows, eight rows of b per pass (then one at a time) so each load of a's row feeds
    eight FMAs (8 rows: 7-9 % faster attention than 4 rows). The rows are
    sliced to [k, k + n) first so the inner loop indexes from 0: with ``row[k + c]`` Numba's
    negative-index wraparound could not be proven dead and the loads became gathers
    (2 GF/s instead of 39 GF/s)."""
    T = out.dtype.type
    for i in range(m):
        ai = a[a0 + i * ast, ak : ak + n]
        oi = out[i]
        j = 0
        while j + 8 <= p:
            r0 = b[b0 + j * bst, bk : bk + n]
            r1 = b[b0 + (j + 1) * bst, bk : bk + n]
            r2 = b[b0 + (j + 2) * bst, bk : bk + n]
            r3 = b[b0 + (j + 3) * bst, bk : bk + n]
            r4 = b[b0 + (j + 4) * bst, bk : bk + n]
            r5 = b[b0 + (j + 5) * bst, bk : bk + n]
            r6 = b[b0 + (j + 6) * bst, bk : bk + n]
            r7 = b[b0 + (j + 7) * bst, bk : bk + n]
            s0 = T(0.0)
            s1 = T(0.0)
            s2 = T(0.0)
            s3 = T(0.0)
            s4 = T(0.0)
            s5 = T(0.0)
            s6 = T(0.0)
            s7 = T(0.0)
            for c in range(n):
                x = ai[c]
                s0 += x * r0[c]
                s1 += x * r1[c]
                s2 += x * r2[c]
                s3 += x * r3[c]
                s4 += x * r4[c]
                s5 += x * r5[c]
                s6 += x * r6[c]
                s7 += x * r7[c]
            if accumulate:
                oi[j] += alpha * s0
                oi[j + 1] += alpha * s1
                oi[j + 2] += alpha * s2
                oi[j + 3] += alpha * s3
                oi[j + 4] += alpha * s4
                oi[j + 5] += alpha * s5
                oi[j + 6] += alpha * s6
                oi[j + 7] += alpha * s7
            else:
                oi[j] = alpha * s0
                oi[j + 1] = alpha * s1
                oi[j + 2] = alpha * s2
                oi[j + 3] = alpha * s3
                oi[j + 4] = alpha * s4
                oi[j + 5] = alpha * s5
                oi[j + 6] = alpha * s6
                oi[j + 7] = alpha * s7
            j += 8
        while j < p:
            r0 = b[b0 + j * bst, bk : bk + n]
            s0 = T(0.0)
            for c in range(n):
                s0 += ai[c] * r0[c]
            if accumulate:
                oi[j] += alpha * s0
            else:
                oi[j] = alpha * s0
            j += 1


@njit(**JIT)
def _padded(n):
    """A row length >= n for scratch arrays read or written a column at a time: an odd
    multiple of 16 elements, so that rows are not 4 KiB apart (n = 1024 float32 would be),
    which maps a column's elements to one L1 cache set. Unpadded, the forward of one query
    over 1024 keys through the fused kernel took 7 ms instead of 2.2, mostly in V^T."""
    return ((n + 15) // 16 | 1) * 16


@njit(**JIT)
def _gather(x, r0, rs, n, dst):
    """dst[i] = x[r0 + i * rs] for i < n: rows of a row view (see _rows) into a C-contiguous
    block. _abt reading the strided rows in place instead was 30-40 % slower."""
    for i in range(n):
        dst[i] = x[r0 + i * rs]


@njit(**JIT)
def _transpose_rows(x, r0, rs, n, xt):
    """xt[c, i] = x[r0 + i * rs, c] for i < n: rows of x (a row view, see _rows, or a
    contiguous (n, d) array with r0 = 0, rs = 1) into the columns of xt (d, >= n, rows padded,
    see _padded). The OpenBLAS kernels use it for K^T and V^T, so that S = Q K^T and
    dP = dO V^T run as NN GEMMs: 10-20 % faster than OpenBLAS's NT path on the rows in place
    at these shapes (inner dimension D = 64), the transposes included. The plain-Numba
    kernels use it for the products whose contraction runs over rows."""
    for i in range(n):
        xi = x[r0 + i * rs]
        for c in range(xt.shape[0]):
            xt[c, i] = xi[c]


@njit(**JIT)
def _exp_rows(s, nq, first, kend, rinv, lse_rows):
    """The forward's softmax of a block of score rows, in place: row i < nq of s holds the
    scores of a query that sees keys 0 .. first + i of [0, kend). The keys past that are set
    to -inf (exp(-inf) = 0: the loops then run over whole rows), then s[i] = exp(s[i] - max),
    rinv[i] = 1 / sum (p = e / sum, applied later to the rows of E V) and
    lse_rows[i] = max + log(sum)."""
    T = s.dtype.type
    for i in range(nq):
        si = s[i]
        for j in range(first + i + 1, kend):
            si[j] = -np.inf
        mx = T(-np.inf)
        for j in range(kend):
            mx = vmax(mx, si[j])
        tot = T(0.0)
        for j in range(kend):
            e = fexp(si[j] - mx)
            si[j] = e
            tot += e
        rinv[i] = T(1.0) / tot
        lse_rows[i] = mx + np.log(tot)


@njit(**JIT)
def _p_ds_row(si, dpi, li, di, scale, nv, n):
    """The backward's elementwise step on one query's row of n keys, of which the first nv
    are visible: si (scores) -> P = exp(S - lse), dpi (dP) -> dS * scale =
    P (dP - delta) * scale; both 0 past the visible keys."""
    for j in range(nv):
        pj = fexp(si[j] - li)
        si[j] = pj
        dpi[j] = pj * (dpi[j] - di) * scale
    for j in range(nv, n):
        si[j] = 0.0
        dpi[j] = 0.0


@njit(parallel=True, **JIT)
def _attn_fwd_kernel(q, qs, k, ks, v, vs, tk, scale, out, lse):
    """Row views (see _rows) q, k, v of (B, H, Tq, D), (B, H, Tk, D), (B, H, Tk, D) arrays
    with their row strides qs, ks, vs; scale of their dtype -> out (B, Tq, H, D) and
    lse (B, H, Tq), C-contiguous, written in place."""
    bsz, tq, nh, d = out.shape
    off = tk - tq
    T = q.dtype.type
    one = T(1.0)
    for bh in prange(bsz * nh):
        b, h = bh // nh, bh % nh
        qh = np.empty((tq, d), dtype=q.dtype)  # this head's rows, contiguous
        kh = np.empty((tk, d), dtype=q.dtype)
        vh = np.empty((tk, d), dtype=q.dtype)
        vt = np.empty((d, _padded(tk)), dtype=q.dtype)  # V^T: P V as dot products along rows
        s = np.empty((_BQ, _padded(tk)), dtype=q.dtype)  # scores, then exp, of a query block
        acc = np.empty((_BQ, d), dtype=q.dtype)
        rinv = np.empty(_BQ, dtype=q.dtype)
        _gather(q, b * qs[0] + h * qs[1], qs[2], tq, qh)
        _gather(k, b * ks[0] + h * ks[1], ks[2], tk, kh)
        _gather(v, b * vs[0] + h * vs[1], vs[2], tk, vh)
        _transpose_rows(vh, 0, 1, tk, vt)
        for q0 in range(0, tq, _BQ):
            nq = min(_BQ, tq - q0)
            kend = off + q0 + nq  # keys [0, kend) are seen by some query of the block
            _abt(qh, q0, 1, 0, kh, 0, 1, 0, nq, kend, d, s, scale, False)  # S = Q K^T scale
            _exp_rows(s, nq, off + q0, kend, rinv, lse[b, h, q0:])
            _abt(s, 0, 1, 0, vt, 0, 1, 0, nq, d, kend, acc, one, False)  # E V
            for i in range(nq):
                oi = out[b, q0 + i, h]
                for c in range(d):
                    oi[c] = acc[i, c] * rinv[i]


@njit(parallel=True, **JIT)
def _attn_bwd_kernel(dout, dos, q, qs, k, ks, v, vs, out, os, lse, scale, dq, dk, dv):
    """Row views dout, q, out of (B, H, Tq, D) arrays and k, v of (B, H, Tk, D) arrays with
    their row strides; lse (B, H, Tq) C-contiguous; scale of their dtype -> dq (B*H, Tq, D),
    dk, dv (B*H, Tk, D), C-contiguous, written in place."""
    tq, d = dq.shape[1], dq.shape[2]
    nh = lse.shape[1]
    bsz = lse.shape[0]
    tk = dk.shape[1]
    off = tk - tq
    T = q.dtype.type
    one = T(1.0)
    for bh in prange(bsz * nh):
        b, h = bh // nh, bh % nh
        qh = np.empty((tq, d), dtype=q.dtype)  # this head's rows, contiguous
        doh = np.empty((tq, d), dtype=q.dtype)
        kh = np.empty((tk, d), dtype=q.dtype)
        vh = np.empty((tk, d), dtype=q.dtype)
        qt = np.empty((d, _padded(tq)), dtype=q.dtype)  # transposes: the products summed
        dot = np.empty((d, _padded(tq)), dtype=q.dtype)  # over rows
        kt = np.empty((d, _padded(tk)), dtype=q.dtype)
        dqh, dkh, dvh = dq[bh], dk[bh], dv[bh]  # accumulated in place
        dqh[:] = 0.0
        dkh[:] = 0.0
        dvh[:] = 0.0
        delta = np.empty(tq, dtype=q.dtype)
        s = np.empty((_BQ, _BK), dtype=q.dtype)  # S, then P
        dp = np.empty((_BQ, _BK), dtype=q.dtype)  # dP, then dS * scale
        pt = np.empty((_BK, _BQ), dtype=q.dtype)
        dst = np.empty((_BK, _BQ), dtype=q.dtype)
        _gather(q, b * qs[0] + h * qs[1], qs[2], tq, qh)
        _gather(dout, b * dos[0] + h * dos[1], dos[2], tq, doh)
        _gather(k, b * ks[0] + h * ks[1], ks[2], tk, kh)
        _gather(v, b * vs[0] + h * vs[1], vs[2], tk, vh)
        _transpose_rows(qh, 0, 1, tq, qt)
        _transpose_rows(doh, 0, 1, tq, dot)
        _transpose_rows(kh, 0, 1, tk, kt)
        o0 = b * os[0] + h * os[1]
        lh = lse[b, h]
        for i in range(tq):
            oi = out[o0 + i * os[2]]
            acc = T(0.0)
            for c in range(d):
                acc += doh[i, c] * oi[c]
            delta[i] = acc  # rowsum(dout * out) == rowsum(dp * p)
        for k0 in range(0, tk, _BK):
            nk = min(_BK, tk - k0)
            first = max(0, k0 - off) // _BQ * _BQ  # first query block that sees key k0
            for q0 in range(first, tq, _BQ):
                nq = min(_BQ, tq - q0)
                _abt(qh, q0, 1, 0, kh, k0, 1, 0, nq, nk, d, s, scale, False)  # S = Q K^T sc.
                _abt(doh, q0, 1, 0, vh, k0, 1, 0, nq, nk, d, dp, one, False)  # dP = dO V^T
                for i in range(nq):
                    si = s[i]
                    dpi = dp[i]
                    li = lh[q0 + i]
                    di = delta[q0 + i]
                    _p_ds_row(si, dpi, li, di, scale, max(0, min(nk, off + q0 + i - k0 + 1)), nk)
                    for j in range(nk):
                        pt[j, i] = si[j]
                        dst[j, i] = dpi[j]
                _abt(pt, 0, 1, 0, dot, 0, 1, q0, nk, d, nq, dvh[k0:], one, True)  # dv += P^T dO
                _abt(dst, 0, 1, 0, qt, 0, 1, q0, nk, d, nq, dkh[k0:], one, True)  # dk += dS^T Q
                _abt(dp, 0, 1, 0, kt, 0, 1, k0, nq, d, nk, dqh[q0:], one, True)  # dq += dS K


# --------------------------------------------------- the fused kernels on OpenBLAS's GEMM


@njit(**JIT)
def _at(x, row, d):
    """Address of row ``row`` of a (N, d) row view (see _rows)."""
    return x.ctypes.data + row * d * x.itemsize


@njit(parallel=True, **JIT)
def _attn_fwd_blas(gemm, q, qs, k, ks, v, vs, tk, scale, out, lse):
    """As _attn_fwd_kernel, with the two block products S = Q K^T scale and E V by ``gemm``
    (see _blas) on the caller's rows: a head's rows are a matrix whose leading dimension is
    the row stride, so Q and V are read in place and E V is written into ``out`` (leading
    dimension H * D) in place; K is transposed once per head (_transpose_rows)."""
    bsz, tq, nh, d = out.shape
    off = tk - tq
    ldq, ldv = max(qs[2], 1) * d, max(vs[2], 1) * d  # BLAS: ld >= d
    for bh in prange(bsz * nh):
        b, h = bh // nh, bh % nh
        lds = _padded(tk)
        s = np.empty((_BQ, lds), dtype=q.dtype)  # scores, then exp, of a query block
        rinv = np.empty(_BQ, dtype=q.dtype)
        kt = np.empty((d, lds), dtype=q.dtype)  # K^T (see _transpose_rows)
        q0_, k0_, v0_ = b * qs[0] + h * qs[1], b * ks[0] + h * ks[1], b * vs[0] + h * vs[1]
        _transpose_rows(k, k0_, ks[2], tk, kt)
        for q0 in range(0, tq, _BQ):
            nq = min(_BQ, tq - q0)
            kend = off + q0 + nq  # keys [0, kend) are seen by some query of the block
            gemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, nq, kend, d, scale,
                 _at(q, q0_ + q0 * qs[2], d), ldq, kt.ctypes.data, lds, 0.0, s.ctypes.data, lds)
            _exp_rows(s, nq, off + q0, kend, rinv, lse[b, h, q0:])
            oq = out[b, q0:, h]  # (nq, d) rows nh * d apart
            gemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, nq, d, kend, 1.0, s.ctypes.data, lds,
                 _at(v, v0_, d), ldv, 0.0, oq.ctypes.data, nh * d)
            for i in range(nq):
                oi = oq[i]
                for c in range(d):
                    oi[c] *= rinv[i]


@njit(parallel=True, **JIT)
def _attn_bwd_blas(gemm, dout, dos, q, qs, k, ks, v, vs, out, os, lse, scale, dq, dk, dv):
    """As _attn_bwd_kernel, with the five block products by ``gemm`` on the caller's rows.
    Walked by query blocks: for the block's queries against keys [0, kend),
        S = Q K^T scale, dP = dO V^T          (two (nq, kend) scratch blocks)
        P = exp(S - lse), dS = P (dP - delta) scale
        dV[:kend] += P^T dO, dK[:kend] += dS^T Q, dQ[block] = dS K."""
    tq, d = dq.shape[1], dq.shape[2]
    bsz, nh = lse.shape[0], lse.shape[1]
    tk = dk.shape[1]
    off = tk - tq
    T = q.dtype.type
    ldq, ldo, ldk = max(qs[2], 1) * d, max(dos[2], 1) * d, max(ks[2], 1) * d  # BLAS: ld >= d
    for bh in prange(bsz * nh):
        b, h = bh // nh, bh % nh
        lds = _padded(tk)
        s = np.empty((_BQ, lds), dtype=q.dtype)  # S, then P
        dp = np.empty((_BQ, lds), dtype=q.dtype)  # dP, then dS * scale
        kt = np.empty((d, lds), dtype=q.dtype)  # K^T and V^T (see _transpose_rows)
        vt = np.empty((d, lds), dtype=q.dtype)
        delta = np.empty(tq, dtype=q.dtype)
        q0_, do0_ = b * qs[0] + h * qs[1], b * dos[0] + h * dos[1]
        k0_, v0_, o0_ = b * ks[0] + h * ks[1], b * vs[0] + h * vs[1], b * os[0] + h * os[1]
        dqh, dkh, dvh = dq[bh], dk[bh], dv[bh]
        dkh[:] = 0.0  # accumulated over the query blocks
        dvh[:] = 0.0
        for i in range(tq):
            oi, gi = out[o0_ + i * os[2]], dout[do0_ + i * dos[2]]
            acc = T(0.0)
            for c in range(d):
                acc += gi[c] * oi[c]
            delta[i] = acc  # rowsum(dout * out) == rowsum(dp * p)
        lh = lse[b, h]
        kp = _at(k, k0_, d)
        _transpose_rows(k, k0_, ks[2], tk, kt)
        _transpose_rows(v, v0_, vs[2], tk, vt)
        for q0 in range(0, tq, _BQ):
            nq = min(_BQ, tq - q0)
            kend = off + q0 + nq
            qp, dop = _at(q, q0_ + q0 * qs[2], d), _at(dout, do0_ + q0 * dos[2], d)
            gemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, nq, kend, d, scale, qp, ldq, kt.ctypes.data,
                 lds, 0.0, s.ctypes.data, lds)  # S = Q K^T scale
            gemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, nq, kend, d, 1.0, dop, ldo, vt.ctypes.data,
                 lds, 0.0, dp.ctypes.data, lds)  # dP = dO V^T
            for i in range(nq):
                si, dpi = s[i], dp[i]
                li, di = lh[q0 + i], delta[q0 + i]
                _p_ds_row(si, dpi, li, di, scale, off + q0 + i + 1, kend)
            gemm(_ROW_MAJOR, _TRANS, _NO_TRANS, kend, d, nq, 1.0, s.ctypes.data, lds, dop, ldo,
                 1.0, dvh.ctypes.data, d)  # dV += P^T dO
            gemm(_ROW_MAJOR, _TRANS, _NO_TRANS, kend, d, nq, 1.0, dp.ctypes.data, lds, qp, ldq,
                 1.0, dkh.ctypes.data, d)  # dK += dS^T Q
            gemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, nq, d, kend, 1.0, dp.ctypes.data, lds, kp,
                 ldk, 0.0, dqh[q0:].ctypes.data, d)  # dQ = dS K


@njit(**JIT)
def _softmax_rows(s, scale, off, lse):
    """s (n, r, tk): raw scores q k^T of n heads x r queries against all keys (query i sees
    keys 0 .. off + i) -> in place p = softmax(s * scale) over the visible keys, 0 past them;
    lse (n, r) written. scale > 0, so max(s) * scale is the max of the scaled scores."""
    n, r, tk = s.shape
    T = s.dtype.type
    for h in range(n):
        for i in range(r):
            si = s[h, i]
            for j in range(off + i + 1, tk):
                si[j] = -np.inf  # exp(-inf) = 0: the loops below run over whole rows
            mx = T(-np.inf)
            for j in range(tk):
                mx = vmax(mx, si[j])
            mx *= scale  # finite: key 0 is visible to every query
            tot = T(0.0)
            for j in range(tk):
                e = fexp(si[j] * scale - mx)
                si[j] = e
                tot += e
            inv = T(1.0) / tot
            for j in range(tk):
                si[j] *= inv
            lse[h, i] = mx + np.log(tot)


def _heads_per_tile(h: int, tq: int, tk: int, itemsize: int) -> int:
    """How many heads' (Tq, Tk) scores fit in _TILE_BYTES (at least one)."""
    return max(1, min(h, _TILE_BYTES // (tq * tk * itemsize)))


def _few_queries_forward(q, k, v, scale):
    """Forward for a few queries (decoding): per batch element and group of heads,
    S = Q K^T and out = P V by np.matmul on the arrays as given (KV-cache views are not
    copied), the softmax in between by a serial kernel."""
    b, h, tq, d = q.shape
    tk = k.shape[2]
    dt = q.dtype
    out = np.empty((b, tq, h, d), dt).swapaxes(1, 2)
    lse = np.empty((b, h, tq), dt)
    nh = _heads_per_tile(h, tq, tk, dt.itemsize)
    buf = np.empty((nh, tq, tk), dt)
    for bi in range(b):
        for h0 in range(0, h, nh):
            h1 = min(h, h0 + nh)
            s = buf[: h1 - h0]
            np.matmul(q[bi, h0:h1], k[bi, h0:h1].swapaxes(1, 2), out=s)
            _softmax_rows(s, dt.type(scale), tk - tq, lse[bi, h0:h1])
            np.matmul(s, v[bi, h0:h1], out=out[bi, h0:h1])
    return out, lse


def _rows(x: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
    """x (B, H, T, D) -> (rows, (sb, sh, st)) with x[b, h, t] == rows[b*sb + h*sh + t*st] and
    rows a C-contiguous (N, D) view of x's memory: no copy for the layouts the model hands
    over ((B, T, H, D) arrays with axes 1 and 2 swapped, KV-cache slices, contiguous arrays),
    whose strides are multiples of a row. Anything else is copied first."""
    isz, d = x.itemsize, x.shape[3]
    row = d * isz  # bytes
    strides = [st if size > 1 else 0 for st, size in zip(x.strides[:3], x.shape[:3])]
    if (x.strides[3] == isz or d == 1) and all(st >= 0 and st % row == 0 for st in strides):
        rs = tuple(st // row for st in strides)
        n_rows = 1 + sum((size - 1) * r for size, r in zip(x.shape[:3], rs))
        # every row lies within x's own span of memory, so the view reads nothing else
        return np.lib.stride_tricks.as_strided(x, (n_rows, d), (row, isz)), rs
    b, h, t, _ = x.shape
    return np.ascontiguousarray(x).reshape(-1, d), (h * t, t, 1)


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


def _launch(plain_kernel, blas_kernel, dtype, args) -> None:
    """Run a fused kernel: its OpenBLAS version when _blas found NumPy's OpenBLAS (and
    USE_BLAS), OpenBLAS on one thread meanwhile; else its plain-Numba version."""
    gemm = _blas.gemm_for(dtype) if USE_BLAS else None
    if gemm is None:
        plain_kernel(*args)
    else:
        with _blas.one_thread():
            blas_kernel(gemm, *args)


def attention_forward_nb(q, k, v, scale: float):
    """Return (out (B, H, Tq, D), lse (B, H, Tq))."""
    if not _supported(q, k, v, scale):
        return attention_forward_ref(q, k, v, scale)
    if q.shape[2] <= _FEW_QUERIES:
        return _few_queries_forward(q, k, v, scale)
    b, h, tq, d = q.shape
    out = np.empty((b, tq, h, d), q.dtype)  # returned as a (B, H, Tq, D) view, see above
    lse = np.empty((b, h, tq), q.dtype)
    (qr, qs), (kr, ks), (vr, vs) = _rows(q), _rows(k), _rows(v)
    args = (qr, qs, kr, ks, vr, vs, k.shape[2], q.dtype.type(scale), out, lse)
    _launch(_attn_fwd_kernel, _attn_fwd_blas, q.dtype, args)
    return out.swapaxes(1, 2), lse


def attention_backward_nb(dout, q, k, v, out, lse, scale: float):
    """Return (dq, dk, dv)."""
    ok = _supported(q, k, v, scale, dout, out, lse)
    if not (ok and dout.shape == out.shape == q.shape and lse.shape == q.shape[:3]):
        return attention_backward_ref(dout, q, k, v, out, lse, scale)
    b, h, tq, d = q.shape
    tk = k.shape[2]
    dq = np.empty((b * h, tq, d), q.dtype)
    dk = np.empty((b * h, tk, d), q.dtype)
    dv = np.empty((b * h, tk, d), q.dtype)
    views = [_rows(x) for x in (dout, q, k, v, out)]
    args = [a for rows_and_strides in views for a in rows_and_strides]
    lse = np.ascontiguousarray(lse)
    args += [lse, q.dtype.type(scale), dq, dk, dv]
    _launch(_attn_bwd_kernel, _attn_bwd_blas, q.dtype, args)
    return dq.reshape(q.shape), dk.reshape(k.shape), dv.reshape(k.shape)


attention_forward = dispatch(attention_forward_ref, attention_forward_nb)
attention_backward = dispatch(attention_backward_ref, attention_backward_nb)
