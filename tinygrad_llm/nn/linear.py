"""Linear: y = x W^T + b, with W in PyTorch's (out_features, in_features) layout.

Initialisation is PyTorch's default for ``nn.Linear`` (kaiming-uniform with a = sqrt(5),
which works out to): W and b ~ U(-1/sqrt(in), 1/sqrt(in)), drawn from
``tinygrad_llm.random.get_rng()``. So after ``manual_seed`` the numbers are reproducible,
and of the same scale as the book's PyTorch layers (not the same values: another RNG).
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_llm import functional as F
from tinygrad_llm.nn.module import Module, Parameter
from tinygrad_llm.random import get_rng
from tinygrad_llm.tensor import Tensor


class Linear(Module):
    """y = x @ weight.T + bias: (..., in_features) -> (..., out_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
                raise ValueError(f"Linear: {name} must be a positive int, got {n!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        rng = get_rng()
        bound = 1.0 / math.sqrt(in_features)  # PyTorch: kaiming_uniform(a=sqrt(5)) bound
        self.weight = Parameter(rng.uniform(-bound, bound, (out_features, in_features)))
        self.bias = Parameter(rng.uniform(-bound, bound, (out_features,))) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)  # (..., out), one fused op

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
