"""Matrix product kernels: out = a @ b and its two backward products.

Shapes: a (..., M, K), b (..., K, N) with batch dims that broadcast (NumPy rules).
The backward returns gradients in the *broadcast* batch shape; the op undoes the
broadcasting with ``unbroadcast``.
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


matmul_forward = dispatch(matmul_forward_ref, None)
matmul_backward = dispatch(matmul_backward_ref, None)
