"""Generation throughput of GPT-2 small (124M, random weights): decoding with and without
the KV cache, and prefill.

    .venv/bin/python benchmarks/bench_generate.py --runs 3               (a few minutes)
    .venv/bin/python benchmarks/bench_generate.py --backend numpy --runs 1
    .venv/bin/python benchmarks/bench_generate.py --tiny                  (seconds)

Measures, batch 1, greedy, in eval mode:
  - decode tokens/s: ``generate`` of 200 new tokens after a 16-token prompt, with the KV
    cache (prefill once, then one token per step) and without it (every step runs the
    whole sequence so far, last-position head only);
  - prefill tokens/s: one forward pass over a 1024-token prompt into an empty KV cache,
    logits of the last position only.
Each is the median of ``--runs`` timed runs after ``--warmup`` untimed ones (Numba JIT,
caches). Prints one JSON line with the numbers and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from tinygrad_llm import PRESETS, GPTModel, generate, manual_seed, no_grad, use_backend


def median_seconds(fn: Callable[[], object], runs: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine() -> dict:
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "machine": platform.machine(), "system": platform.system(),
            "cpus": os.cpu_count(), "processor": platform.processor() or None}
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:
        pass
    if hasattr(os, "getloadavg"):  # other work on the machine skews the numbers
        info["loadavg_1m"] = round(os.getloadavg()[0], 2)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    return info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["numpy", "numba"], default="numba")
    parser.add_argument("--tiny", action="store_true", help="the 'tiny' preset, short runs")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--prefill-tokens", type=int, default=1024)
    parser.add_argument("--no-cache-runs", type=int, default=None,
                        help="timed runs without the cache (default: --runs; it is slow)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    name = "tiny" if args.tiny else "gpt2-small (124M)"
    cfg = PRESETS[name]
    prefill = min(args.prefill_tokens, cfg.context_length)
    new = args.new_tokens if not args.tiny else min(args.new_tokens, 50)
    rng = np.random.default_rng(args.seed)
    prompt = rng.integers(0, cfg.vocab_size, (1, args.prompt_tokens))
    long_prompt = rng.integers(0, cfg.vocab_size, (1, prefill))

    with use_backend(args.backend):
        manual_seed(args.seed)
        model = GPTModel(cfg).eval()

        def decode(use_cache: bool) -> Callable[[], object]:
            return lambda: generate(model, prompt, max_new_tokens=new, use_cache=use_cache)

        def run_prefill() -> None:
            with no_grad():
                model(long_prompt, kv_cache=model.make_kv_cache(1), last_only=True)

        cached_s = median_seconds(decode(True), args.runs, args.warmup)
        no_cache_runs = args.runs if args.no_cache_runs is None else args.no_cache_runs
        # no warm-up of its own: the cached runs above already compiled every kernel
        uncached_s = median_seconds(decode(False), no_cache_runs, 0)
        prefill_s = median_seconds(run_prefill, args.runs, args.warmup)
        same = np.array_equal(decode(True)(), decode(False)()) if args.tiny else None

    result = {
        "benchmark": "generate", "model": name, "parameters": model.num_parameters(),
        "backend": args.backend, "batch": 1, "prompt_tokens": args.prompt_tokens,
        "new_tokens": new, "runs": args.runs, "no_cache_runs": no_cache_runs,
        "decode_kv_cache_tok_s": round(new / cached_s, 2),
        "decode_no_cache_tok_s": round(new / uncached_s, 2),
        "kv_cache_speedup": round(uncached_s / cached_s, 2),
        "prefill_tokens": prefill, "prefill_tok_s": round(prefill / prefill_s, 1),
        "same_tokens": same, **machine(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
