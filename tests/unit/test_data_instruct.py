"""Chapter 7 instruction data: prompt format, splits, dataset and the padding collate."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from tinygrad_llm.data import (
    DataLoader,
    DataNotAvailableError,
    InstructionDataset,
    InstructionExample,
    MalformedRecordError,
    custom_collate_fn,
    extract_response,
    fetch,
    format_input,
    format_response,
    instruction_splits,
    load_instruction_data,
)

PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)


class CharTokenizer:
    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(map(chr, ids))


def records(n: int) -> list[dict[str, str]]:
    return [
        {"instruction": f"Task {i}.", "input": "x" * (i % 3), "output": f"Answer {i}."}
        for i in range(n)
    ]


def test_format_input_with_and_without_input() -> None:
    entry = {"instruction": "Spell it.", "input": "Ocassion", "output": "Occasion"}
    assert (
        format_input(entry) == f"{PREAMBLE}\n\n### Instruction:\nSpell it.\n\n### Input:\nOcassion"
    )
    no_input = {"instruction": "Name a color.", "input": "", "output": "Blue."}
    assert format_input(no_input) == f"{PREAMBLE}\n\n### Instruction:\nName a color."
    assert format_input({"instruction": "Name a color."}) == format_input(no_input)
    assert format_response(entry) == "\n\n### Response:\nOccasion"


def test_extract_response() -> None:
    entry = {"instruction": "Spell it.", "input": "Ocassion", "output": "Occasion"}
    generated = format_input(entry) + "\n\n### Response:\n  The word is 'Occasion'. \n"
    assert extract_response(generated) == "The word is 'Occasion'."
    assert extract_response("### Response:\nYes<|endoftext|>garbage") == "Yes"
    assert extract_response("  no header ") == "no header"


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"input": "", "output": "o"}, "record 1: missing key 'instruction'"),
        ({"instruction": "i", "input": ""}, "record 1: missing key 'output'"),
        ({"instruction": "i", "input": 3, "output": "o"}, "record 1: 'input' must be a str"),
        ({"instruction": "  ", "input": "", "output": "o"}, "record 1: 'instruction' is empty"),
        ({"instruction": "i", "input": "", "output": ""}, "record 1: 'output' is empty"),
        (["instruction", "output"], "record 1: expected an object"),
    ],
)
def test_malformed_records_name_the_index(tmp_path: Path, entry: object, match: str) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps([records(1)[0], entry]))
    with pytest.raises(MalformedRecordError, match=match):
        load_instruction_data(path)
    with pytest.raises(MalformedRecordError, match=match):
        InstructionDataset([records(1)[0], entry], CharTokenizer())  # type: ignore[list-item]


def test_load_instruction_data(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps(records(5)))
    assert load_instruction_data(path) == records(5)
    path.write_text(json.dumps({"instruction": "not a list"}))
    with pytest.raises(MalformedRecordError, match="JSON list"):
        load_instruction_data(path)


def test_instruction_splits() -> None:
    data = records(100)
    splits = instruction_splits(data, seed=123)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (85, 5, 10)
    assert sorted(e["instruction"] for part in splits for e in part) == sorted(
        e["instruction"] for e in data
    )
    assert instruction_splits(data, seed=123) == splits
    assert instruction_splits(data, seed=1) != splits
    in_order = instruction_splits(data, seed=None)  # the book's unshuffled cut
    assert (
        in_order.train == data[:85] and in_order.test == data[85:95] and in_order.val == data[95:]
    )
    with pytest.raises(ValueError, match="test part empty"):
        instruction_splits(records(5))


def test_instruction_dataset_items() -> None:
    data = records(3)
    ds = InstructionDataset(data, CharTokenizer())
    item = ds[1]
    assert isinstance(item, InstructionExample)
    text = format_input(data[1]) + format_response(data[1])
    assert CharTokenizer().decode(item.input_ids.tolist()) == text
    assert item.prompt_length == len(format_input(data[1]))
    assert item.input_ids.dtype == np.int64


def test_collate_matches_the_book() -> None:
    inputs, targets = custom_collate_fn([[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]])
    assert inputs.tolist() == [
        [0, 1, 2, 3, 4],
        [5, 6, 50256, 50256, 50256],
        [7, 8, 9, 50256, 50256],
    ]
    assert targets.tolist() == [
        [1, 2, 3, 4, 50256],
        [6, 50256, -100, -100, -100],
        [8, 9, 50256, -100, -100],
    ]
    assert inputs.dtype == targets.dtype == np.int64


def test_collate_truncation_and_options() -> None:
    inputs, targets = custom_collate_fn(
        [[1, 2, 3, 4, 5, 6], [7]], pad_token_id=0, ignore_index=-1, allowed_max_length=3
    )
    assert inputs.tolist() == [[1, 2, 3], [7, 0, 0]]
    assert targets.tolist() == [[2, 3, 4], [0, -1, -1]]


def test_collate_keeps_pad_ids_inside_a_sequence() -> None:
    # Masking is by position: a pad id that is real content stays a target.
    _, targets = custom_collate_fn([[5, 50256, 6], [7]])
    assert targets.tolist() == [[50256, 6, 50256], [50256, -100, -100]]


def test_collate_masks_the_instruction() -> None:
    batch = [InstructionExample(np.array([10, 11, 12, 13, 14]), 3), ([20, 21], 1)]
    _, targets = custom_collate_fn(batch, mask_instruction=True)
    # Item 0: targets predicting prompt tokens 11 and 12 are masked; 13 is the first response.
    assert targets.tolist() == [[-100, -100, 13, 14, 50256], [21, 50256, -100, -100, -100]]
    with pytest.raises(ValueError, match="prompt length"):
        custom_collate_fn([[1, 2, 3]], mask_instruction=True)


def test_collate_errors() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        custom_collate_fn([])
    with pytest.raises(MalformedRecordError, match="batch\\[1\\]: the token sequence is empty"):
        custom_collate_fn([[1], []])
    with pytest.raises(ValueError, match="allowed_max_length must be >= 1"):
        custom_collate_fn([[1]], allowed_max_length=0)


def test_dataloader_with_collate() -> None:
    ds = InstructionDataset(records(20), CharTokenizer())
    collate = partial(custom_collate_fn, allowed_max_length=64, mask_instruction=True)
    loader = DataLoader(
        ds, batch_size=8, shuffle=True, drop_last=True, seed=123, collate_fn=collate
    )
    batches = list(loader)
    assert len(batches) == 2
    for inputs, targets in batches:
        assert inputs.shape == targets.shape and inputs.shape[0] == 8 and inputs.shape[1] <= 64
        # Only response tokens (and end-of-text) are learned.
        assert (targets != -100).sum() < targets.size / 2


def test_the_books_split_sizes() -> None:
    try:
        path = fetch("instruction-data", download=False)
    except DataNotAvailableError:
        pytest.skip("instruction-data.json is not available locally (TINYGRAD_LLM_DATA_DIR)")
    splits = instruction_splits(load_instruction_data(path))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (935, 55, 110)
