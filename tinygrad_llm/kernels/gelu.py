"""GELU, tanh approximation (as GPT-2 and the book use it), forward and backward.

y = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2),  t = tanh(u)
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_llm.kernels import dispatch

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_C = 0.044715


def gelu_forward_ref(x: np.ndarray) -> np.ndarray:
    """y = gelu(x), any shape."""
    t = np.tanh(SQRT_2_OVER_PI * (x + GELU_C * x**3))
    return 0.5 * x * (1.0 + t)


def gelu_backward_ref(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dx = dout * gelu'(x)."""
    t = np.tanh(SQRT_2_OVER_PI * (x + GELU_C * x**3))
    dudx = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * x * x)
    return dout * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * dudx)


gelu_forward = dispatch(gelu_forward_ref, None)
gelu_backward = dispatch(gelu_backward_ref, None)
