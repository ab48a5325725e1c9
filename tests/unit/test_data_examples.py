"""Smoke test: examples/01_tokenize.py and examples/02_data_sampling.py run on a small text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = [
        f"The {adj} fox number {i} said: \"it's {i * 7 % 13} o'clock\" -- and ran away!"
        for i, adj in zip(range(60), ["quick", "lazy", "brown", "small"] * 15)
    ]
    path = tmp_path_factory.mktemp("examples") / "story.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_example(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_tokenize_example(text_file: Path) -> None:
    out = run_example("01_tokenize.py", "--text", str(text_file), "--train-vocab", "300")
    assert "Vocabulary size:" in out
    assert "SimpleTokenizerV1.encode:" in out and "SimpleTokenizerV2.encode:" in out
    assert "Byte-level BPE trained from scratch" in out


def test_data_sampling_example(text_file: Path) -> None:
    out = run_example("02_data_sampling.py", "--text", str(text_file), "--output-dim", "16")
    assert "first batch:" in out
    assert "dtype: int64 shape: (8, 4)" in out
    assert "Input embeddings shape: (8, 4, 16)" in out
