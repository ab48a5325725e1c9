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
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from collections.abc import Iterator

import numpy as np

# ---------------------------------------------------------------------------------------
# Global switches: gradient recording, default float dtype, anomaly detection.


class _State:
    grad_enabled = True
    default_dtype = np.dtype(np.float32)
    detect_anomaly = False
    trace = os.environ.get("TINYGRAD_LLM_TRACE", "") not in ("", "0")


STATE = _State()


class no_grad:
    """Context manager (and decorator) that stops ops from recording a graph."""

    def __enter__(self):
        self.previous, STATE.grad_enabled = STATE.grad_enabled, False

    def __exit__(self, *exc):
        STATE.grad_enabled = self.previous

    def __call__(self, func):
        def wrapper(*args, **kwargs):
            with no_grad():
                return func(*args, **kwargs)

        wrapper.__name__, wrapper.__doc__ = func.__name__, func.__doc__
        return wrapper


def is_grad_enabled() -> bool:
    return STATE.grad_enabled


def _float_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype: got {dt}; expected float32 or float64")
    return dt


def set_default_dtype(dtype) -> None:
    """Set the float dtype that new tensors get when none is given."""
    STATE.default_dtype = _float_dtype(dtype)


def get_default_dtype() -> np.dtype:
    return STATE.default_dtype


@contextmanager
def default_dtype(dtype) -> Iterator[None]:
    """Create float tensors in ``dtype`` inside the block (e.g. float64 for gradcheck)."""
    previous = STATE.default_dtype
    STATE.default_dtype = _float_dtype(dtype)
    try:
        yield
    finally:
        STATE.default_dtype = previous


@contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise, naming the op, as soon as a forward or backward produces NaN or Inf."""
    previous, STATE.detect_anomaly = STATE.detect_anomaly, True
    try:
        yield
    finally:
        STATE.detect_anomaly = previous


class ShapeError(ValueError):
    """Shapes that do not fit together; the message names both and the fix."""


class AnomalyError(FloatingPointError):
    """Raised under detect_anomaly() when an op produces NaN or Inf."""


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


# ---------------------------------------------------------------------------------------
# One backward step, for learners


@dataclass
class BackwardStep:
    """What one op did during backward: its output, the gradient it got, the ones it gave."""

    index: int
    op_class: type
    inputs: tuple
    out: Tensor
    dout: np.ndarray
    grads: tuple = field(default_factory=tuple)

    @property
    def op(self) -> str:
        return self.op_class.__name__

    def input_names(self) -> list[str]:
        return [p.name or f"input{i}" for i, p in enumerate(self.inputs)]

    def line(self) -> str:
        """One line: index, op, output, shapes and max |grad| per input."""
        parts = []
        for name, g in zip(self.input_names(), self.grads):
            if g is None:
                parts.append(f"{name}: -")
            else:
                parts.append(f"{name}: {tuple(g.shape)} max|g|={np.abs(g).max(initial=0):.3g}")
        out = self.out.name or "out"
        return f"[{self.index:3d}] {self.op:<20s} {out} {tuple(self.dout.shape)} -> " + ", ".join(
            parts
        )

    def explain(self) -> str:
        """The op's formula (its docstring) and, for small arrays, the values."""
        doc = (self.op_class.__doc__ or "").strip()
        lines = [f"step {self.index}: {self.op}", doc, f"dout =\n{_small(self.dout)}"]
        for name, g in zip(self.input_names(), self.grads):
            lines.append(f"d{name} =\n{_small(g)}" if g is not None else f"d{name} = None")
        return "\n".join(lines)

    def __repr__(self) -> str:
        grads = {n: (None if g is None else tuple(g.shape))
                 for n, g in zip(self.input_names(), self.grads)}
        return (f"BackwardStep(index={self.index}, op={self.op!r}, out={self.out.name!r}, "
                f"dout={tuple(self.dout.shape)}, grads={grads})")


def _small(a) -> str:
    if a is None:
        return "None"
    a = np.asarray(a)
    if a.size <= 16:
        return np.array2string(a, precision=4, suppress_small=True)
    return f"<array {a.shape}, mean {a.mean():.4g}, max|.| {np.abs(a).max():.4g}>"


# ---------------------------------------------------------------------------------------
# Creation helpers and multi-tensor ops


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


# The ops import Tensor from this module, so they are imported after it is defined.
from tinygrad_llm.ops import elementwise as _ew  # noqa: E402
from tinygrad_llm.ops import matmul as _mm  # noqa: E402
from tinygrad_llm.ops import movement as _mv  # noqa: E402
from tinygrad_llm.ops import nn_ops as _nn  # noqa: E402
from tinygrad_llm.ops import reduce as _red  # noqa: E402
