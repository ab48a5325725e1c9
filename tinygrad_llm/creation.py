"""Making tensors: constructors (tensor, zeros, ones, randn), the ops that take several
tensors (cat, stack) or give several (split), where(), and the boolean masks of attention.

Floats come out in the default dtype (``default_dtype()`` in tinygrad_llm.switches) unless
``dtype=`` says otherwise.
"""

from __future__ import annotations

import numpy as np

from tinygrad_llm.ops import elementwise as _ew
from tinygrad_llm.ops import movement as _mv
from tinygrad_llm.switches import STATE
from tinygrad_llm.tensor import Tensor, _raw


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def _shape_arg(shape: tuple) -> tuple[int, ...]:
    """zeros(2, 3) and zeros((2, 3)) alike, as for reshape()."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return shape


def zeros(*shape, requires_grad: bool = False, dtype=None) -> Tensor:
    dt = dtype or STATE.default_dtype
    return Tensor(np.zeros(_shape_arg(shape), dt), requires_grad=requires_grad, dtype=dt)


def ones(*shape, requires_grad: bool = False, dtype=None) -> Tensor:
    dt = dtype or STATE.default_dtype
    return Tensor(np.ones(_shape_arg(shape), dt), requires_grad=requires_grad, dtype=dt)


def randn(*shape, requires_grad: bool = False, dtype=None, rng=None) -> Tensor:
    rng = rng if rng is not None else np.random.default_rng()
    dt = dtype or STATE.default_dtype
    data = rng.standard_normal(_shape_arg(shape)).astype(dt)
    return Tensor(data, requires_grad=requires_grad, dtype=dt)


def _as_tensors(items) -> list[Tensor]:
    """Arrays among Tensors become constant Tensors (of the first Tensor's float dtype), so
    that an op's parents are exactly its inputs and backward returns one gradient each."""
    items = list(items)
    like = next((t for t in items if isinstance(t, Tensor)), None)
    return [like._other(t) if like is not None else Tensor(t) for t in items]


def cat(tensors, axis: int = 0) -> Tensor:
    """Concatenate tensors along an existing axis."""
    return _mv.Concatenate.apply(*_as_tensors(tensors), axis=axis)


concatenate = cat


def stack(tensors, axis: int = 0) -> Tensor:
    """Stack tensors of equal shape along a new axis."""
    return _mv.Stack.apply(*_as_tensors(tensors), axis=axis)


def split(x: Tensor, split_size: int, axis: int = -1) -> list[Tensor]:
    """Chunks of ``split_size`` along ``axis``; each chunk is a slice of x."""
    if split_size <= 0:
        raise ValueError(f"split: split_size must be positive, got {split_size}")
    axis = axis % x.ndim
    n = x.shape[axis]
    out = []
    for start in range(0, n, split_size):
        index = (slice(None),) * axis + (slice(start, min(start + split_size, n)),)
        out.append(x[index])
    return out


def where(cond, a, b) -> Tensor:
    """Elementwise ``a`` where cond is True else ``b`` (a and b broadcast with cond)."""
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else Tensor(a)
    return _ew.Where.apply(np.asarray(_raw(cond), dtype=bool), like._other(a), like._other(b))


def triu_mask(n: int, m: int | None = None, k: int = 1) -> np.ndarray:
    """Boolean (n, m) mask, True on and above diagonal k (k=1: the causal 'future' mask)."""
    return np.triu(np.ones((n, n if m is None else m), dtype=bool), k=k)


def tril_mask(n: int, m: int | None = None, k: int = 0) -> np.ndarray:
    """Boolean (n, m) mask, True on and below diagonal k."""
    return np.tril(np.ones((n, n if m is None else m), dtype=bool), k=k)
