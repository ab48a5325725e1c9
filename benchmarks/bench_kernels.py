"""Kernel benchmark: every Numba kernel against its NumPy reference at GPT-2 small shapes.

    .venv/bin/python benchmarks/bench_kernels.py             # everything (a few minutes)
    .venv/bin/python benchmarks/bench_kernels.py --quick     # fewer repeats, no T=1024
    .venv/bin/python benchmarks/bench_kernels.py --threading # also compare threading layers

Sections:
  1. kernels: median wall time of ``<name>_nb`` and ``<name>_ref`` over N runs each, timed
     alternately after two warm-up calls, and their ratio (ref / nb: > 1 means Numba is
     faster).
  2. matmul: GFLOP/s of ``matmul_forward_nb`` against plain np.matmul at the GPT-2 layer
     shapes, and of a straightforward parallel Numba GEMM loop, for scale.
  3. alternating: a GEMM alternating with a parallel kernel, against the sum of the two
     run alone (the thread pools of OpenBLAS and Numba compete for the same cores; a ratio
     of 1.00 means no interference). With --threading the same section is run again in
     subprocesses under other NUMBA_THREADING_LAYER / OPENBLAS_THREAD_TIMEOUT settings.
  4. compile: the first call of every kernel (float32 and float64) in a fresh subprocess
     whose NUMBA_CACHE_DIR is a new empty directory (cold: JIT compile) and then again in
     another fresh subprocess with the same directory (warm: loaded from the cache).
The output ends with one JSON line: machine info and every number above.
The machine is shared and has 2 cores: expect noise, compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

B, T, C, H, V = 4, 256, 768, 12, 50257
D = C // H
N_ROWS = B * T


def median_time(fn, repeats: int, warmup: int = 2) -> float:
    """Median seconds of ``repeats`` calls of fn() after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


# OpenBLAS's idle workers spin (sched_yield) for ~0.1 s after a GEMM before they sleep, and a
# parallel kernel started inside that window runs on about one core. Section 3 measures that
# effect; the per-kernel table waits it out so that each kernel is timed alone.
BLAS_SETTLE_S = 0.15


def median_times_interleaved(fn_a, fn_b, repeats: int, warmup: int = 2) -> tuple[float, float]:
    """Median seconds of fn_a() and of fn_b(), timed alternately (a, b, a, b, ...) so that
    load from other processes on this shared machine hits both about equally; after each
    fn_b() (the NumPy reference, which may have run BLAS) wait BLAS_SETTLE_S."""
    for _ in range(warmup):
        fn_a()
        fn_b()
    times_a, times_b = [], []
    for _ in range(repeats):
        time.sleep(BLAS_SETTLE_S)
        for fn, times in ((fn_a, times_a), (fn_b, times_b)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return float(np.median(times_a)), float(np.median(times_b))


def without_blas(fn, *args):
    """fn(*args) with the attention kernels' block products in plain Numba."""
    from tinygrad_llm.kernels import attention

    saved, attention.USE_BLAS = attention.USE_BLAS, False
    try:
        return fn(*args)
    finally:
        attention.USE_BLAS = saved


def kernel_cases(dtype, rng, long_attention: bool):
    """(name, nb callable, ref callable, repeats) at GPT-2 small shapes."""
    from tinygrad_llm.kernels import adamw, attention, cross_entropy, embedding, gelu
    from tinygrad_llm.kernels import layernorm, linear_cross_entropy, matmul, softmax

    def randn(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    cases = []
    # matmul through the kernel (QKV projection as the model calls it: a 3-D activation)
    x3, w = randn(B, T, C), randn(C, 3 * C, scale=0.02)
    dqkv = randn(B, T, 3 * C)
    cases.append(
        (
            "matmul fwd (4,256,768)@(768,2304)",
            lambda: matmul.matmul_forward_nb(x3, w),
            lambda: matmul.matmul_forward_ref(x3, w),
            15,
        )
    )
    cases.append(
        (
            "matmul bwd da,db (db batched)",
            lambda: matmul.matmul_backward_nb(dqkv, x3, w),
            lambda: matmul.matmul_backward_ref(dqkv, x3, w),
            7,
        )
    )
    # softmax over attention-score rows (a non-fused attention would do this)
    s = randn(B, H, T, T, scale=3.0)
    y = softmax.softmax_forward_ref(s)
    ds = randn(B, H, T, T)
    cases.append(
        (
            "softmax fwd (4,12,256,256)",
            lambda: softmax.softmax_forward_nb(s),
            lambda: softmax.softmax_forward_ref(s),
            15,
        )
    )
    cases.append(
        (
            "softmax bwd",
            lambda: softmax.softmax_backward_nb(ds, y),
            lambda: softmax.softmax_backward_ref(ds, y),
            15,
        )
    )
    # cross-entropy over the vocabulary
    logits = randn(N_ROWS, V, scale=2.0)
    targets = rng.integers(0, V, N_ROWS)
    _, lse = cross_entropy.cross_entropy_forward_ref(logits, targets, -100)
    cases.append(
        (
            "cross_entropy fwd (1024,50257)",
            lambda: cross_entropy.cross_entropy_forward_nb(logits, targets, -100),
            lambda: cross_entropy.cross_entropy_forward_ref(logits, targets, -100),
            5,
        )
    )
    cases.append(
        (
            "cross_entropy bwd",
            lambda: cross_entropy.cross_entropy_backward_nb(1.0, logits, targets, lse, -100),
            lambda: cross_entropy.cross_entropy_backward_ref(1.0, logits, targets, lse, -100),
            5,
        )
    )
    # the output head and the loss fused (chunked rows, gradients in the same pass) against
    # the unfused head: x @ w^T, cross-entropy, dlogits, dx and dw
    xh, wh = randn(N_ROWS, C), randn(V, C, scale=0.02)
    cases.append(
        (
            "linear_cross_entropy fwd+grads (1024,768)x(50257,768)",
            lambda: linear_cross_entropy.linear_cross_entropy_nb(xh, wh, None, targets, -100),
            lambda: linear_cross_entropy.linear_cross_entropy_ref(xh, wh, None, targets, -100),
            3,
        )
    )
    # layernorm
    xl, wl, bl = randn(N_ROWS, C), randn(C), randn(C)
    _, mean, rstd = layernorm.layernorm_forward_ref(xl, wl, bl, 1e-5)
    dl = randn(N_ROWS, C)
    cases.append(
        (
            "layernorm fwd (1024,768)",
            lambda: layernorm.layernorm_forward_nb(xl, wl, bl, 1e-5),
            lambda: layernorm.layernorm_forward_ref(xl, wl, bl, 1e-5),
            25,
        )
    )
    cases.append(
        (
            "layernorm bwd",
            lambda: layernorm.layernorm_backward_nb(dl, xl, wl, mean, rstd),
            lambda: layernorm.layernorm_backward_ref(dl, xl, wl, mean, rstd),
            25,
        )
    )
    # gelu on the MLP hidden layer
    xg, dg = randn(N_ROWS, 4 * C, scale=2.0), randn(N_ROWS, 4 * C)
    cases.append(
        (
            "gelu fwd (1024,3072)",
            lambda: gelu.gelu_forward_nb(xg),
            lambda: gelu.gelu_forward_ref(xg),
            15,
        )
    )
    cases.append(
        (
            "gelu bwd",
            lambda: gelu.gelu_backward_nb(dg, xg),
            lambda: gelu.gelu_backward_ref(dg, xg),
            15,
        )
    )
    # attention at three shapes: (a) a GPT-2 small training step, (b) a long context (batch
    # 1, T = 1024), (c) decoding one token over a KV cache of 1024 positions (forward only).
    # q, k, v as the model hands them over: (B, T, H, D) views with the head axis moved, and
    # for decoding the first Tk positions of the cache's (B, H, capacity, D) arrays
    for bsz, t_len, reps in ((B, T, 7),) + (((1, 1024, 5),) if long_attention else ()):
        q, k, v = (np.swapaxes(randn(bsz, t_len, H, D), 1, 2) for _ in range(3))
        scale = 1.0 / np.sqrt(D)
        out, lse_a = attention.attention_forward_ref(q, k, v, scale)
        do = randn(bsz, H, t_len, D)
        qkv = (q, k, v)
        grads = (do, q, k, v, out, lse_a)
        cases.append(
            (
                f"attention fwd ({bsz},{H},{t_len},{D})",
                lambda a=qkv, s=scale: attention.attention_forward_nb(*a, s),
                lambda a=qkv, s=scale: attention.attention_forward_ref(*a, s),
                reps,
            )
        )
        cases.append(
            (
                f"attention bwd ({bsz},{H},{t_len},{D})",
                lambda a=grads, s=scale: attention.attention_backward_nb(*a, s),
                lambda a=grads, s=scale: attention.attention_backward_ref(*a, s),
                reps,
            )
        )
        # the same kernels with their block products in plain Numba (NumPy builds without
        # OpenBLAS), to compare with the rows above
        cases.append(
            (
                f"attention fwd ({bsz},{H},{t_len},{D}) plain Numba",
                lambda a=qkv, s=scale: without_blas(attention.attention_forward_nb, *a, s),
                lambda a=qkv, s=scale: attention.attention_forward_ref(*a, s),
                reps,
            )
        )
        cases.append(
            (
                f"attention bwd ({bsz},{H},{t_len},{D}) plain Numba",
                lambda a=grads, s=scale: without_blas(attention.attention_backward_nb, *a, s),
                lambda a=grads, s=scale: attention.attention_backward_ref(*a, s),
                reps,
            )
        )
    # (c): each version reads its own cache, so that neither finds the other's keys in L3
    q1 = np.swapaxes(randn(1, 1, H, D), 1, 2)
    caches = (randn(2, 1, H, 1024, D), randn(2, 1, H, 1024, D))  # (k|v, B, H, capacity, D)
    dec_nb, dec_ref = ((q1, c[0, :, :, :1024], c[1, :, :, :1024]) for c in caches)
    cases.append(
        (
            f"attention decode (1,{H},1,{D}) kv 1024",
            lambda a=dec_nb: attention.attention_forward_nb(*a, 0.125),
            lambda a=dec_ref: attention.attention_forward_ref(*a, 0.125),
            31,
        )
    )
    # embedding backward into the token table
    de, ids = randn(N_ROWS, C), rng.integers(0, V, N_ROWS)
    cases.append(
        (
            "embedding bwd (1024,768)->(50257,768)",
            lambda: embedding.embedding_backward_nb(de, ids, V),
            lambda: embedding.embedding_backward_ref(de, ids, V),
            7,
        )
    )
    # adamw on the token table (38.6M parameters; all of GPT-2 small is 124M)
    p, g = randn(V, C, scale=0.02), randn(V, C, scale=1e-3)
    m, v2 = np.zeros_like(p), np.zeros_like(p)
    cases.append(
        (
            "adamw step (50257,768)",
            lambda: adamw.adamw_step_nb(p, g, m, v2, 6e-4, 0.9, 0.95, 1e-8, 0.1, 10),
            lambda: adamw.adamw_step_ref(p, g, m, v2, 6e-4, 0.9, 0.95, 1e-8, 0.1, 10),
            5,
        )
    )
    return cases


def bench_kernels(dtype, quick: bool) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    print(f"\n== kernels, {np.dtype(dtype).name}: median ms over N runs (2 warm-up calls)")
    print(f"{'kernel':46s} {'N':>3s} {'numba ms':>10s} {'numpy ms':>10s} {'numpy/numba':>12s}")
    for name, nb, ref, reps in kernel_cases(dtype, rng, long_attention=not quick):
        reps = max(3, reps // 3) if quick else reps
        t_nb, t_ref = median_times_interleaved(nb, ref, reps)
        rows.append(
            {
                "kernel": name,
                "n": reps,
                "numba_ms": t_nb * 1e3,
                "numpy_ms": t_ref * 1e3,
                "speedup": t_ref / t_nb,
            }
        )
        print(f"{name:46s} {reps:3d} {t_nb * 1e3:10.2f} {t_ref * 1e3:10.2f} {t_ref / t_nb:11.2f}x")
    return rows


def bench_matmul(quick: bool) -> list[dict]:
    from numba import njit, prange

    from tinygrad_llm.kernels import matmul

    @njit(parallel=True, fastmath={"contract", "reassoc"})
    def loop_gemm(a, b, c):  # i-k-j order: the inner loop vectorises along rows of b
        m, k = a.shape
        n = b.shape[1]
        for i in prange(m):
            ci = c[i]
            for j in range(n):
                ci[j] = 0.0
            for kk in range(k):
                aik = a[i, kk]
                bk = b[kk]
                for j in range(n):
                    ci[j] += aik * bk[j]

    rng = np.random.default_rng(0)
    rows = []
    reps = 3 if quick else 7
    print("\n== matmul, float32: GFLOP/s (median)")
    print(
        f"{'shape':30s} {'np.matmul':>10s} {'matmul_nb':>10s} {'3-D ref':>10s} "
        f"{'3-D nb':>10s} {'numba loop':>11s}"
    )
    shapes = [(1024, 768, 2304), (1024, 768, 3072), (1024, 3072, 768), (1024, 768, 50257)]
    for mi, (m, k, n) in enumerate(shapes):
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        a3 = a.reshape(B, m // B, k)
        flop = 2.0 * m * k * n
        r = reps if n < 10000 else max(3, reps // 2)
        variants = {
            "np_matmul": (np.matmul, a),
            "matmul_nb": (matmul.matmul_forward_nb, a),
            "np_matmul_3d": (np.matmul, a3),
            "matmul_nb_3d": (matmul.matmul_forward_nb, a3),
        }
        row = {"shape": f"({m},{k})x({k},{n})"}
        for key, (fn, lhs) in variants.items():
            row[key] = flop / median_time(lambda f=fn, x=lhs, w=b: f(x, w), r) / 1e9
        if mi == 0:  # the hand loop at one shape only: it is slow and it is only for scale
            c = np.empty((m, n), dtype=np.float32)
            row["numba_loop"] = (
                flop / median_time(lambda x=a, w=b, o=c: loop_gemm(x, w, o), 3) / 1e9
            )
        rows.append(row)
        loop = f"{row['numba_loop']:11.0f}" if "numba_loop" in row else f"{'-':>11s}"
        print(
            f"{row['shape']:30s} {row['np_matmul']:10.0f} {row['matmul_nb']:10.0f} "
            f"{row['np_matmul_3d']:10.0f} {row['matmul_nb_3d']:10.0f} {loop}"
        )
    print("(3-D: the activation as (4, 256, K), as the model holds it)")
    return rows


def bench_alternating(quick: bool) -> list[dict]:
    """A GEMM of the MLP (1024,768)x(768,3072) alternating with a parallel kernel."""
    from tinygrad_llm.kernels import attention, gelu, layernorm, softmax

    rng = np.random.default_rng(0)
    f32 = np.float32
    a = rng.standard_normal((N_ROWS, C), dtype=f32)
    w = rng.standard_normal((C, 4 * C), dtype=f32)
    xl, wl, bl = a, rng.standard_normal(C, dtype=f32), rng.standard_normal(C, dtype=f32)
    xg = rng.standard_normal((N_ROWS, 4 * C), dtype=f32)
    s = rng.standard_normal((B, H, T, T), dtype=f32)
    q, k, v = (rng.standard_normal((B, H, T, D), dtype=f32) for _ in range(3))
    kernels = [
        ("layernorm fwd", lambda: layernorm.layernorm_forward_nb(xl, wl, bl, 1e-5)),
        ("gelu fwd", lambda: gelu.gelu_forward_nb(xg)),
        ("softmax fwd", lambda: softmax.softmax_forward_nb(s)),
        ("attention fwd", lambda: attention.attention_forward_nb(q, k, v, 0.125)),
    ]
    reps = 7 if quick else 21

    def gemm():
        np.matmul(a, w)

    def quiet():  # a kernel timed while OpenBLAS's workers still spin is not "alone"
        time.sleep(0.5)

    rows = []
    t_g = median_time(gemm, reps)
    print(
        f"\n== alternating GEMM (1024,768)x(768,3072) [{t_g * 1e3:.2f} ms alone] "
        "and a parallel kernel"
    )
    print(f"{'kernel':16s} {'kernel ms':>10s} {'alternating ms':>15s} {'ratio':>7s}")
    for name, fn in kernels:
        quiet()
        t_k = median_time(fn, reps)

        def both(fn=fn):
            gemm()
            fn()

        t_b = median_time(both, reps)
        ratio = t_b / (t_g + t_k)
        rows.append(
            {
                "kernel": name,
                "gemm_ms": t_g * 1e3,
                "kernel_ms": t_k * 1e3,
                "alternating_ms": t_b * 1e3,
                "ratio": ratio,
            }
        )
        print(f"{name:16s} {t_k * 1e3:10.2f} {t_b * 1e3:15.2f} {ratio:7.2f}")
    print("(ratio = alternating / (GEMM alone + kernel alone); 1.00 = no interference)")
    return rows


THREADING_VARIANTS = [
    ("workqueue (default here)", {"NUMBA_THREADING_LAYER": "workqueue"}),
    ("omp", {"NUMBA_THREADING_LAYER": "omp"}),
    (
        "omp, OMP_WAIT_POLICY=passive",
        {"NUMBA_THREADING_LAYER": "omp", "OMP_WAIT_POLICY": "passive"},
    ),
    (
        "workqueue, OPENBLAS_THREAD_TIMEOUT=4",
        {"NUMBA_THREADING_LAYER": "workqueue", "OPENBLAS_THREAD_TIMEOUT": "4"},
    ),
    ("workqueue, 1 Numba thread", {"NUMBA_THREADING_LAYER": "workqueue", "NUMBA_NUM_THREADS": "1"}),
]


def bench_threading(quick: bool) -> dict:
    """Section 3 again in subprocesses, one per threading setting."""
    results = {}
    for label, env_extra in THREADING_VARIANTS:
        env = dict(os.environ, **env_extra)
        cmd = [sys.executable, os.path.abspath(__file__), "--alternating-only"]
        if quick:
            cmd.append("--quick")
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            print(f"\n-- {label}: failed ({proc.stderr.strip().splitlines()[-1:]})")
            results[label] = None
            continue
        rows = json.loads(lines[-1])["alternating"]
        results[label] = rows
        print(f"\n-- {label}: " + ", ".join(f"{r['kernel']} {r['ratio']:.2f}" for r in rows))
    return results


COMPILE_SCRIPT = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
from tinygrad_llm.kernels import (adamw, attention, cross_entropy, embedding, gelu, layernorm,
                                  linear_cross_entropy, softmax)
import numba
t_import = time.perf_counter() - t0
rng = np.random.default_rng(0)
times = {}
def first(name, fn):
    t = time.perf_counter(); fn(); times[name] = times.get(name, 0.0) + time.perf_counter() - t
for dt in (np.float32, np.float64):
    r = lambda *s: rng.standard_normal(s).astype(dt)
    x, d = r(5, 7), r(5, 7)
    first("softmax", lambda: softmax.softmax_forward_nb(x))
    first("softmax", lambda: softmax.softmax_backward_nb(d, x))
    t = np.array([1, 2, 3, 0, -100])
    loss, lse = cross_entropy.cross_entropy_forward_nb(x, t, -100)
    first("cross_entropy", lambda: cross_entropy.cross_entropy_forward_nb(x, t, -100))
    first("cross_entropy", lambda: cross_entropy.cross_entropy_backward_nb(1.0, x, t, lse, -100))
    w, b = r(7), r(7)
    first("layernorm", lambda: layernorm.layernorm_forward_nb(x, w, b, 1e-5))
    _, mu, rs = layernorm.layernorm_forward_ref(x, w, b, 1e-5)
    first("layernorm", lambda: layernorm.layernorm_backward_nb(d, x, w, mu, rs))
    first("gelu", lambda: gelu.gelu_forward_nb(x))
    first("gelu", lambda: gelu.gelu_backward_nb(d, x))
    for tq, tk in ((3, 5), (128, 128)):  # the np.matmul path (few queries), fused kernels
        q, k, v, do = r(1, 2, tq, 4), r(1, 2, tk, 4), r(1, 2, tk, 4), r(1, 2, tq, 4)
        o, l = attention.attention_forward_ref(q, k, v, 0.5)
        first("attention", lambda: attention.attention_forward_nb(q, k, v, 0.5))
        first("attention", lambda: attention.attention_backward_nb(do, q, k, v, o, l, 0.5))
    first("embedding", lambda: embedding.embedding_backward_nb(d, np.array([0, 1, 1, 2, 0]), 3))
    first("linear_cross_entropy",
          lambda: linear_cross_entropy.linear_cross_entropy_nb(d, x[:3], None, t % 3, -100))
    p, g, m, vv = r(4, 3), r(4, 3), np.zeros((4, 3), dt), np.zeros((4, 3), dt)
    first("adamw", lambda: adamw.adamw_step_nb(p, g, m, vv, 1e-3, 0.9, 0.95, 1e-8, 0.1, 1))
print(json.dumps({"import_s": t_import, "first_call_s": times,
                  "layer": numba.threading_layer()}))
"""


def bench_compile() -> dict:
    """First calls of all kernels in fresh processes: cold (empty cache dir), then warm."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        for label in ("cold", "warm"):
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", COMPILE_SCRIPT],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"compile benchmark failed:\n{proc.stderr}")
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            res["process_wall_s"] = wall
            out[label] = res
    cold, warm = out["cold"]["first_call_s"], out["warm"]["first_call_s"]
    print("\n== compile: first call of each kernel, float32 + float64, in a fresh process")
    print(f"{'kernels':16s} {'cold cache s':>13s} {'warm cache s':>13s}")
    for name in cold:
        print(f"{name:16s} {cold[name]:13.2f} {warm[name]:13.3f}")
    print(f"{'total':16s} {sum(cold.values()):13.2f} {sum(warm.values()):13.3f}")
    print(
        f"{'process wall':16s} {out['cold']['process_wall_s']:13.2f} "
        f"{out['warm']['process_wall_s']:13.2f}   (import: "
        f"{out['cold']['import_s']:.2f} / {out['warm']['import_s']:.2f} s)"
    )
    return out


def machine_info() -> dict:
    import numba

    from tinygrad_llm import kernels

    info = {
        "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "threading_layer": None,
        "backend": kernels.get_backend(),
        "env": {
            k: os.environ[k]
            for k in (
                "NUMBA_THREADING_LAYER",
                "OPENBLAS_NUM_THREADS",
                "OPENBLAS_CORETYPE",
                "OPENBLAS_L2_SIZE",
                "OPENBLAS_THREAD_TIMEOUT",
                "OMP_NUM_THREADS",
            )
            if k in os.environ
        },
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["threading_layer"] = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        pass
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no T=1024")
    parser.add_argument(
        "--threading",
        action="store_true",
        help="rerun the alternating section under other threading settings",
    )
    parser.add_argument("--no-compile", action="store_true", help="skip the compile section")
    parser.add_argument("--float64", action="store_true", help="also run the kernels in float64")
    parser.add_argument("--alternating-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.alternating_only:
        rows = bench_alternating(args.quick)
        print(json.dumps({"alternating": rows, "machine": machine_info()}))
        return

    result = {}
    result["kernels_float32"] = bench_kernels(np.float32, args.quick)
    if args.float64:
        result["kernels_float64"] = bench_kernels(np.float64, args.quick)
    result["matmul"] = bench_matmul(args.quick)
    result["alternating"] = bench_alternating(args.quick)
    if args.threading:
        result["threading"] = bench_threading(args.quick)
    if not args.no_compile:
        result["compile"] = bench_compile()
    result["machine"] = machine_info()
    print()
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
