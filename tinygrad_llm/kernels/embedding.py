"""Embedding backward: scatter-add the rows of dout into a (V, C) gradient table.

ids (N,) int64, dout (N, C). The same id may appear many times; its rows are summed.
(The forward is a plain gather, weight[ids], done in the op.)

Numba version: parallel over column blocks (prange over blocks of ``_BLOCK`` columns); each
block walks all N rows in order and adds dout[n, block] into dw[ids[n], block]. No two
threads ever touch the same element, and every element is summed in row order, exactly as
np.add.at does, so the result is deterministic and bit-equal to the reference.
dw is allocated with np.zeros outside the kernel: for GPT-2 it is (50257, 768), 154 MB in
float32, and calloc's lazily zeroed pages mean only the rows that are hit get touched.
ids outside [0, V) raise IndexError (np.add.at would wrap negative ones).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tinygrad_llm.kernels import dispatch
from tinygrad_llm.kernels._numba import JIT, same_float

_BLOCK = 64  # columns per parallel task: 256 contiguous bytes per row in float32


def embedding_backward_ref(dout: np.ndarray, ids: np.ndarray, num_embeddings: int) -> np.ndarray:
    """Return dweight (num_embeddings, C)."""
    dw = np.zeros((num_embeddings, dout.shape[1]), dtype=dout.dtype)
    np.add.at(dw, ids, dout)
    return dw


@njit(parallel=True, **JIT)
def _embedding_bwd_kernel(dout, ids, dw):
    """dout (N, C) float32|float64 C-contiguous, ids (N,) int64 in [0, V) -> adds into
    dw (V, C) of dout.dtype (zeroed by the caller)."""
    n, c = dout.shape
    nblocks = (c + _BLOCK - 1) // _BLOCK
    for blk in prange(nblocks):
        c0 = blk * _BLOCK
        c1 = min(c0 + _BLOCK, c)
        for i in range(n):
            row = dw[ids[i], c0:c1]  # sliced so the loop indexes from 0 (no wraparound test)
            di = dout[i, c0:c1]
            for j in range(c1 - c0):
                row[j] += di[j]


def embedding_backward_nb(dout: np.ndarray, ids: np.ndarray, num_embeddings: int) -> np.ndarray:
    """Return dweight (num_embeddings, C)."""
    ids = np.asarray(ids)
    if not same_float(dout) or dout.ndim != 2 or ids.shape != dout.shape[:1]:
        return embedding_backward_ref(dout, ids, num_embeddings)
    idx = np.ascontiguousarray(ids, dtype=np.int64)
    bad = (idx < 0) | (idx >= num_embeddings)
    if bad.any():
        raise IndexError(
            f"embedding_backward: id {idx[bad][0]} out of range for {num_embeddings} embeddings"
        )
    dw = np.zeros((num_embeddings, dout.shape[1]), dtype=dout.dtype)
    _embedding_bwd_kernel(np.ascontiguousarray(dout), idx, dw)
    return dw


embedding_backward = dispatch(embedding_backward_ref, embedding_backward_nb)
