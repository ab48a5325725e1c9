"""Dropout: while training, zero each element with probability p and scale the rest by
1/(1-p), so the expected value is unchanged (chapter 3, section 3.5.2). In eval mode
(``model.eval()``) it is the identity.

The mask is drawn from ``rng`` if given, else from ``tinygrad_llm.random.get_rng()`` at the
moment of the call (so ``manual_seed`` makes it reproducible, and checkpoints restore it).
"""

from __future__ import annotations

import numpy as np

from tinygrad_llm import functional as F
from tinygrad_llm.nn.module import Module
from tinygrad_llm.random import get_rng
from tinygrad_llm.tensor import Tensor


class Dropout(Module):
    """Zero elements with probability ``p`` in training; identity in eval or when p == 0."""

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if isinstance(p, bool) or not 0.0 <= float(p) < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = rng

    @property
    def active(self) -> bool:
        """True when a forward call would drop anything (training and p > 0)."""
        return self.training and self.p > 0.0

    def forward(self, x: Tensor) -> Tensor:
        if not self.active:
            return x
        return F.dropout(x, self.p, True, self.rng or get_rng())  # (...) same shape

    def extra_repr(self) -> str:
        return f"p={self.p}"
