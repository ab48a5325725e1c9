"""Training: losses, evaluation, the pretraining loops of the book's chapter 5 and
appendix D, a progress display and loss plots.

    train_losses, val_losses, tokens_seen = train_model_simple(
        model, train_loader, val_loader, optimizer, num_epochs=10, eval_freq=5,
        eval_iter=5, start_context="Every effort moves you", tokenizer=tokenizer)

``train_model`` adds the appendix D refinements: linear warmup, cosine decay and
global-norm gradient clipping, and also returns the learning rates. Both run on
``run_training``, which the ``tinygrad-llm pretrain`` command uses directly for
checkpoints, exact resumption and a clean stop on Ctrl-C.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Callable

import numpy as np

from tinygrad_llm import functional as F
from tinygrad_llm.nn.gpt import GPTModel
from tinygrad_llm.optim import clip_grad_norm, warmup_cosine_lr
from tinygrad_llm.tensor import Tensor, no_grad


def calc_loss_batch(input_batch, target_batch, model) -> Tensor:
    """Mean cross-entropy of the model's next-token logits against the targets.

    The book's computation is the last two lines. A GPTModel gets the same number from its
    ``loss`` method, which fuses the output head with the loss so that the (B, T, V) logits
    are never stored (the largest arrays of a training step; see GPTModel.loss).
    """
    if isinstance(model, GPTModel):
        return model.loss(input_batch, target_batch)
    logits = model(input_batch)  # (B, T, V)
    return F.cross_entropy(logits, target_batch)


def calc_loss_loader(data_loader, model, num_batches: int | None = None) -> float:
    """Average loss over the first ``num_batches`` batches (all by default), without grad.

    Returns nan for an empty loader, as the book does.
    """
    if len(data_loader) == 0:
        return float("nan")
    n = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    total = 0.0
    # evaluate on the order of epoch 0 every time, so that the numbers do not depend on
    # how often the loader was iterated before (a resumed run gives the same ones)
    saved_epoch = getattr(data_loader, "epoch", None)
    if saved_epoch is not None:
        data_loader.set_epoch(0)
    try:
        with no_grad():
            for i, (inputs, targets) in enumerate(data_loader):
                if i >= n:
                    break
                total += calc_loss_batch(inputs, targets, model).item()
    finally:
        if saved_epoch is not None:
            data_loader.set_epoch(saved_epoch)
    return total / n


def perplexity(loss: float) -> float:
    """exp(loss): the effective number of tokens the model hesitates between."""
    return math.exp(loss)


def evaluate_model(model, train_loader, val_loader, eval_iter: int) -> tuple[float, float]:
    """Train and validation loss over ``eval_iter`` batches each, in eval mode."""
    was_training = model.training
    model.eval()
    try:
        train_loss = calc_loss_loader(train_loader, model, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, num_batches=eval_iter)
    finally:
        model.train(was_training)
    return train_loss, val_loss


def generate_and_print_sample(model, tokenizer, start_context: str, max_new_tokens: int = 50,
                              file=None) -> str:
    """Greedy continuation of ``start_context``, printed on one line and returned."""
    from tinygrad_llm.generate import generate, text_to_token_ids, token_ids_to_text

    ids = text_to_token_ids(start_context, tokenizer)
    out = generate(model, ids, max_new_tokens=max_new_tokens,
                   context_size=model.cfg.context_length)
    text = token_ids_to_text(out, tokenizer).replace("\n", " ")
    print(text, file=file or sys.stdout)
    return text


# ---------------------------------------------------------------------------------------
# Progress display


class Progress:
    """A one-line progress bar with loss, learning rate and tokens/s.

    On a terminal it redraws one line; otherwise (logs, CI) it prints a line every
    ``every`` steps, so output stays readable in files.
    """

    def __init__(self, total: int, enabled: bool = True, file=None, every: int = 10):
        self.total, self.enabled, self.every = total, enabled, every
        self.file = file or sys.stderr
        self.tty = hasattr(self.file, "isatty") and self.file.isatty()
        self.start = time.perf_counter()
        self.tokens = 0

    def update(self, step: int, loss: float, lr: float, tokens: int) -> None:
        self.tokens += tokens
        if not self.enabled:
            return
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        done = step + 1
        width = 24
        filled = int(width * done / max(self.total, 1))
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} "
                f"loss {loss:.3f} lr {lr:.2e} {self.tokens / elapsed:,.0f} tok/s")
        if self.tty:
            print("\r" + line, end="", file=self.file, flush=True)
        elif done % self.every == 0 or done == self.total:
            print(line, file=self.file, flush=True)

    def message(self, text: str) -> None:
        """Print a line without breaking the bar."""
        if self.enabled and self.tty:
            print("\r" + " " * 90 + "\r", end="", file=self.file)
        print(text, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=self.file)


# ---------------------------------------------------------------------------------------
# The training loop


@dataclass
class History:
    """Everything a run has measured; saved in checkpoints so a resumed run continues it."""

    train_losses: list = field(default_factory=list)
    val_losses: list = field(default_factory=list)
    track_tokens_seen: list = field(default_factory=list)
    track_lrs: list = field(default_factory=list)
    step_losses: list = field(default_factory=list)
    tokens_seen: int = 0
    global_step: int = 0  # optimizer steps completed

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(**d)


class _StopFlag:
    """Turns the first Ctrl-C into a request to stop after the current step (so the
    parameters are never left half-updated); a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: stopping after this step (press again to abort now)", flush=True)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _batches(loader, epoch: int):
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    return iter(loader)


def run_training(model, train_loader, val_loader, optimizer, num_epochs: int,
                 eval_freq: int, eval_iter: int, start_context: str | None = None,
                 tokenizer=None, *, peak_lr: float | None = None, warmup_steps: int = 0,
                 initial_lr: float | None = None, min_lr: float | None = None,
                 max_norm: float | None = None, history: History | None = None,
                 on_eval: Callable | None = None, on_epoch_end: Callable | None = None,
                 progress: bool = True, sample_tokens: int = 50) -> tuple[History, bool]:
    """The loop behind train_model_simple and train_model; returns (history, finished).

    With ``min_lr`` set, the learning rate follows warmup + cosine from ``initial_lr`` to
    ``peak_lr`` (default: the optimizer's lr) and down to ``min_lr``; without it, the
    optimizer's lr is left alone. ``max_norm`` clips the global gradient norm.
    Passing the ``history`` of an earlier run (from a checkpoint) resumes it exactly: the
    loop skips the optimizer steps already done, epoch by epoch, and the loaders must
    shuffle the same way for the same epoch (``set_epoch``). ``finished`` is False when
    Ctrl-C stopped the run early (after a complete step).
    """
    h = history or History()
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ValueError("run_training: the training loader yields no batches (the text is "
                         "too short for batch_size x context_length; lower either, or set "
                         "drop_last=False)")
    total_steps = steps_per_epoch * num_epochs
    peak = optimizer.param_groups[0]["lr"] if peak_lr is None else peak_lr
    schedule = min_lr is not None
    start_lr = peak if initial_lr is None else initial_lr
    bar = Progress(total_steps, enabled=progress)
    model.train()
    with _StopFlag() as stop:
        for epoch in range(h.global_step // steps_per_epoch, num_epochs):
            skip = h.global_step - epoch * steps_per_epoch
            for i, (inputs, targets) in enumerate(_batches(train_loader, epoch)):
                if i < skip:
                    continue
                step = h.global_step
                if schedule:
                    lr = warmup_cosine_lr(step, total_steps, peak, warmup_steps, min_lr,
                                          start_lr)
                    for g in optimizer.param_groups:
                        g["lr"] = lr
                lr = optimizer.param_groups[0]["lr"]
                optimizer.zero_grad()
                loss = calc_loss_batch(inputs, targets, model)
                loss.backward()
                if max_norm is not None:
                    clip_grad_norm(optimizer.params(), max_norm)
                optimizer.step()
                h.global_step += 1
                h.tokens_seen += int(np.asarray(inputs).size)
                h.step_losses.append(loss.item())
                h.track_lrs.append(lr)
                bar.update(step, h.step_losses[-1], lr, int(np.asarray(inputs).size))
                if step % eval_freq == 0:
                    train_loss, val_loss = evaluate_model(model, train_loader, val_loader,
                                                          eval_iter)
                    h.train_losses.append(train_loss)
                    h.val_losses.append(val_loss)
                    h.track_tokens_seen.append(h.tokens_seen)
                    bar.message(f"Ep {epoch + 1} (Step {step:06d}): Train loss {train_loss:.3f},"
                                f" Val loss {val_loss:.3f}")
                    if on_eval is not None:
                        on_eval(h)
                if stop.requested:
                    bar.close()
                    return h, False
            if start_context is not None and tokenizer is not None:
                bar.message("")
                generate_and_print_sample(model, tokenizer, start_context, sample_tokens)
            if on_epoch_end is not None:
                on_epoch_end(epoch, h)
    bar.close()
    return h, True


def train_model_simple(model, train_loader, val_loader, optimizer, num_epochs: int,
                       eval_freq: int, eval_iter: int, start_context: str, tokenizer,
                       progress: bool = True):
    """The book's chapter 5 loop. Returns (train_losses, val_losses, track_tokens_seen)."""
    h, _ = run_training(model, train_loader, val_loader, optimizer, num_epochs, eval_freq,
                        eval_iter, start_context, tokenizer, progress=progress)
    return h.train_losses, h.val_losses, h.track_tokens_seen


def train_model(model, train_loader, val_loader, optimizer, n_epochs: int, eval_freq: int,
                eval_iter: int, start_context: str, tokenizer, warmup_steps: int,
                initial_lr: float = 3e-5, min_lr: float = 1e-6, max_norm: float = 1.0,
                progress: bool = True):
    """Appendix D: warmup to the optimizer's lr, cosine decay to ``min_lr``, and gradient
    clipping at ``max_norm`` on every step (the book clips only after warmup).

    Returns (train_losses, val_losses, track_tokens_seen, track_lrs).
    """
    h, _ = run_training(model, train_loader, val_loader, optimizer, n_epochs, eval_freq,
                        eval_iter, start_context, tokenizer, warmup_steps=warmup_steps,
                        initial_lr=initial_lr, min_lr=min_lr, max_norm=max_norm,
                        progress=progress)
    return h.train_losses, h.val_losses, h.track_tokens_seen, h.track_lrs


def plot_losses(epochs_seen, tokens_seen, train_losses, val_losses, path="loss.png"):
    """Plot train and validation loss against epochs (and tokens seen) to a PNG file.

    Needs matplotlib (``pip install 'tinygrad-llm[plot]'``); without it, prints how to get
    it and returns None instead of failing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_losses: matplotlib is not installed, so no plot was written "
              "(pip install 'tinygrad-llm[plot]')")
        return None
    fig, ax1 = plt.subplots(figsize=(5, 3))
    ax1.plot(epochs_seen, train_losses, label="Training loss")
    ax1.plot(epochs_seen, val_losses, linestyle="-.", label="Validation loss")
    ax1.set_xlabel("Epochs")
    ax1.set_ylabel("Loss")
    ax1.legend(loc="upper right")
    ax2 = ax1.twiny()  # a second x axis with the tokens seen
    ax2.plot(tokens_seen, train_losses, alpha=0)
    ax2.set_xlabel("Tokens seen")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
