"""The from-scratch byte-level BPE: training, save/load, GPT-2 files, equality with tiktoken."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygrad_llm.data import BPETokenizer, DataNotAvailableError, bytes_to_unicode, fetch

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CORPUS = (
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away!\n"
    "It's 2024 and we've 12 apples, they'll eat 3.5 of them -- don't they?\n"
    "Ünïcödé text, 日本語のテキスト, emojis 🙂🙃 and tabs\tand  double  spaces.\n"
) * 20

# Text mixing the pieces the pre-tokenizer treats specially.
FRAGMENTS = [
    " ", "  ", "\n", "\n\n", "\t", " \n ", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S",
    "hello", " world", "123", " 4567", "!!", " ?!", "<|endoftext|>", "<|endoftext", "|>", "é",
    "日本", "🙂", "\u00a0", "\u2028", "\x1c", "\x00", "ab" * 40, "9" * 30,
]  # fmt: skip
mixed_text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=30).map(
    "".join
)
any_text = st.one_of(st.text(max_size=200), mixed_text)


@pytest.fixture(scope="module")
def trained() -> BPETokenizer:
    return BPETokenizer.train(CORPUS, vocab_size=350)


# --------------------------------------------------------------------------- basics
def test_bytes_to_unicode_is_a_printable_bijection() -> None:
    table = bytes_to_unicode()
    assert len(table) == 256 and len(set(table.values())) == 256
    assert all(c.isprintable() and not c.isspace() for c in table.values())
    assert table[ord("A")] == "A" and table[ord(" ")] == "\u0120"  # GPT-2's "Ġ"


def test_training_learns_the_most_frequent_pairs_first() -> None:
    tok = BPETokenizer.train("aaabdaaabac", vocab_size=259, special_tokens=())
    # aa (4 times) first; then ab and (aa, a) tie at 2: the smaller pair (97, 98) wins.
    assert [tok.token_bytes(256 + i) for i in range(3)] == [b"aa", b"ab", b"aaab"]
    assert tok.n_vocab == 259
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]


def test_training_is_deterministic_and_sized(trained: BPETokenizer) -> None:
    again = BPETokenizer.train(CORPUS, vocab_size=350)
    assert again.mergeable_ranks == trained.mergeable_ranks
    assert trained.n_vocab == 350
    assert trained.special_tokens == {"<|endoftext|>": 349}
    assert len(trained.encode(CORPUS)) < len(CORPUS.encode("utf-8")) / 2


def test_special_tokens_are_not_learned_from_text() -> None:
    text = "hello<|endoftext|>world<|endoftext|>" * 50
    tok = BPETokenizer.train(text, vocab_size=265)
    assert not any(b"endoftext" in t or b"<|" in t for t in tok.mergeable_ranks)
    assert tok.encode("hello<|endoftext|>") == [*tok.encode("hello"), tok.eot_token]


def test_small_text_warns_and_stops() -> None:
    with pytest.warns(UserWarning, match="no more pairs"):
        tok = BPETokenizer.train("abab", vocab_size=1000)
    assert tok.n_vocab < 1000
    assert tok.decode(tok.encode("abab")) == "abab"


def test_train_bad_arguments() -> None:
    with pytest.raises(ValueError, match="vocab_size must be >= 257"):
        BPETokenizer.train("abc", vocab_size=100)
    with pytest.raises(TypeError, match="vocab_size must be an int"):
        BPETokenizer.train("abc", vocab_size=300.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text must be a str"):
        BPETokenizer.train(b"abc", vocab_size=300)  # type: ignore[arg-type]


def test_special_token_handling(trained: BPETokenizer) -> None:
    eot = trained.eot_token
    assert trained.encode("a<|endoftext|>b") == [*trained.encode("a"), eot, *trained.encode("b")]
    with pytest.raises(ValueError, match="disallowed_special=\\(\\)"):
        trained.encode("a<|endoftext|>b", allowed_special=set())
    ordinary = trained.encode("a<|endoftext|>b", allowed_special=set(), disallowed_special=())
    assert eot not in ordinary and ordinary == trained.encode_ordinary("a<|endoftext|>b")
    assert trained.decode(ordinary) == "a<|endoftext|>b"


def test_decode_errors(trained: BPETokenizer) -> None:
    with pytest.raises(ValueError, match="not in this tokenizer's vocabulary"):
        trained.decode([10**6])
    # A multi-byte character cut in two decodes with a replacement character.
    ids = trained.encode("日")
    assert trained.decode(trained.encode("日") + ids) == "日日"
    assert "\ufffd" in trained.decode([trained.mergeable_ranks[b"\xe6"]])


def test_lone_surrogates_are_replaced_like_tiktoken(trained: BPETokenizer) -> None:
    assert trained.decode(trained.encode("a\ud800b")) == "a\ufffdb"


def test_heap_merge_equals_linear_merge(trained: BPETokenizer) -> None:
    rng = random.Random(0)
    alphabet = b"the quick brown fox 2024"
    for _ in range(300):
        piece = bytes(rng.choice(alphabet) for _ in range(rng.randint(2, 200)))
        assert trained._merge_heap(piece) == trained._merge_linear(piece)
    long_word = "x" * 5000 + "the" * 2000
    assert trained.decode(trained.encode(long_word)) == long_word


def test_save_load_roundtrip(trained: BPETokenizer, tmp_path: Path) -> None:
    path = tmp_path / "tok.json"
    trained.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded.mergeable_ranks == trained.mergeable_ranks
    assert loaded.special_tokens == trained.special_tokens
    assert loaded.merges == trained.merges
    assert loaded.encode(CORPUS) == trained.encode(CORPUS)


def test_load_rejects_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="not a BPETokenizer file"):
        BPETokenizer.load(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        BPETokenizer.load(bad)


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="all 256 single-byte tokens"):
        BPETokenizer({b"a": 0})
    ranks = {bytes([b]): b for b in range(256)}
    with pytest.raises(ValueError, match="already the id"):
        BPETokenizer(ranks, {"<|endoftext|>": 5})


@PROPERTY
@given(any_text)
def test_roundtrip_property(trained: BPETokenizer, text: str) -> None:
    assert trained.decode(trained.encode(text, disallowed_special=())) == text


@PROPERTY
@given(any_text)
def test_trained_tokenizer_matches_tiktoken_with_the_same_ranks(
    trained: BPETokenizer, text: str
) -> None:
    # tiktoken applies the same merge rule; with our ranks it must give the same ids.
    reference = _trained_tiktoken(trained)
    assert trained.encode(text, allowed_special="all") == reference.encode(
        text, allowed_special="all"
    )


_TIKTOKEN_CACHE: dict[int, Any] = {}


def _trained_tiktoken(tok: BPETokenizer) -> Any:
    if id(tok) not in _TIKTOKEN_CACHE:
        _TIKTOKEN_CACHE[id(tok)] = tok.to_tiktoken()
    return _TIKTOKEN_CACHE[id(tok)]


# --------------------------------------------------------------------------- GPT-2 files
def _write_gpt2_style_files(folder: Path, merges: list[tuple[str, str]]) -> tuple[Path, Path]:
    table = bytes_to_unicode()
    encoder = {table[b]: i for i, b in enumerate(range(256))}
    for left, right in merges:
        encoder[left + right] = len(encoder)
    encoder["<|endoftext|>"] = len(encoder)
    vocab = folder / "vocab.bpe"
    vocab.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    enc = folder / "encoder.json"
    enc.write_text(json.dumps(encoder))
    return vocab, enc


def test_from_gpt2_on_small_synthetic_files(tmp_path: Path) -> None:
    vocab, enc = _write_gpt2_style_files(tmp_path, [("a", "b"), ("\u0120", "ab")])
    tok = BPETokenizer.from_gpt2(vocab, enc)
    assert tok.encode("ab ab") == [256, 257]
    assert tok.eot_token == 258
    assert tok.decode([256, 257, 258]) == "ab ab<|endoftext|>"


def test_from_gpt2_rejects_mismatched_files(tmp_path: Path) -> None:
    vocab, enc = _write_gpt2_style_files(tmp_path, [("a", "b"), ("c", "d")])
    vocab.write_text("#version: 0.2\nc d\na b\n")
    with pytest.raises(ValueError, match="do not belong together"):
        BPETokenizer.from_gpt2(vocab, enc)
    with pytest.raises(ValueError, match="pass both"):
        BPETokenizer.from_gpt2(vocab_path=vocab)
    with pytest.raises(FileNotFoundError, match="fetch"):
        BPETokenizer.from_gpt2(tmp_path / "nope.bpe", enc)


@pytest.fixture(scope="module")
def gpt2_bpe() -> BPETokenizer:
    try:
        folder = fetch("gpt2-vocab", download=False)
    except DataNotAvailableError:
        pytest.skip(
            "GPT-2's vocab.bpe/encoder.json not found locally: set TINYGRAD_LLM_DATA_DIR to a "
            "folder holding gpt2/vocab.bpe and gpt2/encoder.json"
        )
    return BPETokenizer.from_gpt2(folder / "vocab.bpe", folder / "encoder.json")


@pytest.fixture(scope="module")
def tiktoken_gpt2() -> Any:
    import tiktoken

    try:
        return tiktoken.get_encoding("gpt2")
    except Exception as exc:  # noqa: BLE001 - tiktoken's offline errors vary
        pytest.skip(f"tiktoken cannot load gpt2 (set TIKTOKEN_CACHE_DIR): {exc!r:.200}")


def test_gpt2_book_example(gpt2_bpe: BPETokenizer) -> None:
    text = "Hello, do you like tea? <|endoftext|> In the sunlit terraces of someunknownPlace."
    ids = [15496, 11, 466, 345, 588, 8887, 30, 220, 50256, 554, 262, 4252, 18250, 8812, 2114,
           286, 617, 34680, 27271, 13]  # fmt: skip
    assert gpt2_bpe.encode(text) == ids
    assert gpt2_bpe.decode(ids) == text
    assert gpt2_bpe.n_vocab == 50257
    # Section 2.5's unknown word "Akwirw ier" splits into sub-word pieces.
    assert gpt2_bpe.encode("Akwirw ier") == [33901, 86, 343, 86, 220, 959]


@PROPERTY
@given(any_text)
def test_gpt2_matches_tiktoken(gpt2_bpe: BPETokenizer, tiktoken_gpt2: Any, text: str) -> None:
    assert gpt2_bpe.encode(text, allowed_special="all") == tiktoken_gpt2.encode(
        text, allowed_special="all"
    )
    ordinary = gpt2_bpe.encode(text, allowed_special=set(), disallowed_special=())
    assert ordinary == tiktoken_gpt2.encode(text, disallowed_special=())
    assert gpt2_bpe.decode(ordinary) == tiktoken_gpt2.decode(ordinary) == text


def test_gpt2_matches_tiktoken_on_tricky_strings(
    gpt2_bpe: BPETokenizer, tiktoken_gpt2: Any
) -> None:
    samples = [
        "", " ", "   ", "\n\n\n", "a  b", "  hello  ", "I'm here, they'LL come", "x" * 300,
        "1234567890" * 5, "<|endoftext|><|endoftext|>", "<|endoftext|", "naïve café 🙂🙃",
        "\u0085\u00a0\u1680\u2000\u3000", "\ud83d", "tab\tand\rreturn",
    ]  # fmt: skip
    for s in samples:
        assert gpt2_bpe.encode(s) == tiktoken_gpt2.encode(s, allowed_special="all"), s


def test_gpt2_matches_tiktoken_on_the_verdict(gpt2_bpe: BPETokenizer, tiktoken_gpt2: Any) -> None:
    try:
        path = fetch("the-verdict", download=False)
    except DataNotAvailableError:
        pytest.skip("the-verdict.txt not found locally (set TINYGRAD_LLM_DATA_DIR)")
    text = path.read_text(encoding="utf-8")
    ids = gpt2_bpe.encode(text)
    assert ids == tiktoken_gpt2.encode(text, allowed_special="all")
    assert len(ids) == 5145  # the book's count for "the-verdict"
    assert gpt2_bpe.decode(ids) == text
