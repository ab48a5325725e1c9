"""Embedding: a lookup table, row ``i`` is the vector of id ``i`` (the book's section 2.7).

``Embedding(V, C)(ids)`` maps integer ids of any shape (...) to vectors (..., C). It is the
same as a one-hot (..., V) times the (V, C) table, without building the one-hot.
Initialisation is PyTorch's default, N(0, 1).
"""

from __future__ import annotations

import numpy as np

from tinygrad_llm import functional as F
from tinygrad_llm.nn.module import Module, Parameter
from tinygrad_llm.random import normal
from tinygrad_llm.tensor import Tensor


class Embedding(Module):
    """weight (num_embeddings, embedding_dim); forward(ids (...)) -> (..., embedding_dim)."""

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        for name, n in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
                raise ValueError(f"Embedding: {name} must be a positive int, got {n!r}")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.weight = Parameter(normal(1.0, (num_embeddings, embedding_dim)))

    def forward(self, ids) -> Tensor:
        return F.embedding(ids, self.weight)  # (..., C); an id >= V raises, naming V

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"
