"""Generation throughput of GPT-2 small (124M, random weights): decoding with and without
the KV cache, and prefill; with --vs-torch side by side with Hugging Face transformers'
``generate`` and a plain PyTorch GPT-2 with a KV cache, on the same weights.

    .venv/bin/python benchmarks/bench_generate.py --runs 3               (a few minutes)
    .venv/bin/python benchmarks/bench_generate.py --vs-torch --runs 5    (about 10 minutes)
    .venv/bin/python benchmarks/bench_generate.py --backend numpy --runs 1
    .venv/bin/python benchmarks/bench_generate.py --tiny --vs-torch      (seconds)

The model has GPT-2's published layout (qkv bias, output head tied to wte, as
``io.load_gpt2`` builds it) with GPT-2's random initialisation: the weights are random, so
the greedy text is meaningless, but every matrix has its real size. Measures, batch 1,
greedy, in eval mode:
  - decode tokens/s: ``generate`` of 200 new tokens after a 16-token prompt with the KV
    cache (prefill once, then one token per step), and without it (every step runs the
    whole sequence so far, last-position head only; --no-cache-tokens, fewer: it is slow);
  - prefill tokens/s: one forward pass over a 1024-token prompt into an empty KV cache,
    logits of the last position only.
Each is the median (and min-max) of ``--runs`` timed runs after ``--warmup`` untimed ones
(Numba JIT, first-touch of the caches). tinygrad_llm is imported before NumPy, as the CLI
does, so OpenBLAS's workers sleep right after each GEMM (see tinygrad_llm/__init__.py);
``OPENBLAS_THREAD_TIMEOUT=28`` in the environment gives OpenBLAS's own default instead.

--vs-torch (needs the ``bench`` extra: torch and transformers) adds, in the same process:
  - hf-generate: ``GPT2LMHeadModel(GPT2Config(...))`` with our weights copied in (through
    ``io.export_gpt2``'s layout), ``generate(max_new_tokens=n, do_sample=False,
    use_cache=True|False)``; its prefill is one forward with ``logits_to_keep=1``;
  - pytorch-kv: a plain PyTorch GPT-2 written below (bench_train.py's model plus a
    preallocated KV cache, F.scaled_dot_product_attention), greedy in a Python loop;
    its parameters are views of ours (torch.from_numpy), so no copy is made.
The runners alternate within each round with ``--pause`` seconds between runs, torch uses
as many threads as there are cores, under ``torch.inference_mode()``. The greedy tokens of
each are compared with ours (the same weights should give the same tokens; a late
difference can be a near-tie of two logits in float32), and the prefill logits too.
Prints a table and one JSON line with the numbers and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable

import tinygrad_llm  # noqa: F401  before NumPy, as a user's program would import it: see its
import numpy as np  # noqa: E402  __init__ (it sets OpenBLAS's thread timeout before NumPy loads)

from tinygrad_llm import (  # noqa: E402
    PRESETS,
    GPTModel,
    generate,
    manual_seed,
    no_grad,
    use_backend,
)

OURS = "tinygrad-llm"


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
    for var in ("OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT", "OMP_NUM_THREADS",
                "OPENBLAS_CORETYPE"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    return info


# ---------------------------------------------------------------------------------------
# The runners: decode(prompt, n, use_cache) -> the n new ids; prefill(ids) -> last logits


class Ours:
    name = OURS

    def __init__(self, model: GPTModel) -> None:
        self.model = model

    def decode(self, prompt: np.ndarray, n: int, use_cache: bool) -> np.ndarray:
        out = generate(self.model, prompt, max_new_tokens=n, use_cache=use_cache)
        return out[0, prompt.shape[1]:]

    def prefill(self, ids: np.ndarray) -> np.ndarray:
        with no_grad():
            logits = self.model(ids, kv_cache=self.model.make_kv_cache(1), last_only=True)
        return logits.data[0, -1]


class HFGenerate:
    """transformers' GPT2LMHeadModel and its ``generate``, our weights copied in."""

    name = "hf-generate"

    def __init__(self, model: GPTModel) -> None:
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        from tinygrad_llm.io import export_gpt2, load_safetensors

        cfg = model.cfg
        self.torch = torch
        hf_cfg = GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.context_length,
                            n_embd=cfg.emb_dim, n_layer=cfg.n_layers, n_head=cfg.n_heads,
                            tie_word_embeddings=cfg.tie_weights, resid_pdrop=0.0,
                            embd_pdrop=0.0, attn_pdrop=0.0)
        self.model = GPT2LMHeadModel(hf_cfg).eval()
        with tempfile.TemporaryDirectory() as tmp:  # the project's one GPT-2 name table
            tensors, _ = load_safetensors(export_gpt2(model, tmp) / "model.safetensors")
        sd = {(k if k.startswith("lm_head.") else f"transformer.{k}"): torch.from_numpy(v.copy())
              for k, v in tensors.items()}
        missing, unexpected = self.model.load_state_dict(sd, strict=False)
        missing = [k for k in missing if not (k == "lm_head.weight" and cfg.tie_weights)]
        if missing or unexpected:
            raise RuntimeError(f"HF GPT-2: missing {missing}, unexpected {unexpected}")
        if cfg.tie_weights:
            assert self.model.lm_head.weight.data_ptr() == \
                self.model.transformer.wte.weight.data_ptr()
        # no early stop at <|endoftext|>: every runner makes exactly n tokens
        self.model.generation_config.eos_token_id = None
        self.model.generation_config.pad_token_id = 0

    def decode(self, prompt: np.ndarray, n: int, use_cache: bool) -> np.ndarray:
        ids = self.torch.from_numpy(prompt)
        with self.torch.inference_mode():
            out = self.model.generate(ids, attention_mask=self.torch.ones_like(ids),
                                      max_new_tokens=n, min_new_tokens=0, do_sample=False,
                                      use_cache=use_cache)
        new = out[0, prompt.shape[1]:].numpy()
        assert len(new) == n, (len(new), n)
        return new

    def prefill(self, ids: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            out = self.model(self.torch.from_numpy(ids), use_cache=True, logits_to_keep=1)
        return out.logits[0, -1].numpy()


class TorchKV:
    """A plain PyTorch GPT-2 with a preallocated KV cache; parameters are views of ours."""

    name = "pytorch-kv"

    def __init__(self, model: GPTModel) -> None:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        cfg = model.cfg
        c, h = cfg.emb_dim, cfg.n_heads
        d = c // h

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.norm1, self.norm2 = nn.LayerNorm(c), nn.LayerNorm(c)
                self.W_query = nn.Linear(c, c, bias=cfg.qkv_bias)
                self.W_key = nn.Linear(c, c, bias=cfg.qkv_bias)
                self.W_value = nn.Linear(c, c, bias=cfg.qkv_bias)
                self.out_proj = nn.Linear(c, c)
                self.fc1, self.fc2 = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

            def forward(self, x, k_cache, v_cache, pos: int):
                b, t, _ = x.shape
                y = self.norm1(x)
                q, k, v = (lin(y).view(b, t, h, d).transpose(1, 2)
                           for lin in (self.W_query, self.W_key, self.W_value))
                k_cache[:, :, pos:pos + t] = k
                v_cache[:, :, pos:pos + t] = v
                assert pos == 0 or t == 1  # prefill from empty, or one new token
                a = F.scaled_dot_product_attention(q, k_cache[:, :, :pos + t],
                                                   v_cache[:, :, :pos + t], is_causal=t > 1)
                x = x + self.out_proj(a.transpose(1, 2).reshape(b, t, c))
                return x + self.fc2(F.gelu(self.fc1(self.norm2(x)), approximate="tanh"))

        class GPT(nn.Module):
            def __init__(self):
                super().__init__()
                self.tok_emb = nn.Embedding(cfg.vocab_size, c)
                self.pos_emb = nn.Embedding(cfg.context_length, c)
                self.blocks = nn.ModuleList(Block() for _ in range(cfg.n_layers))
                self.final_norm = nn.LayerNorm(c)
                self.out_head = nn.Linear(c, cfg.vocab_size, bias=False)
                shape = (cfg.n_layers, 1, h, cfg.context_length, d)
                self.register_buffer("k_cache", torch.zeros(shape), persistent=False)
                self.register_buffer("v_cache", torch.zeros(shape), persistent=False)

            def forward(self, idx, pos: int):
                t = idx.shape[1]
                x = self.tok_emb(idx) + self.pos_emb(torch.arange(pos, pos + t))
                for i, blk in enumerate(self.blocks):
                    x = blk(x, self.k_cache[i], self.v_cache[i], pos)
                return self.out_head(self.final_norm(x[:, -1:]))  # (1, 1, V) last only

        self.torch = torch
        self.model = GPT().eval()
        ren = {"trf_blocks": "blocks", "norm1.scale": "norm1.weight",
               "norm1.shift": "norm1.bias", "norm2.scale": "norm2.weight",
               "norm2.shift": "norm2.bias", "final_norm.scale": "final_norm.weight",
               "final_norm.shift": "final_norm.bias", "att.": "", "ff.layers.0": "fc1",
               "ff.layers.2": "fc2"}
        sd = {}
        for name, p in model.named_parameters():
            for a, b in ren.items():
                name = name.replace(a, b)
            sd[name] = torch.from_numpy(p.data)  # shares memory with our parameter
        if cfg.tie_weights:
            sd["out_head.weight"] = sd["tok_emb.weight"]
        missing, unexpected = self.model.load_state_dict(sd, strict=False, assign=True)
        if missing or unexpected:
            raise RuntimeError(f"pytorch-kv: missing {missing}, unexpected {unexpected}")

    def decode(self, prompt: np.ndarray, n: int, use_cache: bool) -> np.ndarray:
        assert use_cache, "pytorch-kv always uses its cache"
        torch = self.torch
        out = []
        with torch.inference_mode():
            ids, pos = torch.from_numpy(prompt), 0
            for _ in range(n):
                logits = self.model(ids, pos)  # (1, 1, V)
                pos += ids.shape[1]
                ids = logits[:, -1].argmax(-1, keepdim=True)  # (1, 1)
                out.append(ids)
        return torch.cat(out, 1)[0].numpy()

    def prefill(self, ids: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(ids), 0)[0, -1].numpy()


# ---------------------------------------------------------------------------------------


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def summary(tokens: int, seconds: list[float]) -> dict:
    rates = [tokens / s for s in seconds]
    return {"tok_s_median": round(statistics.median(rates), 2),
            "tok_s_min": round(min(rates), 2), "tok_s_max": round(max(rates), 2),
            "runs": len(rates)}


def first_difference(a: np.ndarray, b: np.ndarray) -> int | None:
    """Index of the first differing token, None when equal."""
    diff = np.flatnonzero(np.asarray(a) != np.asarray(b))
    return int(diff[0]) if diff.size else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["numpy", "numba"], default="numba")
    parser.add_argument("--tiny", action="store_true", help="the 'tiny' preset, short runs")
    parser.add_argument("--vs-torch", action="store_true",
                        help="HF transformers' generate and a plain PyTorch GPT-2 side by side")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between runs")
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--no-cache-tokens", type=int, default=None,
                        help="new tokens of the runs without a cache (default: --new-tokens, "
                             "50 with --vs-torch)")
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--prefill-tokens", type=int, default=1024)
    parser.add_argument("--no-cache-runs", type=int, default=None,
                        help="timed runs without the cache (default: --runs; 0 skips them)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    name = "tiny" if args.tiny else "gpt2-small (124M)"
    # GPT-2's published layout, as io.load_gpt2 builds it, with GPT-2's initialisation
    cfg = PRESETS[name].replace(qkv_bias=True, tie_weights=True, drop_rate=0.0, init="gpt2")
    prefill = min(args.prefill_tokens, cfg.context_length)
    new = args.new_tokens if not args.tiny else min(args.new_tokens, 50)
    if args.vs_torch:  # HF's GPT-2 cannot slide past its window: stay inside it
        new = min(new, cfg.context_length - args.prompt_tokens)
    no_cache_new = args.no_cache_tokens or (min(new, 50) if args.vs_torch else new)
    no_cache_runs = args.runs if args.no_cache_runs is None else args.no_cache_runs
    rng = np.random.default_rng(args.seed)
    prompt = rng.integers(0, cfg.vocab_size, (1, args.prompt_tokens))
    long_prompt = rng.integers(0, cfg.vocab_size, (1, prefill))

    with use_backend(args.backend):
        manual_seed(args.seed)
        model = GPTModel(cfg).eval()
        runners: list = [Ours(model)]
        if args.vs_torch:
            import torch

            torch.set_num_threads(os.cpu_count() or 1)
            runners += [HFGenerate(model), TorchKV(model)]
        # what each measurement runs: (key, tokens per run, timed runs, runner -> callable)
        jobs = [("decode_kv_cache", new, args.runs,
                 lambda r: lambda: r.decode(prompt, new, True)),
                ("decode_no_cache", no_cache_new, no_cache_runs,
                 lambda r: None if isinstance(r, TorchKV)
                 else lambda: r.decode(prompt, no_cache_new, False)),
                ("prefill", prefill, args.runs, lambda r: lambda: r.prefill(long_prompt))]
        seconds: dict[str, dict[str, list[float]]] = {key: {} for key, *_ in jobs}
        outputs: dict[str, dict[str, object]] = {key: {} for key, *_ in jobs}
        for key, _, runs, make in jobs:
            for r in runners:
                fn = make(r)
                if fn is None or runs == 0:
                    continue
                seconds[key][r.name] = []
                for _ in range(args.warmup):
                    outputs[key][r.name] = fn()
        for _ in range(max(args.runs, no_cache_runs)):  # alternate, pausing between runs
            for key, _, runs, make in jobs:
                for r in runners:
                    if r.name not in seconds[key] or len(seconds[key][r.name]) >= runs:
                        continue
                    fn = make(r)
                    if len(runners) > 1:
                        time.sleep(args.pause)
                    dt, outputs[key][r.name] = timed(fn)
                    seconds[key][r.name].append(dt)

    tokens = {"decode_kv_cache": new, "decode_no_cache": no_cache_new, "prefill": prefill}
    results = {key: {n: summary(tokens[key], s) for n, s in by.items() if s}
               for key, by in seconds.items()}
    ours = {key: res.get(OURS, {}).get("tok_s_median") for key, res in results.items()}
    result = {
        "benchmark": "generate", "model": name, "parameters": model.num_parameters(),
        "backend": args.backend, "batch": 1, "prompt_tokens": args.prompt_tokens,
        "new_tokens": new, "no_cache_new_tokens": no_cache_new, "runs": args.runs,
        "no_cache_runs": no_cache_runs, "prefill_tokens": prefill,
        "decode_kv_cache_tok_s": ours["decode_kv_cache"],
        "decode_no_cache_tok_s": ours["decode_no_cache"],
        "kv_cache_speedup": (round(ours["decode_kv_cache"] / ours["decode_no_cache"], 2)
                             if ours["decode_no_cache"] else None),
        "prefill_tok_s": ours["prefill"], "results": results,
    }
    decoded = outputs["decode_kv_cache"]
    if args.tiny or args.vs_torch:  # cached and uncached tokens must agree
        n = min(new, no_cache_new)
        result["same_tokens_with_and_without_cache"] = (
            None if OURS not in outputs["decode_no_cache"] else
            np.array_equal(decoded[OURS][:n], outputs["decode_no_cache"][OURS][:n]))
    if args.vs_torch:
        ratios = {}
        for key, res in results.items():
            for other, m in res.items():
                if other != OURS and OURS in res:
                    ratios[f"{key}_vs_{other}"] = round(
                        res[OURS]["tok_s_median"] / m["tok_s_median"], 3)
        result["ratios"] = ratios
        # other work on the machine only ever slows a run down: the best runs are the
        # least disturbed ones, so their ratio is the other estimate worth having
        result["ratios_of_best_runs"] = {
            f"{key}_vs_{other}": round(res[OURS]["tok_s_max"] / m["tok_s_max"], 3)
            for key, res in results.items() for other, m in res.items()
            if other != OURS and OURS in res}
        result["greedy_first_difference_vs_ours"] = {
            r.name: first_difference(decoded[OURS], decoded[r.name]) for r in runners[1:]}
        result["prefill_logits_max_abs_diff_vs_ours"] = {
            r.name: float(np.abs(outputs["prefill"][r.name] - outputs["prefill"][OURS]).max())
            for r in runners[1:]}
        import torch
        import transformers

        result["torch"], result["transformers"] = torch.__version__, transformers.__version__
        result["torch_threads"] = torch.get_num_threads()
    result.update(machine())

    print(f"{name}: {result['parameters']:,} parameters, backend {args.backend}, "
          f"load {result.get('loadavg_1m')} (timings on a shared machine are noisy)")
    for key, res in results.items():
        print(f"  {key} ({tokens[key]} tokens):")
        for who, m in res.items():
            ratio = result.get("ratios", {}).get(f"{key}_vs_{who}")
            best = result.get("ratios_of_best_runs", {}).get(f"{key}_vs_{who}")
            vs = f"   ours / this = {ratio:.2f}x (best runs {best:.2f}x)" if ratio else ""
            print(f"    {who:>13s}: {m['tok_s_median']:8.1f} tok/s median "
                  f"({m['tok_s_min']:.1f}-{m['tok_s_max']:.1f}){vs}")
    if args.vs_torch:
        print(f"  greedy tokens, first difference from ours: "
              f"{result['greedy_first_difference_vs_ours']} (None = identical)")
        print(f"  prefill last logits, max |diff| from ours: "
              f"{result['prefill_logits_max_abs_diff_vs_ours']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
