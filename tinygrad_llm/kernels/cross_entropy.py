"""Fused log-softmax + cross-entropy over rows of logits.

logits (N, V) float, targets (N,) int64; rows whose target equals ``ignore_index`` do
not count. loss = mean over kept rows of (logsumexp(logits_n) - logits_n[target_n]).
Forward keeps only the row log-sum-exp ``lse`` (N,), never the (N, V) probabilities;
backward recomputes them: dlogits_n = (softmax(logits_n) - onehot(target_n)) * dout / n_kept.
"""

from __future__ import annotations

import numpy as np

from tinygrad_llm.kernels import dispatch


def cross_entropy_forward_ref(logits: np.ndarray, targets: np.ndarray, ignore_index: int):
    """Return (loss as a 0-d array of logits.dtype, lse (N,))."""
    m = logits.max(axis=1)
    lse = m + np.log(np.exp(logits - m[:, None]).sum(axis=1))
    keep = targets != ignore_index
    picked = logits[np.arange(len(targets)), np.where(keep, targets, 0)]
    loss = ((lse - picked) * keep).sum() / keep.sum()
    return np.asarray(loss, dtype=logits.dtype), lse.astype(logits.dtype)


def cross_entropy_backward_ref(dout, logits, targets, lse, ignore_index: int) -> np.ndarray:
    """dlogits (N, V) from the scalar upstream gradient ``dout``."""
    keep = targets != ignore_index
    p = np.exp(logits - lse[:, None])
    p[np.arange(len(targets)), np.where(keep, targets, 0)] -= 1.0
    p *= (keep * (float(dout) / keep.sum()))[:, None].astype(logits.dtype)
    return p


cross_entropy_forward = dispatch(cross_entropy_forward_ref, None)
cross_entropy_backward = dispatch(cross_entropy_backward_ref, None)
