"""One AdamW step (Loshchilov & Hutter), in place on the parameter and both moments.

p <- p * (1 - lr * weight_decay)                 (decoupled weight decay, first)
m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g^2
p <- p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
t is the 1-based step count. Arrays may have any shape; p, m, v are updated in place.
"""

from __future__ import annotations

import numpy as np

from tinygrad_llm.kernels import dispatch


def adamw_step_ref(p, g, m, v, lr, beta1, beta2, eps, weight_decay, t) -> None:
    """Update p, m and v in place."""
    p *= 1.0 - lr * weight_decay
    m *= beta1
    m += (1.0 - beta1) * g
    v *= beta2
    v += (1.0 - beta2) * g * g
    mhat = m / (1.0 - beta1**t)
    vhat = v / (1.0 - beta2**t)
    p -= (lr * mhat / (np.sqrt(vhat) + eps)).astype(p.dtype, copy=False)


adamw_step = dispatch(adamw_step_ref, None)
