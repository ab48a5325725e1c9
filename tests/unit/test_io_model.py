"""Checkpoints and GPT-2 weights with a real (tiny) model: round trips and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinygrad_llm import GPTConfig, GPTModel, io
from tinygrad_llm.io import CheckpointError, load_safetensors, save_safetensors
from tinygrad_llm.nn.heads import prepare_classifier
from tinygrad_llm.optim import SGD, AdamW
from tinygrad_llm.random import get_rng, manual_seed, set_rng_state

CFG = GPTConfig(vocab_size=20, context_length=8, emb_dim=12, n_heads=3, n_layers=2,
                drop_rate=0.0, qkv_bias=True, tie_weights=True)
IDS = np.array([[1, 5, 7, 2, 19, 0]])


def _model(cfg=CFG, seed=0):
    manual_seed(seed)
    return GPTModel(cfg).eval()


def _hf_state(model) -> dict[str, np.ndarray]:
    """A GPT-2 checkpoint in the Hugging Face layout, built by hand (not through io)."""
    sd, c = model.state_dict(), model.cfg.emb_dim
    out = {"wte.weight": sd["tok_emb.weight"], "wpe.weight": sd["pos_emb.weight"],
           "ln_f.weight": sd["final_norm.scale"], "ln_f.bias": sd["final_norm.shift"]}
    for i in range(model.cfg.n_layers):
        b, h = f"trf_blocks.{i}", f"h.{i}"
        qkv_w = [sd[f"{b}.att.{n}.weight"].T for n in ("W_query", "W_key", "W_value")]
        qkv_b = [sd[f"{b}.att.{n}.bias"] for n in ("W_query", "W_key", "W_value")]
        out.update({
            f"{h}.ln_1.weight": sd[f"{b}.norm1.scale"], f"{h}.ln_1.bias": sd[f"{b}.norm1.shift"],
            f"{h}.ln_2.weight": sd[f"{b}.norm2.scale"], f"{h}.ln_2.bias": sd[f"{b}.norm2.shift"],
            f"{h}.attn.c_attn.weight": np.concatenate(qkv_w, axis=1),  # (C, 3C)
            f"{h}.attn.c_attn.bias": np.concatenate(qkv_b),
            f"{h}.attn.c_proj.weight": sd[f"{b}.att.out_proj.weight"].T,
            f"{h}.attn.c_proj.bias": sd[f"{b}.att.out_proj.bias"],
            f"{h}.mlp.c_fc.weight": sd[f"{b}.ff.layers.0.weight"].T,
            f"{h}.mlp.c_fc.bias": sd[f"{b}.ff.layers.0.bias"],
            f"{h}.mlp.c_proj.weight": sd[f"{b}.ff.layers.2.weight"].T,
            f"{h}.mlp.c_proj.bias": sd[f"{b}.ff.layers.2.bias"],
            f"{h}.attn.bias": np.tril(np.ones((1, 1, 8, 8), np.float32)),  # a mask buffer
        })
        assert qkv_w[0].shape == (c, c)
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def _write_hf(folder, tensors, n_head=3):
    folder.mkdir(parents=True, exist_ok=True)
    save_safetensors(folder / "model.safetensors", tensors, {"format": "pt"})
    (folder / "config.json").write_text(json.dumps({"n_head": n_head}))
    return folder


def test_checkpoint_round_trip_with_optimizer_and_rng(tmp_path):
    model = _model()
    opt = AdamW(model.parameters(), lr=1e-3)
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()
    rng_draw = get_rng().random()  # advance, then record what comes next
    io.save_checkpoint(tmp_path / "c.safetensors", model, opt, step=7, extra={"note": 1})
    expected_next = get_rng().random()
    manual_seed(123)
    got = io.load_checkpoint(tmp_path / "c.safetensors")
    assert got["step"] == 7 and got["extra"] == {"note": 1} and got["config"] == CFG
    assert get_rng().random() == expected_next and rng_draw != expected_next
    np.testing.assert_array_equal(got["model"](IDS).data, model(IDS).data)
    opt2 = AdamW(got["model"].parameters(), lr=1e-3)
    io.load_checkpoint(tmp_path / "c.safetensors", model=got["model"], optimizer=opt2)
    for i, s in opt.state.items():
        np.testing.assert_array_equal(opt2.state[i]["m"], s["m"])
        assert opt2.state[i]["step"] == s["step"] == 1


def test_one_read_gives_model_then_optimizer_and_rng(tmp_path):
    """pretrain --resume's way: load once, build the optimizer on the loaded model, then
    restore its state and the RNG from what was read (the file is not opened again)."""
    model = _model()
    opt = AdamW(model.parameters(), lr=1e-3)
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()
    io.save_checkpoint(tmp_path / "c.safetensors", model, opt, step=3)
    expected_next = get_rng().random()
    manual_seed(5)
    got = io.load_checkpoint(tmp_path / "c.safetensors", restore_rng=False)
    (tmp_path / "c.safetensors").unlink()  # everything below works from what was read
    opt2 = AdamW(got["model"].parameters(), lr=1e-3)
    io.load_optimizer_state(opt2, got)
    for i, s in opt.state.items():
        np.testing.assert_array_equal(opt2.state[i]["m"], s["m"])
        assert opt2.state[i]["step"] == s["step"] == 1
    set_rng_state(got["rng"])
    assert get_rng().random() == expected_next
    with pytest.raises(CheckpointError, match="optimizer state is for AdamW, not SGD"):
        io.load_optimizer_state(SGD(got["model"].parameters(), lr=0.1), got)


def test_classifier_checkpoint_loads_with_its_head(tmp_path):
    """A finetune-classifier checkpoint: load_checkpoint rebuilds the num_classes head."""
    model = prepare_classifier(_model(), num_classes=3).eval()
    io.save_checkpoint(tmp_path / "clf.safetensors", model,
                       extra={"task": "classification", "num_classes": 3})
    got = io.load_checkpoint(tmp_path / "clf.safetensors", restore_rng=False)
    head = got["model"].out_head
    assert head.weight.shape == (3, CFG.emb_dim) and head.bias is not None
    assert got["model"].num_parameters(trainable_only=True) == model.num_parameters()
    np.testing.assert_array_equal(got["model"].eval()(IDS).data, model(IDS).data)
    # into a language model: the error says it is a classifier and what to do
    with pytest.raises(CheckpointError, match=r"classifier checkpoint with 3 classes.*"
                       r"prepare_classifier\(model, 3\)"):
        io.load_checkpoint(tmp_path / "clf.safetensors",
                           model=_model(GPTConfig(**{**CFG.to_dict(), "tie_weights": False})))


def test_checkpoint_errors_name_the_problem(tmp_path):
    model = _model()
    io.save_checkpoint(tmp_path / "c.safetensors", model)
    other = _model(GPTConfig(**{**CFG.to_dict(), "n_layers": 3}))
    with pytest.raises(CheckpointError, match="n_layers: checkpoint has 2, model has 3"):
        io.load_checkpoint(tmp_path / "c.safetensors", model=other)
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        io.load_checkpoint(tmp_path / "c.safetensors", model=model,
                           optimizer=AdamW(model.parameters()))
    # a checkpoint whose tensors were tampered with: one missing, one misshapen
    tensors, meta = load_safetensors(tmp_path / "c.safetensors")
    tensors = dict(tensors)
    del tensors["model.final_norm.shift"]
    tensors["model.pos_emb.weight"] = np.zeros((4, 12), np.float32)
    save_safetensors(tmp_path / "bad.safetensors", tensors, meta)
    with pytest.raises(CheckpointError) as e:
        io.load_checkpoint(tmp_path / "bad.safetensors")
    assert "final_norm.shift" in str(e.value) and "pos_emb.weight" in str(e.value)
    save_safetensors(tmp_path / "plain.safetensors", {"x": np.zeros(2, np.float32)})
    with pytest.raises(CheckpointError, match="not a tinygrad-llm checkpoint"):
        io.load_checkpoint(tmp_path / "plain.safetensors")


def test_load_gpt2_from_hand_built_hf_layout(tmp_path):
    model = _model()
    folder = _write_hf(tmp_path / "gpt2", _hf_state(model))
    loaded = io.load_gpt2(folder)
    assert loaded.cfg.n_heads == 3 and loaded.cfg.qkv_bias and loaded.cfg.tie_weights
    np.testing.assert_allclose(loaded(IDS).data, model(IDS).data, rtol=1e-5, atol=1e-6)
    # the "transformer." prefix and a tied lm_head, as some exports have them
    prefixed = {f"transformer.{k}": v for k, v in _hf_state(model).items()}
    prefixed["lm_head.weight"] = prefixed["transformer.wte.weight"]
    loaded = io.load_gpt2(_write_hf(tmp_path / "p", prefixed))
    np.testing.assert_allclose(loaded(IDS).data, model(IDS).data, rtol=1e-5, atol=1e-6)


def test_load_gpt2_reports_every_missing_and_misshapen_tensor(tmp_path):
    tensors = _hf_state(_model())
    del tensors["h.1.mlp.c_fc.bias"]
    del tensors["ln_f.weight"]
    tensors["h.0.attn.c_proj.weight"] = np.zeros((12, 5), np.float32)
    tensors["h.0.extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError) as e:
        io.load_gpt2(_write_hf(tmp_path / "bad", tensors))
    msg = str(e.value)
    for name in ("h.1.mlp.c_fc.bias", "ln_f.weight", "h.0.attn.c_proj.weight",
                 "h.0.extra.weight"):
        assert name in msg, name
    with pytest.raises(ValueError, match="neither a file, a folder, nor a GPT-2 size"):
        io.load_gpt2("gpt5")


def test_load_gpt2_offline_without_weights_is_clear(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYGRAD_LLM_DATA_DIR", raising=False)
    with pytest.raises(Exception, match="gpt2-124M"):
        io.load_gpt2("124M", cache_dir=tmp_path, download=False)


@pytest.mark.parametrize("tied", [True, False])
def test_export_then_import_is_identical(tmp_path, tied):
    cfg = GPTConfig(**{**CFG.to_dict(), "tie_weights": tied})
    model = _model(cfg)
    folder = io.export_gpt2(model, tmp_path / "out")
    hf = json.loads((folder / "config.json").read_text())
    assert hf["n_layer"] == 2 and hf["n_head"] == 3 and hf["n_embd"] == 12
    assert hf["tie_word_embeddings"] is tied and hf["model_type"] == "gpt2"
    tensors, _ = load_safetensors(folder / "model.safetensors")
    assert tensors["h.0.attn.c_attn.weight"].shape == (12, 36)  # GPT-2's (in, out) layout
    assert ("lm_head.weight" in tensors) is (not tied)
    back = io.load_gpt2(folder)
    assert back.cfg.tie_weights is tied
    for (n, p), (m, q) in zip(sorted(model.named_parameters()),
                              sorted(back.named_parameters())):
        assert n == m
        np.testing.assert_array_equal(p.data, q.data)
