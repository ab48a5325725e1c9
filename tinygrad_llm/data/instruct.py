"""Instruction fine-tuning data (chapter 7, sections 7.2-7.4).

* :func:`load_instruction_data` reads the book's JSON list of
  ``{"instruction", "input", "output"}`` records (default ``fetch("instruction-data")``)
  and checks every record.
* :func:`format_input` writes the Alpaca-style prompt: the task description, an
  ``### Instruction:`` section and, when ``input`` is non-empty, an ``### Input:`` section.
  :func:`format_response` is the part the model learns to write,
  ``"\\n\\n### Response:\\n" + output``; :func:`extract_response` takes the response back
  out of a generated text.
* :func:`instruction_splits` shuffles (seeded) and cuts 85% train, 10% test, 5% validation,
  returned by name as ``Splits(train, val, test)``.
* :class:`InstructionDataset` holds each record's token ids (prompt then response) and its
  prompt length: item ``i`` is an :class:`InstructionExample` ``(input_ids, prompt_length)``.
* :func:`custom_collate_fn` pads a batch and builds the shifted targets: each sequence gets
  one end-of-text token, is padded to the batch's longest + 1, then split into
  ``inputs = padded[:, :-1]`` and ``targets = padded[:, 1:]``; in the targets the first
  end-of-text token is kept and every later padding position becomes ``ignore_index``
  (optionally the prompt too, ``mask_instruction=True``, the book's exercise 7.2).

Records are validated: a record that is not an object, lacks ``instruction`` or ``output``,
has a non-string field, or an empty instruction/output raises
:class:`~tinygrad_llm.data._checks.MalformedRecordError` (a ``ValueError``) naming its
index. ``input`` may be missing or empty (no input section).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tinygrad_llm.data._checks import MalformedRecordError, check_int, check_optional_int
from tinygrad_llm.data.sampling import Splits

__all__ = [
    "InstructionDataset",
    "InstructionExample",
    "custom_collate_fn",
    "extract_response",
    "format_input",
    "format_response",
    "instruction_splits",
    "load_instruction_data",
]

PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)
RESPONSE_HEADER = "### Response:"


def _check_entry(entry: object, index: int | None, *, need_output: bool = True) -> None:
    where = "entry" if index is None else f"record {index}"
    if not isinstance(entry, Mapping):
        raise MalformedRecordError(
            f"{where}: expected an object with 'instruction', 'input' and 'output', got "
            f"{type(entry).__name__} {entry!r:.80}"
        )
    keys = ("instruction", "output") if need_output else ("instruction",)
    for key in keys:
        if key not in entry:
            raise MalformedRecordError(
                f"{where}: missing key {key!r} (keys present: {sorted(map(str, entry))})"
            )
    for key in ("instruction", "input", "output"):
        if key in entry and not isinstance(entry[key], str):
            value = entry[key]
            raise MalformedRecordError(
                f"{where}: {key!r} must be a str, got {type(value).__name__} {value!r:.80}"
            )
    for key in keys:
        if not entry[key].strip():
            raise MalformedRecordError(f"{where}: {key!r} is empty")


def format_input(entry: Mapping[str, str]) -> str:
    """The Alpaca-style prompt of a record (the book's ``format_input``)."""
    _check_entry(entry, None, need_output=False)
    text = f"{PREAMBLE}\n\n### Instruction:\n{entry['instruction']}"
    if entry.get("input"):
        text += f"\n\n### Input:\n{entry['input']}"
    return text


def format_response(entry: Mapping[str, str]) -> str:
    """``"\\n\\n### Response:\\n" + output``: what follows the prompt in training text."""
    _check_entry(entry, None)
    return f"\n\n{RESPONSE_HEADER}\n{entry['output']}"


def extract_response(text: str, *, end_token: str = "<|endoftext|>") -> str:
    """The response in a generated text: what follows the first ``### Response:``, cut at
    ``end_token`` if present, stripped. Without the header, the whole text stripped."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    _, found, after = text.partition(RESPONSE_HEADER)
    response = after if found else text
    if end_token:
        response = response.split(end_token, 1)[0]
    return response.strip()


def load_instruction_data(
    path: str | os.PathLike[str] | None = None, *, name: str = "instruction-data"
) -> list[dict[str, Any]]:
    """Read and validate a JSON list of instruction records.

    Args:
        path: the JSON file; default ``fetch(name)``.
        name: the data set to fetch when ``path`` is None ("instruction-data" or
            "instruction-data-with-preference"; extra keys such as ``chosen`` are kept).
    """
    if path is None:
        from tinygrad_llm.data.download import fetch

        path = fetch(name)
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"path: {path} is not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise MalformedRecordError(
            f"path: {path} must hold a JSON list of records, got {type(data).__name__}"
        )
    for i, entry in enumerate(data):
        _check_entry(entry, i)
    return data


def instruction_splits(
    data: Sequence[Mapping[str, Any]],
    seed: int | None = 123,
    *,
    train_frac: float = 0.85,
    test_frac: float = 0.10,
) -> Splits:
    """Seeded 85% train / 10% test / 5% validation split (``Splits(train, val, test)``).

    The parts are cut as in the book (train first, then test, then validation, with
    ``int(n * frac)`` items each for train and test) after shuffling with
    ``np.random.default_rng(seed)``; ``seed=None`` keeps the given order, as the book does.
    1100 records give 935 / 55 / 110 (train / val / test).
    """
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Sequence):
        raise TypeError(f"data must be a list of records, got {type(data).__name__}")
    for name, frac in (("train_frac", train_frac), ("test_frac", test_frac)):
        if not isinstance(frac, (int, float)) or isinstance(frac, bool) or not 0 < frac < 1:
            raise ValueError(f"{name} must be a fraction in (0, 1), got {frac!r}")
    if train_frac + test_frac >= 1:
        raise ValueError(
            f"train_frac + test_frac must be < 1 to leave a validation part, got "
            f"{train_frac} + {test_frac}"
        )
    items = list(data)
    if seed is not None:
        order = np.random.default_rng(check_int("seed", seed, minimum=0)).permutation(len(items))
        items = [items[i] for i in order]
    train_end = int(len(items) * train_frac)
    test_end = train_end + int(len(items) * test_frac)
    splits = Splits(train=items[:train_end], val=items[test_end:], test=items[train_end:test_end])
    for part_name, part in zip(Splits._fields, splits):
        if not part:
            raise ValueError(
                f"data: {len(items)} records leave the {part_name} part empty with "
                f"train_frac={train_frac}, test_frac={test_frac}; use more records"
            )
    return splits


class InstructionExample(NamedTuple):
    """One item of :class:`InstructionDataset`: the token ids of prompt + response, and how
    many of them are the prompt (``format_input``)."""

    input_ids: np.ndarray
    prompt_length: int


class InstructionDataset:
    """Token ids of formatted instruction records (the book's ``InstructionDataset``).

    Each record becomes ``encode(format_input(entry)) + encode(format_response(entry))``
    (encoding the two parts separately keeps the prompt boundary exact; it equals encoding
    the joined text unless the prompt ends in whitespace). Items are
    :class:`InstructionExample` ``(input_ids, prompt_length)``, which
    :func:`custom_collate_fn` understands (also for ``mask_instruction=True``).

    Args:
        data: records (validated; errors name the index).
        tokenizer: has ``encode(text) -> list[int]``; default GPT-2 BPE.
    """

    def __init__(self, data: Sequence[Mapping[str, Any]], tokenizer: Any = None) -> None:
        if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Sequence):
            raise TypeError(f"data must be a list of records, got {type(data).__name__}")
        if not data:
            raise ValueError("data is empty; InstructionDataset needs at least one record")
        if tokenizer is None:
            from tinygrad_llm.data.tokenizers import get_tokenizer

            tokenizer = get_tokenizer("gpt2")
        self.encoded: list[np.ndarray] = []
        prompt_lengths = []
        for i, entry in enumerate(data):
            _check_entry(entry, i)
            prompt = tokenizer.encode(format_input(entry))
            response = tokenizer.encode(format_response(entry))
            self.encoded.append(np.asarray(list(prompt) + list(response), dtype=np.int64))
            prompt_lengths.append(len(prompt))
        self.prompt_lengths = np.asarray(prompt_lengths, dtype=np.int64)
        self.data = list(data)

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, index: int) -> InstructionExample:
        return InstructionExample(self.encoded[index], int(self.prompt_lengths[index]))

    def __repr__(self) -> str:
        longest = max(len(e) for e in self.encoded)
        return f"InstructionDataset({len(self)} records, longest {longest} tokens)"


def _split_item(item: Any, k: int) -> tuple[np.ndarray, int | None]:
    if isinstance(item, tuple) and len(item) == 2 and np.ndim(item[0]) == 1:
        ids, prompt_length = item
        prompt_length = check_int(f"batch[{k}] prompt length", prompt_length, minimum=0)
    else:
        ids, prompt_length = item, None
    arr = np.asarray(ids)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise MalformedRecordError(
            f"batch[{k}]: expected a 1-D sequence of token ids (or an (ids, prompt_length) "
            f"pair), got {type(item).__name__} with shape {arr.shape} and dtype {arr.dtype}"
        )
    if arr.size == 0:
        raise MalformedRecordError(f"batch[{k}]: the token sequence is empty")
    return arr.astype(np.int64, copy=False), prompt_length


def custom_collate_fn(
    batch: Sequence[Any],
    pad_token_id: int = 50256,
    ignore_index: int = -100,
    allowed_max_length: int | None = None,
    mask_instruction: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Pad a batch of token sequences into ``(inputs, targets)`` (the book's collate).

    Args:
        batch: sequences of token ids, or ``(ids, prompt_length)`` pairs such as
            :class:`InstructionExample` (needed for ``mask_instruction``).
        pad_token_id: appended once to every sequence as its end-of-text token, and used
            for padding.
        ignore_index: target value that the loss skips.
        allowed_max_length: truncate inputs and targets to this many positions.
        mask_instruction: also set the targets that predict prompt tokens to
            ``ignore_index``, so only the response (and its end-of-text token) is learned.

    Returns:
        ``inputs`` and ``targets``, int64 arrays of shape ``(B, L)`` with ``L`` the longest
        sequence (then ``min(L, allowed_max_length)``). Target positions are masked by
        position, not by comparing ids, so a pad id inside a sequence is kept.
    """
    if isinstance(batch, (str, bytes)) or not isinstance(batch, Sequence) or not batch:
        raise ValueError("batch must be a non-empty list of token sequences")
    pad_token_id = check_int("pad_token_id", pad_token_id, minimum=0)
    ignore_index = check_int("ignore_index", ignore_index)
    allowed_max_length = check_optional_int("allowed_max_length", allowed_max_length, minimum=1)
    seqs: list[np.ndarray] = []
    prompts: list[int] = []
    for k, item in enumerate(batch):
        ids, prompt_length = _split_item(item, k)
        if mask_instruction and prompt_length is None:
            raise ValueError(
                f"mask_instruction=True needs each item's prompt length, but batch[{k}] is a "
                "plain sequence; use InstructionDataset items (input_ids, prompt_length)"
            )
        seqs.append(ids)
        prompts.append(prompt_length or 0)
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    width = int(lengths.max()) + 1  # room for one end-of-text token on the longest
    padded = np.full((len(seqs), width), pad_token_id, dtype=np.int64)
    padded[np.arange(width) < lengths[:, None]] = np.concatenate(seqs)
    inputs = padded[:, :-1]
    targets = padded[:, 1:].copy()
    cols = np.arange(width - 1)
    # targets[i, lengths[i] - 1] is the end-of-text token (kept); later positions are padding.
    targets[cols >= lengths[:, None]] = ignore_index
    if mask_instruction:
        prompt_arr = np.asarray(prompts, dtype=np.int64)
        targets[cols < (prompt_arr - 1)[:, None]] = ignore_index
    if allowed_max_length is not None:
        inputs = inputs[:, :allowed_max_length]
        targets = targets[:, :allowed_max_length]
    return np.ascontiguousarray(inputs), np.ascontiguousarray(targets)
