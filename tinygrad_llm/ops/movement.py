"""Ops that move data without arithmetic: reshape, permute, indexing, concatenate, stack."""

from __future__ import annotations

import numpy as np

from tinygrad_llm.function import Function
from tinygrad_llm.tensor import ShapeError


class Reshape(Function):
    """out = x viewed with a new shape.   dx = dout reshaped back."""

    def forward(self, x, shape):
        self.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ShapeError(
                f"reshape: cannot view {x.shape} ({x.size} elements) as {tuple(shape)}"
            ) from None

    def backward(self, dout):
        return (dout.reshape(self.shape),)


class Permute(Function):
    """out = x with its axes reordered.   dx = dout with the inverse order."""

    def forward(self, x, axes):
        if sorted(a % x.ndim for a in axes) != list(range(x.ndim)):
            raise ShapeError(f"permute: {axes} is not an order of the {x.ndim} axes of {x.shape}")
        self.axes = axes
        return x.transpose(axes)

    def backward(self, dout):
        return (dout.transpose(np.argsort([a % dout.ndim for a in self.axes])),)


def _is_basic(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice)) for i in items)


class GetItem(Function):
    """out = x[index] (ints, slices, None, integer or boolean arrays).

    dx = zeros of x's shape with dout added at the indexed places. Basic indices select
    each element at most once, so a plain assignment does; integer arrays may repeat an
    element, so those need a scatter-add (np.add.at) to sum the repeats.
    """

    def forward(self, x, index):
        self.shape, self.dtype, self.index = x.shape, x.dtype, index
        try:
            return x[index]
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor shape {x.shape})") from None

    def backward(self, dout):
        dx = np.zeros(self.shape, dtype=dout.dtype)
        if _is_basic(self.index):
            dx[self.index] = dout
        else:
            np.add.at(dx, self.index, dout)
        return (dx,)


class Concatenate(Function):
    """out = concatenation of the inputs along ``axis``.   d(input i) = its slice of dout."""

    def forward(self, *xs, axis=0):
        if not xs:
            raise ValueError("cat: needs at least one tensor")
        try:
            out = np.concatenate(xs, axis=axis)
        except ValueError:
            shapes = ", ".join(str(x.shape) for x in xs)
            raise ShapeError(
                f"cat: shapes {shapes} differ outside axis {axis}; all other sizes must match"
            ) from None
        self.axis = axis % out.ndim
        self.bounds = np.cumsum([x.shape[self.axis] for x in xs])[:-1]
        return out

    def backward(self, dout):
        return tuple(np.split(dout, self.bounds, axis=self.axis))


class Stack(Function):
    """out = the inputs stacked along a new ``axis``.   d(input i) = dout taken at i on it."""

    def forward(self, *xs, axis=0):
        if not xs:
            raise ValueError("stack: needs at least one tensor")
        if len({x.shape for x in xs}) != 1:
            shapes = ", ".join(str(x.shape) for x in xs)
            raise ShapeError(f"stack: all tensors need the same shape, got {shapes}")
        out = np.stack(xs, axis=axis)
        self.axis = axis % out.ndim
        return out

    def backward(self, dout):
        return tuple(np.take(dout, i, axis=self.axis) for i in range(dout.shape[self.axis]))
