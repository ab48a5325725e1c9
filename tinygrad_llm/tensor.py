"""Tensor: an n-d array that remembers how it was made, so gradients can flow back.

A Tensor holds ``data`` (a NumPy array), ``grad`` (an array of the same shape, or None)
and ``_fn``, the Function that produced it (None for leaves). ``backward()`` walks the
graph from the output to the leaves in reverse topological order and calls each
Function's ``backward``; ``backward_steps()`` does the same one step at a time so a
learner can drive it with ``next()``.

Conventions (as in PyTorch):
- float32 by default; float64 on request, per tensor (``dtype=``) or for a block of code
  (``with default_dtype(np.float64): ...``), so gradients can be checked in float64.
- gradients accumulate into leaves across ``backward()`` calls; intermediate gradients
  are dropped unless ``retain_grad()`` was called;
- the graph is freed by ``backward()``; a second backward through it raises, unless the
  first one was given ``retain_graph=True``.

Beside this file: ``switches.py`` holds no_grad(), the default dtype and detect_anomaly()
(imported here, so ``from tinygrad_llm.tensor import no_grad`` works too);
``creation.py`` the constructors and multi-tensor ops (zeros, randn, cat, stack, split,
where, the masks); ``autograd/trace.py`` the BackwardStep that backward_steps() yields.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from tinygrad_llm.switches import (  # noqa: F401  (the rest re-exported for importers)
    STATE,
    AnomalyError,
    default_dtype,
    detect_anomaly,
    get_default_dtype,
    is_grad_enabled,
    no_grad,
    set_default_dtype,
)


class ShapeError(ValueError):
    """Shapes that do not fit together; the message names both and the fix."""


# ---------------------------------------------------------------------------------------
# The Tensor


def _to_array(data, dtype) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    arr = np.asarray(data)
    if dtype is not None:
        return arr.astype(dtype, copy=False)
    if arr.dtype.kind == "f" or arr.dtype.kind == "c":
        # floats follow the default dtype: no silent float64 from np.random & co.
        return arr.astype(STATE.default_dtype, copy=False)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    return arr


class Tensor:
    """An n-d array with an optional gradient and a link to the op that made it."""

    __array_priority__ = 1000  # so ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None, name: str | None = None):
        self.data: np.ndarray = _to_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"Tensor: requires_grad=True needs a float dtype, got {self.data.dtype} "
                f"(convert first, e.g. Tensor(x, dtype=np.float32, requires_grad=True))"
            )
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad
        self.name = name
        self._fn = None  # the Function that produced this tensor (None for a leaf)
        self._retain = False

    @classmethod
    def _wrap(cls, data: np.ndarray, requires_grad: bool) -> Tensor:
        """Wrap an op's output without dtype conversion."""
        t = cls.__new__(cls)
        t.data, t.grad, t.requires_grad, t.name, t._fn, t._retain = (
            data, None, requires_grad, None, None, False)
        return t

    # -- plain properties ---------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._fn is None

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor._wrap(self.data, False)

    def zero_grad(self) -> None:
        self.grad = None

    def retain_grad(self) -> Tensor:
        """Keep this non-leaf tensor's gradient after backward()."""
        self._retain = True
        return self

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad_: {self.data.dtype} tensors cannot require grad")
        self.requires_grad = flag
        return self

    def astype(self, dtype) -> Tensor:
        """A copy in ``dtype``. Float to float is an op (gradients flow back, cast back);
        any other conversion gives a new tensor without gradient."""
        dt = np.dtype(dtype)
        if dt.kind == "f" and self.dtype.kind == "f":
            return _ew.Cast.apply(self, dtype=dt)
        return Tensor(self.data.astype(dt), dtype=dt)

    def __repr__(self) -> str:
        extra = ", requires_grad=True" if self.requires_grad else ""
        op = f", fn={type(self._fn).__name__}" if self._fn is not None else ""
        name = f", name={self.name!r}" if self.name else ""
        return f"Tensor({self.data!r}{extra}{op}{name})"

    def __hash__(self):
        return id(self)

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a Tensor of shape {self.shape} is ambiguous")
        return bool(self.data)

    # -- backward -------------------------------------------------------------------------
    def _topo(self) -> list[Tensor]:
        """Non-leaf tensors reachable from self, outputs first (iterative DFS post-order)."""
        order: list[Tensor] = []
        visited: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            t, done = stack.pop()
            if done:
                order.append(t)
                continue
            if id(t) in visited or t._fn is None:
                continue
            visited.add(id(t))
            stack.append((t, True))
            # reversed so that parents are visited in argument order
            for p in reversed(t._fn.parents):
                if id(p) not in visited and p._fn is not None:
                    stack.append((p, False))
        order.reverse()
        return order

    def backward_steps(self, grad=None, retain_graph: bool = False) -> Iterator[BackwardStep]:
        """Backpropagate one op at a time; yields a BackwardStep after each op.

        ``backward()`` is exactly "run this generator to the end". Steps come in reverse
        topological order: an op runs only after every consumer of its output has sent
        its gradient back, so gradients of a tensor used several times are summed first.
        """
        dout = self._initial_grad(grad)
        order = self._topo()
        for t in order:
            if t._fn.freed:
                raise RuntimeError(
                    f"backward: the graph through {type(t._fn).__name__} was already freed by "
                    f"an earlier backward(); pass retain_graph=True to the first backward() "
                    f"to backpropagate through it twice"
                )
        if not order:  # a leaf: its gradient is the seed itself
            self._accumulate(dout)
            return
        grads: dict[int, np.ndarray] = {id(self): dout}
        for index, t in enumerate(order):
            fn = t._fn
            g_out = grads.pop(id(t), None)
            if g_out is None:  # no gradient reached this op (all its consumers gave None)
                g_out = np.zeros_like(t.data)
            if t._retain:
                t.grad = g_out
            fn.retain_graph = retain_graph  # backward may run again: keep what it saved
            g_in = fn.backward(g_out)
            if not isinstance(g_in, tuple):
                g_in = (g_in,)
            if len(g_in) != len(fn.parents):
                raise RuntimeError(
                    f"{type(fn).__name__}.backward returned {len(g_in)} gradients, "
                    f"expected {len(fn.parents)} (one per Tensor input, None where not needed)"
                )
            for p, g in zip(fn.parents, g_in):
                if g is None or not p.requires_grad:
                    continue
                if g.shape != p.shape:
                    raise ShapeError(
                        f"{type(fn).__name__}.backward returned a gradient of shape {g.shape}, "
                        f"expected {p.shape}"
                    )
                if STATE.detect_anomaly and not np.all(np.isfinite(g)):
                    raise AnomalyError(
                        f"{type(fn).__name__}.backward produced NaN or Inf in the gradient "
                        f"of an input of shape {p.shape}"
                    )
                if g.dtype != p.data.dtype:
                    g = g.astype(p.data.dtype)
                if p._fn is None:
                    # fresh: an array nobody else holds (not dout, not a view, not handed
                    # to another input too), so the leaf may keep it and add into it later
                    fresh = g is not g_out and g.base is None and sum(x is g for x in g_in) == 1
                    p._accumulate(g, fresh=fresh)
                elif id(p) in grads:
                    grads[id(p)] = grads[id(p)] + g
                else:
                    grads[id(p)] = g
            step = BackwardStep(index, type(fn), fn.parents, t, g_out, g_in)
            if STATE.trace:
                print(step.line())
            yield step
            if not retain_graph:
                fn.free()
            # let go of this op's output: every consumer of it is done, so unless the caller
            # holds it, its array is freed now rather than when the whole backward ends
            # (activations then leave memory while the gradients arrive)
            order[index] = t = step = None

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Compute d(self)/d(leaf) for every leaf that requires grad; add it to ``leaf.grad``.

        Args:
            grad: the upstream gradient, same shape as self; defaults to 1.0 for a
                one-element tensor (a loss).
            retain_graph: keep the graph (and the arrays its ops saved) so that a second
                backward through it works.
        """
        for _ in self.backward_steps(grad, retain_graph):
            pass

    def _initial_grad(self, grad) -> np.ndarray:
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad (no input had "
                "requires_grad=True, or it was computed under no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be implied only for a one-element output, this one "
                    f"has shape {self.shape}; pass grad= of that shape (or call .sum() first)"
                )
            return np.ones_like(self.data)
        g = grad.data if isinstance(grad, Tensor) else np.asarray(grad, dtype=self.dtype)
        if g.shape != self.shape:
            raise ShapeError(f"backward: grad has shape {g.shape}, expected {self.shape}")
        return g

    def _accumulate(self, g: np.ndarray, fresh: bool = False) -> None:
        """Add g into a leaf's .grad; never alias an array another tensor may share.

        The first gradient is kept as is when it is a fresh array (else copied), so .grad is
        always this tensor's own array and later ones are added in place: no new array per
        use (a tied (V, C) embedding would otherwise allocate 154 MiB more at GPT-2 size).
        """
        if self.grad is None:
            self.grad = g if fresh else g.copy()
        elif self.grad.flags.writeable and self.grad.dtype == np.result_type(self.grad, g):
            self.grad += g
        else:  # a read-only or narrower .grad set by hand: leave it untouched
            self.grad = self.grad + g

    # -- arithmetic -------------------------------------------------------------------------
    def _other(self, other) -> Tensor:
        if isinstance(other, Tensor):
            return other
        # a number or array meeting a float tensor takes that tensor's dtype (not the default)
        dtype = self.dtype if self.dtype.kind == "f" else None
        return Tensor(other, dtype=dtype)

    def add(self, other) -> Tensor:
        return _ew.Add.apply(self, self._other(other))

    def sub(self, other) -> Tensor:
        return _ew.Sub.apply(self, self._other(other))

    def mul(self, other) -> Tensor:
        return _ew.Mul.apply(self, self._other(other))

    def div(self, other) -> Tensor:
        return _ew.Div.apply(self, self._other(other))

    def neg(self) -> Tensor:
        return _ew.Neg.apply(self)

    def pow(self, exponent) -> Tensor:
        """self ** exponent, for a constant number or a Tensor exponent."""
        if isinstance(exponent, Tensor):
            return _ew.Pow.apply(self, exponent)
        return _ew.PowScalar.apply(self, float(exponent))

    def __add__(self, other):
        return self.add(other)

    def __radd__(self, other):
        return self._other(other).add(self)

    def __sub__(self, other):
        return self.sub(other)

    def __rsub__(self, other):
        return self._other(other).sub(self)

    def __mul__(self, other):
        return self.mul(other)

    def __rmul__(self, other):
        return self._other(other).mul(self)

    def __truediv__(self, other):
        return self.div(other)

    def __rtruediv__(self, other):
        return self._other(other).div(self)

    def __neg__(self):
        return self.neg()

    def __pow__(self, exponent):
        return self.pow(exponent)

    def __rpow__(self, base):
        return self._other(base).pow(self)

    def __matmul__(self, other):
        return self.matmul(other)

    def __rmatmul__(self, other):
        return self._other(other).matmul(self)

    # comparisons give plain boolean tensors (no gradient)
    def __lt__(self, other):
        return Tensor(self.data < _raw(other))

    def __le__(self, other):
        return Tensor(self.data <= _raw(other))

    def __gt__(self, other):
        return Tensor(self.data > _raw(other))

    def __ge__(self, other):
        return Tensor(self.data >= _raw(other))

    def eq(self, other) -> Tensor:
        return Tensor(self.data == _raw(other))

    # -- elementwise functions -------------------------------------------------------------
    def exp(self) -> Tensor:
        return _ew.Exp.apply(self)

    def log(self) -> Tensor:
        return _ew.Log.apply(self)

    def sqrt(self) -> Tensor:
        return _ew.Sqrt.apply(self)

    def tanh(self) -> Tensor:
        return _ew.Tanh.apply(self)

    def relu(self) -> Tensor:
        return _ew.ReLU.apply(self)

    def sigmoid(self) -> Tensor:
        return _ew.Sigmoid.apply(self)

    def gelu(self) -> Tensor:
        return _nn.GELU.apply(self)

    def masked_fill(self, mask, value: float) -> Tensor:
        """Copy of self with ``value`` where ``mask`` (bool, broadcastable) is True."""
        return _ew.MaskedFill.apply(self, _raw(mask), float(value))

    # -- reductions -------------------------------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        return _red.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        return _red.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False) -> Tensor:
        return _red.Max.apply(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, keepdims: bool = False, correction: int = 1) -> Tensor:
        """Variance; ``correction=1`` is the unbiased estimate (PyTorch's default), 0 biased."""
        return _red.Var.apply(self, axis=axis, keepdims=keepdims, correction=correction)

    def argmax(self, axis=None, keepdims: bool = False) -> Tensor:
        return Tensor(np.argmax(self.data, axis=axis, keepdims=keepdims))

    # -- movement -----------------------------------------------------------------------------
    def reshape(self, *shape) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _mv.Reshape.apply(self, shape=shape)

    def view(self, *shape) -> Tensor:
        return self.reshape(*shape)

    def flatten(self, start_dim: int = 0) -> Tensor:
        return self.reshape(self.shape[:start_dim] + (-1,))

    def permute(self, *axes) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _mv.Permute.apply(self, axes=axes)

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        """Swap two axes (the last two by default)."""
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return _mv.Permute.apply(self, axes=tuple(axes))

    @property
    def T(self) -> Tensor:
        return self.permute(tuple(reversed(range(self.ndim))))

    def __getitem__(self, index) -> Tensor:
        return _mv.GetItem.apply(self, index=_raw_index(index))

    def split(self, split_size: int, axis: int = -1) -> list[Tensor]:
        """Chunks of ``split_size`` along ``axis`` (the last one may be smaller)."""
        return split(self, split_size, axis)

    def matmul(self, other) -> Tensor:
        return _mm.MatMul.apply(self, self._other(other))

    # -- nn functions (PyTorch-like names) -------------------------------------------------
    def softmax(self, axis: int = -1) -> Tensor:
        return _nn.Softmax.apply(self, axis=axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return _nn.LogSoftmax.apply(self, axis=axis)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _raw_index(index):
    if isinstance(index, tuple):
        return tuple(_raw(i) for i in index)
    return _raw(index)


# The ops, the creation helpers and BackwardStep import Tensor from this module, so they
# are imported after it is defined.
from tinygrad_llm.ops import elementwise as _ew  # noqa: E402
from tinygrad_llm.ops import matmul as _mm  # noqa: E402
from tinygrad_llm.ops import movement as _mv  # noqa: E402
from tinygrad_llm.ops import nn_ops as _nn  # noqa: E402
from tinygrad_llm.ops import reduce as _red  # noqa: E402
from tinygrad_llm.autograd.trace import BackwardStep  # noqa: E402
from tinygrad_llm.creation import split  # noqa: E402
