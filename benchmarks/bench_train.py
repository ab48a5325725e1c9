"""Training throughput, peak memory and model-FLOPs utilisation, optionally side by side
with PyTorch on the same machine.

    .venv/bin/python benchmarks/bench_train.py                     # tiny and 124M configs
    .venv/bin/python benchmarks/bench_train.py --config tiny --vs-torch
    .venv/bin/python benchmarks/bench_train.py --config 124M --vs-torch --memory

One training step = forward, mean cross-entropy, backward, AdamW update, on random token
ids (the same for both frameworks), dropout off. Configs:
  tiny: 4 layers, 256 wide, 4 heads, context 128, batch 8 (GPT-2 vocabulary, untied head)
  124M: GPT-2 small, tied head, context 256, batch 4
  124M-ctx1024: the same model at context 1024, batch 1 (attention recomputed in backward,
        no (T, T) matrix kept per head)
Model FLOPs per token are 6N + 12 L T d (N parameters counted once), the usual estimate;
MFU divides the achieved model FLOP/s by np.matmul's GFLOP/s measured at the start of the
run at the model's feed-forward GEMM shape.

With --vs-torch the same configuration runs in PyTorch (a plain GPT-2 written below, its
weights copied from ours, torch.optim.AdamW, F.scaled_dot_product_attention), alternating
with ours in one process, with pauses so that neither thread pool disturbs the other; the
report gives median and min-max step throughput of each and their ratio. --memory runs
each framework in a fresh subprocess and reports its peak RSS (VmHWM). --startup times, in
fresh subprocesses, `import tinygrad_llm` + building the model + the first training step,
with the Numba cache warm and cold (an empty NUMBA_CACHE_DIR: every kernel compiles).
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import tinygrad_llm  # noqa: F401  before NumPy, as a user's program would import it: see its
import numpy as np  # noqa: E402  __init__ (it sets OpenBLAS's thread timeout before NumPy loads)

CONFIGS = {
    "tiny": dict(cfg=dict(vocab_size=50257, context_length=128, emb_dim=256, n_heads=4,
                          n_layers=4, drop_rate=0.0, qkv_bias=False, tie_weights=False),
                 batch=8),
    "124M": dict(cfg=dict(vocab_size=50257, context_length=256, emb_dim=768, n_heads=12,
                          n_layers=12, drop_rate=0.0, qkv_bias=True, tie_weights=True),
                 batch=4),
    # long context: the same model and tokens per step as 124M, one 1024-token sequence
    "124M-ctx1024": dict(cfg=dict(vocab_size=50257, context_length=1024, emb_dim=768,
                                  n_heads=12, n_layers=12, drop_rate=0.0, qkv_bias=True,
                                  tie_weights=True),
                         batch=1),
}
DEFAULT_CONFIGS = ("tiny", "124M")


def gemm_gflops(m: int, k: int, n: int, runs: int = 5) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    a @ b
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * m * k * n / statistics.median(times) / 1e9


# ---------------------------------------------------------------------------------------
# ours


class Ours:
    name = "tinygrad-llm"

    def __init__(self, spec: dict, data):
        from tinygrad_llm import GPTConfig, GPTModel
        from tinygrad_llm.optim import AdamW
        from tinygrad_llm.random import manual_seed

        manual_seed(0)
        self.model = GPTModel(GPTConfig(**spec["cfg"]))
        self.opt = AdamW(self.model.parameters(), lr=1e-4, weight_decay=0.1)
        self.x, self.y = data

    def step(self) -> float:
        from tinygrad_llm.train import calc_loss_batch

        self.opt.zero_grad()
        loss = calc_loss_batch(self.x, self.y, self.model)
        loss.backward()
        self.opt.step()
        return loss.item()


# ---------------------------------------------------------------------------------------
# PyTorch, a plain GPT-2 with the same parameter layout


class Torch:
    name = "pytorch"

    def __init__(self, spec: dict, data, weights: dict | None):
        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        torch.manual_seed(0)
        cfg = spec["cfg"]
        c, h = cfg["emb_dim"], cfg["n_heads"]

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.norm1, self.norm2 = nn.LayerNorm(c), nn.LayerNorm(c)
                self.W_query = nn.Linear(c, c, bias=cfg["qkv_bias"])
                self.W_key = nn.Linear(c, c, bias=cfg["qkv_bias"])
                self.W_value = nn.Linear(c, c, bias=cfg["qkv_bias"])
                self.out_proj = nn.Linear(c, c)
                self.fc1, self.fc2 = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

            def forward(self, x):
                b, t, _ = x.shape
                y = self.norm1(x)
                q, k, v = (lin(y).view(b, t, h, c // h).transpose(1, 2)
                           for lin in (self.W_query, self.W_key, self.W_value))
                a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                x = x + self.out_proj(a.transpose(1, 2).reshape(b, t, c))
                return x + self.fc2(F.gelu(self.fc1(self.norm2(x)), approximate="tanh"))

        class GPT(nn.Module):
            def __init__(self):
                super().__init__()
                self.tok_emb = nn.Embedding(cfg["vocab_size"], c)
                self.pos_emb = nn.Embedding(cfg["context_length"], c)
                self.blocks = nn.ModuleList(Block() for _ in range(cfg["n_layers"]))
                self.final_norm = nn.LayerNorm(c)
                self.out_head = nn.Linear(c, cfg["vocab_size"], bias=False)
                if cfg["tie_weights"]:
                    self.out_head.weight = self.tok_emb.weight

            def forward(self, idx):
                x = self.tok_emb(idx) + self.pos_emb(torch.arange(idx.shape[1]))
                for blk in self.blocks:
                    x = blk(x)
                return self.out_head(self.final_norm(x))

        self.torch, self.F = torch, F
        self.model = GPT()
        if weights is not None:
            self._load(weights, cfg)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=0.1)
        self.x, self.y = (torch.from_numpy(a) for a in data)

    def _load(self, w: dict, cfg: dict) -> None:
        """Copy our parameters in (same layout: Linear weights are (out, in) in both)."""
        ren = {"norm1.scale": "norm1.weight", "norm1.shift": "norm1.bias",
               "norm2.scale": "norm2.weight", "norm2.shift": "norm2.bias",
               "att.": "", "ff.layers.0": "fc1", "ff.layers.2": "fc2"}
        sd = {}
        for name, arr in w.items():
            name = name.replace("trf_blocks", "blocks").replace("final_norm.scale",
                                                                 "final_norm.weight")
            name = name.replace("final_norm.shift", "final_norm.bias")
            for a, b in ren.items():
                name = name.replace(a, b)
            sd[name] = self.torch.from_numpy(np.array(arr))
        if cfg["tie_weights"]:
            sd["out_head.weight"] = sd["tok_emb.weight"]
        missing, unexpected = self.model.load_state_dict(sd, strict=False)
        assert not unexpected and not missing, (missing, unexpected)

    def step(self) -> float:
        self.opt.zero_grad(set_to_none=True)
        logits = self.model(self.x)
        loss = self.F.cross_entropy(logits.flatten(0, 1), self.y.flatten())
        loss.backward()
        self.opt.step()
        return loss.item()


# ---------------------------------------------------------------------------------------


def make_data(spec: dict) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    shape = (spec["batch"], spec["cfg"]["context_length"])
    v = spec["cfg"]["vocab_size"]
    return rng.integers(0, v, shape, dtype=np.int64), rng.integers(0, v, shape, dtype=np.int64)


def model_flops_per_token(spec: dict, n_params: int) -> float:
    c = spec["cfg"]
    return 6 * n_params + 12 * c["n_layers"] * c["context_length"] * c["emb_dim"]


def time_steps(runner, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        runner.step()
        out.append(time.perf_counter() - t)
    return out


def memory_child(config: str, which: str, steps: int) -> None:
    """Run a few steps of one framework and print its peak RSS in MiB."""
    spec, data = CONFIGS[config], make_data(CONFIGS[config])
    runner = Ours(spec, data) if which == "ours" else Torch(spec, data, None)
    if which == "torch":
        runner.torch.set_num_threads(os.cpu_count() or 1)
    for _ in range(steps):
        runner.step()
    # VmHWM, not ru_maxrss: a forked child's ru_maxrss starts at its parent's peak, while
    # VmHWM belongs to the address space that exec() made fresh
    try:
        with open("/proc/self/status") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_mib": kib / 1024}))


STARTUP_CODE = """
import time
t0 = time.perf_counter()
import sys
sys.path.insert(0, {bench_dir!r})
from bench_train import CONFIGS, Ours, make_data
t1 = time.perf_counter()
spec = CONFIGS[{config!r}]
runner = Ours(spec, make_data(spec))
t2 = time.perf_counter()
runner.step()
t3 = time.perf_counter()
print({{"import_s": t1 - t0, "build_s": t2 - t1, "first_step_s": t3 - t2, "total_s": t3 - t0}})
"""


def startup(config: str, cold: bool) -> dict:
    """Wall time of import + model + first step in a fresh interpreter (fresh Numba cache if
    cold; the warm run follows a run that filled the cache)."""
    import ast
    import tempfile

    env = dict(os.environ)
    code = STARTUP_CODE.format(bench_dir=os.path.dirname(os.path.abspath(__file__)),
                               config=config)
    with tempfile.TemporaryDirectory() as cache:
        if cold:
            env["NUMBA_CACHE_DIR"] = cache
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env=env)
        wall = time.perf_counter() - t0
    times = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    return {k: round(v, 2) for k, v in times.items()} | {"process_wall_s": round(wall, 2)}


def peak_rss(config: str, which: str, steps: int = 3) -> float:
    out = subprocess.run([sys.executable, __file__, "--memory-child", which, "--config", config,
                          "--steps", str(steps)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mib"]


def bench(config: str, args) -> dict:
    spec = CONFIGS[config]
    data = make_data(spec)
    tokens = data[0].size
    c = spec["cfg"]["emb_dim"]
    gflops = gemm_gflops(tokens, c, 4 * c)
    ours = Ours(spec, data)
    n_params = ours.model.num_parameters()
    flops_tok = model_flops_per_token(spec, n_params)
    t0 = time.perf_counter()
    ours.step()
    first = time.perf_counter() - t0
    runners = [ours]
    if args.vs_torch:
        try:
            runners.append(Torch(spec, data, ours.model.state_dict()))
            runners[-1].torch.set_num_threads(os.cpu_count() or 1)
        except ImportError:
            print("PyTorch is not installed (pip install 'tinygrad-llm[bench]'): ours only")
    for r in runners[1:]:
        r.step()  # warm-up
    for r in runners:
        r.step()
    times: dict[str, list[float]] = {r.name: [] for r in runners}
    for _ in range(args.rounds):  # alternate, pausing so thread pools go quiet
        for r in runners:
            time.sleep(args.pause)
            times[r.name] += time_steps(r, args.steps)
    result = {"config": config, "params": n_params, "tokens_per_step": tokens,
              "first_step_s": round(first, 2), "gemm_gflops": round(gflops, 1), "runs": {}}
    for name, ts in times.items():
        tps = [tokens / t for t in ts]
        med = statistics.median(tps)
        result["runs"][name] = {
            "tokens_per_s_median": round(med, 1), "tokens_per_s_min": round(min(tps), 1),
            "tokens_per_s_max": round(max(tps), 1), "step_s_median": round(tokens / med, 3),
            "model_gflops": round(med * flops_tok / 1e9, 1),
            "mfu_vs_np_matmul": round(med * flops_tok / 1e9 / gflops, 3)}
    if len(times) == 2:
        result["ratio_vs_torch"] = round(result["runs"]["tinygrad-llm"]["tokens_per_s_median"]
                                         / result["runs"]["pytorch"]["tokens_per_s_median"], 3)
    if args.startup:
        startup(config, cold=False)  # fills the cache if this is the first run
        result["startup_warm"] = startup(config, cold=False)
        result["startup_cold"] = startup(config, cold=True)
    if args.memory:
        result["peak_rss_mib"] = {"tinygrad-llm": round(peak_rss(config, "ours"), 0)}
        if args.vs_torch and "pytorch" in times:
            result["peak_rss_mib"]["pytorch"] = round(peak_rss(config, "torch"), 0)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", choices=[*CONFIGS, "both"], default="both",
                    help="both = " + " and ".join(DEFAULT_CONFIGS))
    ap.add_argument("--steps", type=int, default=3, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between runs")
    ap.add_argument("--backend", choices=["numpy", "numba"], default=None)
    ap.add_argument("--vs-torch", action="store_true", help="run PyTorch side by side")
    ap.add_argument("--memory", action="store_true", help="peak RSS in fresh subprocesses")
    ap.add_argument("--startup", action="store_true",
                    help="time import + first step in fresh processes, Numba cache warm/cold")
    ap.add_argument("--memory-child", choices=["ours", "torch"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.backend:
        from tinygrad_llm.kernels import set_backend

        set_backend(args.backend)
    if args.memory_child:
        memory_child(args.config, args.memory_child, args.steps)
        return
    from tinygrad_llm.kernels import get_backend

    configs = list(DEFAULT_CONFIGS) if args.config == "both" else [args.config]
    results = [bench(c, args) for c in configs]
    for r in results:
        print(f"\n{r['config']}: {r['params']:,} parameters, {r['tokens_per_step']} tokens/step,"
              f" np.matmul {r['gemm_gflops']} GFLOP/s, first step {r['first_step_s']} s")
        for name, m in r["runs"].items():
            print(f"  {name:>13s}: {m['tokens_per_s_median']:8.1f} tok/s "
                  f"({m['tokens_per_s_min']:.1f}-{m['tokens_per_s_max']:.1f}), "
                  f"{m['model_gflops']} model GFLOP/s, MFU {m['mfu_vs_np_matmul']:.2f}")
        if "ratio_vs_torch" in r:
            print(f"  ratio tinygrad-llm / pytorch: {r['ratio_vs_torch']:.2f}x")
        for kind in ("startup_warm", "startup_cold"):
            if kind in r:
                print(f"  {kind.replace('_', ' ')}: {r[kind]}")
        if "peak_rss_mib" in r:
            print(f"  peak RSS MiB: {r['peak_rss_mib']}")
    print(json.dumps({"bench": "train", "backend": get_backend(), "cpus": os.cpu_count(),
                      "machine": platform.machine(), "numpy": np.__version__,
                      "results": results}))


if __name__ == "__main__":
    main()
