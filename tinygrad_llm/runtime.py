"""Process settings tinygrad_llm makes when it is imported: the OpenBLAS thread timeout and
glibc malloc's thresholds. Both are defaults that an explicit setting wins over.

OpenBLAS: its worker threads spin for about 0.1 s after every GEMM before they sleep. A
training step alternates GEMMs with parallel Numba kernels on the same cores, so each kernel
would share a core with a spinning BLAS thread. With a timeout of 2^4 cycles they sleep at
once (waking them costs microseconds per GEMM). OpenBLAS reads the variable when NumPy loads
it, so this only works when tinygrad_llm is imported before NumPy (the CLI and the
benchmarks do); OPENBLAS_THREAD_TIMEOUT in the environment wins. See
benchmarks/bench_train.py.

malloc: a forward pass allocates its activations fresh, 1-12 MiB arrays at GPT-2 small
sizes. glibc serves large blocks by mmap, or trims them off its heap when they are freed, so
every forward paid page faults on memory it had just given back: about 34,000 minor faults
and 0.09 s of system time per 1,024-token prefill. With mmap reserved for blocks over 32 MiB
and freed memory kept on the heap (trimmed only above 1 GiB free), the same prefill has no
page faults and runs 5-8 % faster (1.31 -> 1.22 s, alternating runs); the training step's
peak RSS is unchanged (2,508 MiB at 124M). The cost: memory a finished forward freed stays
in the process (up to the 1 GiB trim threshold) instead of going back to the OS.
TINYGRAD_LLM_KEEP_HEAP=0 in the environment, or MALLOC_MMAP_THRESHOLD_ /
MALLOC_TRIM_THRESHOLD_ set, leaves malloc as it is.
"""

from __future__ import annotations

import ctypes
import os
import sys

MMAP_THRESHOLD = 32 << 20  # glibc's largest accepted value (blocks above it use mmap)
TRIM_THRESHOLD = 1 << 30
_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's malloc.h
_M_MMAP_THRESHOLD = -3


def set_openblas_timeout() -> None:
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")


def keep_heap() -> bool:
    """Apply the malloc thresholds above; True when they were set (glibc only)."""
    env = os.environ
    if (env.get("TINYGRAD_LLM_KEEP_HEAP", "1") == "0" or "MALLOC_MMAP_THRESHOLD_" in env
            or "MALLOC_TRIM_THRESHOLD_" in env or not sys.platform.startswith("linux")):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
