"""Embedding backward: scatter-add the rows of dout into a (V, C) gradient table.

ids (N,) int64, dout (N, C). The same id may appear many times; its rows are summed.
(The forward is a plain gather, weight[ids], done in the op.)
"""

from __future__ import annotations

import numpy as np

from tinygrad_llm.kernels import dispatch


def embedding_backward_ref(dout: np.ndarray, ids: np.ndarray, num_embeddings: int) -> np.ndarray:
    """Return dweight (num_embeddings, C)."""
    dw = np.zeros((num_embeddings, dout.shape[1]), dtype=dout.dtype)
    np.add.at(dw, ids, dout)
    return dw


embedding_backward = dispatch(embedding_backward_ref, None)
