"""GPTModel: shapes, names, parameter counts, errors, causality, dropout modes, KV cache,
weight tying, GPT-2 init, state dicts and freezing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_llm as tg
from tinygrad_llm import Tensor, default_dtype, nn
from tinygrad_llm import functional as F
from tinygrad_llm.config import PRESETS, GPTConfig
from tinygrad_llm.random import manual_seed

TINY = GPTConfig(vocab_size=11, context_length=6, emb_dim=8, n_heads=2, n_layers=2,
                 drop_rate=0.0)


def tiny_model(seed=0, dtype=np.float32, **changes) -> nn.GPTModel:
    manual_seed(seed)
    with default_dtype(dtype):
        return nn.GPTModel(TINY.replace(**changes))


def _count(cfg: GPTConfig) -> int:
    """Parameters of the book's GPTModel, by formula (untied head)."""
    c, v = cfg.emb_dim, cfg.vocab_size
    bias = 3 * c if cfg.qkv_bias else 0
    block = 3 * c * c + bias + c * c + c + (c * 4 * c + 4 * c) + (4 * c * c + c) + 4 * c
    head = 0 if cfg.tie_weights else v * c
    return v * c + cfg.context_length * c + cfg.n_layers * block + 2 * c + head


def test_root_exports():
    for name in ("GPTModel", "GPTConfig", "PRESETS", "TransformerBlock", "MultiHeadAttention",
                 "generate", "generate_text_simple", "generate_stream", "text_to_token_ids",
                 "token_ids_to_text", "manual_seed", "KVCache", "nn"):
        assert hasattr(tg, name), name
    assert tg.GPTModel is nn.GPTModel


def test_shapes_and_book_dict(backend):
    model = nn.GPTModel(TINY.to_dict())  # the book's dict form works too
    idx = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert model(idx).shape == (2, 4, 11)
    assert model(Tensor(idx)).shape == (2, 4, 11)
    last = model(idx, last_only=True)
    assert last.shape == (2, 1, 11)
    np.testing.assert_allclose(last.data[:, 0], model(idx).data[:, -1], rtol=1e-5, atol=1e-6)
    block = nn.TransformerBlock(TINY)
    assert block(Tensor(np.zeros((2, 4, 8)))).shape == (2, 4, 8)


def test_parameter_names_follow_the_book():
    names = [n for n, _ in tiny_model(qkv_bias=True).named_parameters()]
    block0 = [n[len("trf_blocks.0."):] for n in names if n.startswith("trf_blocks.0.")]
    assert names[:2] == ["tok_emb.weight", "pos_emb.weight"]
    assert names[-3:] == ["final_norm.scale", "final_norm.shift", "out_head.weight"]
    assert block0 == [
        "att.W_query.weight", "att.W_query.bias", "att.W_key.weight", "att.W_key.bias",
        "att.W_value.weight", "att.W_value.bias", "att.out_proj.weight", "att.out_proj.bias",
        "ff.layers.0.weight", "ff.layers.0.bias", "ff.layers.2.weight", "ff.layers.2.bias",
        "norm1.scale", "norm1.shift", "norm2.scale", "norm2.shift"]
    assert sum(n.startswith("trf_blocks.1.") for n in names) == 16
    # io.py's GPT-2 name table refers to exactly these names
    from tinygrad_llm.io import gpt2_name_map

    assert {ours for ours, _, _ in gpt2_name_map(2)} | {"out_head.weight"} == set(names)


@pytest.mark.parametrize("changes", [{}, {"qkv_bias": True}, {"tie_weights": True},
                                     {"n_layers": 3, "emb_dim": 12, "n_heads": 3}])
def test_parameter_count_and_report(changes):
    model = tiny_model(**changes)
    cfg = model.cfg
    assert model.num_parameters() == _count(cfg)
    report = model.parameter_report()
    assert report.total == _count(cfg)
    assert report.out_head == (0 if cfg.tie_weights else cfg.vocab_size * cfg.emb_dim)
    assert report.without_out_head == _count(cfg.replace(tie_weights=True))
    assert report.nbytes == 4 * report.total and report.trainable == report.total
    assert f"{report.total:,}" in str(report)


def test_124m_numbers_of_the_book():
    cfg = PRESETS["gpt2-small (124M)"]
    assert _count(cfg) == 163_009_536
    assert _count(cfg.replace(tie_weights=True)) == 124_412_160
    assert round(_count(cfg) * 4 / 2**20, 2) == 621.83


def test_clear_errors():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"7 tokens, more than context_length=6.*idx\[:, -6:\]"):
        model(np.zeros((1, 7), dtype=np.int64))
    with pytest.raises(ValueError, match=r"token id 11 is outside the vocabulary \(vocab_size=11"):
        model(np.array([[1, 11]]))
    with pytest.raises(ValueError, match="token id -1"):
        model(np.array([[-1, 2]]))
    with pytest.raises(ValueError, match=r"\(batch, num_tokens\).*idx\[None\]"):
        model(np.array([1, 2]))
    with pytest.raises(ValueError, match=r"\(batch, num_tokens\)"):
        model(np.zeros((1, 0), dtype=np.int64))
    with pytest.raises(TypeError, match="integers"):
        model(np.array([[1.0, 2.0]]))
    cache = model.make_kv_cache(1)
    model(np.array([[1, 2, 3, 4]]), kv_cache=cache)
    with pytest.raises(ValueError, match="the KV cache holds 4 tokens"):
        model(np.array([[1, 2, 3]]), kv_cache=cache)
    with pytest.raises(ValueError, match="batch of 2"):
        model(np.array([[1], [2]]), kv_cache=cache)
    with pytest.raises(ValueError, match="capacity"):
        model.make_kv_cache(1, capacity=7)


@settings(max_examples=15)
@given(seed=st.integers(0, 2**16), t=st.integers(2, 6))
def test_gpt_is_causal(seed, t):
    """Changing token p+1 (and later) never changes the logits at positions <= p."""
    model = tiny_model(seed, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, 11, (2, t))
    p = int(rng.integers(0, t - 1))
    idx2 = idx.copy()
    idx2[:, p + 1] = (idx2[:, p + 1] + 1 + rng.integers(0, 10)) % 11  # surely different
    idx2[:, p + 2:] = rng.integers(0, 11, idx2[:, p + 2:].shape)
    with tg.no_grad():
        a, b = model(idx).data, model(idx2).data
    np.testing.assert_allclose(a[:, :p + 1], b[:, :p + 1], rtol=1e-12, atol=1e-12)
    assert not np.allclose(a[:, p + 1], b[:, p + 1])


def test_dropout_acts_only_in_training():
    model = tiny_model(drop_rate=0.5)
    idx = np.array([[1, 2, 3, 4, 5]])
    assert model.training
    a, b = model(idx).data, model(idx).data
    assert not np.allclose(a, b)
    model.eval()
    assert not any(m.training for m in model.modules())
    c, d = model(idx).data, model(idx).data
    np.testing.assert_array_equal(c, d)
    model.train()
    manual_seed(9)
    e = model(idx).data
    manual_seed(9)
    np.testing.assert_array_equal(model(idx).data, e)  # dropout masks follow manual_seed


def test_kv_cache_logits_equal_full_pass(backend):
    model = tiny_model(3, dtype=np.float64, qkv_bias=True)
    idx = np.random.default_rng(0).integers(0, 11, (3, 6))
    full = model(idx).data
    cache = model.make_kv_cache(batch_size=3)
    assert cache.keys[0].shape == (3, 2, 6, 4) and cache.keys[0].dtype == np.float64
    parts = [model(idx[:, :2], kv_cache=cache).data]
    for i in range(2, 6):
        out = model(idx[:, i:i + 1], kv_cache=cache)
        assert not out.requires_grad  # the cached path records no graph
        parts.append(out.data)
    np.testing.assert_allclose(np.concatenate(parts, axis=1), full, rtol=1e-10, atol=1e-12)
    cache.reset()
    np.testing.assert_allclose(model(idx[:, :3], kv_cache=cache, last_only=True).data[:, 0],
                               full[:, 2], rtol=1e-10, atol=1e-12)


def test_tied_weights():
    model = tiny_model(tie_weights=True)
    assert model.out_head.weight is model.tok_emb.weight
    assert "out_head.weight" not in model.state_dict()
    idx = np.array([[1, 2, 3]])
    F.cross_entropy(model(idx), np.array([[2, 3, 4]])).backward()
    g = model.tok_emb.weight.grad
    assert g is not None and np.abs(g[[0, 5, 9]]).sum() > 0  # the head's use reaches all rows
    twin = tiny_model(seed=5, tie_weights=True)
    twin.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(twin(idx).data, model(idx).data)


def test_gpt2_init():
    model = tiny_model(init="gpt2", n_layers=8, emb_dim=64, n_heads=4, vocab_size=500)
    sd = model.state_dict()
    assert abs(sd["tok_emb.weight"].std() - 0.02) < 0.002
    assert abs(sd["trf_blocks.0.ff.layers.0.weight"].std() - 0.02) < 0.002
    resid = 0.02 / np.sqrt(2 * 8)
    for name in ("trf_blocks.3.att.out_proj.weight", "trf_blocks.3.ff.layers.2.weight"):
        assert abs(sd[name].std() - resid) < 0.15 * resid
    assert np.all(sd["trf_blocks.0.ff.layers.0.bias"] == 0)
    assert np.all(sd["final_norm.scale"] == 1) and np.all(sd["final_norm.shift"] == 0)
    torch_init = tiny_model(n_layers=8, emb_dim=64, n_heads=4, vocab_size=500)
    assert abs(torch_init.tok_emb.weight.data.std() - 1.0) < 0.02  # N(0, 1) by default


def test_state_dict_round_trip_between_models():
    a, b = tiny_model(1), tiny_model(2)
    idx = np.array([[1, 2, 3, 4]])
    assert not np.allclose(a(idx).data, b(idx).data)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(idx).data, b(idx).data)
    sd = a.state_dict()
    sd["trf_blocks.1.att.W_key.weight"] = np.zeros((3, 3))
    del sd["final_norm.scale"]
    with pytest.raises(nn.StateDictError, match="final_norm.scale.*W_key"):
        b.load_state_dict(sd)


def test_freezing_all_but_the_head():
    model = tiny_model()
    model.requires_grad_(False)
    model.out_head.requires_grad_(True)
    model.final_norm.requires_grad_(True)
    loss = F.cross_entropy(model(np.array([[1, 2, 3]])), np.array([[2, 3, 4]]))
    loss.backward()
    for name, p in model.named_parameters():
        trainable = name.startswith(("out_head", "final_norm"))
        assert (p.grad is not None) == trainable, name
    assert model.num_parameters(trainable_only=True) == 11 * 8 + 16


def test_same_logits_on_both_backends():
    model = tiny_model(7)
    idx = np.array([[1, 2, 3, 4, 5, 6]])
    with tg.use_backend("numpy"):
        a = model(idx).data
    with tg.use_backend("numba"):
        b = model(idx).data
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
