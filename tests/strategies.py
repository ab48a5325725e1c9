"""Hypothesis strategies shared by the tests: shapes, broadcastable shapes, float64 arrays
drawn from a domain, arrays with well-separated distinct values, token ids and axes.

Sides are small on purpose: gradcheck does two forward passes per input element, so a
(4, 4, 4) input already costs 128 forwards.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

Shape = tuple[int, ...]


def shapes(min_dims: int = 1, max_dims: int = 3, min_side: int = 1,
           max_side: int = 5) -> st.SearchStrategy[Shape]:
    """Array shapes with ``min_dims..max_dims`` axes of ``min_side..max_side`` each."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcastable_shapes(n: int = 2, min_dims: int = 0, max_dims: int = 3, min_side: int = 1,
                         max_side: int = 4) -> st.SearchStrategy[tuple[Shape, ...]]:
    """``n`` shapes that broadcast together (NumPy rules): ((3, 1), (2, 1, 4)), ((), (2,))."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=n, min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    ).map(lambda b: b.input_shapes)


@st.composite
def shapes_broadcasting_to(draw, shape: Shape) -> Shape:
    """A shape that broadcasts *to* ``shape`` (never enlarges it): some leading axes dropped,
    some sides replaced by 1. Used for masks."""
    start = draw(st.integers(0, len(shape)))
    return tuple(draw(st.sampled_from([1, n])) for n in shape[start:])


def arrays(shape: Shape, domain: tuple[float, float] = (-3.0, 3.0),
           dtype=np.float64) -> st.SearchStrategy[np.ndarray]:
    """Float arrays of ``shape`` with elements in ``domain`` (both ends included)."""
    lo, hi = domain
    elements = st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                         width=np.dtype(dtype).itemsize * 8)
    return hnp.arrays(dtype, shape, elements=elements)


def nonzero(margin: float = 0.5, hi: float = 3.0):
    """A domain for ``spec.domain``: values in [-hi, -margin] or [margin, hi] (for 1/x, relu)."""

    def draw_arrays(shape: Shape) -> st.SearchStrategy[np.ndarray]:
        magnitude = arrays(shape, (margin, hi))
        signs = hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 1.0]))
        return st.tuples(magnitude, signs).map(lambda ms: ms[0] * ms[1])

    draw_arrays.__name__ = f"nonzero({margin}, {hi})"
    return draw_arrays


def distinct(domain: tuple[float, float] = (-3.0, 3.0)):
    """A domain for ``spec.domain``: all elements different, at least half a grid step apart.

    For max: a tie (or a near-tie closer than gradcheck's eps) puts the input on a kink,
    where finite differences disagree with any one-sided gradient.
    """
    lo, hi = domain

    def draw_arrays(shape: Shape) -> st.SearchStrategy[np.ndarray]:
        n = math.prod(shape)
        step = (hi - lo) / max(n, 1)
        order = st.permutations(range(n))
        jitter = hnp.arrays(np.float64, (n,), elements=st.floats(-0.25, 0.25))
        return st.tuples(order, jitter).map(
            lambda oj: (lo + (np.asarray(oj[0], dtype=np.float64) + 0.5 + oj[1]) * step)
            .reshape(shape))

    draw_arrays.__name__ = f"distinct({lo}, {hi})"
    return draw_arrays


def token_ids(vocab_size: int, shape: Shape,
              with_repeat: bool = False) -> st.SearchStrategy[np.ndarray]:
    """int64 ids in 0..vocab_size-1; ``with_repeat`` forces the last id to equal the first
    (so a scatter-add backward has something to sum) when there are at least two."""
    ids = hnp.arrays(np.int64, shape, elements=st.integers(0, vocab_size - 1))
    if not with_repeat:
        return ids

    def repeat(a: np.ndarray) -> np.ndarray:
        if a.size >= 2:
            a.reshape(-1)[-1] = a.reshape(-1)[0]
        return a

    return ids.map(repeat)


def axes(ndim: int, allow_empty: bool = False) -> st.SearchStrategy:
    """A reduction's ``axis``: None, one int (maybe negative) or a tuple of distinct axes."""
    if ndim == 0:
        return st.sampled_from([None, ()] if allow_empty else [None])
    min_size = 0 if allow_empty else 1
    return st.one_of(
        st.none(),
        st.integers(-ndim, ndim - 1),
        st.lists(st.integers(0, ndim - 1), unique=True, min_size=min_size, max_size=ndim)
        .map(tuple),
    )


def axis(ndim: int) -> st.SearchStrategy[int]:
    """One axis of an ``ndim``-d array, negative or not."""
    return st.integers(-ndim, ndim - 1)
