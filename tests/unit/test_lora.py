"""LoRA (appendix E): the rules of replace_linear_with_lora, merging, gradients, saving."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_llm import GPTConfig, GPTModel, Tensor, default_dtype, gradcheck
from tinygrad_llm.nn import Linear, Module
from tinygrad_llm.nn.lora import (
    LinearWithLoRA,
    LoRALayer,
    load_lora,
    lora_layers,
    merge_lora,
    replace_linear_with_lora,
    save_lora,
)
from tinygrad_llm.random import get_rng_state, manual_seed

CFG = GPTConfig(vocab_size=30, context_length=8, emb_dim=16, n_heads=2, n_layers=2,
                drop_rate=0.0, qkv_bias=True)
IDS = np.array([[1, 5, 7, 2, 29, 0], [3, 3, 4, 8, 9, 11]])
LINEARS_PER_BLOCK = 6  # W_query, W_key, W_value, out_proj, ff.layers.0, ff.layers.2


def _model(cfg=CFG, seed=0):
    manual_seed(seed)
    return GPTModel(cfg).eval()


def _randomize_b(model, seed=1):
    rng = np.random.default_rng(seed)
    for _, layer in lora_layers(model):
        layer.B.data[...] = rng.normal(0, 0.5, layer.B.shape)


def test_lora_layer_init_and_shapes():
    manual_seed(0)
    layer = LoRALayer(20, 12, rank=4, alpha=8)
    assert layer.A.shape == (20, 4) and layer.B.shape == (4, 12)
    assert np.all(layer.B.data == 0)
    # kaiming_uniform_(a=sqrt(5)) with PyTorch's fan_in = A.shape[1] = rank: U(+-1/sqrt(r))
    bound = 1 / math.sqrt(4)
    assert np.abs(layer.A.data).max() <= bound and np.abs(layer.A.data).max() > 0.8 * bound
    assert layer.scaling == 2.0
    out = layer(Tensor(np.ones((3, 5, 20), dtype=np.float32)))
    assert out.shape == (3, 5, 12) and np.all(out.data == 0)
    with default_dtype(np.float64):
        lin = Linear(4, 3)
    wrapped = LinearWithLoRA(lin, rank=2, alpha=2)  # made under the float32 default
    assert wrapped.lora.A.dtype == np.float64 and wrapped.lora.B.dtype == np.float64


def test_bad_rank_and_alpha_are_named():
    with pytest.raises(ValueError, match="rank must be a positive int"):
        LoRALayer(4, 4, rank=0, alpha=1)
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        LoRALayer(4, 4, rank=2, alpha=float("nan"))
    with pytest.raises(TypeError, match="LinearWithLoRA: linear must be a Linear"):
        LinearWithLoRA(LoRALayer(4, 4, 2, 2), 2, 2)


def test_with_b_zero_outputs_equal_the_base_model():
    base = _model()
    expected = base(IDS).data.copy()
    replace_linear_with_lora(base, rank=4, alpha=8)
    np.testing.assert_array_equal(base(IDS).data, expected)


def test_every_linear_is_wrapped_with_book_names_and_only_adapters_train():
    model = replace_linear_with_lora(_model(), rank=4, alpha=4)
    wrapped = [m for m in model.modules() if isinstance(m, LinearWithLoRA)]
    assert len(wrapped) == CFG.n_layers * LINEARS_PER_BLOCK + 1  # + out_head
    assert isinstance(model.out_head, LinearWithLoRA)
    names = [n for n, _ in model.named_parameters()]
    for name in ("trf_blocks.0.att.W_query.linear.weight", "trf_blocks.0.att.W_query.lora.A",
                 "trf_blocks.1.ff.layers.2.lora.B", "out_head.linear.weight", "out_head.lora.A"):
        assert name in names
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.endswith((".lora.A", ".lora.B")) for n in trainable)
    # the reported count is exactly rank * (in + out) summed over the wrapped layers
    expected = sum(4 * (w.in_features + w.out_features) for w in wrapped)
    assert model.num_parameters(trainable_only=True) == expected
    assert model.parameter_report().trainable == expected


def test_only_a_and_b_receive_gradients():
    model = replace_linear_with_lora(_model(), rank=2, alpha=2)
    _randomize_b(model)  # with B = 0, dA would be 0: make both gradients informative
    model.train()
    logits = model(IDS)
    (logits * logits).mean().backward()
    got = {n for n, p in model.named_parameters() if p.grad is not None}
    assert got == {n for n, _ in model.named_parameters() if n.endswith((".lora.A", ".lora.B"))}
    assert all(np.abs(p.grad).sum() > 0 for n, p in model.named_parameters() if n in got)


def test_merged_equals_unmerged_and_names_come_back():
    with default_dtype(np.float64):
        model = replace_linear_with_lora(_model(), rank=3, alpha=6)
    assert model.trf_blocks[0].att.W_query.lora.A.dtype == np.float64
    _randomize_b(model)
    before = model(IDS).data.copy()
    base_names = [n for n, _ in _model().named_parameters()]
    rng_state = get_rng_state()
    merge_lora(model)
    assert get_rng_state() == rng_state  # merging draws no random numbers
    assert not any(isinstance(m, (LinearWithLoRA, LoRALayer)) for m in model.modules())
    assert [n for n, _ in model.named_parameters()] == base_names
    np.testing.assert_allclose(model(IDS).data, before, rtol=1e-10, atol=1e-10)
    GPTModel(CFG).load_state_dict(model.state_dict())  # a plain checkpoint again


def test_merge_unties_a_tied_head_without_touching_the_embedding():
    cfg = CFG.replace(tie_weights=True)
    model = replace_linear_with_lora(_model(cfg), rank=2, alpha=2)
    emb = model.tok_emb.weight.data.copy()
    _randomize_b(model)
    before = model(IDS).data.copy()
    merge_lora(model)
    np.testing.assert_array_equal(model.tok_emb.weight.data, emb)
    assert model.out_head.weight is not model.tok_emb.weight
    assert model.cfg.tie_weights is False
    np.testing.assert_allclose(model(IDS).data, before, rtol=1e-4, atol=1e-4)


def test_walks_lists_tuples_and_shared_layers():
    class Net(Module):
        def __init__(self):
            super().__init__()
            shared = Linear(3, 3)
            self.layers = [Linear(3, 4), shared]
            self.pair = (shared, Linear(3, 2))

        def forward(self, x):
            return self.pair[1](self.layers[1](x))

    manual_seed(0)
    net = replace_linear_with_lora(Net(), rank=1, alpha=1)
    assert all(isinstance(m, LinearWithLoRA) for m in net.layers + list(net.pair))
    assert net.layers[1] is net.pair[0]  # the shared layer got one wrapper
    assert len(lora_layers(net)) == 3
    replace_linear_with_lora(net, rank=1, alpha=1)  # idempotent: no double wrapping
    assert len(lora_layers(net)) == 3


def test_gradcheck_lora_layer_float64():
    with default_dtype(np.float64):
        manual_seed(0)
        layer = LoRALayer(5, 4, rank=2, alpha=3)
        lin = LinearWithLoRA(Linear(5, 4), rank=2, alpha=3)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 2)), rng.normal(size=(2, 4))
    x = rng.normal(size=(2, 3, 5))

    def lora_fn(x, A, B):
        layer.A, layer.B = A, B
        return layer(x)

    assert gradcheck(lora_fn, [x, a, b])

    def wrapped_fn(x, A, B, W):
        lin.lora.A, lin.lora.B, lin.linear.weight = A, B, W
        return lin(x)

    assert gradcheck(wrapped_fn, [x, a, b, rng.normal(size=(4, 5))])


def test_save_and_load_adapters_round_trip(tmp_path):
    model = replace_linear_with_lora(_model(), rank=2, alpha=4)
    _randomize_b(model)
    expected = model(IDS).data.copy()
    path = save_lora(model, tmp_path / "adapters.safetensors")
    from tinygrad_llm.io import load_safetensors

    tensors, meta = load_safetensors(path)
    assert set(tensors) == {n for n, _ in model.named_parameters() if ".lora." in n}
    # into the plain base model: wrapped with the saved rank/alpha, then loaded
    fresh = load_lora(_model(), path)
    np.testing.assert_array_equal(fresh(IDS).data, expected)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left nothing behind


def test_save_with_include_and_load_errors(tmp_path):
    model = replace_linear_with_lora(_model(), rank=2, alpha=4)
    path = save_lora(model, tmp_path / "a.safetensors", include=("out_head.",))
    from tinygrad_llm.io import load_safetensors

    assert "out_head.linear.weight" in load_safetensors(path)[0]
    with pytest.raises(ValueError, match="no LoRA adapters"):
        save_lora(_model(), tmp_path / "b.safetensors")
    other = replace_linear_with_lora(_model(CFG.replace(n_layers=1)), rank=2, alpha=4)
    with pytest.raises(ValueError, match=r"adapters the model lacks .*trf_blocks\.1"):
        load_lora(other, path)
    wrong_rank = replace_linear_with_lora(_model(), rank=3, alpha=4)
    with pytest.raises(ValueError, match="rank/alpha differ"):
        load_lora(wrong_rank, path)
    with pytest.raises(FileNotFoundError):
        load_lora(_model(), tmp_path / "missing.safetensors")
