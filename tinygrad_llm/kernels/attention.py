"""Causal scaled dot-product attention, fused, forward and backward.

q (B, H, Tq, D), k and v (B, H, Tk, D) with Tq <= Tk: query i sits at absolute position
Tk - Tq + i and sees keys 0 .. Tk - Tq + i (so Tq == Tk is plain causal attention and
Tq < Tk is decoding with a KV cache).

    s = q k^T * scale, masked above the diagonal;  p = softmax(s);  out = p v

Forward returns ``out`` and the row log-sum-exp ``lse`` (B, H, Tq) of the masked scores.
Backward recomputes p = exp(s - lse) instead of storing a (Tq, Tk) matrix per head:
    dv = p^T dout
    dp = dout v^T
    ds = p * (dp - rowsum(dout * out))      (softmax backward; rowsum(dp * p) == rowsum(dout * out))
    dq = ds k * scale,  dk = ds^T q * scale
"""

from __future__ import annotations

import numpy as np

from tinygrad_llm.kernels import dispatch


def _masked_scores(q, k, scale):
    tq, tk = q.shape[-2], k.shape[-2]
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * scale  # (B, H, Tq, Tk)
    future = np.triu(np.ones((tq, tk), dtype=bool), k=tk - tq + 1)
    return np.where(future, -np.inf, s).astype(q.dtype, copy=False)


def attention_forward_ref(q, k, v, scale: float):
    """Return (out (B, H, Tq, D), lse (B, H, Tq))."""
    s = _masked_scores(q, k, scale)
    m = s.max(axis=-1, keepdims=True)
    e = np.exp(s - m)
    denom = e.sum(axis=-1, keepdims=True)
    out = np.matmul(e / denom, v)
    lse = (m + np.log(denom))[..., 0]
    return out, lse


def attention_backward_ref(dout, q, k, v, out, lse, scale: float):
    """Return (dq, dk, dv)."""
    p = np.exp(_masked_scores(q, k, scale) - lse[..., None])  # (B, H, Tq, Tk)
    dv = np.matmul(np.swapaxes(p, -1, -2), dout)
    dp = np.matmul(dout, np.swapaxes(v, -1, -2))
    delta = (dout * out).sum(axis=-1, keepdims=True)
    ds = p * (dp - delta)
    dq = np.matmul(ds, k) * scale
    dk = np.matmul(np.swapaxes(ds, -1, -2), q) * scale
    return dq, dk, dv


attention_forward = dispatch(attention_forward_ref, None)
attention_backward = dispatch(attention_backward_ref, None)
