"""Chapter 3's attention variants: the book's numbers, equivalence between the variants,
fused == explicit, causality, dropout, and the KV cache of MultiHeadAttention."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_llm import Tensor, default_dtype, nn
from tinygrad_llm.random import manual_seed

# "Your journey starts with one step", the book's 3-d embeddings (section 3.3.1)
INPUTS = np.array([[0.43, 0.15, 0.89], [0.55, 0.87, 0.66], [0.57, 0.85, 0.64],
                   [0.22, 0.58, 0.33], [0.77, 0.25, 0.10], [0.05, 0.80, 0.55]])


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_simple_self_attention_matches_the_book():
    context, weights = nn.simple_self_attention(INPUTS, return_weights=True)
    assert context.shape == (6, 3) and weights.shape == (6, 6)
    # the numbers the book prints for the query "journey" (x^2)
    np.testing.assert_allclose(weights.data[1], [0.1385, 0.2379, 0.2333, 0.1240, 0.1082, 0.1581],
                               atol=1e-4)
    np.testing.assert_allclose(context.data[1], [0.4419, 0.6515, 0.5683], atol=1e-4)
    np.testing.assert_allclose(weights.data, _softmax(INPUTS @ INPUTS.T), rtol=1e-5)
    np.testing.assert_allclose(weights.data.sum(-1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"\(T, d\)"):
        nn.simple_self_attention(np.ones((1, 6, 3)))


def test_v1_and_v2_agree_with_transposed_weights():
    manual_seed(123)
    v2 = nn.SelfAttention_v2(3, 2)
    v1 = nn.SelfAttention_v1(3, 2)
    for name in ("W_query", "W_key", "W_value"):
        getattr(v1, name).data[...] = getattr(v2, name).weight.data.T
    x = Tensor(INPUTS)
    np.testing.assert_allclose(v1(x).data, v2(x).data, rtol=1e-5, atol=1e-6)
    assert v1(x).shape == (6, 2)
    q, k = INPUTS @ v1.W_query.data, INPUTS @ v1.W_key.data
    np.testing.assert_allclose(v1.attention_weights(x).data, _softmax(q @ k.T / np.sqrt(2)),
                               rtol=1e-5)


def test_causal_mask_before_softmax_equals_renormalised_masking():
    """Section 3.5.1: -inf before the softmax == zeroing after it and renormalising."""
    manual_seed(0)
    ca = nn.CausalAttention(3, 2, context_length=6, dropout=0.0)
    batch = Tensor(np.stack([INPUTS, INPUTS]))  # (2, 6, 3)
    w = ca.attention_weights(batch).data
    assert w.shape == (2, 6, 6)
    assert np.all(np.triu(w[0], k=1) == 0)
    q, k = ca.W_query(Tensor(INPUTS)).data, ca.W_key(Tensor(INPUTS)).data
    full = _softmax(q @ k.T / np.sqrt(2))
    masked = np.tril(full)
    np.testing.assert_allclose(w[1], masked / masked.sum(-1, keepdims=True), rtol=1e-5,
                               atol=1e-7)
    assert ca(batch).shape == (2, 6, 2)


def _copy_linear(dst: nn.Linear, weight, bias=None):
    dst.weight.data[...] = weight
    if dst.bias is not None:
        dst.bias.data[...] = 0.0 if bias is None else bias


def _mha_from_heads(heads, d_in, context_length, qkv_bias=False) -> nn.MultiHeadAttention:
    """A MultiHeadAttention equivalent to CausalAttention heads side by side."""
    d_out = sum(h.d_out for h in heads)
    mha = nn.MultiHeadAttention(d_in, d_out, context_length, 0.0, len(heads), qkv_bias)
    for name in ("W_query", "W_key", "W_value"):
        ws = [getattr(h, name).weight.data for h in heads]
        bs = [getattr(h, name).bias.data for h in heads] if qkv_bias else None
        _copy_linear(getattr(mha, name), np.concatenate(ws), None if bs is None
                     else np.concatenate(bs))
    _copy_linear(mha.out_proj, np.eye(d_out))  # identity: no mixing
    return mha


@pytest.mark.parametrize("qkv_bias", [False, True])
def test_one_head_mha_equals_causal_attention(qkv_bias, backend):
    manual_seed(1)
    ca = nn.CausalAttention(3, 4, context_length=8, dropout=0.0, qkv_bias=qkv_bias)
    mha = _mha_from_heads([ca], 3, 8, qkv_bias)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 5, 3)))
    np.testing.assert_allclose(mha(x).data, ca(x).data, rtol=1e-5, atol=1e-6)


def test_wrapper_equals_mha_with_stacked_weights(backend):
    manual_seed(2)
    wrapper = nn.MultiHeadAttentionWrapper(3, 2, context_length=6, dropout=0.0, num_heads=2)
    mha = _mha_from_heads(list(wrapper.heads), 3, 6)
    batch = Tensor(np.stack([INPUTS, INPUTS]))
    out = wrapper(batch)
    assert out.shape == (2, 6, 4)  # num_heads * d_out, as in the book
    np.testing.assert_allclose(mha(batch).data, out.data, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mha.attention_weights(batch).data,
                               wrapper.attention_weights(batch).data, rtol=1e-5, atol=1e-7)


def _grads(mha, x, r, force_explicit):
    mha.zero_grad()
    x = Tensor(x, requires_grad=True)
    out = mha(x, force_explicit=force_explicit)
    (out * Tensor(r)).sum().backward()
    return out.data, x.grad, {n: p.grad for n, p in mha.named_parameters()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_path_equals_explicit_path(dtype, backend):
    rng = np.random.default_rng(3)
    with default_dtype(dtype):
        manual_seed(3)
        mha = nn.MultiHeadAttention(8, 12, context_length=10, dropout=0.0, num_heads=3,
                                    qkv_bias=True)
        x = rng.standard_normal((2, 7, 8)).astype(dtype)
        r = rng.standard_normal((2, 7, 12)).astype(dtype)
        fused = _grads(mha, x, r, force_explicit=False)
        explicit = _grads(mha, x, r, force_explicit=True)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(fused[0], explicit[0], **tol)
    np.testing.assert_allclose(fused[1], explicit[1], **tol)
    for name in fused[2]:
        np.testing.assert_allclose(fused[2][name], explicit[2][name], **tol, err_msg=name)


@settings(max_examples=15)
@given(seed=st.integers(0, 2**16), t=st.integers(2, 8), heads=st.sampled_from([1, 2, 4]),
       explicit=st.booleans())
def test_mha_is_causal(seed, t, heads, explicit):
    """Changing the inputs after position p never changes the outputs at positions <= p."""
    rng = np.random.default_rng(seed)
    with default_dtype(np.float64):
        manual_seed(seed)
        mha = nn.MultiHeadAttention(4, 8, context_length=8, dropout=0.0, num_heads=heads)
        x = rng.standard_normal((2, t, 4))
        p = int(rng.integers(0, t - 1))
        x2 = x.copy()
        x2[:, p + 1:] = rng.standard_normal(x2[:, p + 1:].shape)
        a = mha(Tensor(x), force_explicit=explicit).data
        b = mha(Tensor(x2), force_explicit=explicit).data
    np.testing.assert_allclose(a[:, :p + 1], b[:, :p + 1], rtol=1e-12, atol=1e-12)
    assert not np.allclose(a[:, p + 1:], b[:, p + 1:])


def test_attention_dropout_only_in_training():
    manual_seed(4)
    mha = nn.MultiHeadAttention(4, 4, context_length=6, dropout=0.5, num_heads=2)
    x = Tensor(np.random.default_rng(0).standard_normal((1, 6, 4)))
    mha.eval()
    a, b = mha(x).data, mha(x).data
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, mha(x, force_explicit=True).data, rtol=1e-5, atol=1e-6)
    mha.train()
    c, d = mha(x).data, mha(x).data
    assert not np.allclose(c, d) and not np.allclose(c, a)

    # the book's dropout demo: a 6x6 matrix of ones, half zeroed, the rest doubled
    manual_seed(123)
    drop = nn.Dropout(0.5)
    out = drop(Tensor(np.ones((6, 6)))).data
    assert set(np.unique(out)) <= {0.0, 2.0}


def test_mha_checks():
    with pytest.raises(ValueError, match="divisible by num_heads=3"):
        nn.MultiHeadAttention(4, 4, context_length=6, dropout=0.0, num_heads=3)
    mha = nn.MultiHeadAttention(4, 4, context_length=6, dropout=0.0, num_heads=2)
    with pytest.raises(ValueError, match="context_length=6"):
        mha(Tensor(np.zeros((1, 7, 4))))
    with pytest.raises(ValueError, match=r"\(B, T, d_in\)"):
        mha(Tensor(np.zeros((7, 4))))
    ca = nn.CausalAttention(4, 4, context_length=6, dropout=0.0)
    with pytest.raises(ValueError, match="context_length=6"):
        ca(Tensor(np.zeros((1, 7, 4))))


@pytest.mark.parametrize("explicit", [False, True])
def test_mha_kv_cache_matches_full_pass(explicit, backend):
    rng = np.random.default_rng(5)
    with default_dtype(np.float64):
        manual_seed(5)
        mha = nn.MultiHeadAttention(6, 6, context_length=8, dropout=0.0, num_heads=3,
                                    qkv_bias=True)
        x = rng.standard_normal((2, 8, 6))
        full = mha(Tensor(x)).data
        cache = nn.KVCache(n_layers=1, batch_size=2, n_heads=3, head_dim=2, capacity=8)
        outs = []
        for start, stop in [(0, 3), (3, 4), (4, 5), (5, 8)]:  # a prefill, then steps
            outs.append(mha(Tensor(x[:, start:stop]), kv_cache=cache.layer(0),
                            force_explicit=explicit).data)
            cache.advance(stop - start)
    np.testing.assert_allclose(np.concatenate(outs, axis=1), full, rtol=1e-10, atol=1e-12)
    assert cache.pos == 8 and cache.remaining == 0
    with pytest.raises(ValueError, match="capacity of 8"):
        mha(Tensor(x[:, :1], dtype=np.float64), kv_cache=cache.layer(0))
    cache.reset()
    assert cache.pos == 0
    with pytest.raises(ValueError, match=r"\(B, H, D\) = \(2, 3, 2\)"):
        cache.layer(0).update(np.zeros((2, 2, 1, 2)), np.zeros((2, 2, 1, 2)))
    assert "KVCache(n_layers=1" in repr(cache)
