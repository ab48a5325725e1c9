"""Elementwise ops. Binary ops broadcast (NumPy rules); backward undoes it with unbroadcast."""

from __future__ import annotations

import numpy as np

from tinygrad_llm.function import Function
from tinygrad_llm.ops import unbroadcast
from tinygrad_llm.tensor import ShapeError


def _broadcast_shape(op: str, a: np.ndarray, b: np.ndarray) -> tuple[int, ...]:
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(
            f"{op}: shapes {a.shape} and {b.shape} do not broadcast; sizes must match or be 1 "
            f"when aligned from the right (reshape one, e.g. add an axis of size 1)"
        ) from None


class Add(Function):
    """out = a + b.   da = dout, db = dout (each summed back to its own shape)."""

    def forward(self, a, b):
        _broadcast_shape("add", a, b)
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, dout):
        sa, sb = self.shapes
        return unbroadcast(dout, sa), unbroadcast(dout, sb)


class Sub(Function):
    """out = a - b.   da = dout, db = -dout."""

    def forward(self, a, b):
        _broadcast_shape("sub", a, b)
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, dout):
        sa, sb = self.shapes
        db = unbroadcast(-dout, sb) if self.needs_input_grad[1] else None
        return unbroadcast(dout, sa), db


class Mul(Function):
    """out = a * b.   da = dout * b, db = dout * a."""

    def forward(self, a, b):
        _broadcast_shape("mul", a, b)
        self.save_for_backward(a, b)
        return a * b

    def backward(self, dout):
        a, b = self.saved
        da = unbroadcast(dout * b, a.shape) if self.needs_input_grad[0] else None
        db = unbroadcast(dout * a, b.shape) if self.needs_input_grad[1] else None
        return da, db


class Div(Function):
    """out = a / b.   da = dout / b, db = -dout * a / b^2."""

    def forward(self, a, b):
        _broadcast_shape("div", a, b)
        self.save_for_backward(a, b)
        return a / b

    def backward(self, dout):
        a, b = self.saved
        da = unbroadcast(dout / b, a.shape) if self.needs_input_grad[0] else None
        db = unbroadcast(-dout * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return da, db


class Cast(Function):
    """out = x converted to another float dtype.   dx = dout converted back to x's dtype."""

    def forward(self, x, dtype):
        self.in_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, dout):
        return (dout.astype(self.in_dtype),)


class Neg(Function):
    """out = -x.   dx = -dout."""

    def forward(self, x):
        return -x

    def backward(self, dout):
        return (-dout,)


class PowScalar(Function):
    """out = x ** c for a constant c.   dx = dout * c * x^(c-1)."""

    def forward(self, x, c: float):
        self.c = c
        self.save_for_backward(x)
        return x**c

    def backward(self, dout):
        (x,) = self.saved
        return (dout * self.c * x ** (self.c - 1),)


class Pow(Function):
    """out = a ** b (both tensors).   da = dout * b * a^(b-1), db = dout * out * log(a).

    The gradient for the exponent needs a > 0 (log a).
    """

    def forward(self, a, b):
        _broadcast_shape("pow", a, b)
        out = a**b
        self.save_for_backward(a, b, out)
        return out

    def backward(self, dout):
        a, b, out = self.saved
        da = unbroadcast(dout * b * a ** (b - 1), a.shape) if self.needs_input_grad[0] else None
        db = None
        if self.needs_input_grad[1]:
            db = unbroadcast(dout * out * np.log(a), b.shape)
        return da, db


class Exp(Function):
    """out = e^x.   dx = dout * out."""

    def forward(self, x):
        out = np.exp(x)
        self.save_for_backward(out)
        return out

    def backward(self, dout):
        return (dout * self.saved[0],)


class Log(Function):
    """out = ln x.   dx = dout / x."""

    def forward(self, x):
        self.save_for_backward(x)
        return np.log(x)

    def backward(self, dout):
        return (dout / self.saved[0],)


class Sqrt(Function):
    """out = sqrt(x).   dx = dout / (2 out)."""

    def forward(self, x):
        out = np.sqrt(x)
        self.save_for_backward(out)
        return out

    def backward(self, dout):
        return (dout / (2.0 * self.saved[0]),)


class Tanh(Function):
    """out = tanh x.   dx = dout * (1 - out^2)."""

    def forward(self, x):
        out = np.tanh(x)
        self.save_for_backward(out)
        return out

    def backward(self, dout):
        out = self.saved[0]
        return (dout * (1.0 - out * out),)


class ReLU(Function):
    """out = max(x, 0).   dx = dout where x > 0, else 0 (0 at the kink itself)."""

    def forward(self, x):
        self.save_for_backward(x > 0)
        return np.maximum(x, 0)

    def backward(self, dout):
        return (dout * self.saved[0],)


class Sigmoid(Function):
    """out = 1 / (1 + e^-x).   dx = dout * out * (1 - out)."""

    def forward(self, x):
        # split by sign so that exp never overflows
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
        self.save_for_backward(out)
        return out

    def backward(self, dout):
        out = self.saved[0]
        return (dout * out * (1.0 - out),)


class Where(Function):
    """out = a where cond else b (cond is a constant bool array).

    da = dout where cond (else 0), db = dout where not cond.
    """

    def forward(self, cond, a, b):
        shape = _broadcast_shape("where", a, b)
        try:
            np.broadcast_shapes(cond.shape, shape)
        except ValueError:
            raise ShapeError(
                f"where: condition {cond.shape} does not broadcast with {shape}"
            ) from None
        self.cond, self.shapes = cond, (a.shape, b.shape)
        return np.where(cond, a, b)

    def backward(self, dout):
        zero = np.zeros((), dtype=dout.dtype)
        sa, sb = self.shapes
        da = unbroadcast(np.where(self.cond, dout, zero), sa) if self.needs_input_grad[0] else None
        db = unbroadcast(np.where(self.cond, zero, dout), sb) if self.needs_input_grad[1] else None
        return da, db


class MaskedFill(Function):
    """out = x with ``value`` where mask is True.   dx = dout where mask is False, else 0."""

    def forward(self, x, mask, value: float):
        mask = np.asarray(mask, dtype=bool)
        try:
            if np.broadcast_shapes(mask.shape, x.shape) != x.shape:
                raise ValueError
        except ValueError:
            raise ShapeError(
                f"masked_fill: mask of shape {mask.shape} does not broadcast to x {x.shape}"
            ) from None
        self.mask = mask
        return np.where(mask, np.asarray(value, dtype=x.dtype), x)

    def backward(self, dout):
        return (np.where(self.mask, np.zeros((), dtype=dout.dtype), dout),)
