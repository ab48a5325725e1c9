"""SMS spam classification data (chapter 6, sections 6.2 and 6.3).

The book downloads the SMS Spam Collection (UCI data set 228), balances it by undersampling
"ham" to the number of "spam" messages, maps the labels to ham=0 / spam=1, splits it 70/10/20
at random into train/validation/test, and pads each message's token ids to a common length
(``SpamDataset``).

Here the records are plain ``(text, label)`` tuples and :class:`SpamDataset` holds one int64
``(n, max_length)`` array of padded ids and one ``(n,)`` array of labels; with
:class:`~tinygrad_llm.data.sampling.DataLoader` a batch is ``(input_ids, labels)``.

Reading the file: each non-empty line is ``label<TAB>text`` (the text may itself contain
tabs; quotes are kept verbatim, unlike a CSV reader). A first line ``Label<TAB>Text`` is
skipped as a header.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_llm.data._checks import MalformedRecordError, check_int, check_optional_int
from tinygrad_llm.data.sampling import Splits

__all__ = ["LABELS", "SpamDataset", "read_spam_tsv", "spam_splits"]

LABELS: dict[str, int] = {"ham": 0, "spam": 1}

Record = tuple[str, int]


def read_spam_tsv(path: str | os.PathLike[str]) -> list[Record]:
    """Read ``label<TAB>text`` lines into ``(text, label)`` records (ham=0, spam=1).

    Raises:
        MalformedRecordError: a line without a tab, an unknown label or an empty text; the
            message names the line number.
    """
    path = Path(path)
    records: list[Record] = []
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            if "\t" not in line:
                raise MalformedRecordError(
                    f"{path} line {lineno}: expected 'label<TAB>text', found no tab in "
                    f"{line[:80]!r}"
                )
            label, text = line.split("\t", 1)
            key = label.strip().lower()
            if lineno == 1 and key == "label":
                continue  # a header line
            if key not in LABELS:
                raise MalformedRecordError(
                    f"{path} line {lineno}: unknown label {label!r}, expected one of "
                    f"{sorted(LABELS)}"
                )
            if not text.strip():
                raise MalformedRecordError(f"{path} line {lineno}: the message text is empty")
            records.append((text, LABELS[key]))
    if not records:
        raise MalformedRecordError(f"{path} holds no messages")
    return records


def spam_splits(
    path: str | os.PathLike[str] | None = None,
    seed: int = 123,
    *,
    train_frac: float = 0.7,
    val_frac: float = 0.1,
    balance: bool = True,
) -> Splits:
    """The book's balanced, seeded 70/10/20 split of the SMS Spam Collection.

    Args:
        path: the tab-separated collection; default ``fetch("sms-spam")``.
        seed: seeds one ``np.random.default_rng`` used for undersampling, then shuffling.
        train_frac, val_frac: fractions of the balanced set for training and validation
            (``int(n * frac)`` each, as in the book); the test part is the rest.
        balance: undersample the larger class (ham) to the size of the smaller one.

    Returns:
        ``Splits(train, val, test)``, lists of ``(text, label)`` with ham=0, spam=1. With the
        full collection: 747 + 747 messages, split 1045 / 149 / 300.
    """
    if path is None:
        from tinygrad_llm.data.download import fetch

        path = fetch("sms-spam")
    seed = check_int("seed", seed, minimum=0)
    for name, frac in (("train_frac", train_frac), ("val_frac", val_frac)):
        if not isinstance(frac, (int, float)) or isinstance(frac, bool) or not 0 < frac < 1:
            raise ValueError(f"{name} must be a fraction in (0, 1), got {frac!r}")
    if train_frac + val_frac >= 1:
        raise ValueError(
            f"train_frac + val_frac must be < 1 to leave a test part, got {train_frac} + {val_frac}"
        )
    records = read_spam_tsv(path)
    rng = np.random.default_rng(seed)
    if balance:
        ham = [r for r in records if r[1] == 0]
        spam = [r for r in records if r[1] == 1]
        if not ham or not spam:
            raise ValueError(
                f"path: {path} has {len(ham)} ham and {len(spam)} spam messages; balancing "
                "needs both (or pass balance=False)"
            )
        small, large = (spam, ham) if len(spam) <= len(ham) else (ham, spam)
        keep = np.sort(rng.choice(len(large), size=len(small), replace=False))
        kept = [large[i] for i in keep]
        records = kept + small if large is ham else small + kept
    order = rng.permutation(len(records))
    shuffled = [records[i] for i in order]
    train_end = int(len(shuffled) * train_frac)
    val_end = train_end + int(len(shuffled) * val_frac)
    splits = Splits(shuffled[:train_end], shuffled[train_end:val_end], shuffled[val_end:])
    for name, part in zip(Splits._fields, splits):
        if not part:
            raise ValueError(
                f"path: {path} gives only {len(shuffled)} messages, leaving the {name} part "
                "empty; use more data"
            )
    return splits


def _check_records(data: Sequence[Any]) -> tuple[list[str], np.ndarray]:
    texts: list[str] = []
    labels: list[int] = []
    for i, record in enumerate(data):
        if not isinstance(record, (tuple, list)) or len(record) != 2:
            raise MalformedRecordError(
                f"record {i}: expected a (text, label) pair, got {type(record).__name__} "
                f"{record!r:.80}"
            )
        text, label = record
        if not isinstance(text, str):
            raise MalformedRecordError(
                f"record {i}: text must be a str, got {type(text).__name__} {text!r:.80}"
            )
        if not text.strip():
            raise MalformedRecordError(f"record {i}: the text is empty")
        if isinstance(label, str) and label.strip().lower() in LABELS:
            label = LABELS[label.strip().lower()]
        valid = isinstance(label, (int, np.integer)) and not isinstance(label, bool)
        if not valid or label not in (0, 1):
            raise MalformedRecordError(
                f"record {i}: unknown label {label!r}, expected 0 (ham) or 1 (spam)"
            )
        texts.append(text)
        labels.append(int(label))
    if not texts:
        raise ValueError("data is empty; SpamDataset needs at least one (text, label) record")
    return texts, np.asarray(labels, dtype=np.int64)


class SpamDataset:
    """Padded token ids and labels of SMS messages (the book's ``SpamDataset``).

    Args:
        data: ``(text, label)`` records (labels 0/1 or "ham"/"spam"), e.g. one part of
            :func:`spam_splits`, or the path of a ``label<TAB>text`` file.
        tokenizer: has ``encode(text) -> list[int]``; default GPT-2 BPE.
        max_length: truncate to and pad to this many tokens; ``None``: pad to the longest
            message (``self.max_length``, to reuse for the validation and test sets).
        pad_token_id: the padding id (GPT-2's ``<|endoftext|>``, 50256, by default).

    Attributes:
        input_ids: int64 ``(n, max_length)``; labels: int64 ``(n,)``; lengths: int64
            ``(n,)`` unpadded (after truncation) lengths; max_length: the padded length.
    """

    def __init__(
        self,
        data: Sequence[Record] | str | os.PathLike[str],
        tokenizer: Any = None,
        max_length: int | None = None,
        pad_token_id: int = 50256,
    ) -> None:
        if isinstance(data, (str, os.PathLike)):
            data = read_spam_tsv(data)
        texts, labels = _check_records(data)
        max_length = check_optional_int(
            "max_length", max_length, minimum=1, fix="or pass None to pad to the longest"
        )
        self.pad_token_id = check_int("pad_token_id", pad_token_id, minimum=0)
        if tokenizer is None:
            from tinygrad_llm.data.tokenizers import get_tokenizer

            tokenizer = get_tokenizer("gpt2")
        encoded = [tokenizer.encode(t) for t in texts]
        if max_length is None:
            max_length = max(len(e) for e in encoded)
        else:
            encoded = [e[:max_length] for e in encoded]
        lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
        ids = np.full((len(encoded), max_length), self.pad_token_id, dtype=np.int64)
        flat = [np.asarray(e, dtype=np.int64) for e in encoded]
        ids[np.arange(max_length) < lengths[:, None]] = np.concatenate(flat)
        self.input_ids = ids
        self.labels = labels
        self.lengths = lengths
        self.max_length = max_length

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.input_ids[index], self.labels[index]

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(input_ids (B, max_length), labels (B,))`` for ``indices``, as int64."""
        idx = np.asarray(indices, dtype=np.intp)
        return self.input_ids[idx], self.labels[idx]

    def __repr__(self) -> str:
        return f"SpamDataset({len(self)} messages, max_length={self.max_length})"
