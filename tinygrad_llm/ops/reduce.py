"""Reductions over axes, with keepdims. Backward broadcasts the gradient back over them."""

from __future__ import annotations

import numpy as np

from tinygrad_llm.function import Function


def _axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dims")
    return tuple(sorted(a % max(ndim, 1) for a in axes))


def _expand(dout: np.ndarray, shape, axes, keepdims: bool) -> np.ndarray:
    """Put back the reduced axes as size 1 so that dout broadcasts against the input."""
    if not keepdims:
        dout = np.expand_dims(dout, axes)
    return np.broadcast_to(dout, shape)


class Sum(Function):
    """out = sum of x over axes.   dx = dout, repeated over the summed axes."""

    def forward(self, x, axis=None, keepdims=False):
        self.axes, self.keepdims, self.shape = _axes(axis, x.ndim), keepdims, x.shape
        return np.asarray(x.sum(axis=self.axes, keepdims=keepdims))

    def backward(self, dout):
        # a writable copy (not np.ascontiguousarray, which turns a 0-d array into shape (1,))
        return (_expand(dout, self.shape, self.axes, self.keepdims).copy(),)


class Mean(Function):
    """out = mean of x over axes (n elements each).   dx = dout / n, repeated."""

    def forward(self, x, axis=None, keepdims=False):
        self.axes, self.keepdims, self.shape = _axes(axis, x.ndim), keepdims, x.shape
        self.n = int(np.prod([x.shape[a] for a in self.axes]))
        return np.asarray(x.mean(axis=self.axes, keepdims=keepdims))

    def backward(self, dout):
        g = _expand(dout, self.shape, self.axes, self.keepdims) / self.n
        return (g.astype(dout.dtype, copy=False),)


class Max(Function):
    """out = max of x over axes.   dx = dout at the position of the maximum, 0 elsewhere.

    Ties share the gradient equally (so the sum of dx still equals dout).
    """

    def forward(self, x, axis=None, keepdims=False):
        self.axes, self.keepdims = _axes(axis, x.ndim), keepdims
        out = x.max(axis=self.axes, keepdims=True)
        self.save_for_backward(x, out)
        return out if keepdims else np.squeeze(out, axis=self.axes)

    def backward(self, dout):
        x, out = self.saved
        hit = x == out
        count = hit.sum(axis=self.axes, keepdims=True)
        g = _expand(dout, x.shape, self.axes, self.keepdims)
        return ((g * hit / count).astype(dout.dtype, copy=False),)


class Var(Function):
    """out = sum((x - mean)^2) / (n - correction) over axes.

    dx = dout * 2 (x - mean) / (n - correction)   (the mean's own dependence on x cancels,
    because the deviations sum to zero).
    """

    def forward(self, x, axis=None, keepdims=False, correction=1):
        self.axes, self.keepdims = _axes(axis, x.ndim), keepdims
        n = int(np.prod([x.shape[a] for a in self.axes]))
        self.denom = n - correction
        if self.denom <= 0:
            raise ValueError(
                f"var: {n} element(s) with correction={correction}; need more elements "
                f"(or correction=0 for the biased variance)"
            )
        self.xc = x - x.mean(axis=self.axes, keepdims=True)
        return np.asarray((self.xc * self.xc).sum(axis=self.axes, keepdims=keepdims) / self.denom)

    def backward(self, dout):
        g = _expand(dout, self.xc.shape, self.axes, self.keepdims)
        return ((g * self.xc * (2.0 / self.denom)).astype(dout.dtype, copy=False),)
