"""Throughput of the from-scratch GPT-2 BPE tokenizer vs tiktoken (chapter 2, section 2.5).

Run (offline, with the data folder):

    TINYGRAD_LLM_DATA_DIR=../shared/data TIKTOKEN_CACHE_DIR=../shared/tiktoken-cache \\
        .venv/bin/python benchmarks/bench_tokenizer.py

It encodes tinyshakespeare (about 1.1 MB, found with ``fetch("tinyshakespeare")``) ``--runs``
times with each tokenizer and prints one JSON line with the median throughput in MB/s
(10^6 UTF-8 bytes per second):

* ``bpe_cold_mb_s``: :class:`BPETokenizer` with its per-piece cache emptied before each run
  (every distinct word is merged once per run);
* ``bpe_warm_mb_s``: the same with the cache kept from the previous run;
* ``tiktoken_mb_s``: ``tiktoken``'s gpt2 ``encode`` (Rust, one thread);
* ``same_ids``: whether both produced identical ids (they must).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from tinygrad_llm.data import BPETokenizer, fetch, get_tokenizer


def median_seconds(fn: Callable[[], object], runs: int, before: Callable[[], None]) -> float:
    times = []
    for _ in range(runs):
        before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per tokenizer")
    parser.add_argument("--data-dir", help="folder with tinyshakespeare.txt and gpt2/")
    parser.add_argument("--text", help="benchmark on this UTF-8 file instead")
    args = parser.parse_args(argv)

    if args.text:
        path = Path(args.text)
    else:
        path = fetch("tinyshakespeare", data_dir=args.data_dir)
    text = path.read_text(encoding="utf-8")
    n_bytes = len(text.encode("utf-8"))

    start = time.perf_counter()
    gpt2_dir = fetch("gpt2-vocab", data_dir=args.data_dir)
    bpe = BPETokenizer.from_gpt2(gpt2_dir / "vocab.bpe", gpt2_dir / "encoder.json")
    load_s = time.perf_counter() - start
    encoding = get_tokenizer("gpt2").encoding

    bpe_ids = bpe.encode(text)
    tik_ids = encoding.encode(text, allowed_special="all")

    cold = median_seconds(lambda: bpe.encode(text), args.runs, bpe._cache.clear)
    warm = median_seconds(lambda: bpe.encode(text), args.runs, lambda: None)
    tik = median_seconds(
        lambda: encoding.encode(text, allowed_special="all"), args.runs, lambda: None
    )
    result = {
        "benchmark": "tokenizer",
        "text": path.name,
        "bytes": n_bytes,
        "tokens": len(tik_ids),
        "runs": args.runs,
        "bpe_load_s": round(load_s, 3),
        "bpe_cold_mb_s": round(n_bytes / cold / 1e6, 2),
        "bpe_warm_mb_s": round(n_bytes / warm / 1e6, 2),
        "tiktoken_mb_s": round(n_bytes / tik / 1e6, 2),
        "tiktoken_over_bpe_cold": round(cold / tik, 2),
        "same_ids": bpe_ids == tik_ids,
        "python": platform.python_version(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
