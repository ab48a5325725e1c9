"""Chapter 5, section 5.5: loading OpenAI's GPT-2 weights and generating with them.

Run:

    .venv/bin/python examples/06_load_gpt2.py --size 124M --prompt "Every effort moves you"
    .venv/bin/python examples/06_load_gpt2.py --weights path/to/gpt2-folder-or-file

The weights come in the public Hugging Face safetensors layout (``wte``, ``h.N.attn.c_attn``
with Q, K and V fused and stored (in, out), ...) and are mapped onto GPTModel's names by the
one table in ``tinygrad_llm/io.py``. ``--size`` downloads from the model hub into the cache
on first use; offline, the example says where it looked and how to give it a file instead.

``--tiny`` needs no download: it exports a small random GPTModel in GPT-2's layout,
loads it back with the same loader and checks that the outputs are identical — the round
trip every real load goes through.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np

from tinygrad_llm import GPTConfig, GPTModel, io
from tinygrad_llm.data import get_tokenizer
from tinygrad_llm.generate import generate, text_to_token_ids, token_ids_to_text
from tinygrad_llm.random import manual_seed


def tiny_round_trip() -> None:
    manual_seed(0)
    cfg = GPTConfig(vocab_size=50257, context_length=32, emb_dim=32, n_heads=4, n_layers=2,
                    drop_rate=0.0, qkv_bias=True, tie_weights=True)
    model = GPTModel(cfg).eval()
    with tempfile.TemporaryDirectory() as folder:
        io.export_gpt2(model, folder)
        back = io.load_gpt2(folder)
    ids = np.array([[15496, 11, 314, 716]])
    same = np.array_equal(model(ids).data, back(ids).data)
    print(f"exported and re-loaded a {model.num_parameters():,}-parameter model in GPT-2's "
          f"layout: outputs identical: {same}")
    if not same:
        sys.exit(1)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="124M", help="124M | 355M | 774M | 1558M")
    ap.add_argument("--weights", help="a model.safetensors file or a folder holding one")
    ap.add_argument("--prompt", default="Every effort moves you")
    ap.add_argument("--max-new-tokens", type=int, default=25)
    ap.add_argument("--temperature", type=float, default=1.5)
    ap.add_argument("--top-k", type=int, default=50)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--tiny", action="store_true", help="round trip a small model, no download")
    args = ap.parse_args(argv)
    if args.tiny:
        tiny_round_trip()
        return
    start = time.perf_counter()
    try:
        model = io.load_gpt2(args.weights or args.size)
    except Exception as e:  # offline and not cached: say what to do instead
        sys.exit(f"Could not load GPT-2 weights: {e}\nGive a local file with --weights, or "
                 f"run once with network access to fill the cache.")
    print(f"Loaded GPT-2 ({model.num_parameters():,} parameters) in "
          f"{time.perf_counter() - start:.1f} s")
    tokenizer = get_tokenizer("gpt2")
    ids = text_to_token_ids(args.prompt, tokenizer)
    out = generate(model, ids, max_new_tokens=args.max_new_tokens,
                   temperature=args.temperature, top_k=args.top_k, seed=args.seed)
    print(token_ids_to_text(out, tokenizer))


if __name__ == "__main__":
    main()
