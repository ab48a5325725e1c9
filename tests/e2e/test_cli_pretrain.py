"""The tinygrad-llm command end to end on a small generated text: pretrain, Ctrl-C,
resume, generate, info."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

TINY = ["--n-layers", "1", "--emb-dim", "16", "--n-heads", "2", "--context-length", "16",
        "--batch-size", "2", "--eval-freq", "2", "--eval-iter", "1", "--no-plot",
        "--no-progress"]


def _gpt2_tokenizer_or_skip():
    from tinygrad_llm.data import get_tokenizer

    try:
        return get_tokenizer("gpt2")
    except RuntimeError as e:
        pytest.skip(f"the CLI tokenizes with GPT-2 BPE, unavailable here: {str(e)[:120]}")


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "tinygrad_llm.cli", *args],
                          capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture
def text_file(tmp_path):
    _gpt2_tokenizer_or_skip()
    words = "the quick brown fox jumps over the lazy dog and every effort moves you".split()
    path = tmp_path / "small.txt"
    path.write_text(" ".join(words[i % len(words)] for i in range(1500)))
    return path


def test_pretrain_generate_info(tmp_path, text_file):
    out = tmp_path / "run"
    r = _cli("pretrain", "--data", str(text_file), "--epochs", "2", "--out", str(out), *TINY)
    assert r.returncode == 0, r.stderr
    assert "Trained" in r.stdout and (out / "model.safetensors").is_file()
    r = _cli("generate", "--checkpoint", str(out / "model.safetensors"), "--prompt",
             "the quick", "--max-new-tokens", "5", "--no-eos")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("the quick") and len(r.stdout) > len("the quick")
    r = _cli("info", str(out / "model.safetensors"))
    assert r.returncode == 0 and "parameters:" in r.stdout and '"n_layers": 1' in r.stdout


def test_ctrl_c_saves_a_checkpoint_and_resume_continues(tmp_path, text_file):
    out = tmp_path / "run"
    cmd = [sys.executable, "-u", "-m", "tinygrad_llm.cli", "pretrain", "--data",
           str(text_file), "--epochs", "200", "--out", str(out), *TINY]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.time() + 300
    for line in proc.stdout:  # wait until training is under way
        lines.append(line)
        if "Step 000002" in line or time.time() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=300)
    text = "".join(lines) + rest
    assert proc.returncode == 130, text
    assert "checkpoint saved" in text and (out / "model.safetensors").is_file()
    r = _cli("pretrain", "--resume", str(out / "model.safetensors"), "--epochs", "2", "--out",
             str(out), "--no-progress", "--no-plot")
    assert r.returncode == 0, r.stderr
    assert "Resuming" in r.stdout and "Trained" in r.stdout


def test_bad_arguments_are_clear(tmp_path):
    r = _cli("pretrain", "--data", str(tmp_path / "nope.txt"), *TINY)
    assert r.returncode != 0 and "is not a file" in (r.stdout + r.stderr)
    r = _cli("pretrain", "--batch-size", "0")
    assert r.returncode == 2 and "positive integer" in r.stderr
    r = _cli("generate")
    assert r.returncode != 0 and "--checkpoint" in (r.stdout + r.stderr)
    env = {**os.environ}
    r = _cli("--help", env=env)
    assert r.returncode == 0 and "pretrain" in r.stdout


def test_resume_reads_the_checkpoint_once_and_continues_exactly(tmp_path, text_file,
                                                                monkeypatch):
    """pretrain 1 epoch, then --resume to 2 epochs: the same weights as 2 epochs in one go
    (dropout on, so the RNG state must come back too), and the checkpoint is read once."""
    from tinygrad_llm import cli, io

    base = ["pretrain", "--data", str(text_file), *TINY, "--no-progress"]
    assert cli.main([*base, "--epochs", "2", "--out", str(tmp_path / "full")]) == 0
    assert cli.main([*base, "--epochs", "1", "--out", str(tmp_path / "part")]) == 0
    reads = []
    real = io.load_safetensors

    def counting(path):
        reads.append(path)
        return real(path)

    monkeypatch.setattr(io, "load_safetensors", counting)
    ckpt = tmp_path / "part" / "model.safetensors"
    assert cli.main(["pretrain", "--resume", str(ckpt), "--epochs", "2", "--out",
                     str(tmp_path / "part"), "--no-progress", "--no-plot"]) == 0
    assert len(reads) == 1, reads
    monkeypatch.undo()
    full = io.load_checkpoint(tmp_path / "full" / "model.safetensors", restore_rng=False)
    resumed = io.load_checkpoint(ckpt, restore_rng=False)
    assert resumed["step"] == full["step"] > 0
    for (n, p), (_, q) in zip(resumed["model"].named_parameters(),
                              full["model"].named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=n)
