"""Linear: y = x W^T + b, with W in PyTorch's (out_features, in_features) layout.

Initialisation is PyTorch's default for ``nn.Linear`` (kaiming-uniform with a = sqrt(5),
which works out to): W and b ~ U(-1/sqrt(in), 1/sqrt(in)), drawn from
``tinygrad_llm.random.get_rng()`` in the default float dtype. So after ``manual_seed`` the
numbers are reproducible, and of the same scale as the book's PyTorch layers (not the same
values: another RNG).
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_llm import functional as F
from tinygrad_llm.nn.module import Module, Parameter
from tinygrad_llm.random import uniform
from tinygrad_llm.tensor import Tensor


class Linear(Module):
    """y = x @ weight.T + bias: (..., in_features) -> (..., out_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 weight: Parameter | None = None) -> None:
        """``weight``: an existing (out_features, in_features) Parameter to use instead of
        drawing one (weight tying: GPT-2's output head shares the token embedding)."""
        super().__init__()
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
                raise ValueError(f"Linear: {name} must be a positive int, got {n!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        bound = 1.0 / math.sqrt(in_features)  # PyTorch: kaiming_uniform(a=sqrt(5)) bound
        if weight is None:
            weight = Parameter(uniform(-bound, bound, (out_features, in_features)))
        elif weight.shape != (out_features, in_features):
            raise ValueError(f"Linear: weight has shape {weight.shape}, expected "
                             f"(out_features, in_features) = {(out_features, in_features)}")
        self.weight = weight
        self.bias = Parameter(uniform(-bound, bound, (out_features,))) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)  # (..., out), one fused op

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
