"""Chapter 2, sections 2.6-2.8: sliding-window batches, then token + position embeddings.

Run (offline, with the data folder):

    TINYGRAD_LLM_DATA_DIR=../shared/data TIKTOKEN_CACHE_DIR=../shared/tiktoken-cache \\
        .venv/bin/python examples/02_data_sampling.py

or on any text file: ``.venv/bin/python examples/02_data_sampling.py --text my.txt``.

What you see (numbers for "the-verdict" with GPT-2's BPE):

* 5145 token ids; the next-word pairs of the book (``[290] ----> 4920``, "and ---->
  established", ...);
* ``create_dataloader(batch_size=1, max_length=4, stride=1, shuffle=False)``: the first
  batches, ``[[40, 367, 2885, 1464]]`` -> ``[[367, 2885, 1464, 1807]]`` and the next one
  shifted by one token;
* ``batch_size=8, max_length=4, stride=4``: an (8, 4) int64 input batch and its targets;
* embeddings: a (50257, 256) token table and a (4, 256) position table (plain NumPy,
  seeded random values, standing in for the model's Embedding layers): token embeddings
  (8, 4, 256) + position embeddings (4, 256) = input embeddings (8, 4, 256).

If GPT-2's BPE files are unavailable, the example says so and uses SimpleTokenizerV2 built
from the text instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_llm.data import (
    SimpleTokenizerV2,
    build_vocab,
    create_dataloader,
    fetch,
    get_tokenizer,
)


def load_text(args: argparse.Namespace) -> tuple[str, str]:
    if args.text is not None:
        return Path(args.text).read_text(encoding="utf-8"), str(args.text)
    path = fetch("the-verdict", data_dir=args.data_dir)
    return path.read_text(encoding="utf-8"), str(path)


def pick_tokenizer(raw_text: str) -> tuple[Any, int]:
    try:
        tokenizer = get_tokenizer("gpt2")
        return tokenizer, tokenizer.n_vocab
    except RuntimeError as exc:
        print(f"GPT-2 BPE unavailable ({str(exc)[:120]}...); using SimpleTokenizerV2 instead")
        vocab = build_vocab(raw_text, special_tokens=("<|endoftext|>", "<|unk|>"))
        return SimpleTokenizerV2(vocab), len(vocab)


def section(title: str) -> None:
    print(f"\n=== {title} ===")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="folder with the-verdict.txt (else the data fetcher)")
    parser.add_argument("--text", help="use this UTF-8 file instead of 'the-verdict'")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=4)
    parser.add_argument("--output-dim", type=int, default=256, help="embedding size")
    parser.add_argument("--seed", type=int, default=123, help="seeds the embedding tables")
    args = parser.parse_args(argv)

    raw_text, where = load_text(args)
    tokenizer, vocab_size = pick_tokenizer(raw_text)
    enc_text = tokenizer.encode(raw_text)

    section("2.6 Data sampling with a sliding window")
    print(f"Text: {where}")
    print("Number of tokens:", len(enc_text))
    enc_sample = enc_text[50:]
    context_size = 4
    x, y = enc_sample[:context_size], enc_sample[1 : context_size + 1]
    print(f"x: {x}")
    print(f"y:      {y}")
    for i in range(1, context_size + 1):
        context, desired = enc_sample[:i], enc_sample[i]
        print(f"{context} ----> {desired}".ljust(40), "|", tokenizer.decode(context), "---->",
              tokenizer.decode([desired]))  # fmt: skip

    loader = create_dataloader(
        raw_text, batch_size=1, max_length=4, stride=1, shuffle=False, tokenizer=tokenizer
    )
    batches = iter(loader)
    print("\nbatch_size=1, max_length=4, stride=1:")
    print("first batch: ", [a.tolist() for a in next(batches)])
    print("second batch:", [a.tolist() for a in next(batches)])

    loader = create_dataloader(
        raw_text,
        batch_size=args.batch_size,
        max_length=args.max_length,
        stride=args.max_length,
        shuffle=False,
        tokenizer=tokenizer,
    )
    inputs, targets = next(iter(loader))
    print(f"\nbatch_size={args.batch_size}, max_length={args.max_length}, stride={args.max_length}"
          f" ({len(loader)} batches per epoch):")  # fmt: skip
    print("Inputs:\n", inputs)
    print("Targets:\n", targets)
    print("dtype:", inputs.dtype, "shape:", inputs.shape)

    section("2.7-2.8 Token embeddings + position embeddings")
    rng = np.random.default_rng(args.seed)
    token_table = rng.standard_normal((vocab_size, args.output_dim), dtype=np.float32)
    pos_table = rng.standard_normal((args.max_length, args.output_dim), dtype=np.float32)
    print("Token embedding table:", token_table.shape)
    print("Position embedding table:", pos_table.shape)
    print("Token IDs:\n", inputs)
    print("Inputs shape:", inputs.shape)
    token_embeddings = token_table[inputs]  # an embedding layer is a row lookup
    print("Token embeddings shape:", token_embeddings.shape)
    pos_embeddings = pos_table[np.arange(args.max_length)]
    print("Position embeddings shape:", pos_embeddings.shape)
    input_embeddings = token_embeddings + pos_embeddings
    print("Input embeddings shape:", input_embeddings.shape)


if __name__ == "__main__":
    main()
