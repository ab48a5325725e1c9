"""Instruction fine-tuning (the book's chapter 7): the batches to train on, and the
model's answers to instruction records.

Instruction fine-tuning (chapter 7) needs no loop of its own: batches of
``custom_collate_fn`` are ``(inputs, targets)`` with ``-100`` where nothing is to be
learned, and ``train.calc_loss_batch``'s cross-entropy skips those positions, so
``train.run_training`` / ``train_model_simple`` train on ``create_instruction_dataloader``
as they are. ``generate_responses`` then answers the test entries and writes them to JSON.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

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


__all__ = [
    "clean_response",
    "create_instruction_dataloader",
    "generate_response",
    "generate_responses",
    "response_prompt",
    "write_json",
]
