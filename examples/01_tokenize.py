"""Chapter 2 walk-through: from raw text to token ids.

Run (offline, with the data folder):

    TINYGRAD_LLM_DATA_DIR=../shared/data TIKTOKEN_CACHE_DIR=../shared/tiktoken-cache \\
        .venv/bin/python examples/01_tokenize.py

or on any text file: ``.venv/bin/python examples/01_tokenize.py --text my.txt``.

What you see, section by section of the book (numbers for "the-verdict"):

* 2.2 the text: 20479 characters; split into words and punctuation: 4690 tokens;
* 2.3 a vocabulary of 1130 words; SimpleTokenizerV1 encodes the book's sentence to
  ``[1, 56, 2, 850, 988, 602, 533, 746, 5, 1126, 596, 5, 1, 67, 7, 38, 851, 1108, 754, 793, 7]``
  and refuses the unknown word "Hello";
* 2.4 with ``<|endoftext|>`` and ``<|unk|>`` the vocabulary has 1132 entries and
  SimpleTokenizerV2 encodes two joined texts with unknown words;
* 2.5 GPT-2's BPE (tiktoken): ``[15496, 11, 466, 345, 588, 8887, 30, 220, 50256, ...]``, the
  unknown word "Akwirw ier" in sub-word pieces, 5145 tokens for the whole story; then a
  byte-level BPE trained from scratch on the same text (``--train-vocab``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tinygrad_llm.data import (
    BPETokenizer,
    SimpleTokenizerV1,
    SimpleTokenizerV2,
    build_vocab,
    fetch,
    get_tokenizer,
    simple_split,
)

BOOK_SENTENCE = '"It\'s the last he painted, you know," Mrs. Gisburn said with pardonable pride.'
BOOK_BPE_SAMPLE = (
    "Hello, do you like tea? <|endoftext|> In the sunlit terraces of someunknownPlace."
)


def load_text(args: argparse.Namespace) -> tuple[str, str]:
    if args.text is not None:
        return Path(args.text).read_text(encoding="utf-8"), str(args.text)
    path = fetch("the-verdict", data_dir=args.data_dir)
    return path.read_text(encoding="utf-8"), str(path)


def section(title: str) -> None:
    print(f"\n=== {title} ===")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="folder with the-verdict.txt (else the data fetcher)")
    parser.add_argument("--text", help="tokenize this UTF-8 file instead of 'the-verdict'")
    parser.add_argument("--train-vocab", type=int, default=512, help="from-scratch BPE size")
    args = parser.parse_args(argv)

    raw_text, where = load_text(args)
    section("2.2 Tokenizing text")
    print(f"Text: {where}")
    print("Total number of characters:", len(raw_text))
    print(repr(raw_text[:99]))
    tokens = simple_split(raw_text)
    print("Tokens after splitting on whitespace and punctuation:", len(tokens))
    print(tokens[:30])

    section("2.3 Converting tokens into token IDs")
    vocab = build_vocab(raw_text)
    print("Vocabulary size:", len(vocab))
    for i, (token, tid) in enumerate(vocab.items()):
        if i >= 10:
            break
        print(f"  ({token!r}, {tid})")
    tokenizer = SimpleTokenizerV1(vocab)
    sample = BOOK_SENTENCE
    if any(t not in vocab for t in simple_split(sample)):  # a text other than the story
        sample = next(line.strip() for line in raw_text.splitlines() if line.strip())
    ids = tokenizer.encode(sample)
    print("SimpleTokenizerV1.encode:", ids)
    print("decode:", tokenizer.decode(ids))
    try:
        tokenizer.encode("Hello, do you like tea?")
    except ValueError as exc:
        print("Unknown word ->", exc)

    section("2.4 Adding special context tokens")
    vocab2 = build_vocab(raw_text, special_tokens=("<|endoftext|>", "<|unk|>"))
    print("Vocabulary size with <|endoftext|> and <|unk|>:", len(vocab2))
    for token, tid in list(vocab2.items())[-5:]:
        print(f"  ({token!r}, {tid})")
    tokenizer2 = SimpleTokenizerV2(vocab2)
    text = SimpleTokenizerV2.join(
        ["Hello, do you like tea?", "In the sunlit terraces of the palace."]
    )
    print(text)
    ids2 = tokenizer2.encode(text)
    print("SimpleTokenizerV2.encode:", ids2)
    print("decode:", tokenizer2.decode(ids2))

    section("2.5 Byte pair encoding (GPT-2, via tiktoken)")
    try:
        gpt2 = get_tokenizer("gpt2")
    except RuntimeError as exc:
        print("GPT-2 BPE unavailable:", exc)
    else:
        ids3 = gpt2.encode(BOOK_BPE_SAMPLE)
        print(BOOK_BPE_SAMPLE)
        print("GPT-2 ids:", ids3)
        print("decode:", gpt2.decode(ids3))
        pieces = gpt2.encode("Akwirw ier")
        print("'Akwirw ier' ->", pieces, "->", [gpt2.decode([p]) for p in pieces])
        print("GPT-2 tokens in the whole text:", len(gpt2.encode(raw_text)))

    section(f"2.5 Byte-level BPE trained from scratch (vocab_size={args.train_vocab})")
    start = time.perf_counter()
    bpe = BPETokenizer.train(raw_text, vocab_size=args.train_vocab)
    print(f"Trained in {time.perf_counter() - start:.2f} s: {bpe}")
    learned = [bpe.token_bytes(256 + i) for i in range(min(10, bpe.n_vocab - 257))]
    print("First merges:", learned)
    ids4 = bpe.encode(raw_text)
    print(
        f"Whole text: {len(raw_text.encode('utf-8'))} bytes -> {len(ids4)} tokens "
        f"({len(raw_text.encode('utf-8')) / len(ids4):.2f} bytes per token)"
    )
    assert bpe.decode(ids4) == raw_text


if __name__ == "__main__":
    main()
