"""The training benchmark still runs (tiny config, one timed step, no PyTorch): its numbers
are what the README's Performance table quotes, so it must not rot. Nothing here is timed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def test_bench_train_tiny_reports_throughput_and_memory():
    out = subprocess.run(
        [sys.executable, str(BENCH / "bench_train.py"), "--config", "tiny", "--steps", "1",
         "--rounds", "1", "--pause", "0", "--memory"],
        capture_output=True, text=True, check=True, timeout=600)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    (tiny,) = report["results"]
    ours = tiny["runs"]["tinygrad-llm"]
    assert tiny["config"] == "tiny" and tiny["tokens_per_step"] == 8 * 128
    assert ours["tokens_per_s_median"] > 0 and ours["mfu_vs_np_matmul"] > 0
    assert 100 < tiny["peak_rss_mib"]["tinygrad-llm"] < 4096
