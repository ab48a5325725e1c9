"""Functional forms of the ops (PyTorch's torch.nn.functional, by another name).

Each is a one-line call of an op's Function so "go to definition" lands on the math.
"""

from __future__ import annotations

import numpy as np

from tinygrad_llm.ops import nn_ops
from tinygrad_llm.creation import cat, split, stack, where  # noqa: F401
from tinygrad_llm.tensor import Tensor


def _as_int_array(x) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return nn_ops.Softmax.apply(x, axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return nn_ops.LogSoftmax.apply(x, axis=axis)


def gelu(x: Tensor) -> Tensor:
    return nn_ops.GELU.apply(x)


def relu(x: Tensor) -> Tensor:
    return x.relu()


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """Normalise over the last axis, then scale by ``weight`` and shift by ``bias``."""
    return nn_ops.LayerNorm.apply(x, weight, bias, eps=eps)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, weight of shape (out_features, in_features)."""
    if bias is None:
        return nn_ops.Linear.apply(x, weight)
    return nn_ops.Linear.apply(x, weight, bias)


def gelu_linear(h: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """linear(gelu(h), weight, bias) in one op that keeps only h for backward (gelu(h) is
    recomputed there): a feed-forward block's memory for its activation, halved."""
    return nn_ops.GeluLinear.apply(h, weight, bias)


def embedding(ids, weight: Tensor) -> Tensor:
    """Rows of ``weight`` picked by integer ``ids`` of any shape: (...) -> (..., C)."""
    return nn_ops.Embedding.apply(weight, _as_int_array(ids))


def dropout(x: Tensor, p: float, training: bool = True, rng: np.random.Generator | None = None):
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only)."""
    if not training or p == 0.0:
        return x
    return nn_ops.Dropout.apply(x, p, rng if rng is not None else np.random.default_rng())


def cross_entropy(logits: Tensor, targets, ignore_index: int = -100) -> Tensor:
    """Mean cross-entropy of logits (..., V) against integer targets (...)."""
    return nn_ops.CrossEntropy.apply(logits, _as_int_array(targets), ignore_index=ignore_index)


def linear_cross_entropy(x: Tensor, weight: Tensor, targets, bias: Tensor | None = None,
                         ignore_index: int = -100) -> Tensor:
    """cross_entropy(linear(x, weight, bias), targets) without materialising the logits.

    x (..., C), weight (V, C), targets (...): the same loss and gradients, computed a chunk
    of the vocabulary at a time (what a language model's training step uses for its head).
    """
    return nn_ops.LinearCrossEntropy.apply(x, weight, bias, targets=_as_int_array(targets),
                                           ignore_index=ignore_index)


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, scale: float | None = None):
    """Causal attention of q (B, H, Tq, D) over k, v (B, H, Tk, D), fused in one op."""
    return nn_ops.CausalAttention.apply(q, k, v, scale=scale)
