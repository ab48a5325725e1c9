"""Training loops: the loss falls, runs are deterministic, resuming equals not stopping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_llm import GPTConfig, GPTModel, io
from tinygrad_llm.data import DataLoader, GPTDataset
from tinygrad_llm.optim import AdamW
from tinygrad_llm.random import manual_seed
from tinygrad_llm.train import (History, calc_loss_batch, calc_loss_loader, perplexity,
                                run_training, train_model, train_model_simple)

CFG = GPTConfig(vocab_size=16, context_length=8, emb_dim=16, n_heads=2, n_layers=2,
                drop_rate=0.1, qkv_bias=True)


class CharTokenizer:
    """Letters a..p as ids 0..15 (enough for the sample printed after each epoch)."""

    def encode(self, text, **kw):
        return [ord(c) - 97 for c in text if "a" <= c <= "p"]

    def decode(self, ids):
        return "".join(chr(97 + int(i)) for i in np.asarray(ids).reshape(-1))


def _loaders(seed=0, n_tokens=400):
    rng = np.random.default_rng(seed)
    # a repeating pattern with a little noise: learnable by a tiny model in a few steps
    ids = np.tile(np.arange(16), n_tokens // 16 + 1)[:n_tokens]
    noise = rng.random(n_tokens) < 0.05
    ids[noise] = rng.integers(0, 16, noise.sum())
    train = DataLoader(GPTDataset(ids[:320], 8, 8), batch_size=4, shuffle=True,
                       drop_last=True, seed=seed)
    val = DataLoader(GPTDataset(ids[320:], 8, 8), batch_size=4, shuffle=False)
    return train, val


def _model(seed=1):
    manual_seed(seed)
    return GPTModel(CFG)


def test_loss_falls_below_bound_in_fixed_steps():
    train, val = _loaders()
    model = _model()
    opt = AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    before = calc_loss_loader(val, model)
    assert before == pytest.approx(math.log(16), abs=0.6)  # untrained: about uniform
    tr, va, seen = train_model_simple(model, train, val, opt, num_epochs=8, eval_freq=10,
                                      eval_iter=2, start_context="abc",
                                      tokenizer=CharTokenizer(), progress=False)
    assert len(tr) == len(va) == len(seen) and seen == sorted(seen)
    after = calc_loss_loader(val, model)
    assert after < 0.8, f"val loss {after:.3f} did not fall below 0.8 (from {before:.3f})"
    assert perplexity(after) < 2.3


def test_same_seed_same_losses():
    runs = []
    for _ in range(2):
        train, val = _loaders()
        model = _model()
        opt = AdamW(model.parameters(), lr=5e-3)
        h, finished = run_training(model, train, val, opt, 2, 5, 1, progress=False)
        assert finished
        runs.append(h.step_losses)
    assert runs[0] == runs[1]


def test_train_model_schedule_and_clipping():
    train, val = _loaders()
    model = _model()
    opt = AdamW(model.parameters(), lr=1e-2)
    tr, va, seen, lrs = train_model(model, train, val, opt, n_epochs=2, eval_freq=5,
                                    eval_iter=1, start_context="ab", tokenizer=CharTokenizer(),
                                    warmup_steps=4, initial_lr=1e-4, min_lr=1e-5,
                                    progress=False)
    assert lrs[0] == pytest.approx(1e-4) and max(lrs) == pytest.approx(1e-2, rel=1e-6)
    assert lrs[-1] < lrs[len(lrs) // 2] and lrs[-1] >= 1e-5


def test_resume_from_checkpoint_gives_identical_losses(tmp_path):
    epochs = 3
    train, val = _loaders()
    model = _model()
    opt = AdamW(model.parameters(), lr=5e-3)
    full, _ = run_training(model, train, val, opt, epochs, 3, 1, progress=False)
    full_model = model

    # the same run stopped after 13 steps (mid-epoch), checkpointed, and resumed
    train, val = _loaders()
    model = _model()
    opt = AdamW(model.parameters(), lr=5e-3)
    saved = {}

    def stop_at_13(h: History):
        if h.global_step >= 13 and not saved:
            io.save_checkpoint(tmp_path / "ck.safetensors", model, opt, step=h.global_step,
                               extra={"history": h.to_dict()})
            saved["done"] = True
            raise KeyboardInterrupt  # stands in for a crash after the save

    with pytest.raises(KeyboardInterrupt):
        run_training(model, train, val, opt, epochs, 3, 1, progress=False, on_eval=stop_at_13)
    manual_seed(999)  # a different RNG state, which the checkpoint must overwrite
    ck = io.load_checkpoint(tmp_path / "ck.safetensors")
    model2 = ck["model"]
    opt2 = AdamW(model2.parameters(), lr=5e-3)
    io.load_checkpoint(tmp_path / "ck.safetensors", model=model2, optimizer=opt2)
    train, val = _loaders()
    resumed, finished = run_training(model2, train, val, opt2, epochs, 3, 1, progress=False,
                                     history=History.from_dict(ck["extra"]["history"]))
    assert finished
    assert resumed.step_losses == full.step_losses
    assert resumed.val_losses == full.val_losses
    # the resumed model ends with the very weights of the run that never stopped
    for (n, p), (_, q) in zip(model2.named_parameters(), full_model.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=n)


def test_calc_loss_batch_matches_manual_cross_entropy():
    model = _model().eval()
    x = np.array([[1, 2, 3, 4]])
    y = np.array([[2, 3, 4, 5]])
    loss = calc_loss_batch(x, y, model).item()
    logits = model(x).data[0].astype(np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1,
                                                                       keepdims=True)) \
        - logits.max(1, keepdims=True)
    assert loss == pytest.approx(-logp[np.arange(4), y[0]].mean(), rel=1e-5)


def test_empty_training_loader_is_a_clear_error():
    class Empty:
        def __len__(self):
            return 0

        def __iter__(self):
            return iter(())

    model = _model()
    with pytest.raises(ValueError, match="yields no batches"):
        run_training(model, Empty(), Empty(), AdamW(model.parameters()), 1, 1, 1,
                     progress=False)
    assert math.isnan(calc_loss_loader(Empty(), model))
