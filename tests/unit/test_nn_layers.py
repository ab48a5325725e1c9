"""Layers (Linear, Embedding, LayerNorm, GELU, Dropout, FeedForward), GPTConfig and the RNG."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tinygrad_llm import Tensor, nn
from tinygrad_llm.config import PRESETS, GPTConfig
from tinygrad_llm.random import get_rng, get_rng_state, manual_seed, set_rng_state

BOOK_124M = {"vocab_size": 50257, "context_length": 1024, "emb_dim": 768, "n_heads": 12,
             "n_layers": 12, "drop_rate": 0.1, "qkv_bias": False}


def test_linear_layout_shapes_and_math(backend):
    manual_seed(0)
    lin = nn.Linear(3, 5)
    assert lin.weight.shape == (5, 3) and lin.bias.shape == (5,)  # PyTorch's (out, in)
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
    y = lin(Tensor(x))
    assert y.shape == (2, 4, 5)
    np.testing.assert_allclose(y.data, x @ lin.weight.data.T + lin.bias.data, rtol=1e-5,
                               atol=1e-6)
    assert nn.Linear(3, 5, bias=False).bias is None
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 2)


def test_linear_init_matches_pytorch_default_bounds():
    manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (lin.weight.data, lin.bias.data):
        assert np.abs(p).max() <= bound
        assert np.abs(p).max() > 0.95 * bound  # uniform over the whole interval
    # U(-b, b) has variance b^2 / 3
    assert abs(lin.weight.data.var() - bound**2 / 3) < 0.05 * bound**2 / 3


def test_init_draws_in_the_default_dtype_and_can_share_a_weight():
    from tinygrad_llm import default_dtype

    with default_dtype(np.float64):
        lin = nn.Linear(6, 4)
        emb = nn.Embedding(10, 6)
    assert lin.weight.dtype == lin.bias.dtype == emb.weight.dtype == np.float64
    assert nn.Linear(6, 4).weight.dtype == np.float32
    head = nn.Linear(6, 10, bias=False, weight=emb.weight)  # tying: no table of its own
    assert head.weight is emb.weight and [p is emb.weight for p in head.parameters()] == [True]
    with pytest.raises(ValueError, match=r"weight has shape \(10, 6\), expected"):
        nn.Linear(10, 6, weight=emb.weight)  # (out, in) = (6, 10) needed


def test_init_is_reproducible_with_manual_seed():
    manual_seed(42)
    a = nn.Linear(4, 4)
    manual_seed(42)
    b = nn.Linear(4, 4)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    c = nn.Linear(4, 4)
    assert not np.array_equal(a.weight.data, c.weight.data)


def test_embedding_lookup_and_init():
    manual_seed(0)
    emb = nn.Embedding(1000, 64)
    assert abs(emb.weight.data.std() - 1.0) < 0.02 and abs(emb.weight.data.mean()) < 0.02
    ids = np.array([[3, 1, 3]])
    out = emb(ids)
    assert out.shape == (1, 3, 64)
    np.testing.assert_array_equal(out.data[0, 0], emb.weight.data[3])
    with pytest.raises(IndexError, match="1000"):
        emb(np.array([1000]))


def test_layernorm_normalises_with_biased_variance(backend):
    ln = nn.LayerNorm(6)
    assert np.all(ln.scale.data == 1) and np.all(ln.shift.data == 0) and ln.eps == 1e-5
    x = np.random.default_rng(1).standard_normal((2, 3, 6)).astype(np.float32) * 3 + 2
    y = ln(Tensor(x)).data
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(-1), 1, atol=1e-3)  # biased variance, as the book
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    ln.scale.data[:] = 2.0
    ln.shift.data[:] = 0.5
    np.testing.assert_allclose(ln(Tensor(x)).data, 2 * expected + 0.5, atol=1e-4)


def test_gelu_tanh_approximation(backend):
    x = np.linspace(-4, 4, 33)
    expected = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(nn.GELU()(Tensor(x)).data, expected, atol=1e-6)


def test_dropout_train_eval_and_reproducibility():
    x = Tensor(np.ones((200, 50)))
    drop = nn.Dropout(0.5)
    manual_seed(0)
    y = drop(x).data
    kept = y != 0
    assert 0.45 < kept.mean() < 0.55
    np.testing.assert_allclose(y[kept], 2.0)  # survivors scaled by 1 / (1 - p)
    manual_seed(0)
    np.testing.assert_array_equal(drop(x).data, y)  # the package RNG makes it reproducible
    drop.eval()
    assert drop(x) is x  # identity in eval
    assert nn.Dropout(0.0)(x) is x
    own = nn.Dropout(0.5, rng=np.random.default_rng(3))
    assert own(x).data.shape == (200, 50)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        nn.Dropout(1.0)


def test_feedforward_expands_four_times():
    ff = nn.FeedForward(BOOK_124M | {"emb_dim": 8, "n_heads": 2})
    names = [n for n, _ in ff.named_parameters()]
    assert names == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]
    assert ff.layers[0].weight.shape == (32, 8) and ff.layers[2].weight.shape == (8, 32)
    assert ff(Tensor(np.zeros((2, 3, 8)))).shape == (2, 3, 8)


# -- config ----------------------------------------------------------------------------------


def test_config_from_book_dict_round_trip():
    cfg = GPTConfig.from_dict(BOOK_124M)
    assert cfg == PRESETS["gpt2-small (124M)"]
    assert cfg.head_dim == 64 and cfg.tie_weights is False and cfg.init == "torch"
    assert GPTConfig.from_dict(cfg.to_dict()) == cfg
    assert GPTConfig.from_dict(cfg) is cfg
    json.dumps(cfg.to_dict())  # JSON-able, for checkpoints
    with pytest.raises(AttributeError):
        cfg.emb_dim = 10  # frozen
    assert cfg.replace(n_layers=2).n_layers == 2


def test_presets():
    sizes = {name: (c.emb_dim, c.n_layers, c.n_heads) for name, c in PRESETS.items()}
    assert sizes["gpt2-small (124M)"] == (768, 12, 12)
    assert sizes["gpt2-medium (355M)"] == (1024, 24, 16)
    assert sizes["gpt2-large (774M)"] == (1280, 36, 20)
    assert sizes["gpt2-xl (1558M)"] == (1600, 48, 25)
    assert "tiny" in PRESETS


@pytest.mark.parametrize("change, message", [
    ({"emb_dim": 10, "n_heads": 3}, "not divisible by n_heads"),
    ({"n_layers": 0}, "n_layers: must be a positive int"),
    ({"vocab_size": 5.5}, "vocab_size"),
    ({"context_length": True}, "context_length"),
    ({"drop_rate": 1.0}, "drop_rate"),
    ({"init": "xavier"}, "init"),
    ({"n_head": 12}, "unknown keys"),
])
def test_config_validation(change, message):
    with pytest.raises((ValueError, TypeError), match=message):
        GPTConfig.from_dict(BOOK_124M | change)


def test_config_rejects_non_bool_flags_and_non_dicts():
    with pytest.raises(TypeError, match="qkv_bias"):
        GPTConfig(qkv_bias=1)
    with pytest.raises(TypeError, match="expected a dict"):
        GPTConfig.from_dict([1, 2])
    assert GPTConfig(vocab_size=np.int64(7), n_heads=1, emb_dim=4).vocab_size == 7


# -- RNG -------------------------------------------------------------------------------------


def test_rng_state_save_restore_is_exact_and_json_able():
    manual_seed(5)
    get_rng().random(3)
    state = json.loads(json.dumps(get_rng_state()))
    a = get_rng().random(4)
    set_rng_state(state)
    np.testing.assert_array_equal(get_rng().random(4), a)
    with pytest.raises(ValueError):
        set_rng_state({"nope": 1})
    with pytest.raises(ValueError, match="non-negative int"):
        manual_seed(-1)


def test_feedforward_fused_path_equals_the_layers_one_by_one():
    """FeedForward runs GELU + second Linear as one op (gelu_linear); the numbers and every
    gradient equal those of calling its three layers in turn."""
    from tinygrad_llm.nn.transformer import FeedForward

    rng = np.random.default_rng(3)
    ff = FeedForward({"emb_dim": 8, "vocab_size": 11, "context_length": 4, "n_heads": 2,
                      "n_layers": 1, "drop_rate": 0.0})
    x_np = rng.standard_normal((2, 3, 8)).astype(np.float32)
    w_out = rng.standard_normal((2, 3, 8)).astype(np.float32)
    results = []
    for fused in (True, False):
        ff.zero_grad()
        x = Tensor(x_np, requires_grad=True)
        y = ff(x) if fused else ff.layers(x)
        (y * Tensor(w_out)).sum().backward()
        results.append((y.data, x.grad, [p.grad.copy() for p in ff.parameters()]))
    (y1, gx1, gp1), (y2, gx2, gp2) = results
    np.testing.assert_allclose(y1, y2, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gx1, gx2, rtol=1e-5, atol=1e-6)
    for a, b in zip(gp1, gp2):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
