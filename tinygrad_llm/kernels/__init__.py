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
from collections.abc import Callable, Iterator
from contextlib import contextmanager

BACKENDS = ("numpy", "numba")


def _check(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(
            f"backend: got {name!r}; expected one of {BACKENDS} "
            f"(set TINYGRAD_LLM_BACKEND or call set_backend())"
        )
    return name


_backend = _check(os.environ.get("TINYGRAD_LLM_BACKEND", "numba"))

# Numba's threading layer, chosen before any parallel kernel runs (the layer is fixed at the
# first parallel launch). A training step alternates NumPy's OpenBLAS GEMMs with parallel Numba
# kernels on the same 2 cores, so the layer whose idle threads *sleep* wins. Ratio of
# (GEMM, kernel, GEMM, kernel, ...) time to GEMM alone + kernel alone, GEMM (1024,768)x(768,3072)
# with layernorm / gelu / softmax / attention forward (benchmarks/bench_kernels.py --threading):
#   workqueue                                0.98-1.17
#   tbb (needs the `tbb` package)            1.25-1.30 (scratch test with a softmax kernel;
#                                            workqueue 1.28 in the same test)
#   omp (GNU libgomp spins after a kernel)   1.31-1.46, 2.3 for a GEMM followed by 3 kernels
#   omp + OMP_WAIT_POLICY=passive            1.06-1.32
#   workqueue + OPENBLAS_THREAD_TIMEOUT=4    0.98-1.07
# workqueue is built into Numba and never spins. What is left is OpenBLAS's own workers
# spinning for ~0.1 s after each GEMM; OPENBLAS_THREAD_TIMEOUT is read when NumPy loads, so it
# is set in tinygrad_llm/__init__.py, which runs before NumPy is imported if the program imports
# tinygrad_llm first. An explicit NUMBA_THREADING_LAYER in the environment wins.
# Caveat: workqueue is not thread-safe. Calling parallel kernels from two Python threads at
# once makes Numba terminate the process; code that needs that must run with
# NUMBA_THREADING_LAYER=tbb (after `pip install tbb`).
# It goes into os.environ too because Numba re-reads NUMBA_* variables whenever one changes
# (e.g. NUMBA_CACHE_DIR) and would reset an assignment to numba.config alone.
if "NUMBA_THREADING_LAYER" not in os.environ:
    os.environ["NUMBA_THREADING_LAYER"] = "workqueue"
    import numba

    numba.config.THREADING_LAYER = "workqueue"


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
