"""Global switches: gradient recording, default float dtype, anomaly detection.

    with no_grad(): ...                    # ops record no graph (evaluation, generation)
    with default_dtype(np.float64): ...    # new float tensors in float64 (gradcheck)
    with detect_anomaly(): ...             # raise at the first op that makes NaN or Inf

All three live in one ``STATE`` object that ``Tensor`` and ``Function.apply`` read; the
names are re-exported by ``tinygrad_llm.tensor`` and the package.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from collections.abc import Iterator

import numpy as np


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


class AnomalyError(FloatingPointError):
    """Raised under detect_anomaly() when an op produces NaN or Inf."""
