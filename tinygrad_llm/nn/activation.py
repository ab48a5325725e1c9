"""GELU, GPT-2's activation, in the tanh approximation (chapter 4, section 4.3).

    GELU(x) ~= 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))

A smooth ReLU: close to x for large x, close to 0 for very negative x, with a small
negative dip around -0.75 and a gradient everywhere (no dead units). One fused op.
"""

from __future__ import annotations

from tinygrad_llm import functional as F
from tinygrad_llm.nn.module import Module
from tinygrad_llm.tensor import Tensor


class GELU(Module):
    """Elementwise GELU (tanh approximation); shape in = shape out."""

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x)  # (...) same shape
