"""Kernels for the hot ops: a plain NumPy reference beside each Numba version.

Every kernel module (``matmul``, ``softmax``, ``cross_entropy``, ``layernorm``, ``gelu``,
``attention``, ``embedding``, ``adamw``) defines ``<name>_ref`` (NumPy) and ``<name>_nb``
(Numba) with identical signatures, plus a public ``<name>`` that picks one of the two by the
current backend. Tests hold every ``_nb`` equal to its ``_ref``.

The backend is chosen by ``TINYGRAD_LLM_BACKEND=numpy|numba`` (default ``numba``), by
``set_backend(name)``, or for a block of code by ``with use_backend(name): ...``.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Callable, Iterator

BACKENDS = ("numpy", "numba")


def _check(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(
            f"backend: got {name!r}; expected one of {BACKENDS} "
            f"(set TINYGRAD_LLM_BACKEND or call set_backend())"
        )
    return name


_backend = _check(os.environ.get("TINYGRAD_LLM_BACKEND", "numba"))


def get_backend() -> str:
    """The kernel backend in use: 'numpy' or 'numba'."""
    return _backend


def set_backend(name: str) -> None:
    """Select the kernel backend for everything that runs after this call."""
    global _backend
    _backend = _check(name)


@contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run a block with another kernel backend, restoring the previous one afterwards."""
    global _backend
    previous, _backend = _backend, _check(name)
    try:
        yield
    finally:
        _backend = previous


def dispatch(ref: Callable, nb: Callable | None) -> Callable:
    """Return a function that calls ``nb`` under the numba backend and ``ref`` otherwise."""

    def run(*args, **kwargs):
        if _backend == "numba" and nb is not None:
            return nb(*args, **kwargs)
        return ref(*args, **kwargs)

    run.__name__ = ref.__name__.removesuffix("_ref")
    run.__doc__ = ref.__doc__
    run.ref, run.nb = ref, nb
    return run
