"""Shared pieces of the Numba kernels: compile options, a vectorisable exp and max.

Why a hand-written exp: Numba lowers ``np.exp`` / ``math.exp`` on scalars to a libm call per
element (the llvmlite wheels are built without Intel SVML, so LLVM has no vector exp to use):
about 2.3 ns per float32 element here, five times slower than NumPy's own SIMD ``np.exp``.
``fexp`` below is plain arithmetic that LLVM vectorises with AVX-512. Measured on 2M
elements: float32 0.25 ns per element (np.exp 0.46 ns), float64 0.71 ns (np.exp 2.9 ns);
max relative error against exp in long double 7.7e-8 (float32; np.exp 2.0e-7) and 1.4e-16
(float64; np.exp 1.3e-16).

    e^x = 2^n * e^r,  n = round(x / ln 2),  r = x - n ln 2 in [-ln2/2, ln2/2]

n ln 2 is subtracted in two parts (Cody-Waite: ln2_hi has few mantissa bits, so n * ln2_hi
is exact) and e^r is its Taylor polynomial (degree 7 for float32: error r^8/8! < 6e-9;
degree 13 for float64: error r^14/14! < 5e-18), evaluated by Horner's rule; 2^n is built from
its exponent bits. Simplifications at the ends of the range, chosen because they keep the
code branch-free (building 2^n in two halves to be exact there costs 1.8x in float32):
results below about 2^-126.5 (float32) / 2^-1022.5 (float64), i.e. under the smallest
normal number, flush to 0, and results above half the largest float become +inf. NaN stays
NaN, exp(-inf) = 0 (masked scores), exp(+inf) = inf.

Caching caveat: Numba's on-disk cache (cache=True) keys a kernel on its own source file only.
After editing this module, delete the kernels' ``__pycache__/*.nbi|*.nbc`` files (or set
NUMBA_CACHE_DIR to a fresh directory), otherwise cached kernels keep the old helper inlined.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

# Floating-point freedoms given to LLVM in the kernels:
#   contract: fused multiply-add (one rounding instead of two, never less accurate);
#   reassoc:  reorder sums, which lets LLVM vectorise reductions (row sums, dot products)
#             across SIMD lanes: the order of a sum changes; 16 lane-wise partial sums are
#             usually more accurate than one running sum, not less.
# Not given: nnan/ninf (kernels see -inf in masks and must keep inf/NaN semantics), arcp and
# afn (approximate reciprocals / functions).
FASTMATH = {"contract", "reassoc"}

# Every kernel is compiled with these options (``@njit(**JIT)``, ``@njit(parallel=True, **JIT)``).
# error_model="numpy": a float division by zero gives inf / NaN, as in NumPy (and so as in the
# kernels' NumPy references), instead of raising ZeroDivisionError. Numba's default ("python")
# puts a zero test and an exception exit around every division; in a non-parallel function
# that branch stops LLVM from vectorising the loop around it. Measured: the GELU forward over
# (1024, 3072) float32 took 9.4 ms with its division in a helper compiled the default way and
# 1.3 ms with error_model="numpy" (17 ms vs 1.3 ms in a serial loop). Inside prange loops Numba
# already uses the NumPy model.
JIT = dict(cache=True, fastmath=FASTMATH, error_model="numpy")

LOG2E = 1.4426950408889634
# ln 2 split so that n * LN2_HI is exact for the n that occur (|n| < 2^9 for float32 exponent
# range, |n| < 2^11 for float64).
LN2_HI_F32 = 0.693359375  # 0x3f318000: 9 significant bits
LN2_LO_F32 = -2.12194440e-4  # ln 2 - LN2_HI_F32
LN2_HI_F64 = 6.93147180369123816490e-01  # 0x3fe62e42fee00000: 32 significant bits
LN2_LO_F64 = 1.90821492927058770002e-10  # ln 2 - LN2_HI_F64


@njit(cache=True, fastmath={"contract"})
def _exp_f32(x):
    """float32 -> float32 e^x, vectorisable (no calls, selects instead of branches)."""
    # clamping first keeps n in [-127, 128]: the exponent field n + 127 is then 0 (giving 0)
    # or 255 (giving inf) at the two ends; a NaN input is passed through at the end
    xc = min(max(x, np.float32(-88.0)), np.float32(88.8))
    n = np.floor(xc * np.float32(LOG2E) + np.float32(0.5))
    r = xc - n * np.float32(LN2_HI_F32)
    r = r - n * np.float32(LN2_LO_F32)
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    y = p * np.int32((np.int32(n) + 127) << 23).view(np.float32)
    return x if np.isnan(x) else y


@njit(cache=True, fastmath={"contract"})
def _exp_f64(x):
    """float64 -> float64 e^x, vectorisable (no calls, selects instead of branches)."""
    xc = min(max(x, -709.0), 709.8)  # n in [-1023, 1024]: exponent field 0 or 2047 at the ends
    n = np.floor(xc * LOG2E + 0.5)
    r = xc - n * LN2_HI_F64
    r = r - n * LN2_LO_F64
    p = 1.0 / 6227020800.0  # 1/13!
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    y = p * np.int64((np.int64(n) + 1023) << 52).view(np.float64)
    return x if np.isnan(x) else y


@intrinsic
def vmax(typingctx, a, b):
    """max(a, b) of two floats of one type as LLVM's ``llvm.maximum`` (NaN wins, like
    np.maximum). Numba's ``max()`` and ``a if a > b else b`` lower to compare + select without
    fast-math flags, which LLVM will not vectorise as a reduction: a row max over 768 float32
    took 0.40 us per row with them and 0.14 us with this (np.max: 0.11 us)."""
    if not (isinstance(a, types.Float) and a == b):
        return None

    def codegen(context, builder, signature, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic("llvm.maximum", [ty], ir.FunctionType(ty, [ty, ty]))
        return builder.call(fn, args)

    return a(a, b), codegen


def fexp(x):
    """e^x of a float32 or float64 scalar in its own precision; usable inside @njit code."""
    return np.exp(x)


@overload(fexp)
def _fexp_overload(x):
    if x == types.float32:
        return lambda x: _exp_f32(x)
    if x == types.float64:
        return lambda x: _exp_f64(x)
    return None


FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def same_float(*arrays) -> bool:
    """True when every array is float32, or every one float64: the two dtypes the kernels are
    compiled for. Anything else (mixed, float16, integers) goes to the NumPy reference, which
    keeps the number of compiled specialisations at two per kernel."""
    dt = arrays[0].dtype
    return dt in FLOATS and all(a.dtype == dt for a in arrays)


def as_rows(x: np.ndarray) -> np.ndarray:
    """x (..., C) as a C-contiguous (N, C) array (a view when x already is contiguous)."""
    return np.ascontiguousarray(x).reshape(-1, x.shape[-1])
