"""Gradients of the model layer against finite differences, in float64: the attention
variants (fused and explicit paths, with dropout) and a whole tiny GPT."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm import Tensor, default_dtype, gradcheck, nn
from tinygrad_llm import functional as F
from tinygrad_llm.config import GPTConfig
from tinygrad_llm.random import manual_seed

TINY = GPTConfig(vocab_size=11, context_length=6, emb_dim=8, n_heads=2, n_layers=2,
                 drop_rate=0.0)


def _set(module: nn.Module, dotted: str, value) -> None:
    """Replace the parameter at a dotted name (e.g. trf_blocks.0.att.W_query.weight)."""
    *path, last = dotted.split(".")
    obj = module
    for part in path:
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    setattr(obj, last, value)


def _check_params(module: nn.Module, loss_fn, seed: int | None = None, **kw) -> None:
    """gradcheck ``loss_fn()`` with respect to every parameter of ``module``."""
    names = [n for n, _ in module.named_parameters()]
    values = [p.data.copy() for _, p in module.named_parameters()]

    def fn(*params):
        for name, p in zip(names, params):
            _set(module, name, p)
        if seed is not None:
            manual_seed(seed)  # the same dropout masks on every call
        return loss_fn()

    assert gradcheck(fn, values, **kw)


def _mha(num_heads=2, dropout=0.0, qkv_bias=True) -> nn.MultiHeadAttention:
    manual_seed(0)
    with default_dtype(np.float64):
        return nn.MultiHeadAttention(4, 6, context_length=5, dropout=dropout,
                                     num_heads=num_heads, qkv_bias=qkv_bias)


@pytest.mark.parametrize("explicit", [False, True])
def test_mha_gradients(explicit, backend):
    mha = _mha()
    x = np.random.default_rng(0).standard_normal((2, 5, 4))
    r = np.random.default_rng(1).standard_normal((2, 5, 6))
    # with respect to the input
    assert gradcheck(lambda t: mha(t, force_explicit=explicit), [x])
    # with respect to every weight (x fixed)
    xt, rt = Tensor(x, dtype=np.float64), Tensor(r, dtype=np.float64)
    _check_params(mha, lambda: (mha(xt, force_explicit=explicit) * rt).sum())


def test_mha_gradients_with_attention_dropout():
    """Training mode, p > 0: the explicit path with dropout on the attention weights."""
    mha = _mha(dropout=0.3)
    mha.train()
    x = np.random.default_rng(2).standard_normal((2, 5, 4))

    def fn(t):
        manual_seed(3)
        return mha(t)

    assert gradcheck(fn, [x])


def test_chapter3_variants_gradients():
    manual_seed(1)
    with default_dtype(np.float64):
        v1 = nn.SelfAttention_v1(3, 2)
        ca = nn.CausalAttention(3, 2, context_length=4, dropout=0.0)
        wrapper = nn.MultiHeadAttentionWrapper(3, 2, context_length=4, dropout=0.0, num_heads=2)
    x = np.random.default_rng(4).standard_normal((1, 4, 3))
    assert gradcheck(lambda t: v1(t), [x[0]])
    assert gradcheck(lambda t: ca(t), [x])
    assert gradcheck(lambda t: wrapper(t), [x])
    assert gradcheck(lambda t: nn.simple_self_attention(t), [x[0]])


def _tiny_gpt(**changes) -> nn.GPTModel:
    manual_seed(5)
    with default_dtype(np.float64):
        return nn.GPTModel(TINY.replace(**changes))


IDX = np.array([[1, 4, 2, 7, 9, 3], [0, 10, 5, 5, 8, 6]])
TARGETS = np.array([[4, 2, 7, 9, 3, 1], [10, 5, 5, 8, 6, 2]])


@pytest.mark.parametrize("changes", [{}, {"tie_weights": True, "qkv_bias": True}],
                         ids=["untied", "tied+qkv_bias"])
def test_whole_tiny_gpt_gradients(changes, backend):
    model = _tiny_gpt(**changes)
    _check_params(model, lambda: F.cross_entropy(model(IDX), TARGETS), max_elements=40)


def test_whole_tiny_gpt_gradients_with_dropout():
    """drop_rate > 0 in training: dropout on embeddings, attention weights and shortcuts."""
    model = _tiny_gpt(drop_rate=0.2)
    model.train()
    _check_params(model, lambda: F.cross_entropy(model(IDX), TARGETS), seed=6,
                  max_elements=40)
