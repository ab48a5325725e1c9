"""Every Numba kernel ``<name>_nb`` equals its NumPy reference ``<name>_ref``.

Both are called directly (not through the backend dispatcher), so these tests do not depend
on TINYGRAD_LLM_BACKEND. Shapes are drawn small (size-1 and odd sides included); values come
from a NumPy generator seeded by hypothesis; inputs are drawn C-contiguous, Fortran-ordered,
strided (every other element of a wider array) or transposed views.

Tolerances (relative to the largest magnitude of the reference result, see ``close``):
float32 2e-5, float64 1e-12. The Numba kernels reorder sums (SIMD lanes, thread chunks) and
use their own exp, so they are not bit-equal to NumPy; the embedding scatter-add is exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_llm.kernels import cross_entropy as ce
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


def close(actual, expected, dtype=None) -> None:
    """actual == expected within TOL[dtype] relative to max(1, max |expected|); same shape
    and dtype."""
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    tol = TOL[np.dtype(dtype or expected.dtype)]
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


def rows_shapes(max_dims: int = 3, max_side: int = 9):
    return st.lists(st.integers(1, max_side), min_size=1, max_size=max_dims)


# ---------------------------------------------------------------------------- softmax


@SETTINGS
@given(shape=rows_shapes(), dtype=DTYPES, layout=LAYOUTS, seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([1.0, 30.0]))
def test_softmax_forward_backward(shape, dtype, layout, seed, scale):
    rng = np.random.default_rng(seed)
    x = make(rng, shape, dtype, layout, scale)
    y_ref = sm.softmax_forward_ref(x)
    y_nb = sm.softmax_forward_nb(x)
    close(y_nb, y_ref)
    dout = make(rng, shape, dtype, layout)
    close(sm.softmax_backward_nb(dout, y_ref), sm.softmax_backward_ref(dout, y_ref))


def test_softmax_masked_rows():
    """-inf entries (masked scores) get probability 0, like the reference."""
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]], dtype=np.float32)
    close(sm.softmax_forward_nb(x), sm.softmax_forward_ref(x))


# ------------------------------------------------------------------------ cross-entropy


@SETTINGS
@given(n=st.integers(1, 17), v=st.integers(1, 40), dtype=DTYPES,
       layout=st.sampled_from(["c", "f", "strided"]), seed=st.integers(0, 2**32 - 1),
       ignore_frac=st.sampled_from([0.0, 0.3]), ignore_index=st.sampled_from([-100, 0]),
       dout=st.sampled_from([1.0, 0.37]))
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
    close(loss_nb, loss_ref)
    close(lse_nb, lse_ref)
    d_ref = ce.cross_entropy_backward_ref(dout, logits, targets, lse_ref, ignore_index)
    d_nb = ce.cross_entropy_backward_nb(dout, logits, targets, lse_ref, ignore_index)
    close(d_nb, d_ref)
    ignored = targets == ignore_index
    assert np.all(d_nb[ignored] == 0.0)


def test_cross_entropy_all_ignored_is_nan():
    logits = np.zeros((3, 4), dtype=np.float32)
    targets = np.full(3, -100)
    loss, lse = ce.cross_entropy_forward_nb(logits, targets, -100)
    assert np.isnan(loss) and loss.dtype == np.float32
    close(lse, np.full(3, np.log(4.0), dtype=np.float32))
    assert np.all(np.isnan(ce.cross_entropy_backward_nb(1.0, logits, targets, lse, -100)))


def test_cross_entropy_target_out_of_range():
    logits = np.zeros((2, 4), dtype=np.float64)
    with pytest.raises(IndexError, match="out of range"):
        ce.cross_entropy_forward_nb(logits, np.array([1, 4]), -100)
    with pytest.raises(IndexError, match="out of range"):
        ce.cross_entropy_backward_nb(1.0, logits, np.array([-3, 0]), np.zeros(2), -100)
