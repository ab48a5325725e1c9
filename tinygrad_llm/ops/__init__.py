"""The differentiable ops, one Function class each, forward and backward side by side.

elementwise.py  + - * / cast neg pow exp log sqrt tanh relu sigmoid where masked_fill
reduce.py       sum mean max var
movement.py     reshape permute getitem concatenate stack
matmul.py       matmul (2-D and batched, broadcasting batch dims)
nn_ops.py       softmax log_softmax gelu layer_norm linear embedding dropout
                cross_entropy scaled_dot_product_attention (causal, fused)
"""

from __future__ import annotations

import numpy as np


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a gradient over the axes that broadcasting added or stretched, back to ``shape``.

    If x of shape (3, 1) met y of shape (2, 1, 4), the output (and g) has shape (2, 3, 4);
    x's gradient is g summed over axis 0 (added) and axis 2 (stretched from 1).
    """
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, n in enumerate(shape) if n == 1 and g.shape[i + extra] != 1
    )
    return g.sum(axis=axes).reshape(shape)
