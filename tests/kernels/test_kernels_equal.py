"""Every Numba kernel ``<name>_nb`` equals its NumPy reference ``<name>_ref``.

Both are called directly (not through the backend dispatcher), so these tests do not depend
on TINYGRAD_LLM_BACKEND. Shapes are drawn small (size-1 and odd sides included); values come
from a NumPy generator seeded by hypothesis; inputs are drawn C-contiguous, Fortran-ordered,
strided (every other element of a wider array) or transposed views.

Tolerances: |nb - ref| <= tol * (|ref| + scale) elementwise, tol = 2e-5 (float32) / 1e-12
(float64), where ``scale`` is the size of the terms the result is summed from (see ``close``
and ``mag``): a result that is a small difference of large terms (a gradient through
softmax, layernorm with near-zero variance, 1 + tanh(u) near -1 in the GELU reference)
carries rounding noise of that size in *both* versions. The Numba kernels reorder sums
(SIMD lanes, thread chunks) and use their own exp, so they are not bit-equal to NumPy; the
embedding scatter-add is exact.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_llm.kernels import _blas, adamw
from tinygrad_llm.kernels import attention as at
from tinygrad_llm.kernels import cross_entropy as ce
from tinygrad_llm.kernels import embedding as em
from tinygrad_llm.kernels import gelu as ge
from tinygrad_llm.kernels import layernorm as ln
from tinygrad_llm.kernels import linear_cross_entropy as lce
from tinygrad_llm.kernels import matmul as mm
from tinygrad_llm.kernels import softmax as sm

SETTINGS = settings(max_examples=30, deadline=None)
DTYPES = st.sampled_from([np.float32, np.float64])
LAYOUTS = st.sampled_from(["c", "f", "strided", "transposed"])
TOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}


def make(rng: np.random.Generator, shape, dtype, layout: str = "c", scale: float = 1.0):
    """A standard-normal array of ``shape`` and ``dtype`` laid out as ``layout`` (a view
    that is not C-contiguous for every layout but "c", where the shape allows it)."""
    shape = tuple(shape)
    if layout == "strided" and len(shape) >= 1:
        wide = (rng.standard_normal(shape[:-1] + (2 * shape[-1],)) * scale).astype(dtype)
        return wide[..., ::2]
    if layout == "transposed" and len(shape) >= 2:
        base = (rng.standard_normal(shape[:-2] + (shape[-1], shape[-2])) * scale).astype(dtype)
        return np.swapaxes(base, -1, -2)
    a = (rng.standard_normal(shape) * scale).astype(dtype)
    return np.asfortranarray(a) if layout == "f" else a


def mag(*arrays) -> float:
    """Product of the largest magnitudes of ``arrays``: the size of one term of a sum of their
    elementwise products."""
    out = 1.0
    for a in arrays:
        out *= float(np.max(np.abs(a), initial=0.0))
    return out


def close(actual, expected, scale: float = 0.0) -> None:
    """Same shape and dtype, and |actual - expected| <= tol * (|expected| + scale) with
    tol = TOL[dtype]. ``scale`` is the magnitude of the terms ``expected`` was summed from;
    with the default 0 the comparison is purely relative."""
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    tol = TOL[expected.dtype]
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


@contextmanager
def parallel_min(module, size: int):
    """Run a module's kernels with its PARALLEL_MIN set to size: 0 takes the threaded kernel
    even at test sizes, a huge number the serial one."""
    saved, module.PARALLEL_MIN = module.PARALLEL_MIN, size
    try:
        yield
    finally:
        module.PARALLEL_MIN = saved


# Row lengths: short ones (SIMD remainder loops only) and long ones (the vectorised main
# loops: 16 float32 / 8 float64 lanes, unrolled).
ROW = st.one_of(st.integers(1, 9), st.integers(10, 300))


def rows_shapes(max_dims: int = 3, max_side: int = 9):
    """Shapes of 1..max_dims axes: small leading axes, the last axis drawn from ROW."""
    lead = st.lists(st.integers(1, max_side), min_size=0, max_size=max_dims - 1)
    return st.tuples(lead, ROW).map(lambda t: (*t[0], t[1]))


# ---------------------------------------------------------------------------- softmax


@SETTINGS
@given(
    shape=rows_shapes(),
    dtype=DTYPES,
    layout=LAYOUTS,
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1.0, 30.0]),
)
def test_softmax_forward_backward(shape, dtype, layout, seed, scale):
    rng = np.random.default_rng(seed)
    x = make(rng, shape, dtype, layout, scale)
    y_ref = sm.softmax_forward_ref(x)
    y_nb = sm.softmax_forward_nb(x)
    close(y_nb, y_ref, scale=mag(y_ref))  # probabilities below ~1e-38 flush to 0 in fexp
    dout = make(rng, shape, dtype, layout)
    # dx_i = y_i (dout_i - sum_j dout_j y_j): the difference cancels to ~ulp * |dout|
    close(
        sm.softmax_backward_nb(dout, y_ref),
        sm.softmax_backward_ref(dout, y_ref),
        scale=mag(dout, y_ref),
    )


def test_softmax_masked_rows():
    """-inf entries (masked scores) get probability 0, like the reference."""
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]], dtype=np.float32)
    close(sm.softmax_forward_nb(x), sm.softmax_forward_ref(x), scale=1.0)


# ------------------------------------------------------------------------ cross-entropy


@SETTINGS
@given(
    n=st.integers(1, 17),
    v=ROW,
    dtype=DTYPES,
    layout=st.sampled_from(["c", "f", "strided"]),
    seed=st.integers(0, 2**32 - 1),
    ignore_frac=st.sampled_from([0.0, 0.3]),
    ignore_index=st.sampled_from([-100, 0]),
    dout=st.sampled_from([1.0, 0.37]),
)
def test_cross_entropy(n, v, dtype, layout, seed, ignore_frac, ignore_index, dout):
    rng = np.random.default_rng(seed)
    logits = make(rng, (n, v), dtype, layout, scale=3.0)
    targets = rng.integers(0, v, n)
    targets[rng.random(n) < ignore_frac] = ignore_index
    if np.all(targets == ignore_index):
        targets[0] = (ignore_index + 1) % v if v > 1 else 0
        if targets[0] == ignore_index:
            return  # v == 1 and ignore_index == 0: every row is ignored; tested below
    loss_ref, lse_ref = ce.cross_entropy_forward_ref(logits, targets, ignore_index)
    loss_nb, lse_nb = ce.cross_entropy_forward_nb(logits, targets, ignore_index)
    # loss and lse are m + log(sum) - picked: terms of the size of the logits
    close(loss_nb, loss_ref, scale=1.0 + mag(logits))
    close(lse_nb, lse_ref, scale=1.0 + mag(logits))
    d_ref = ce.cross_entropy_backward_ref(dout, logits, targets, lse_ref, ignore_index)
    d_nb = ce.cross_entropy_backward_nb(dout, logits, targets, lse_ref, ignore_index)
    n_kept = int(np.sum(targets != ignore_index))
    close(d_nb, d_ref, scale=dout / n_kept)  # (p - onehot) * dout / n_kept
    ignored = targets == ignore_index
    assert np.all(d_nb[ignored] == 0.0)


@SETTINGS
@given(
    n=st.integers(1, 9),
    c=st.integers(1, 20),
    v=st.integers(1, 40),
    dtype=DTYPES,
    bias=st.booleans(),
    chunk=st.integers(1, 400),
    seed=st.integers(0, 2**32 - 1),
    need=st.tuples(st.booleans(), st.booleans(), st.booleans()),
)
def test_linear_cross_entropy(n, c, v, dtype, bias, chunk, seed, need):
    """The chunked head + loss (gradients computed in the same pass) equals the unfused
    one for every chunk size (one row up to all of them), with ignored rows, and computes
    exactly the gradients asked for."""
    rng = np.random.default_rng(seed)
    x, w = make(rng, (n, c), dtype), make(rng, (v, c), dtype, scale=0.5)
    b = make(rng, (v,), dtype) if bias else None
    targets = rng.integers(0, v, n)
    targets[rng.random(n) < 0.3] = -100
    targets[0] = v - 1
    ref = lce.linear_cross_entropy_ref(x, w, b, targets, -100, need)
    got = lce.linear_cross_entropy_nb(x, w, b, targets, -100, need, chunk_elements=chunk)
    size = 1.0 + mag(x, w) * c + (mag(b) if bias else 0.0)  # the logits' magnitude
    close(got[0], ref[0], scale=size)
    term = 1.0 / int(np.sum(targets != -100))  # size of one dlogits entry
    for g_nb, g_ref, other in zip(got[1:], ref[1:], (w, x, None)):
        assert (g_nb is None) == (g_ref is None)
        if g_ref is not None:
            close(g_nb, g_ref, scale=term * (mag(other) * max(n, v) if other is not None
                                             else n))
    wanted = (need[0], need[1], need[2] and bias)
    assert tuple(g is not None for g in got[1:]) == wanted


def test_cross_entropy_all_ignored_is_nan():
    logits = np.zeros((3, 4), dtype=np.float32)
    targets = np.full(3, -100)
    loss, lse = ce.cross_entropy_forward_nb(logits, targets, -100)
    assert np.isnan(loss) and loss.dtype == np.float32
    close(lse, np.full(3, np.log(4.0), dtype=np.float32), scale=1.0)
    assert np.all(np.isnan(ce.cross_entropy_backward_nb(1.0, logits, targets, lse, -100)))


def test_cross_entropy_target_out_of_range():
    logits = np.zeros((2, 4), dtype=np.float64)
    with pytest.raises(IndexError, match="out of range"):
        ce.cross_entropy_forward_nb(logits, np.array([1, 4]), -100)
    with pytest.raises(IndexError, match="out of range"):
        ce.cross_entropy_backward_nb(1.0, logits, np.array([-3, 0]), np.zeros(2), -100)


# ---------------------------------------------------------------------------- layernorm


@SETTINGS
@given(
    n=st.integers(1, 17),
    c=ROW,
    dtype=DTYPES,
    layout=LAYOUTS,
    seed=st.integers(0, 2**32 - 1),
    eps=st.sampled_from([1e-5, 1e-2]),
    threads=st.booleans(),
)
def test_layernorm_forward_backward(n, c, dtype, layout, seed, eps, threads):
    rng = np.random.default_rng(seed)
    x = make(rng, (n, c), dtype, layout, scale=2.0) + dtype(0.5)
    w = make(rng, (c,), dtype, "strided")
    b = make(rng, (c,), dtype)
    with parallel_min(ln, 0 if threads else 1 << 62):
        out, mean, rstd = ln.layernorm_forward_nb(x, w, b, eps)
    out_ref, mean_ref, rstd_ref = ln.layernorm_forward_ref(x, w, b, eps)
    xhat = (x - mean_ref[:, None]) * rstd_ref[:, None]
    close(out, out_ref, scale=mag(xhat, w) + mag(b))
    close(mean, mean_ref, scale=mag(x))
    close(rstd, rstd_ref)
    mean, rstd = mean_ref, rstd_ref
    dout = make(rng, (n, c), dtype, layout)
    dx, dw, db = ln.layernorm_backward_nb(dout, x, w, mean, rstd)
    dx_ref, dw_ref, db_ref = ln.layernorm_backward_ref(dout, x, w, mean, rstd)
    # dx = rstd * (g - mean(g) - ...) cancels: when a row's variance is ~0 (always for C = 1)
    # rstd is ~1/sqrt(eps) and dx is rounding noise of size rstd * |g| * ulp in either version
    close(dx, dx_ref, scale=float(np.max(rstd) * np.max(np.abs(dout * w))))
    close(dw, dw_ref, scale=mag(dout, xhat))  # sums over rows
    close(db, db_ref, scale=mag(dout))


# --------------------------------------------------------------------------------- gelu


@SETTINGS
@given(
    shape=rows_shapes(),
    dtype=DTYPES,
    layout=LAYOUTS,
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1.0, 4.0, 30.0]),
    threads=st.booleans(),
)
def test_gelu_forward_backward(shape, dtype, layout, seed, scale, threads):
    rng = np.random.default_rng(seed)
    x = make(rng, shape, dtype, layout, scale)
    # the reference forms 0.5 x (1 + tanh u): for negative x, 1 + tanh u cancels and its
    # result carries an absolute error ~ ulp * |x| (the Numba form x * sigmoid(2u) does not)
    with parallel_min(ge, 0 if threads else 1 << 62):
        y = ge.gelu_forward_nb(x)
    close(y, ge.gelu_forward_ref(x), scale=mag(x))
    dout = make(rng, shape, dtype, layout)
    # likewise 1 - tanh^2 u in the derivative, weighted by 0.5 x du/dx: take that weight
    # where tanh has not yet rounded to +-1 (|x| < 10)
    xs = x[np.abs(x) < 10]
    weight = 1.0 + mag(0.5 * xs * ge.SQRT_2_OVER_PI * (1.0 + 3.0 * ge.GELU_C * xs * xs))
    close(ge.gelu_backward_nb(dout, x), ge.gelu_backward_ref(dout, x), scale=mag(dout) * weight)


def test_gelu_special_values():
    x = np.array([-np.inf, -1e4, -20.0, -0.0, 0.0, 20.0, 1e4, np.inf, np.nan], np.float32)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(ge.gelu_forward_nb(x), ge.gelu_forward_ref(x))


# ---------------------------------------------------------------------------- attention


@st.composite
def attention_shapes(draw):
    tk = draw(st.one_of(st.integers(1, 9), st.integers(60, 150)))  # 1 block, or 2-3 blocks
    tq = draw(st.one_of(st.just(tk), st.integers(1, tk)))
    return draw(st.integers(1, 2)), draw(st.integers(1, 3)), tq, tk, draw(st.integers(1, 9))


def heads_layout(rng, shape, dtype, layout):
    """(B, H, T, D) arrays as the model makes them: a (B, T, H, D) array with its axes
    1 and 2 swapped ("bthd"), or one of the generic layouts."""
    if layout == "bthd":
        b, h, t, d = shape
        return np.swapaxes(make(rng, (b, t, h, d), dtype), 1, 2)
    return make(rng, shape, dtype, layout)


def check_attention(q, k, v, dout, scale):
    """attention_forward_nb / attention_backward_nb against the references, with tolerances
    scaled by the size of the terms each result is summed from."""
    d, tq, tk = q.shape[3], q.shape[2], k.shape[2]
    out_ref, lse_ref = at.attention_forward_ref(q, k, v, scale)
    out_nb, lse_nb = at.attention_forward_nb(q, k, v, scale)
    close(out_nb, out_ref, scale=mag(v))  # out is a convex combination of rows of v
    close(lse_nb, lse_ref, scale=1.0 + d * scale * mag(q, k))  # lse ~ the scores
    dq, dk, dv = at.attention_backward_nb(dout, q, k, v, out_ref, lse_ref, scale)
    dq_ref, dk_ref, dv_ref = at.attention_backward_ref(dout, q, k, v, out_ref, lse_ref, scale)
    # ds = p (dp - rowsum(dout * out)) cancels to ~ulp * d |dout| |v|; dq and dk are sums
    # over keys / queries of ds times k / q
    ds_scale = d * mag(dout, v)
    close(dq, dq_ref, scale=tk * scale * ds_scale * mag(k))
    close(dk, dk_ref, scale=tq * scale * ds_scale * mag(q))
    close(dv, dv_ref, scale=tq * mag(dout))


@SETTINGS
@given(
    shape=attention_shapes(),
    dtype=DTYPES,
    seed=st.integers(0, 2**32 - 1),
    layout=st.sampled_from(["c", "bthd", "strided", "transposed"]),
)
def test_attention_forward_backward(shape, dtype, seed, layout):
    b, h, tq, tk, d = shape
    rng = np.random.default_rng(seed)
    q = heads_layout(rng, (b, h, tq, d), dtype, layout)
    k = heads_layout(rng, (b, h, tk, d), dtype, layout)
    v = heads_layout(rng, (b, h, tk, d), dtype, layout)
    dout = heads_layout(rng, (b, h, tq, d), dtype, layout)
    for path in FUSED_PATHS:
        with attention_path(path):
            check_attention(q, k, v, dout, 1.0 / np.sqrt(d))


@contextmanager
def attention_path(path: str | None):
    """Force the Numba attention down one path: "few" (np.matmul per head group, with groups
    of one head: 1 KiB of scores), "fused" (the fused kernels even for one query; their block
    products by OpenBLAS when _blas found it), "fused-numba" (the same with the products in
    plain Numba, the path of NumPy builds without OpenBLAS), or None (the module's choice)."""
    saved = at._FEW_QUERIES, at._TILE_BYTES, at.USE_BLAS
    if path == "few":
        at._FEW_QUERIES, at._TILE_BYTES = 10**9, 1 << 10
    elif path in ("fused", "fused-numba"):
        at._FEW_QUERIES = 0
        at.USE_BLAS = path == "fused"
    try:
        yield
    finally:
        at._FEW_QUERIES, at._TILE_BYTES, at.USE_BLAS = saved


# the fused kernels' two ways of computing their block products (see attention_path)
FUSED_PATHS = ["fused", "fused-numba"] if _blas.gemm_for(np.float32) else ["fused-numba"]


def test_numpy_openblas_is_found():
    """NumPy's PyPI wheels for Linux ship OpenBLAS; the attention kernels should find it
    there (elsewhere, e.g. macOS wheels built on Accelerate, they run in plain Numba)."""
    if not sys.platform.startswith("linux") or "openblas" not in str(np.show_config("dicts")):
        pytest.skip("this NumPy is not built on OpenBLAS for Linux")
    if os.environ.get("TINYGRAD_LLM_BLAS_KERNELS") == "0":
        pytest.skip("TINYGRAD_LLM_BLAS_KERNELS=0 turns the OpenBLAS kernels off")
    for dtype in (np.float32, np.float64):
        assert _blas.gemm_for(dtype) is not None, _blas._libraries()
    threads = _blas._get_threads()
    with _blas.one_thread():
        assert _blas._get_threads() == 1
    assert _blas._get_threads() == threads


def test_blas_gemm_on_row_views():
    """gemm_for's function on rows with a leading dimension larger than a row, transposed and
    not, against np.matmul; beta = 1 accumulates."""
    for dtype in (np.float32, np.float64):
        gemm = _blas.gemm_for(dtype)
        if gemm is None:
            pytest.skip("no OpenBLAS found (see test_numpy_openblas_is_found)")
        rng = np.random.default_rng(0)
        a = rng.standard_normal((5, 3, 4)).astype(dtype)  # rows a[:, 1] are 12 elements apart
        b = rng.standard_normal((6, 4)).astype(dtype)
        c = np.ones((5, 7), dtype)
        ar = a[:, 1]
        gemm(_blas.ROW_MAJOR, _blas.NO_TRANS, _blas.TRANS, 5, 6, 4, 2.0, ar.ctypes.data, 12,
             b.ctypes.data, 4, 1.0, c.ctypes.data, 7)
        np.testing.assert_allclose(c[:, :6], 1.0 + 2.0 * ar @ b.T, rtol=1e-5)
        np.testing.assert_array_equal(c[:, 6], 1.0)  # past N: untouched


@pytest.mark.parametrize("path", [None, "few", "fused", "fused-numba"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape",
    [
        (1, 1, 1, 1, 1),  # T = 1
        (2, 3, 5, 5, 8),  # odd T
        (1, 2, 7, 20, 16),  # Tq < Tk
        (1, 3, 1, 33, 8),  # one query over a cache of keys (decoding)
        (2, 2, 131, 131, 64),  # three blocks of 64 queries / keys, the last of 3
        (1, 2, 70, 200, 24),  # Tq < Tk, the query blocks not aligned to the key blocks
    ],
)
def test_attention_shapes(shape, dtype, path):
    b, h, tq, tk, d = shape
    rng = np.random.default_rng(sum(shape))
    q = heads_layout(rng, (b, h, tq, d), dtype, "bthd")
    k = heads_layout(rng, (b, h, tk, d), dtype, "bthd")
    v = heads_layout(rng, (b, h, tk, d), dtype, "c")
    dout = heads_layout(rng, (b, h, tq, d), dtype, "bthd")
    with attention_path(path):
        check_attention(q, k, v, dout, 1.0 / np.sqrt(d))


def test_attention_decode_from_cache_views():
    """Keys and values as a KV cache hands them over: the first Tk positions of a larger
    (B, H, capacity, D) array; the queries a (B, H, Tq, D) view of a (B, Tq, H, D) array."""
    rng = np.random.default_rng(3)
    cache = rng.standard_normal((2, 1, 12, 64, 16)).astype(np.float32)
    for tq, tk in ((1, 1), (1, 2), (1, 17), (1, 64), (3, 40), (9, 64)):
        q = rng.standard_normal((1, tq, 12, 16)).astype(np.float32).swapaxes(1, 2)
        k, v = cache[0, :, :, :tk], cache[1, :, :, :tk]
        check_attention(q, k, v, np.ones_like(q), 0.25)


@pytest.mark.parametrize("tq", [2, 9])  # the np.matmul path and the fused kernel
def test_attention_output_is_bthd(tq):
    """out comes as a (B, H, Tq, D) view of a C-contiguous (B, Tq, H, D) array, so that the
    model's next reshape to (B, Tq, H * D) needs no copy."""
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal((2, 3, tq, 4)).astype(np.float32) for _ in range(3))
    out, _ = at.attention_forward_nb(q, k, v, 0.5)
    assert out.swapaxes(1, 2).flags.c_contiguous


def test_attention_tile_bound():
    """The np.matmul path holds at most _TILE_BYTES of scores (or one head's, if larger)."""
    for h, tq, tk, itemsize in [
        (12, 1, 1024, 4),
        (12, 4, 1024, 8),
        (12, 4, 10**7, 4),
        (5, 3, 7, 8),
    ]:
        nh = at._heads_per_tile(h, tq, tk, itemsize)
        assert 1 <= nh <= h
        assert nh * tq * tk * itemsize <= max(at._TILE_BYTES, tq * tk * itemsize)


def test_attention_nonpositive_scale_falls_back_to_the_reference():
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((1, 2, 4, 3)).astype(np.float32) for _ in range(3))
    for scale in (0.0, -0.5):
        out, lse = at.attention_forward_nb(q, k, v, scale)
        out_ref, lse_ref = at.attention_forward_ref(q, k, v, scale)
        np.testing.assert_array_equal(out, out_ref)
        np.testing.assert_array_equal(lse, lse_ref)


# ---------------------------------------------------------------------------- embedding


@SETTINGS
@given(
    n=st.integers(1, 40),
    c=st.integers(1, 70),
    v=st.integers(1, 10),
    dtype=DTYPES,
    layout=st.sampled_from(["c", "f", "strided"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_embedding_backward_exact(n, c, v, dtype, layout, seed):
    """Repeated ids (v is small) are summed in row order: bit-equal to np.add.at."""
    rng = np.random.default_rng(seed)
    dout = make(rng, (n, c), dtype, layout)
    ids = rng.integers(0, v, n)
    got = em.embedding_backward_nb(dout, ids, v)
    want = em.embedding_backward_ref(dout, ids, v)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_embedding_id_out_of_range():
    with pytest.raises(IndexError, match="out of range"):
        em.embedding_backward_nb(np.ones((2, 3), np.float32), np.array([0, 5]), 5)


# -------------------------------------------------------------------------------- adamw


@SETTINGS
@given(
    shape=rows_shapes(max_dims=3, max_side=5),
    dtype=DTYPES,
    p_layout=LAYOUTS,
    g_layout=LAYOUTS,
    seed=st.integers(0, 2**32 - 1),
    weight_decay=st.sampled_from([0.0, 0.1]),
)
def test_adamw_several_steps(shape, dtype, p_layout, g_layout, seed, weight_decay):
    rng = np.random.default_rng(seed)
    p_ref = make(rng, shape, dtype, p_layout)
    p_nb = p_ref.copy(order="K") if p_layout in ("c", "f") else make(rng, shape, dtype, p_layout)
    p_nb[...] = p_ref
    m_ref, v_ref = np.zeros_like(p_ref), np.zeros_like(p_ref)
    m_nb, v_nb = np.zeros_like(p_nb), np.zeros_like(p_nb)
    for t in range(1, 5):
        g = make(rng, shape, dtype, g_layout)
        args = (3e-3, 0.9, 0.95, 1e-8, weight_decay, t)
        adamw.adamw_step_ref(p_ref, g, m_ref, v_ref, *args)
        adamw.adamw_step_nb(p_nb, g, m_nb, v_nb, *args)
    close(p_nb, p_ref, scale=mag(p_ref))
    close(m_nb, m_ref, scale=mag(m_ref))
    close(v_nb, v_ref, scale=mag(v_ref))


# ------------------------------------------------------------------------------- matmul


@st.composite
def matmul_shapes(draw):
    """a (..., M, K), b (..., K, N) with broadcasting batch dims, b often plain 2-D."""
    m, k, n = (draw(st.integers(1, 9)) for _ in range(3))
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    b_batch = draw(st.sampled_from([[], [1] * len(batch), batch]))
    return tuple(batch) + (m, k), tuple(b_batch) + (k, n)


@SETTINGS
@given(shapes=matmul_shapes(), dtype=DTYPES, layout=LAYOUTS, seed=st.integers(0, 2**32 - 1))
def test_matmul_forward_backward(shapes, dtype, layout, seed):
    a_shape, b_shape = shapes
    rng = np.random.default_rng(seed)
    a = make(rng, a_shape, dtype, layout)
    b = make(rng, b_shape, dtype, layout)
    out = mm.matmul_forward_ref(a, b)
    k, m = a_shape[-1], a_shape[-2]
    close(mm.matmul_forward_nb(a, b), out, scale=k * mag(a, b))  # a sum of K products
    dout = make(rng, out.shape, dtype, layout)
    da, db = mm.matmul_backward_nb(dout, a, b)
    da_ref, db_ref = mm.matmul_backward_ref(dout, a, b)
    close(da, da_ref, scale=b_shape[-1] * mag(dout, b))
    close(db, db_ref, scale=m * mag(a, dout))


# ----------------------------------------------------------------- wiring and fallbacks


def test_dispatchers_use_the_numba_kernels():
    """Every public kernel dispatches to its ``_nb`` under the numba backend."""
    pairs = [
        (mm.matmul_forward, mm.matmul_forward_nb),
        (mm.matmul_backward, mm.matmul_backward_nb),
        (sm.softmax_forward, sm.softmax_forward_nb),
        (sm.softmax_backward, sm.softmax_backward_nb),
        (ce.cross_entropy_forward, ce.cross_entropy_forward_nb),
        (ce.cross_entropy_backward, ce.cross_entropy_backward_nb),
        (ln.layernorm_forward, ln.layernorm_forward_nb),
        (ln.layernorm_backward, ln.layernorm_backward_nb),
        (ge.gelu_forward, ge.gelu_forward_nb),
        (ge.gelu_backward, ge.gelu_backward_nb),
        (at.attention_forward, at.attention_forward_nb),
        (at.attention_backward, at.attention_backward_nb),
        (em.embedding_backward, em.embedding_backward_nb),
        (adamw.adamw_step, adamw.adamw_step_nb),
    ]
    for public, nb in pairs:
        assert public.nb is nb, public.__name__


def test_other_dtypes_fall_back_to_the_reference():
    """float16, integer and mixed-dtype inputs are computed by the reference (same dtype)."""
    x16 = np.linspace(-2, 2, 12, dtype=np.float16).reshape(3, 4)
    np.testing.assert_array_equal(sm.softmax_forward_nb(x16), sm.softmax_forward_ref(x16))
    np.testing.assert_array_equal(ge.gelu_forward_nb(x16), ge.gelu_forward_ref(x16))
    x32, y64 = np.ones((2, 3), np.float32), np.ones((2, 3), np.float64)
    got = sm.softmax_backward_nb(x32, y64)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, sm.softmax_backward_ref(x32, y64))


def test_cross_entropy_gpt2_vocabulary():
    """Rows as long as GPT-2's vocabulary (V = 50257) with a peaked row."""
    rng = np.random.default_rng(7)
    logits = (rng.standard_normal((3, 50257)) * 4).astype(np.float32)
    logits[1, 123] = 60.0
    targets = np.array([5, 123, -100])
    loss_ref, lse_ref = ce.cross_entropy_forward_ref(logits, targets, -100)
    loss_nb, lse_nb = ce.cross_entropy_forward_nb(logits, targets, -100)
    close(loss_nb, loss_ref, scale=1.0 + mag(logits))
    close(lse_nb, lse_ref, scale=1.0 + mag(logits))
    close(
        ce.cross_entropy_backward_nb(1.0, logits, targets, lse_ref, -100),
        ce.cross_entropy_backward_ref(1.0, logits, targets, lse_ref, -100),
        scale=0.5,  # (p - onehot) / n_kept
    )
