"""Fine-tuning: spam classification (the book's chapter 6), instruction following
(chapter 7) and scoring a model's answers (section 7.8); LoRA lives in ``nn.lora``
(appendix E).

The base model (the CLI and the examples): ``load_base_model(CLASSIFIER_BASE,
gpt2="124M")`` loads GPT-2 weights as the book does; without ``gpt2``/``checkpoint`` it
builds the small, not pretrained GPT of ``CLASSIFIER_BASE`` / ``INSTRUCT_BASE``.

Classification (chapter 6)::

    model, source = load_base_model(CLASSIFIER_BASE, gpt2="124M")  # source: "gpt2"
    prepare_classifier(model, num_classes=2)                       # nn.heads
    train_loader, val_loader, test_loader = create_spam_dataloaders(spam_splits(), tokenizer)
    train_losses, val_losses, train_accs, val_accs, examples_seen = train_classifier_simple(
        model, train_loader, val_loader, optimizer, num_epochs=5, eval_freq=50, eval_iter=5)
    calc_accuracy_loader(test_loader, model)
    classify_review("You are a winner ...", model, tokenizer, max_length=120)  # -> "spam"

Which position's logits classify a sequence (``pooling``):

* ``"last_real"`` (the default here): the last token that is not padding, i.e. the last
  position whose id differs from ``pad_token_id`` (trailing pads only). With causal
  attention that position's output is exactly what the unpadded text gives, so the result
  does not depend on how much padding a batch got, and the trailing padding columns are cut
  before the forward pass (a batch of short messages costs what its longest one costs).
* ``"last"``: the book's rule, ``model(x)[:, -1, :]``: the last position, padding or not
  (the book pads on the right with <|endoftext|>, so the model learns to read the message
  through the padding). Use it to reproduce the book or for models trained that way.

Instruction fine-tuning (chapter 7) needs no loop of its own: batches of
``custom_collate_fn`` are ``(inputs, targets)`` with ``-100`` where nothing is to be
learned, and ``train.calc_loss_batch``'s cross-entropy skips those positions, so
``train.run_training`` / ``train_model_simple`` train on ``create_instruction_dataloader``
as they are. ``generate_responses`` then answers the test entries and writes them to JSON.

Scoring (section 7.8): a judge rates each answer 0-100 against the reference answer:

* ``TokenF1Judge`` (offline, the default): the SQuAD token F1 of the answer against the
  reference, times 100; deterministic, needs no model (definition in its docstring).
* ``OllamaJudge``: asks a model served by a local Ollama server (the book uses Llama 3 8B)
  with the book's prompt; off unless chosen; talks HTTP through urllib alone.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_llm import functional as F
from tinygrad_llm.tensor import Tensor, no_grad

POOLINGS = ("last_real", "last")
SPAM_LABELS = ("not spam", "spam")  # class 0 (ham) and class 1, as classify_review answers

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
# Classification: logits of one position per sequence (chapter 6, sections 6.6-6.7)


def _check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling: got {pooling!r}, expected one of {POOLINGS} ('last_real': "
                         f"the last non-padding token; 'last': the book's last position)")


def _as_ids(input_batch: Any) -> np.ndarray:
    ids = input_batch.data if isinstance(input_batch, Tensor) else np.asarray(input_batch)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise ValueError(f"input_batch: expected integer token ids of shape (batch, tokens), "
                         f"got {ids.dtype} {ids.shape}")
    return ids.astype(np.int64, copy=False)


def last_token_positions(input_ids: np.ndarray, pad_token_id: int = 50256) -> np.ndarray:
    """Index of each row's last token that is not trailing padding: int64 (B,).

    A row that is all padding gives 0.
    """
    ids = np.asarray(input_ids)
    real = ids != pad_token_id  # (B, T)
    pos = ids.shape[1] - 1 - np.argmax(real[:, ::-1], axis=1)  # first real one from the end
    return np.where(real.any(axis=1), pos, 0).astype(np.int64)


def classifier_logits(model, input_batch, pad_token_id: int = 50256,
                      pooling: str = "last_real") -> Tensor:
    """The class logits of each sequence, (B, num_classes), read at one position.

    ``pooling="last_real"`` reads the last non-padding token (and runs the model only up
    to the batch's longest real length); ``"last"`` reads the last position (the book).
    """
    _check_pooling(pooling)
    ids = _as_ids(input_batch)
    if pooling == "last":
        return model(ids)[:, -1, :]  # (B, K)
    pos = last_token_positions(ids, pad_token_id)  # (B,)
    t = int(pos.max()) + 1  # later columns are padding everywhere: causal, so cut them
    logits = model(ids[:, :t])  # (B, t, K)
    return logits[np.arange(ids.shape[0]), pos, :]  # (B, K)


def calc_loss_batch_classifier(input_batch, target_batch, model, pad_token_id: int = 50256,
                               pooling: str = "last_real") -> Tensor:
    """Mean cross-entropy of the classifier's logits against the labels (B,)."""
    logits = classifier_logits(model, input_batch, pad_token_id, pooling)  # (B, K)
    return F.cross_entropy(logits, np.asarray(target_batch, dtype=np.int64))


def _eval_batches(data_loader, num_batches: int | None):
    """The first ``num_batches`` batches in the order of epoch 0 (as train.calc_loss_loader
    does, so that evaluations do not depend on earlier iterations), model-independent."""
    n = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    saved_epoch = getattr(data_loader, "epoch", None)
    if saved_epoch is not None:
        data_loader.set_epoch(0)
    try:
        for i, batch in enumerate(data_loader):
            if i >= n:
                break
            yield batch
    finally:
        if saved_epoch is not None:
            data_loader.set_epoch(saved_epoch)


class _EvalMode:
    """eval() and no_grad() for a block; restores the model's training flag afterwards."""

    def __init__(self, model):
        self.model, self.grad = model, no_grad()

    def __enter__(self):
        self.was_training = self.model.training
        self.model.eval()
        self.grad.__enter__()

    def __exit__(self, *exc):
        self.grad.__exit__(*exc)
        self.model.train(self.was_training)


def calc_loss_loader_classifier(data_loader, model, num_batches: int | None = None,
                                pad_token_id: int = 50256, pooling: str = "last_real") -> float:
    """Average classifier loss over the first ``num_batches`` batches (all by default),
    in eval mode without gradients; nan for an empty loader (as the book)."""
    if len(data_loader) == 0:
        return float("nan")
    total, n = 0.0, 0
    with _EvalMode(model):
        for inputs, labels in _eval_batches(data_loader, num_batches):
            total += calc_loss_batch_classifier(inputs, labels, model, pad_token_id,
                                                pooling).item()
            n += 1
    return total / n


def calc_accuracy_loader(data_loader, model, num_batches: int | None = None,
                         pad_token_id: int = 50256, pooling: str = "last_real") -> float:
    """Fraction of correctly classified examples in the first ``num_batches`` batches
    (all by default), in eval mode without gradients (the book's section 6.6)."""
    correct, total = 0, 0
    with _EvalMode(model):
        for inputs, labels in _eval_batches(data_loader, num_batches):
            logits = classifier_logits(model, inputs, pad_token_id, pooling)  # (B, K)
            predicted = np.argmax(logits.data, axis=-1)  # (B,)
            correct += int((predicted == np.asarray(labels)).sum())
            total += len(predicted)
    return correct / total if total else float("nan")


def evaluate_model_classifier(model, train_loader, val_loader, eval_iter: int,
                              pad_token_id: int = 50256,
                              pooling: str = "last_real") -> tuple[float, float]:
    """Train and validation classifier loss over ``eval_iter`` batches each."""
    kw = dict(num_batches=eval_iter, pad_token_id=pad_token_id, pooling=pooling)
    return (calc_loss_loader_classifier(train_loader, model, **kw),
            calc_loss_loader_classifier(val_loader, model, **kw))


def train_classifier_simple(model, train_loader, val_loader, optimizer, num_epochs: int,
                            eval_freq: int, eval_iter: int, *, pad_token_id: int = 50256,
                            pooling: str = "last_real", max_norm: float | None = None,
                            progress: bool = True, file=None):
    """The book's classifier loop (listing 6.10).

    Every step: loss on a batch, backward, optimizer step. Every ``eval_freq`` steps
    (from step 0): train and validation loss over ``eval_iter`` batches, printed. After
    each epoch: train and validation accuracy over ``eval_iter`` batches, printed.
    ``max_norm`` (beyond the book) clips the global gradient norm.

    Returns:
        (train_losses, val_losses, train_accs, val_accs, examples_seen): the losses at
        each evaluation, the accuracies after each epoch, the number of training examples
        processed.
    """
    from tinygrad_llm.optim import clip_grad_norm
    from tinygrad_llm.train import Progress

    _check_pooling(pooling)
    out = file or sys.stdout
    train_losses, val_losses, train_accs, val_accs = [], [], [], []
    examples_seen, global_step = 0, -1
    bar = Progress(len(train_loader) * num_epochs, enabled=progress)
    kw = dict(pad_token_id=pad_token_id, pooling=pooling)
    for epoch in range(num_epochs):
        model.train()
        for inputs, labels in train_loader:
            optimizer.zero_grad()
            loss = calc_loss_batch_classifier(inputs, labels, model, **kw)
            loss.backward()
            if max_norm is not None:
                clip_grad_norm(optimizer.params(), max_norm)
            optimizer.step()
            examples_seen += len(labels)
            global_step += 1
            bar.update(global_step, loss.item(), optimizer.param_groups[0]["lr"],
                       int(np.asarray(inputs).size))
            if global_step % eval_freq == 0:
                train_loss, val_loss = evaluate_model_classifier(
                    model, train_loader, val_loader, eval_iter, **kw)
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                _say(bar, out, f"Ep {epoch + 1} (Step {global_step:06d}): "
                     f"Train loss {train_loss:.3f}, Val loss {val_loss:.3f}")
        train_acc = calc_accuracy_loader(train_loader, model, eval_iter, **kw)
        val_acc = calc_accuracy_loader(val_loader, model, eval_iter, **kw)
        _say(bar, out, f"Training accuracy: {train_acc * 100:.2f}% | "
             f"Validation accuracy: {val_acc * 100:.2f}%")
        train_accs.append(train_acc)
        val_accs.append(val_acc)
    bar.close()
    model.eval()
    return train_losses, val_losses, train_accs, val_accs, examples_seen


def _say(bar, out, text: str) -> None:
    if out is sys.stdout:
        bar.message(text)
    else:
        print(text, file=out, flush=True)


def classify_review(text: str, model, tokenizer, max_length: int | None = None,
                    pad_token_id: int = 50256, pooling: str = "last_real",
                    labels: Sequence[str] = SPAM_LABELS) -> str:
    """Classify one text: ``"spam"`` or ``"not spam"`` by default (the book's 6.8).

    As the book: encode, truncate to ``min(max_length, context_length)``, pad with
    ``pad_token_id`` up to that length, take the argmax of the logits. ``max_length``
    None means the model's context length. With ``pooling="last_real"`` the padding does
    not change the answer; with ``"last"`` pass the ``max_length`` the model was trained
    with (``train_dataset.max_length``).
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"text: expected a non-empty str, got {text!r:.60}")
    ctx = model.cfg.context_length if hasattr(model, "cfg") else None
    if max_length is None:
        if ctx is None:
            raise ValueError("classify_review: pass max_length (the model has no cfg)")
        max_length = ctx
    length = min(max_length, ctx) if ctx is not None else max_length
    ids = list(tokenizer.encode(text))[:length]
    ids += [pad_token_id] * (length - len(ids))
    with _EvalMode(model):
        logits = classifier_logits(model, np.asarray([ids], dtype=np.int64), pad_token_id,
                                   pooling)  # (1, K)
    predicted = int(np.argmax(logits.data[0]))
    if len(labels) != logits.shape[-1]:
        raise ValueError(f"labels: {len(labels)} names for {logits.shape[-1]} classes")
    return labels[predicted]


def create_spam_dataloaders(splits, tokenizer, batch_size: int = 8,
                            context_length: int | None = None, pad_token_id: int = 50256,
                            seed: int = 123):
    """The book's three spam loaders (section 6.3) from ``spam_splits()``.

    Every message is padded to the longest training message (truncated to
    ``context_length`` when given and shorter); the training loader shuffles (seeded) and
    drops the last incomplete batch. Returns (train_loader, val_loader, test_loader).
    """
    from tinygrad_llm.data import DataLoader, SpamDataset

    train_ds = SpamDataset(splits.train, tokenizer, max_length=None, pad_token_id=pad_token_id)
    if context_length is not None and train_ds.max_length > context_length:
        train_ds = SpamDataset(splits.train, tokenizer, context_length, pad_token_id)
    n = train_ds.max_length
    val_ds = SpamDataset(splits.val, tokenizer, n, pad_token_id)
    test_ds = SpamDataset(splits.test, tokenizer, n, pad_token_id)
    return (DataLoader(train_ds, batch_size, shuffle=True, drop_last=True, seed=seed),
            DataLoader(val_ds, batch_size, shuffle=False, drop_last=False),
            DataLoader(test_ds, batch_size, shuffle=False, drop_last=False))


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
# Instruction fine-tuning (chapter 7)


def create_instruction_dataloader(data: Sequence[Mapping[str, Any]], tokenizer,
                                  batch_size: int = 8, shuffle: bool = False,
                                  drop_last: bool = False, seed: int = 123,
                                  allowed_max_length: int | None = None,
                                  mask_instruction: bool = False, pad_token_id: int = 50256):
    """A DataLoader of ``(inputs, targets)`` batches of instruction records (section 7.4):
    ``InstructionDataset`` items collated by ``custom_collate_fn`` (padding, -100 targets,
    truncation to ``allowed_max_length``, optionally the prompt masked)."""
    from tinygrad_llm.data import DataLoader, InstructionDataset, custom_collate_fn

    collate = partial(custom_collate_fn, pad_token_id=pad_token_id,
                      allowed_max_length=allowed_max_length, mask_instruction=mask_instruction)
    return DataLoader(InstructionDataset(data, tokenizer), batch_size, shuffle=shuffle,
                      drop_last=drop_last, seed=seed, collate_fn=collate)


def response_prompt(entry: Mapping[str, str]) -> str:
    """``format_input(entry)`` followed by the response header: the text a fine-tuned
    model continues with its answer (training text is prompt + header + answer)."""
    from tinygrad_llm.data import format_input

    return format_input(entry) + "\n\n### Response:\n"


def clean_response(text: str) -> str:
    """The answer in a generated continuation of ``response_prompt``: a leading
    ``### Response:`` (repeated by the model) dropped, cut at the first following section
    header (a line starting with ``###``) or ``<|endoftext|>``, stripped."""
    text = text.split("<|endoftext|>", 1)[0].lstrip()
    if text.startswith("### Response:"):
        text = text[len("### Response:"):]
    return text.split("\n###", 1)[0].strip()


def generate_response(model, tokenizer, entry: Mapping[str, str], max_new_tokens: int = 256,
                      temperature: float = 0.0, top_k: int | None = None,
                      seed: int | None = None) -> str:
    """The model's answer to one record: generate after ``response_prompt(entry)`` until
    <|endoftext|> or ``max_new_tokens``, decode the new tokens, ``clean_response``.

    The book generates after ``format_input(entry)`` and strips the ``### Response:``
    that the model writes first; a fine-tuned model writes exactly that header, so
    putting it in the prompt changes nothing for it and saves weak models from having to.
    """
    from tinygrad_llm.generate import generate, text_to_token_ids

    eot = getattr(tokenizer, "eot_token", 50256)
    ids = text_to_token_ids(response_prompt(entry), tokenizer)  # (1, T)
    ctx = model.cfg.context_length
    ids = ids[:, -ctx:]  # a prompt longer than the window keeps its end
    out = generate(model, ids, max_new_tokens=max_new_tokens, temperature=temperature,
                   top_k=top_k, eos_id=eot, seed=seed)
    new = out[0, ids.shape[1]:]
    new = new[: int(np.argmax(new == eot))] if (new == eot).any() else new
    return clean_response(tokenizer.decode(new.tolist()))


class _Count:
    """'label i/n' on one redrawn line (a terminal) or every ~10% (logs), on stderr."""

    def __init__(self, label: str, total: int, enabled: bool = True):
        self.label, self.total, self.enabled = label, total, enabled
        self.tty = sys.stderr.isatty()
        self.every = max(1, total // 10)

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        if self.tty:
            print(f"\r{self.label} {done}/{self.total}", end="", file=sys.stderr, flush=True)
        elif done % self.every == 0 or done == self.total:
            print(f"{self.label} {done}/{self.total}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically (a temporary file renamed over ``path``)."""
    from tinygrad_llm.io import atomic_write

    path = Path(path)
    with atomic_write(path) as f:
        f.write(json.dumps(obj, indent=4, ensure_ascii=False).encode("utf-8"))
    return path


def generate_responses(model, tokenizer, entries: Sequence[Mapping[str, Any]],
                       max_new_tokens: int = 256, path: str | os.PathLike | None = None,
                       response_key: str = "model_response", temperature: float = 0.0,
                       top_k: int | None = None, seed: int | None = None,
                       progress: bool = True) -> list[dict[str, Any]]:
    """Answer every entry (section 7.7): copies of the entries with ``response_key`` set,
    written to ``path`` as JSON (atomically) when given. Greedy by default."""
    bar = _Count("answered", len(entries), enabled=progress)
    results = []
    for i, entry in enumerate(entries):
        answer = generate_response(model, tokenizer, entry, max_new_tokens, temperature,
                                   top_k, seed)
        results.append({**entry, response_key: answer})
        bar.update(i + 1)
    bar.close()
    if path is not None:
        write_json(path, results)
    return results


# ---------------------------------------------------------------------------------------
# Judges: score an answer 0-100 against the reference (section 7.8)


class JudgeUnavailableError(RuntimeError):
    """The judge's model server cannot be reached or lacks the model; the message says
    how to fix it."""


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = re.compile(r"[^\w\s]")


def normalize_answer(text: str) -> list[str]:
    """SQuAD's answer normalisation, as tokens: lower-case, punctuation removed, the
    articles a/an/the removed, split on whitespace."""
    text = _PUNCT.sub(" ", text.lower())
    return _ARTICLES.sub(" ", text).split()


class TokenF1Judge:
    """The offline judge: 100 x the SQuAD token F1 of the answer against the reference.

    Both texts are normalised (``normalize_answer``); with ``c`` the number of tokens they
    share counted as multisets, precision ``P = c / len(answer)``, recall
    ``R = c / len(reference)`` and the score is ``100 * 2PR / (P + R)`` (0 when ``c`` is 0;
    100 when both are empty). It measures word overlap only: a correct answer in other
    words scores low, a fluent wrong one that reuses the reference's words scores high.
    Deterministic and needs no model; its numbers are not comparable with an LLM judge's.
    """

    name = "token-f1"

    def score(self, entry: Mapping[str, Any], response: str) -> float:
        ref = normalize_answer(str(entry["output"]))
        ans = normalize_answer(response or "")
        if not ref or not ans:
            return 100.0 if ref == ans else 0.0
        common = sum((Counter(ref) & Counter(ans)).values())
        if common == 0:
            return 0.0
        precision, recall = common / len(ans), common / len(ref)
        return 100.0 * 2 * precision * recall / (precision + recall)

    def __repr__(self) -> str:
        return "TokenF1Judge()"


def judge_prompt(entry: Mapping[str, Any], response: str) -> str:
    """The book's scoring prompt (section 7.8)."""
    from tinygrad_llm.data import format_input

    return (f"Given the input `{format_input(entry)}` "
            f"and correct output `{entry['output']}`, "
            f"score the model response `{response}`"
            f" on a scale from 0 to 100, where 100 is the best score. "
            f"Respond with the integer number only.")


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_score(text: str) -> float | None:
    """The first number in a judge's reply, clipped to 0..100; None when there is none."""
    m = _NUMBER.search(text or "")
    return None if m is None else float(min(100.0, max(0.0, float(m.group()))))


class OllamaJudge:
    """Scores answers with a model served by Ollama (https://ollama.com), as the book does.

    Sends the book's prompt to ``url`` (Ollama's chat API) with temperature 0 and a fixed
    seed, and reads the first number of the reply. Only the standard library is used.
    ``check()`` (called by ``generate_model_scores``) raises ``JudgeUnavailableError`` with
    the fix when no server answers or the model is not pulled.
    """

    name = "ollama"

    def __init__(self, model: str = "llama3", url: str = "http://localhost:11434/api/chat",
                 timeout: float = 120.0, seed: int = 123, num_ctx: int = 2048) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"OllamaJudge: url must be http(s)://host:port/api/chat, "
                             f"got {url!r}")
        self.model, self.url, self.timeout = model, url, timeout
        self.seed, self.num_ctx = seed, num_ctx
        self.base = f"{parts.scheme}://{parts.netloc}"

    def _unreachable(self, err: Exception) -> JudgeUnavailableError:
        reason = getattr(err, "reason", err)
        return JudgeUnavailableError(
            f"OllamaJudge: no Ollama server answers at {self.base} ({reason}). Start one "
            f"with `ollama serve` and get the model with `ollama pull {self.model}` "
            f"(https://ollama.com), give another address with --ollama-url, or score "
            f"offline with --judge offline")

    def _request(self, path_or_url: str, payload: dict | None, timeout: float) -> bytes:
        url = path_or_url if "://" in path_or_url else self.base + path_or_url
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        req = urllib.request.Request(url, data=data, headers={"Content-Type":
                                                              "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as e:
            body = e.read().decode("utf-8", "replace")[:300]
            raise JudgeUnavailableError(
                f"OllamaJudge: {url} answered HTTP {e.code}: {body} (is the model pulled? "
                f"`ollama pull {self.model}`)") from None
        except (urllib.error.URLError, OSError) as e:
            raise self._unreachable(e) from None

    def check(self) -> None:
        """Raise ``JudgeUnavailableError`` unless the server runs and has the model."""
        raw = self._request("/api/tags", None, timeout=min(self.timeout, 10.0))
        try:
            names = [m.get("name", "") for m in json.loads(raw).get("models", [])]
        except (json.JSONDecodeError, AttributeError):
            raise JudgeUnavailableError(f"OllamaJudge: {self.base}/api/tags did not answer "
                                        f"like Ollama: {raw[:200]!r}") from None
        wanted = self.model if ":" in self.model else f"{self.model}:latest"
        if self.model not in names and wanted not in names:
            raise JudgeUnavailableError(
                f"OllamaJudge: the server at {self.base} has no model {self.model!r} "
                f"(it has: {', '.join(names) or 'none'}); run `ollama pull {self.model}`")

    def query(self, prompt: str) -> str:
        """The model's reply to one user message (a streamed reply is joined)."""
        payload = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                   "stream": False,
                   "options": {"seed": self.seed, "temperature": 0, "num_ctx": self.num_ctx}}
        raw = self._request(self.url, payload, self.timeout).decode("utf-8", "replace")
        parts = []
        for line in raw.splitlines():  # one JSON object, or one per line when streamed
            if line.strip():
                try:
                    parts.append(json.loads(line).get("message", {}).get("content", ""))
                except json.JSONDecodeError:
                    raise JudgeUnavailableError(f"OllamaJudge: {self.url} sent something "
                                                f"that is not JSON: {line[:200]!r}") from None
        return "".join(parts)

    def score(self, entry: Mapping[str, Any], response: str) -> float | None:
        """0..100 from the model's reply, or None when the reply holds no number."""
        return parse_score(self.query(judge_prompt(entry, response)))

    def __repr__(self) -> str:
        return f"OllamaJudge(model={self.model!r}, url={self.url!r})"


def get_judge(name: str = "offline", **kwargs: Any):
    """``"offline"`` -> TokenF1Judge(); ``"ollama"`` -> OllamaJudge(**kwargs)."""
    if name in ("offline", "token-f1"):
        return TokenF1Judge()
    if name == "ollama":
        return OllamaJudge(**kwargs)
    raise ValueError(f"judge: got {name!r}, expected 'offline' or 'ollama'")


def generate_model_scores(entries: Sequence[Mapping[str, Any]],
                          json_key: str = "model_response", judge=None,
                          progress: bool = True, file=None) -> list[float]:
    """Score each entry's ``json_key`` answer with ``judge`` (default the offline one):
    the list of scores, skipping replies with no number (each reported), as the book's
    ``generate_model_scores``. The judge's ``check()`` runs first when it has one."""
    judge = judge if judge is not None else TokenF1Judge()
    if hasattr(judge, "check"):
        judge.check()
    missing = [i for i, e in enumerate(entries) if json_key not in e]
    if missing:
        raise KeyError(f"generate_model_scores: entries {missing[:5]} have no {json_key!r}; "
                       f"run generate_responses first or pass json_key=")
    out = file or sys.stdout
    scores: list[float] = []
    bar = _Count("scored", len(entries), enabled=progress)
    for i, entry in enumerate(entries):
        s = judge.score(entry, entry[json_key])
        if s is None:
            print(f"Could not read a score for entry {i}", file=out)
        else:
            scores.append(float(s))
        bar.update(i + 1)
    bar.close()
    return scores


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
    "POOLINGS",
    "CLASSIFIER_BASE",
    "INSTRUCT_BASE",
    "SPAM_LABELS",
    "JudgeUnavailableError",
    "OllamaJudge",
    "TokenF1Judge",
    "calc_accuracy_loader",
    "calc_loss_batch_classifier",
    "calc_loss_loader_classifier",
    "classifier_logits",
    "classify_review",
    "clean_response",
    "create_instruction_dataloader",
    "create_spam_dataloaders",
    "default_lr",
    "evaluate_model_classifier",
    "generate_model_scores",
    "generate_response",
    "generate_responses",
    "get_judge",
    "judge_prompt",
    "last_token_positions",
    "load_base_model",
    "load_finetuned",
    "normalize_answer",
    "parse_score",
    "pretrain_on_texts",
    "response_prompt",
    "save_finetuned",
    "train_classifier_simple",
    "trainable_summary",
    "write_json",
]

