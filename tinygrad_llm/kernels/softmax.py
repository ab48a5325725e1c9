"""Softmax over the last axis, forward and backward.

y_i = exp(x_i - max x) / sum_j exp(x_j - max x)
dx_i = y_i * (dout_i - sum_j dout_j y_j)      (the Jacobian diag(y) - y y^T, applied)
"""

from __future__ import annotations

import numpy as np

from tinygrad_llm.kernels import dispatch


def softmax_forward_ref(x: np.ndarray) -> np.ndarray:
    """Softmax of x over its last axis (any leading shape)."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward_ref(dout: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dx from the upstream gradient and the forward output y."""
    return y * (dout - (dout * y).sum(axis=-1, keepdims=True))


softmax_forward = dispatch(softmax_forward_ref, None)
softmax_backward = dispatch(softmax_backward_ref, None)
