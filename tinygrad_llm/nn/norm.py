"""LayerNorm with the book's parameter names ``scale`` and ``shift`` (chapter 4, section 4.2).

    y = (x - mean(x)) / sqrt(var(x) + eps) * scale + shift

over the last axis (the C features of each token), with the *biased* variance (divide by C,
as PyTorch's LayerNorm and GPT-2 do) and eps = 1e-5. scale starts at ones and shift at
zeros, so a new LayerNorm only standardises. One fused op (forward and backward in
ops/nn_ops.py), not a chain of mean/var/sqrt ops.
"""

from __future__ import annotations

import numpy as np

from tinygrad_llm import functional as F
from tinygrad_llm.nn.module import Module, Parameter
from tinygrad_llm.tensor import Tensor


class LayerNorm(Module):
    """Normalise each token's emb_dim features to mean 0, variance 1, then scale and shift."""

    def __init__(self, emb_dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = float(eps)
        self.scale = Parameter(np.ones(emb_dim))  # (C,)  gamma in the paper
        self.shift = Parameter(np.zeros(emb_dim))  # (C,)  beta in the paper

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.scale, self.shift, self.eps)  # (..., C)

    def extra_repr(self) -> str:
        return f"{self.scale.shape[0]}, eps={self.eps}"
