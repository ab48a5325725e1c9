"""Sliding-window sampling (chapter 2.6): GPTDataset, DataLoader, create_dataloader."""

from __future__ import annotations

import ast
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_llm.data as data_pkg
from tinygrad_llm.data import (
    DataLoader,
    GPTDataset,
    SimpleTokenizerV2,
    build_vocab,
    create_dataloader,
    default_collate,
    train_val_split,
)


def book_windows(ids: list[int], max_length: int, stride: int) -> tuple[list, list]:
    """The book's GPTDatasetV1 loop, as the reference."""
    inputs, targets = [], []
    for i in range(0, len(ids) - max_length, stride):
        inputs.append(ids[i : i + max_length])
        targets.append(ids[i + 1 : i + max_length + 1])
    return inputs, targets


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(2, 200),
    max_length=st.integers(1, 40),
    stride=st.integers(1, 50),
    dtype=st.sampled_from([np.int64, np.int32, np.uint16]),
)
def test_windows_match_the_books_loop(n: int, max_length: int, stride: int, dtype: type) -> None:
    if n < max_length + 1:
        with pytest.raises(ValueError, match="max_length \\+ 1"):
            GPTDataset(np.arange(n, dtype=dtype), max_length, stride)
        return
    tokens = np.arange(n, dtype=dtype) * 7 % 1000
    ds = GPTDataset(tokens, max_length, stride)
    ref_in, ref_tg = book_windows(tokens.tolist(), max_length, stride)
    assert len(ds) == len(ref_in)
    assert ds.inputs.tolist() == ref_in and ds.targets.tolist() == ref_tg
    x, y = ds.get_batch(np.arange(len(ds))[::-1])
    assert x.dtype == np.int64 and y.dtype == np.int64
    assert x.shape == y.shape == (len(ds), max_length)
    assert x.tolist() == ref_in[::-1] and y.tolist() == ref_tg[::-1]
    xi, yi = ds[0]
    assert xi.tolist() == ref_in[0] and yi.tolist() == ref_tg[0]


def test_windows_are_views_of_one_token_array() -> None:
    tokens = np.arange(1000, dtype=np.int64)
    ds = GPTDataset(tokens, max_length=64, stride=8)
    assert ds.tokens is tokens
    assert np.shares_memory(ds.inputs, tokens) and np.shares_memory(ds.targets, tokens)
    assert not ds.inputs.flags.writeable


def test_a_100m_token_corpus_needs_no_window_copies() -> None:
    # uint16 ids, as a big corpus would be stored; np.zeros pages are not touched.
    tokens = np.zeros(100_000_000, dtype=np.uint16)
    tracemalloc.start()
    try:
        ds = GPTDataset(tokens, max_length=1024, stride=1)
        loader = DataLoader(ds, batch_size=8)
        x, _ = next(iter(loader))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(ds) == 100_000_000 - 1024
    assert x.shape == (8, 1024) and x.dtype == np.int64
    assert peak < 5_000_000  # bytes: a batch, not 100M x 1024 tokens


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"stride": 0}, ValueError, "stride must be >= 1"),
        ({"stride": -3}, ValueError, "stride must be >= 1"),
        ({"max_length": 0}, ValueError, "max_length must be >= 1"),
        ({"max_length": 2.5}, TypeError, "max_length must be an int"),
        ({"stride": True}, TypeError, "stride must be an int"),
    ],
)
def test_bad_window_arguments(kwargs: dict, error: type, match: str) -> None:
    args = {"max_length": 4, "stride": 2} | kwargs
    with pytest.raises(error, match=match):
        GPTDataset(list(range(100)), **args)


def test_bad_token_inputs() -> None:
    with pytest.raises(TypeError, match="encode the text"):
        GPTDataset("some text", 4, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="integer token ids"):
        GPTDataset(np.linspace(0, 1, 50), 4, 1)
    with pytest.raises(ValueError, match="1-D"):
        GPTDataset(np.zeros((5, 5), dtype=np.int64), 2, 1)
    with pytest.raises(ValueError, match="non-negative"):
        GPTDataset([1, 2, -3, 4, 5], 2, 1)


TEXT = " ".join(f"word{i % 37} and more, said the {i % 11} fox." for i in range(200))


@pytest.fixture(scope="module")
def tokenizer() -> SimpleTokenizerV2:
    return SimpleTokenizerV2(build_vocab(TEXT, special_tokens=("<|endoftext|>", "<|unk|>")))


def test_short_text_error_says_how_many_tokens(tokenizer: SimpleTokenizerV2) -> None:
    with pytest.raises(ValueError, match="it has 4 tokens") as info:
        create_dataloader("the fox said more", max_length=8, tokenizer=tokenizer)
    assert "max_length=8 needs at least 9" in str(info.value)


def test_create_dataloader_batches(tokenizer: SimpleTokenizerV2) -> None:
    loader = create_dataloader(
        TEXT, batch_size=4, max_length=16, stride=16, shuffle=False, tokenizer=tokenizer
    )
    ids = tokenizer.encode(TEXT)
    n_windows = len(range(0, len(ids) - 16, 16))
    assert len(loader) == n_windows // 4
    batches = list(loader)
    assert len(batches) == len(loader)
    x, y = batches[0]
    assert x.shape == y.shape == (4, 16) and x.dtype == y.dtype == np.int64
    assert x[0].tolist() == ids[:16] and y[0].tolist() == ids[1:17]
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])


def test_batch_size_error() -> None:
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        create_dataloader(list(range(100)), batch_size=0, max_length=4)


def test_drop_last_with_no_full_batch_says_so() -> None:
    with pytest.raises(ValueError, match="would yield no batch"):
        create_dataloader(list(range(20)), batch_size=8, max_length=4, stride=4, drop_last=True)
    loader = create_dataloader(
        list(range(20)), batch_size=8, max_length=4, stride=4, drop_last=False
    )
    assert len(loader) == 1 and next(iter(loader))[0].shape == (4, 4)


def test_shuffle_is_deterministic_per_seed_and_epoch() -> None:
    ids = np.arange(500)
    a = create_dataloader(ids, batch_size=4, max_length=4, stride=4, seed=7)
    b = create_dataloader(ids, batch_size=4, max_length=4, stride=4, seed=7)
    c = create_dataloader(ids, batch_size=4, max_length=4, stride=4, seed=8)
    epoch0 = [x.tolist() for x, _ in a]
    assert epoch0 == [x.tolist() for x, _ in b]
    assert epoch0 != [x.tolist() for x, _ in c]
    epoch1 = [x.tolist() for x, _ in a]
    assert epoch1 != epoch0  # a new order each epoch...
    b.set_epoch(1)
    assert epoch1 == [x.tolist() for x, _ in b]  # ...that is reproducible
    # Every window appears exactly once per epoch (drop_last drops < batch_size).
    seen = sorted(row[0] for batch in epoch0 for row in batch)
    assert len(seen) == len(a) * 4 and len(set(seen)) == len(seen)


def test_last_partial_batch_and_len() -> None:
    ds = GPTDataset(np.arange(11), max_length=1, stride=1)  # 10 windows
    loader = DataLoader(ds, batch_size=4)
    assert len(loader) == 3
    assert [x.shape[0] for x, _ in loader] == [4, 4, 2]
    assert len(DataLoader(ds, batch_size=4, drop_last=True)) == 2


def test_generic_dataloader_with_default_collate() -> None:
    items = [(np.arange(3) + i, i % 2) for i in range(5)]
    loader = DataLoader(items, batch_size=2, shuffle=True, seed=0)
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(2, 3), (2, 3), (1, 3)]
    assert batches[0][1].dtype == np.int64
    with pytest.raises(ValueError, match="different shapes"):
        default_collate([np.arange(2), np.arange(3)])


def test_dataloader_validation() -> None:
    with pytest.raises(ValueError, match="empty"):
        DataLoader([], batch_size=1)
    with pytest.raises(TypeError, match="__len__"):
        DataLoader(42, batch_size=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed must be >= 0"):
        DataLoader([1, 2], seed=-1)
    assert isinstance(DataLoader([1, 2], shuffle=True).seed, int)


def test_train_val_split() -> None:
    train, val = train_val_split("abcdefghij", 0.9)
    assert (train, val) == ("abcdefghi", "j")
    t, v = train_val_split(np.arange(100), 0.75)
    assert len(t) == 75 and len(v) == 25
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        train_val_split("abc", 1.0)
    with pytest.raises(ValueError, match="empty part"):
        train_val_split("ab", 0.1)


def test_data_layer_does_not_import_the_engine() -> None:
    engine = {"tinygrad_llm.tensor", "tinygrad_llm.nn", "tinygrad_llm.ops", "tinygrad_llm.kernels"}
    engine |= {"tinygrad_llm.autograd", "tinygrad_llm.function", "tinygrad_llm.functional"}
    for path in Path(data_pkg.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                assert not any(name == e or name.startswith(e + ".") for e in engine), (
                    f"{path.name} imports {name}"
                )
                assert name != "tinygrad_llm" or isinstance(node, ast.ImportFrom), path.name
