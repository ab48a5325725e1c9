"""Smoke tests: the chapter 3 and 4 examples run with --tiny and print what they promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = os.environ.copy()
    cache = ROOT.parent / "shared" / "tiktoken-cache"
    if "TIKTOKEN_CACHE_DIR" not in env and cache.is_dir():
        env["TIKTOKEN_CACHE_DIR"] = str(cache)
    return subprocess.run([sys.executable, str(ROOT / "examples" / script), *args],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


def test_03_attention():
    r = _run("03_attention.py", "--tiny")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "[0.1385 0.2379 0.2333 0.124  0.1082 0.1581]" in out  # the book's weights
    assert "[0.4419 0.6515 0.5683]" in out  # and context vector
    for section in ("3.4.2", "3.5.1", "3.5.2", "3.5.3", "3.6.1", "3.6.2"):
        assert f"=== {section}" in out
    assert "context_vecs.shape: (2, 6, 4)" in out and "context_vecs.shape: (2, 6, 2)" in out


def test_04_gpt_model():
    r = _run("04_gpt_model.py", "--tiny", "--more-tokens", "5")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "output shape: (2, 4, 50257)" in out
    assert "Total number of parameters: 3,242,752" in out
    assert "generate (KV cache) gives the same tokens: True" in out
    assert "tokens/s with the KV cache" in out
