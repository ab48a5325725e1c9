"""Chapter 4 walk-through: build GPT-2 small (124M), count its parameters, and generate text
with it untrained (gibberish: training is chapter 5).

Run (about 15 s and 1.1 GB of memory for the 124M model; ``--tiny`` takes a second):

    TIKTOKEN_CACHE_DIR=../shared/tiktoken-cache .venv/bin/python examples/04_gpt_model.py
    .venv/bin/python examples/04_gpt_model.py --tiny

What you see:

* 4.1 the book's batch "Every effort moves you" / "Every day holds a" as token ids
  ``[[6109, 3626, 6100, 345], [6109, 1110, 6622, 257]]`` and the model's output shape
  (2, 4, 50257): one score per vocabulary entry for each position;
* 4.6 the parameter count: 163,009,536 in total, of which the output head is
  50257 x 768 = 38,597,376, so 124,412,160 when the head is tied to the token embedding
  as in GPT-2 (the "124M"), and 621.83 MB at float32;
* 4.7 greedy generation from "Hello, I am": the book's ``generate_text_simple`` adds
  6 tokens, and ``generate`` with its KV cache gives the same tokens (then 40 more,
  timed with and without the cache). The text is random words: the weights are untrained.

Without the GPT-2 tokenizer files (tiktoken needs them offline: set TIKTOKEN_CACHE_DIR to a
folder holding them, e.g. ../shared/tiktoken-cache) it says so and uses fixed token ids.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tinygrad_llm import (
    PRESETS,
    GPTModel,
    generate,
    generate_text_simple,
    manual_seed,
    text_to_token_ids,
    token_ids_to_text,
    use_backend,
)

BATCH_TEXTS = ["Every effort moves you", "Every day holds a"]
BOOK_BATCH = np.array([[6109, 3626, 6100, 345], [6109, 1110, 6622, 257]])  # their GPT-2 ids


def section(title: str) -> None:
    print(f"\n=== {title} ===")


def load_tokenizer():
    """tiktoken's GPT-2 encoding, or None (with a note on how to get it)."""
    try:
        import tiktoken

        return tiktoken.get_encoding("gpt2")
    except Exception as e:  # not installed, or offline without its files
        print(f"(GPT-2 tokenizer unavailable: {str(e)[:100]})\n"
              f"(set TIKTOKEN_CACHE_DIR to a folder with tiktoken's gpt2 files, e.g. "
              f"TIKTOKEN_CACHE_DIR=../shared/tiktoken-cache; using fixed token ids instead)")
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="the 'tiny' preset: a fast smoke run")
    parser.add_argument("--preset", default="gpt2-small (124M)", choices=list(PRESETS))
    parser.add_argument("--prompt", default="Hello, I am")
    parser.add_argument("--max-new-tokens", type=int, default=6)
    parser.add_argument("--more-tokens", type=int, default=40,
                        help="extra tokens for the cache / no-cache timing")
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--backend", choices=["numpy", "numba"], default="numba")
    args = parser.parse_args(argv)
    cfg = PRESETS["tiny" if args.tiny else args.preset]
    tokenizer = load_tokenizer()

    with use_backend(args.backend):
        section("4.1 A GPT model and a batch of two texts")
        print(f"config: {cfg.to_dict()}")
        manual_seed(args.seed)
        t0 = time.perf_counter()
        model = GPTModel(cfg)
        model.eval()  # no dropout: the same input always gives the same output
        print(f"built in {time.perf_counter() - t0:.1f} s")
        if tokenizer is not None:
            batch = np.concatenate([text_to_token_ids(t, tokenizer) for t in BATCH_TEXTS])
        else:
            batch = BOOK_BATCH
        print(f"batch (token ids):\n{batch}")
        logits = model(batch)
        print(f"output shape: {logits.shape}  (batch, tokens, vocab_size)")
        print(f"logits of the first text's first token (first 5): {logits.data[0, 0, :5]}")

        section("4.6 Parameters and memory")
        report = model.parameter_report()
        print(report)
        print(f"token embedding layer shape: {model.tok_emb.weight.shape}")
        print(f"output layer shape: {model.out_head.weight.shape}")
        block = model.trf_blocks[0]
        print(f"one transformer block: {block.num_parameters():,} parameters "
              f"(attention {block.att.num_parameters():,}, feed-forward "
              f"{block.ff.num_parameters():,})")

        section("4.7 Generating text (untrained: expect gibberish)")
        if tokenizer is not None:
            encoded = text_to_token_ids(args.prompt, tokenizer)
        else:
            encoded = np.array([[15496, 11, 314, 716]])  # "Hello, I am" in GPT-2 ids
        print(f"encoded: {encoded.tolist()[0]}")
        out = generate_text_simple(model, encoded, max_new_tokens=args.max_new_tokens,
                                   context_size=cfg.context_length)
        print(f"generate_text_simple: {out.tolist()[0]}")
        cached = generate(model, encoded, max_new_tokens=args.max_new_tokens)
        print(f"generate (KV cache) gives the same tokens: {np.array_equal(out, cached)}")
        if tokenizer is not None:
            print(f"decoded: {token_ids_to_text(out, tokenizer)!r}")

        n = args.max_new_tokens + args.more_tokens
        timings = {}
        for use_cache in (True, False):
            t0 = time.perf_counter()
            longer = generate(model, encoded, max_new_tokens=n, use_cache=use_cache)
            timings[use_cache] = time.perf_counter() - t0
        print(f"{n} new tokens: {n / timings[True]:.1f} tokens/s with the KV cache, "
              f"{n / timings[False]:.1f} tokens/s without")
        if tokenizer is not None:
            print(f"text: {token_ids_to_text(longer, tokenizer)!r}")


if __name__ == "__main__":
    main()
