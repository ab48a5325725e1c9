"""Chapter 6 spam data: reading, balancing, splitting, padding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinygrad_llm.data import (
    DataLoader,
    DataNotAvailableError,
    MalformedRecordError,
    SpamDataset,
    fetch,
    read_spam_tsv,
    spam_splits,
)


class CharTokenizer:
    """One id per character: enough to test padding and truncation exactly."""

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(map(chr, ids))


def write_collection(path: Path, n_ham: int = 80, n_spam: int = 20) -> Path:
    lines = [f"ham\tmessage number {i} about lunch" for i in range(n_ham)]
    lines += [f"spam\tWIN prize {i}!\tcall now" for i in range(n_spam)]  # a tab in the text
    rng = np.random.default_rng(0)
    path.write_text("\n".join(lines[i] for i in rng.permutation(len(lines))) + "\n")
    return path


def test_read_spam_tsv(tmp_path: Path) -> None:
    records = read_spam_tsv(write_collection(tmp_path / "c.tsv", 3, 2))
    assert len(records) == 5
    assert {label for _, label in records} == {0, 1}
    assert ("WIN prize 0!\tcall now", 1) in records


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("ham\thi\nspam no tab here\n", "line 2: expected 'label<TAB>text'"),
        ("ham\thi\neggs\tunknown\n", "line 2: unknown label 'eggs'"),
        ("ham\thi\nspam\t   \n", "line 2: the message text is empty"),
        ("\n\n", "holds no messages"),
    ],
)
def test_malformed_lines_name_the_line(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(MalformedRecordError, match=match):
        read_spam_tsv(path)


def test_header_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "h.tsv"
    path.write_text("Label\tText\nham\thello\n")
    assert read_spam_tsv(path) == [("hello", 0)]


def test_spam_splits_balance_and_fractions(tmp_path: Path) -> None:
    path = write_collection(tmp_path / "c.tsv")
    splits = spam_splits(path, seed=123)
    everything = splits.train + splits.val + splits.test
    assert len(everything) == 40  # 20 spam + 20 of the 80 ham
    assert sum(label for _, label in everything) == 20
    assert (len(splits.train), len(splits.val), len(splits.test)) == (28, 4, 8)
    assert len({text for text, _ in everything}) == 40
    assert spam_splits(path, seed=123) == splits
    assert spam_splits(path, seed=124) != splits


def test_spam_splits_without_balancing(tmp_path: Path) -> None:
    splits = spam_splits(write_collection(tmp_path / "c.tsv"), balance=False)
    assert sum(map(len, splits)) == 100


def test_spam_dataset_pads_to_longest(tmp_path: Path) -> None:
    data = [("hi", 0), ("hello", 1), ("hey", "spam")]
    ds = SpamDataset(data, CharTokenizer(), pad_token_id=0)
    assert ds.max_length == 5
    assert ds.input_ids.dtype == np.int64 and ds.input_ids.shape == (3, 5)
    assert ds.input_ids[0].tolist() == [ord("h"), ord("i"), 0, 0, 0]
    assert ds.labels.tolist() == [0, 1, 1]
    assert ds.lengths.tolist() == [2, 5, 3]
    x, y = ds[1]
    assert x.tolist() == [ord(c) for c in "hello"] and int(y) == 1


def test_spam_dataset_truncates_and_pads_to_given_length() -> None:
    ds = SpamDataset([("abcdefgh", 0), ("ab", 1)], CharTokenizer(), max_length=4)
    assert ds.input_ids.tolist() == [[97, 98, 99, 100], [97, 98, 50256, 50256]]
    with pytest.raises(ValueError, match="max_length must be >= 1"):
        SpamDataset([("a", 0)], CharTokenizer(), max_length=0)


@pytest.mark.parametrize(
    ("records", "match"),
    [
        ([("ok", 0), ("fine", 2)], "record 1: unknown label 2"),
        ([("ok", 0), ("", 1)], "record 1: the text is empty"),
        ([("ok", 0), (42, 1)], "record 1: text must be a str"),
        ([("ok", 0), ("x", 1, "extra")], "record 1: expected a \\(text, label\\) pair"),
        ([("ok", True)], "record 0: unknown label True"),
    ],
)
def test_malformed_records_name_the_index(records: list, match: str) -> None:
    with pytest.raises(MalformedRecordError, match=match):
        SpamDataset(records, CharTokenizer())


def test_spam_batches(tmp_path: Path) -> None:
    splits = spam_splits(write_collection(tmp_path / "c.tsv"))
    train = SpamDataset(splits.train, CharTokenizer())
    val = SpamDataset(splits.val, CharTokenizer(), max_length=train.max_length)
    assert val.max_length == train.max_length
    loader = DataLoader(train, batch_size=8, shuffle=True, drop_last=True, seed=123)
    x, y = next(iter(loader))
    assert x.shape == (8, train.max_length) and y.shape == (8,)
    assert x.dtype == y.dtype == np.int64
    assert len(loader) == len(train) // 8


def test_spam_dataset_from_path(tmp_path: Path) -> None:
    ds = SpamDataset(write_collection(tmp_path / "c.tsv", 3, 2), CharTokenizer())
    assert len(ds) == 5


def test_the_books_split_sizes() -> None:
    try:
        path = fetch("sms-spam", download=False)
    except DataNotAvailableError:
        pytest.skip("the SMS Spam Collection is not available locally (TINYGRAD_LLM_DATA_DIR)")
    splits = spam_splits(path)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1045, 149, 300)
    labels = [label for part in splits for _, label in part]
    assert labels.count(1) == labels.count(0) == 747
