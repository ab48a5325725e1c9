"""Spam classification (the book's chapter 6): one position's logits per sequence, the
classifier's loss, accuracy and training loop, classifying a text, and the spam loaders.

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
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_llm import functional as F
from tinygrad_llm.tensor import Tensor, no_grad

POOLINGS = ("last_real", "last")
SPAM_LABELS = ("not spam", "spam")  # class 0 (ham) and class 1, as classify_review answers


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


__all__ = [
    "POOLINGS",
    "SPAM_LABELS",
    "calc_accuracy_loader",
    "calc_loss_batch_classifier",
    "calc_loss_loader_classifier",
    "classifier_logits",
    "classify_review",
    "create_spam_dataloaders",
    "evaluate_model_classifier",
    "last_token_positions",
    "train_classifier_simple",
]
