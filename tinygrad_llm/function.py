"""Function: the base class of every differentiable op.

An op is a subclass with ``forward`` and ``backward`` side by side, both on raw NumPy
arrays. ``forward`` gets the arrays of the Tensor arguments (other arguments pass through
unchanged) and returns one array; it keeps what backward needs with
``save_for_backward(...)`` or as plain attributes. ``backward(dout)`` returns one gradient
per Tensor argument, in argument order, ``None`` where there is none.

``Op.apply(*args, **kwargs)`` runs forward and, when gradients are being recorded and some
Tensor argument requires grad, links the output Tensor to this Function so that
``Tensor.backward()`` can call ``backward`` later.
"""

from __future__ import annotations

import numpy as np

from tinygrad_llm.switches import STATE, AnomalyError
from tinygrad_llm.tensor import Tensor


class Function:
    """Base class: subclasses define forward(...) -> ndarray and backward(dout) -> tuple."""

    parents: tuple[Tensor, ...] = ()
    retain_graph = False  # set before each backward: True if it may be called again
    needs_input_grad: tuple[bool, ...] = ()
    saved: tuple = ()
    freed = False

    def save_for_backward(self, *arrays) -> None:
        self.saved = arrays

    def forward(self, *args, **kwargs) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> tuple:
        raise NotImplementedError

    def free(self) -> None:
        """Drop saved arrays and graph links (called after this op's backward)."""
        self.__dict__.clear()
        self.freed = True

    @classmethod
    def apply(cls, *args, **kwargs) -> Tensor:
        fn = cls()
        tensors = [a for a in args if isinstance(a, Tensor)]
        _check_dtypes(cls.__name__, tensors)
        needs = STATE.grad_enabled and any(t.requires_grad for t in tensors)
        if needs:
            fn.needs_input_grad = tuple(t.requires_grad for t in tensors)
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        out = fn.forward(*raw, **kwargs)
        if STATE.detect_anomaly and out.dtype.kind == "f" and not np.all(np.isfinite(out)):
            raise AnomalyError(f"{cls.__name__}.forward produced NaN or Inf (output {out.shape})")
        result = Tensor._wrap(out, needs)
        if needs:
            fn.parents = tuple(tensors)
            result._fn = fn
        return result


def _check_dtypes(op: str, tensors: list[Tensor]) -> None:
    floats = {t.data.dtype for t in tensors if t.data.dtype.kind == "f"}
    if len(floats) > 1:
        shown = ", ".join(f"{t.dtype} {t.shape}" for t in tensors)
        raise TypeError(
            f"{op}: inputs mix float dtypes ({shown}); convert one with .astype(...) "
            f"or create both under the same default_dtype()"
        )
