"""Matrix product kernels: out = a @ b and its two backward products.

Shapes: a (..., M, K), b (..., K, N) with batch dims that broadcast (NumPy rules).
The backward returns gradients in the *broadcast* batch shape; the op undoes the
broadcasting with ``unbroadcast``.

The "Numba" version is BLAS through NumPy, by measurement (2 cores, float32, GPT-2 layer
shapes (1024, 768|3072) x (768|3072, 2304|3072|768|50257); benchmarks/bench_kernels.py prints
the current numbers):
    np.matmul (OpenBLAS)                         180-210 GFLOP/s
    @njit(parallel) i-k-j loop, vectorised       ~57 GFLOP/s   (3.5x slower)
    @njit(parallel) 4-row register tile          ~25 GFLOP/s
    np.dot inside @njit                          not available: Numba's BLAS binding needs
                                                 SciPy, which is not a dependency
so ``matmul_*_nb`` call np.matmul. What they add: a batch of activations times one weight
matrix, (..., M, K) @ (K, N), is done as a single 2-D GEMM (prod(...) * M, K) @ (K, N)
when a is C-contiguous (a free reshape). NumPy's matmul would instead call BLAS once per
(M, K) @ (K, N) slice: at (4, 256, K) that measured 5-20 % slower (154-182 vs 179-196
GFLOP/s; one run 76 vs 192 at K = 3072). The same holds for da = dout @ b^T.
db = a^T @ dout keeps the broadcast batch shape the contract asks for (the MatMul op
already folds the batch for the weight gradient itself).
"""

from __future__ import annotations

import numpy as np

from tinygrad_llm.kernels import dispatch


def matmul_forward_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """out = a @ b."""
    return np.matmul(a, b)


def matmul_backward_ref(dout: np.ndarray, a: np.ndarray, b: np.ndarray):
    """da = dout @ b^T, db = a^T @ dout (both in the broadcast batch shape)."""
    da = np.matmul(dout, np.swapaxes(b, -1, -2))
    db = np.matmul(np.swapaxes(a, -1, -2), dout)
    return da, db


def _fold(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x (..., M, K) @ w (K, N) as one 2-D GEMM when that reshape of x is free."""
    if w.ndim == 2 and x.ndim > 2 and x.flags.c_contiguous:
        return np.matmul(x.reshape(-1, x.shape[-1]), w).reshape(x.shape[:-1] + w.shape[-1:])
    return np.matmul(x, w)


def matmul_forward_nb(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """out = a @ b."""
    return _fold(a, b)


def matmul_backward_nb(dout: np.ndarray, a: np.ndarray, b: np.ndarray):
    """da = dout @ b^T, db = a^T @ dout (both in the broadcast batch shape)."""
    da = _fold(dout, np.swapaxes(b, -1, -2))
    db = np.matmul(np.swapaxes(a, -1, -2), dout)
    return da, db


matmul_forward = dispatch(matmul_forward_ref, matmul_forward_nb)
matmul_backward = dispatch(matmul_backward_ref, matmul_backward_nb)
