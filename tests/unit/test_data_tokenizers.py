"""Chapter 2 tokenizers: simple word tokenizers and GPT-2 BPE through tiktoken."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tinygrad_llm.data.download as download_module
from tinygrad_llm.data import (
    BPETokenizer,
    DataNotAvailableError,
    SimpleTokenizerV1,
    SimpleTokenizerV2,
    TiktokenTokenizer,
    build_vocab,
    fetch,
    get_tokenizer,
    simple_split,
)
from tinygrad_llm.data import tokenizers as tokenizers_module

STORY = (
    "I HAD always thought Jack Gisburn rather a cheap genius--though a good fellow enough--so "
    "it was no great surprise to me to hear that, in the height of his glory, he had dropped "
    'his painting. "It\'s the last he painted, you know," Mrs. Gisburn said with pardonable '
    "pride."
)

# The book's section 2.5 example and the ids tiktoken's gpt2 gives for it.
BOOK_TEXT = "Hello, do you like tea? <|endoftext|> In the sunlit terraces of someunknownPlace."
BOOK_IDS = [15496, 11, 466, 345, 588, 8887, 30, 220, 50256, 554, 262, 4252, 18250, 8812, 2114,
            286, 617, 34680, 27271, 13]  # fmt: skip


def test_simple_split_matches_the_book() -> None:
    assert simple_split("Hello, world. Is this-- a test?") == [
        "Hello", ",", "world", ".", "Is", "this", "--", "a", "test", "?",
    ]  # fmt: skip


def test_build_vocab_sorted_then_specials() -> None:
    vocab = build_vocab("b a c a", special_tokens=("<|endoftext|>", "<|unk|>"))
    assert vocab == {"a": 0, "b": 1, "c": 2, "<|endoftext|>": 3, "<|unk|>": 4}


def test_v1_roundtrip_and_unknown_word() -> None:
    tok = SimpleTokenizerV1(build_vocab(STORY))
    text = '"It\'s the last he painted, you know," Mrs. Gisburn said with pardonable pride.'
    ids = tok.encode(text)
    assert (
        tok.decode(ids) == '" It\' s the last he painted, you know," Mrs. Gisburn said with '
        "pardonable pride."
    )
    with pytest.raises(ValueError, match="'tea' \\(token 2\\)") as info:
        tok.encode("you know tea")
    assert "SimpleTokenizerV2" in str(info.value)
    with pytest.raises(ValueError, match="not an id"):
        tok.decode([10_000])


def test_v2_unknown_words_and_endoftext() -> None:
    vocab = build_vocab(STORY, special_tokens=("<|endoftext|>", "<|unk|>"))
    tok = SimpleTokenizerV2(vocab)
    text = SimpleTokenizerV2.join(["Hello, do you like tea?", "In the sunlit terraces."])
    assert text == "Hello, do you like tea? <|endoftext|> In the sunlit terraces."
    ids = tok.encode(text)
    # Unknown: Hello, do, like, tea, ?, In, sunlit, terraces.
    assert ids.count(vocab["<|unk|>"]) == 8
    assert ids[7] == vocab["<|endoftext|>"]
    assert tok.decode(ids) == (
        "<|unk|>, <|unk|> you <|unk|> <|unk|> <|unk|> <|endoftext|> <|unk|> the <|unk|> <|unk|>."
    )


def test_v2_needs_unk() -> None:
    with pytest.raises(ValueError, match="special_tokens"):
        SimpleTokenizerV2(build_vocab(STORY))


def test_vocab_validation() -> None:
    with pytest.raises(TypeError, match="build_vocab"):
        SimpleTokenizerV1(["a", "b"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="used by both"):
        SimpleTokenizerV1({"a": 0, "b": 0})


# --------------------------------------------------------------------------- GPT-2 / tiktoken
@pytest.fixture(scope="module")
def gpt2() -> TiktokenTokenizer:
    try:
        return get_tokenizer("gpt2")
    except RuntimeError as exc:
        pytest.skip(f"GPT-2 BPE files unavailable offline (set TIKTOKEN_CACHE_DIR): {exc}")


@pytest.fixture(scope="module")
def gpt2_folder() -> Path:
    try:
        return fetch("gpt2-vocab", download=False)
    except DataNotAvailableError:
        pytest.skip(
            "GPT-2's vocab.bpe/encoder.json not found locally: set TINYGRAD_LLM_DATA_DIR to a "
            "folder holding gpt2/vocab.bpe and gpt2/encoder.json"
        )


def test_gpt2_book_example(gpt2: TiktokenTokenizer) -> None:
    assert gpt2.encode(BOOK_TEXT) == BOOK_IDS
    assert gpt2.decode(BOOK_IDS) == BOOK_TEXT
    assert gpt2.n_vocab == 50257 and gpt2.eot_token == 50256
    with pytest.raises(ValueError, match="disallowed special token"):
        gpt2.encode(BOOK_TEXT, allowed_special=set())


def _fail(*args: Any, **kwargs: Any) -> Any:
    raise ConnectionError("no network in this test")


def test_offline_without_files_gives_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import tiktoken

    monkeypatch.setattr(tiktoken, "get_encoding", _fail)
    monkeypatch.delenv("TINYGRAD_LLM_DATA_DIR", raising=False)
    monkeypatch.setattr(download_module, "default_cache_dir", lambda: tmp_path)
    with pytest.raises(RuntimeError) as info:
        get_tokenizer("gpt2")
    message = str(info.value)
    assert "TIKTOKEN_CACHE_DIR" in message
    assert "fetch('gpt2-vocab')" in message
    assert "no network in this test" in message


def test_offline_fallback_builds_encoding_from_local_files(
    monkeypatch: pytest.MonkeyPatch, gpt2_folder: Path
) -> None:
    import tiktoken

    monkeypatch.setattr(tiktoken, "get_encoding", _fail)
    monkeypatch.setenv("TINYGRAD_LLM_DATA_DIR", str(gpt2_folder.parent))
    tok = get_tokenizer("gpt2")
    assert tok.encode(BOOK_TEXT) == BOOK_IDS
    assert tok.decode(BOOK_IDS) == BOOK_TEXT


def test_bpe_backend(gpt2_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYGRAD_LLM_DATA_DIR", str(gpt2_folder.parent))
    tok = get_tokenizer("gpt2", backend="bpe")
    assert isinstance(tok, BPETokenizer)
    assert tok.encode(BOOK_TEXT) == BOOK_IDS


def test_get_tokenizer_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown tokenizer"):
        get_tokenizer("gpt5")
    with pytest.raises(ValueError, match="backend"):
        get_tokenizer("gpt2", backend="rust")  # type: ignore[arg-type]


def test_help_text_mentions_both_env_vars() -> None:
    assert "TIKTOKEN_CACHE_DIR" in tokenizers_module._TIKTOKEN_HELP
    assert "TINYGRAD_LLM_DATA_DIR" in tokenizers_module._TIKTOKEN_HELP
