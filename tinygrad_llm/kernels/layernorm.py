"""Layer normalisation over the last axis, forward and backward.

x (N, C), w (C,), b (C,). xhat = (x - mean) * rstd with rstd = 1/sqrt(var + eps) (biased
variance); out = xhat * w + b. The backward needs two row sums because every xhat in a row
depends on every x of that row through mean and rstd:
    g = dout * w
    dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
"""

from __future__ import annotations

import numpy as np

from tinygrad_llm.kernels import dispatch


def layernorm_forward_ref(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float):
    """Return (out (N, C), mean (N,), rstd (N,))."""
    mean = x.mean(axis=1)
    xc = x - mean[:, None]
    rstd = 1.0 / np.sqrt((xc * xc).mean(axis=1) + eps)
    out = xc * rstd[:, None] * w + b
    return out, mean, rstd.astype(x.dtype)


def layernorm_backward_ref(dout, x, w, mean, rstd):
    """Return (dx (N, C), dw (C,), db (C,))."""
    xhat = (x - mean[:, None]) * rstd[:, None]
    db = dout.sum(axis=0)
    dw = (dout * xhat).sum(axis=0)
    g = dout * w
    dx = rstd[:, None] * (
        g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True)
    )
    return dx, dw, db


layernorm_forward = dispatch(layernorm_forward_ref, None)
layernorm_backward = dispatch(layernorm_backward_ref, None)
