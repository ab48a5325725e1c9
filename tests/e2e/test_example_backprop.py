"""Smoke tests for examples/00_backprop_by_hand.py: runs, agrees, and fails when it should."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "00_backprop_by_hand.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_runs_and_hand_gradients_agree_with_the_engine():
    r = _run()
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "all 5 gradients agree" in out
    assert "gradcheck (central differences, float64) on the same network: passed" in out
    assert "loss = sum(e^2)    = 0.088337" in out  # the written-out numbers
    for step in ("[0] Sum", "[5] Tanh", "[7] MatMul"):
        assert step in out
    assert "out = tanh x.   dx = dout * (1 - out^2)." in out  # explain() of the tanh step
    assert "NO" not in out.split("4. Hand-derived")[1]


def test_quiet_dot_and_random_weights(tmp_path):
    dot = tmp_path / "graph.dot"
    r = _run("--quiet", "--seed", "3", "--dot", str(dot), "--tiny")
    assert r.returncode == 0, r.stderr
    assert "1. Forward pass" not in r.stdout and "all 5 gradients agree" in r.stdout
    text = dot.read_text()
    assert text.startswith("digraph autograd {")
    for op in ("MatMul", "Tanh", "PowScalar", "Sum"):
        assert f'label="{op}"' in text


def test_a_wrong_hand_gradient_makes_it_fail(capsys):
    spec = importlib.util.spec_from_file_location("backprop_by_hand", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    right = module.backprop_by_hand

    def off_by_a_bit(w, v):
        g, lines = right(w, v)
        g["W1"] = g["W1"] + np.array([[0.0, 1e-3, 0.0], [0.0, 0.0, 0.0]])
        return g, lines

    module.backprop_by_hand = off_by_a_bit
    assert module.main(["--quiet"]) == 1
    assert "MISMATCH" in capsys.readouterr().out
