"""NumPy's own OpenBLAS GEMM, callable from inside Numba kernels.

Numba's ``np.dot`` inside ``@njit`` needs SciPy's BLAS (not a dependency), and a plain-Numba
matrix product reaches ~40 GF/s per thread here, half of what OpenBLAS does on the same small
blocks. But NumPy's wheels ship OpenBLAS as a shared library (``numpy.libs/`` on Linux and
Windows, ``numpy/.dylibs/`` on macOS) whose ``cblas_?gemm`` a kernel can call through ctypes:

    gemm = gemm_for(np.float32)          # a ctypes function, or None when not found
    with one_thread():                   # OpenBLAS runs each call on the calling thread
        kernel(gemm, ...)                # @njit code calls gemm(ROW_MAJOR, NO_TRANS, ...)

The function is passed to the kernel as an argument, not read from a global: Numba then
compiles against its type (its C signature) only, and the on-disk cache keeps working.

Threads: the kernels run their GEMMs on Numba's threads, one head per thread, so OpenBLAS must
not start threads of its own inside them. ``one_thread()`` sets OpenBLAS's thread count to 1
for the duration of the block (a process-wide setting: a np.matmul running at the same time in
another Python thread would also run on one thread) and restores it after.

Builds: NumPy >= 2 wheels ship ``scipy-openblas64`` (symbols ``scipy_cblas_sgemm64_`` with
64-bit integers); older or self-built ones may export plain ``cblas_sgemm`` (32-bit) or
``cblas_sgemm64_``. Anything else (Accelerate or MKL builds, a BLAS not found) gives None and
the kernels take their plain-Numba path. ``TINYGRAD_LLM_BLAS_KERNELS=0`` turns this off.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # CBLAS enum values

# (symbol prefix, symbol suffix, integer type) of the builds above, most likely first
_NAMINGS = (
    ("scipy_", "64_", ctypes.c_int64),
    ("", "64_", ctypes.c_int64),
    ("scipy_", "", ctypes.c_int32),
    ("", "", ctypes.c_int32),
)


def _libraries() -> list[Path]:
    here = Path(np.__file__).parent
    found = []
    for folder in (here.parent / "numpy.libs", here / ".dylibs"):
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if "openblas" in p.name.lower())
    return found


def _load() -> tuple[dict, object, object]:
    """({dtype: gemm}, set_num_threads, get_num_threads), or ({}, None, None)."""
    if os.environ.get("TINYGRAD_LLM_BLAS_KERNELS", "1") == "0":
        return {}, None, None
    for path in _libraries():
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        for pre, suf, blasint in _NAMINGS:
            names = [f"{pre}cblas_sgemm{suf}", f"{pre}cblas_dgemm{suf}",
                     f"{pre}openblas_set_num_threads{suf}", f"{pre}openblas_get_num_threads{suf}"]
            if not all(hasattr(lib, n) for n in names):
                continue
            gemms = {}
            for dtype, name, real in ((np.float32, names[0], ctypes.c_float),
                                      (np.float64, names[1], ctypes.c_double)):
                # order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc
                sig = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                       blasint, blasint, blasint, real, ctypes.c_void_p,
                                       blasint, ctypes.c_void_p, blasint, real,
                                       ctypes.c_void_p, blasint)
                gemms[np.dtype(dtype)] = sig((name, lib))
            set_threads = ctypes.CFUNCTYPE(None, ctypes.c_int)((names[2], lib))
            get_threads = ctypes.CFUNCTYPE(ctypes.c_int)((names[3], lib))
            return gemms, set_threads, get_threads
    return {}, None, None


_GEMMS, _set_threads, _get_threads = _load()


def gemm_for(dtype) -> object | None:
    """The row-major ``cblas_?gemm`` for float32 / float64 as a ctypes function, else None.

    C = alpha op(A) op(B) + beta C with op(X) = X or X^T; A, B, C given as addresses (an
    array's ``.ctypes.data`` plus a byte offset) and leading dimensions in elements, so
    that row views with any row stride (a head's rows inside a (B, T, H, D) array) are read
    and written in place."""
    return _GEMMS.get(np.dtype(dtype))


@contextmanager
def one_thread() -> Iterator[None]:
    """OpenBLAS runs every call on the calling thread inside this block."""
    if _set_threads is None:
        yield
        return
    previous = _get_threads()
    _set_threads(1)
    try:
        yield
    finally:
        _set_threads(previous)
