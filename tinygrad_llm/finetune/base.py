"""What fine-tuning starts from and what it leaves, shared by both tasks: the base model,
its learning rate, pretraining a small one on a task's own texts, and checkpoints of
fine-tuned models.

The base model (the CLI and the examples): ``load_base_model(CLASSIFIER_BASE,
gpt2="124M")`` loads GPT-2 weights as the book does; without ``gpt2``/``checkpoint`` it
builds the small, not pretrained GPT of ``CLASSIFIER_BASE`` / ``INSTRUCT_BASE``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# The small GPTs that the CLI and the examples build when no base model is given (not
# pretrained; trained here from scratch in a minute or a few on 2 cores).
CLASSIFIER_BASE = dict(context_length=128, emb_dim=64, n_heads=4, n_layers=2, drop_rate=0.1,
                       qkv_bias=False)
INSTRUCT_BASE = dict(context_length=128, emb_dim=128, n_heads=4, n_layers=4, drop_rate=0.1,
                     qkv_bias=False)


def load_base_model(base: Mapping[str, Any], vocab_size: int = 50257, *,
                    gpt2: str | os.PathLike | None = None,
                    checkpoint: str | os.PathLike | None = None,
                    **overrides: Any) -> tuple[Any, str]:
    """The model that fine-tuning starts from, and where it came from.

    Args:
        base: the GPTConfig fields of the model built when neither ``gpt2`` nor
            ``checkpoint`` is given (``CLASSIFIER_BASE`` or ``INSTRUCT_BASE``), with
            ``overrides`` on top (e.g. smaller sizes for a smoke run).
        gpt2: published GPT-2 weights: "124M", ..., a file or a folder (``io.load_gpt2``).
        checkpoint: a tinygrad-llm language model checkpoint (``pretrain``,
            ``finetune-instruct``); a classifier checkpoint is refused.
    Returns:
        (model, source) with source "gpt2", "checkpoint" or "built" (a new GPTModel with
        random weights: not pretrained).
    Raises:
        ValueError (``io.CheckpointError`` included) for a bad checkpoint or weights, both
        sources given, or config fields GPTConfig rejects.
    """
    from tinygrad_llm import io
    from tinygrad_llm.config import GPTConfig
    from tinygrad_llm.nn import GPTModel

    if gpt2 is not None and checkpoint is not None:
        raise ValueError("load_base_model: give at most one of gpt2 and checkpoint")
    if checkpoint is not None:
        ckpt = io.load_checkpoint(checkpoint, restore_rng=False)
        if ckpt["extra"].get("task") == "classification":
            raise ValueError(f"{checkpoint} is a classifier checkpoint; start from a language "
                             f"model checkpoint (tinygrad-llm pretrain or finetune-instruct)")
        return ckpt["model"], "checkpoint"
    if gpt2 is not None:
        return io.load_gpt2(gpt2), "gpt2"
    return GPTModel(GPTConfig(vocab_size=vocab_size, **{**base, **overrides})), "built"


def default_lr(source: str) -> float:
    """The fine-tuning learning rate for a base model from ``load_base_model``: the book's
    5e-5 for GPT-2 weights, 1e-3 for the small models built or pretrained here."""
    return 5e-5 if source == "gpt2" else 1e-3


# ---------------------------------------------------------------------------------------
# A small base model, pretrained here on a task's own texts


def pretrain_on_texts(model, texts: Sequence[str], tokenizer, num_epochs: int,
                      batch_size: int = 8, lr: float = 1e-3, weight_decay: float = 0.1,
                      context_length: int | None = None, seed: int = 123,
                      progress: bool = True):
    """Next-token pretraining (chapter 5) on ``texts`` joined with <|endoftext|>.

    Stands in for the pretrained GPT-2 of the book when none is available: a small model
    learns the task's language (its own training texts, no labels) before it is
    fine-tuned. Windows of ``context_length`` (the model's by default) tokens, stride the
    same; AdamW with warmup + cosine decay, clipping at 1.0; the last 10% of the windows
    are held out for the printed validation loss. Returns the ``train.History``.
    """
    from tinygrad_llm.data import DataLoader, GPTDataset
    from tinygrad_llm.optim import AdamW, decay_groups
    from tinygrad_llm.train import run_training

    eot = getattr(tokenizer, "eot_token", 50256)
    ids = np.concatenate([np.asarray(list(tokenizer.encode(t)) + [eot], dtype=np.int64)
                          for t in texts])
    ctx = context_length or model.cfg.context_length
    dataset = GPTDataset(ids, ctx, ctx)
    n = len(dataset)
    n_val = max(1, n // 10)
    if n - n_val < 1:
        raise ValueError(f"texts: {len(ids)} tokens give only {n} windows of {ctx}; "
                         f"use more text or a smaller context_length")
    train = _Subset(dataset, 0, n - n_val)
    val = _Subset(dataset, n - n_val, n)
    train_loader = DataLoader(train, min(batch_size, len(train)), shuffle=True, drop_last=True,
                              seed=seed)
    val_loader = DataLoader(val, batch_size, shuffle=False)
    optimizer = AdamW(decay_groups(model, weight_decay), lr=lr, weight_decay=weight_decay)
    steps = len(train_loader) * num_epochs
    history, _ = run_training(model, train_loader, val_loader, optimizer, num_epochs,
                              eval_freq=max(1, steps // 4), eval_iter=5, peak_lr=lr,
                              warmup_steps=max(1, steps // 20), initial_lr=lr * 0.01,
                              min_lr=lr * 0.1, max_norm=1.0, progress=progress)
    model.eval()
    return history


class _Subset:
    """Items start..stop of a dataset that has get_batch (windows of a GPTDataset)."""

    def __init__(self, dataset, start: int, stop: int):
        self.dataset, self.start, self.stop = dataset, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int):
        return self.dataset[self.start + i]

    def get_batch(self, indices):
        return self.dataset.get_batch(np.asarray(indices) + self.start)


# ---------------------------------------------------------------------------------------
# Checkpoints of fine-tuned models


def save_finetuned(path: str | os.PathLike, model, info: Mapping[str, Any],
                   optimizer=None) -> Path:
    """``io.save_checkpoint`` with ``info`` in its ``extra`` metadata.

    For a classifier, ``info`` holds ``task="classification"``, ``num_classes`` and what
    classifying needs again (``pooling``, ``pad_token_id``, ``max_length``, ``labels``);
    ``io.load_checkpoint`` / ``load_finetuned`` rebuild the head from it. For instruction models
    ``task="instruction"``. The weights are the plain GPT names (merge LoRA first).
    """
    from tinygrad_llm import io
    from tinygrad_llm.nn.lora import lora_layers

    if lora_layers(model):
        raise ValueError("save_finetuned: the model still has LoRA adapters; merge_lora(model) "
                         "first (and save_lora() for the adapters alone)")
    info = dict(info)
    if info.get("task") == "classification":
        info.setdefault("num_classes", int(model.out_head.out_features))
    return io.save_checkpoint(path, model, optimizer, extra=info)


def load_finetuned(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """(model in eval mode, info) from a checkpoint of ``save_finetuned`` (or any
    tinygrad-llm checkpoint, whose info is then its ``extra``). A classifier gets its head
    back (``io.load_checkpoint`` rebuilds it from ``num_classes``)."""
    from tinygrad_llm import io

    ckpt = io.load_checkpoint(path, restore_rng=False)
    return ckpt["model"].eval(), ckpt["extra"]


def trainable_summary(model) -> str:
    """'trainable: X of Y parameters (Z%)'."""
    total = model.num_parameters()
    train = model.num_parameters(trainable_only=True)
    return f"trainable: {train:,} of {total:,} parameters ({100 * train / max(total, 1):.2f}%)"


__all__ = [
    "CLASSIFIER_BASE",
    "INSTRUCT_BASE",
    "default_lr",
    "load_base_model",
    "load_finetuned",
    "pretrain_on_texts",
    "save_finetuned",
    "trainable_summary",
]
