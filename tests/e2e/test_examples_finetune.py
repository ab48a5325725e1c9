"""Fine-tuning end to end: the examples 07-09 with --tiny, and the CLI subcommands
finetune-classifier, finetune-instruct and chat on small generated data (chat driven
through stdin)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--emb-dim", "16", "--n-layers", "1", "--n-heads", "2", "--context-length", "64",
        "--batch-size", "4", "--epochs", "1", "--eval-freq", "5", "--eval-iter", "1",
        "--no-progress"]


def _gpt2_tokenizer_or_skip():
    from tinygrad_llm.data import get_tokenizer

    try:
        return get_tokenizer("gpt2")
    except RuntimeError as e:
        pytest.skip(f"fine-tuning tokenizes with GPT-2 BPE, unavailable here: {str(e)[:120]}")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices; do not fight for cores
    return env


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env=_env(), **kw)


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return _run(["-m", "tinygrad_llm.cli", *args], **kw)


def _ok(proc: subprocess.CompletedProcess) -> str:
    tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"exit {proc.returncode}\n{tail}"
    return proc.stdout


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    _gpt2_tokenizer_or_skip()
    folder = tmp_path_factory.mktemp("data")
    spam = ["WINNER! Claim your free cash prize now, call 0800", "Free entry: text WIN to 8008",
            "URGENT! You have won a 1000 pound bonus, reply YES", "Cheap loans, text LOAN now"]
    ham = ["See you at lunch?", "I'll be home late tonight", "Can you pick up some milk",
           "Thanks for the call yesterday", "ok see you soon", "Where are you now?"]
    lines = [f"spam\t{spam[i % len(spam)]} {i}" for i in range(30)]
    lines += [f"ham\t{ham[i % len(ham)]} {i}" for i in range(40)]
    (folder / "spam.tsv").write_text("\n".join(lines) + "\n")
    colors = ["red", "blue", "green", "black", "white"]
    records = [{"instruction": f"Name color number {i}.", "input": "" if i % 2 else f"n={i}",
                "output": f"The color is {colors[i % 5]}."} for i in range(40)]
    (folder / "instruct.json").write_text(json.dumps(records))
    return folder


# ---------------------------------------------------------------------------------------
# examples


@pytest.mark.parametrize("script, expected", [
    ("examples/07_lora.py", ["Total trainable LoRA parameters", "Test accuracy",
                             "merged"]),
    ("examples/08_classify_spam.py", ["Outputs dimensions", "Test accuracy", "spam"]),
    ("examples/09_instruction_finetune.py", ["Correct response", "Model response",
                                             "Average score"]),
])
def test_example_runs_tiny(script, expected, tmp_path):
    _gpt2_tokenizer_or_skip()
    out = _ok(_run([script, "--tiny", "--out", str(tmp_path)]))
    for text in expected:
        assert text in out, (text, out[-2000:])


# ---------------------------------------------------------------------------------------
# CLI


def test_cli_finetune_classifier_full_and_lora(data_files, tmp_path):
    from tinygrad_llm.finetune import load_finetuned

    out = _ok(_cli("finetune-classifier", "--data", str(data_files / "spam.tsv"), *TINY,
                   "--out", str(tmp_path / "full")))
    for name in ("Training accuracy:", "Validation accuracy:", "Test accuracy:", "Checkpoint:"):
        assert name in out
    model, info = load_finetuned(tmp_path / "full" / "model.safetensors")
    assert info["task"] == "classification" and model.out_head.weight.shape == (2, 16)
    out = _ok(_cli("finetune-classifier", "--data", str(data_files / "spam.tsv"), *TINY,
                   "--lora", "2", "--out", str(tmp_path / "lora")))
    assert "LoRA rank 2" in out and (tmp_path / "lora" / "lora.safetensors").is_file()
    load_finetuned(tmp_path / "lora" / "model.safetensors")  # merged: a plain classifier


@pytest.fixture(scope="module")
def instruct_run(data_files, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("instruct")
    proc = _cli("finetune-instruct", "--data", str(data_files / "instruct.json"), *TINY,
                "--limit-test", "2", "--max-new-tokens", "6", "--out", str(out_dir))
    return proc, out_dir


def test_cli_finetune_instruct_writes_answers_and_scores(instruct_run):
    proc, out_dir = instruct_run
    out = _ok(proc)
    answers = json.loads((out_dir / "instruction-data-with-response.json").read_text())
    assert len(answers) == 2 and all("model_response" in a and "output" in a for a in answers)
    assert "Number of scores: 2 of 2" in out and "Average score:" in out
    assert (out_dir / "model.safetensors").is_file()


def test_cli_finetune_instruct_unreachable_ollama_fails_fast(data_files, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _cli("finetune-instruct", "--data", str(data_files / "instruct.json"), *TINY,
                "--judge", "ollama", "--ollama-url", f"http://127.0.0.1:{port}/api/chat",
                "--out", str(tmp_path))
    assert proc.returncode != 0
    assert "ollama serve" in proc.stderr and f"127.0.0.1:{port}" in proc.stderr
    assert not (tmp_path / "model.safetensors").exists()  # checked before training


def test_cli_chat_reads_stdin_until_exit(instruct_run, data_files, tmp_path):
    _, out_dir = instruct_run
    ckpt = str(out_dir / "model.safetensors")
    proc = _cli("chat", "--checkpoint", ckpt, "--max-new-tokens", "5",
                input="Name color number 3.\n\nexit\nnot read\n")
    out = _ok(proc)
    assert len(out.splitlines()) == 1  # one answer line for the one instruction
    proc = _cli("chat", "--checkpoint", ckpt, "--max-new-tokens", "3", input="hi\n")
    _ok(proc)  # EOF ends it too
    clf = tmp_path / "clf"
    _ok(_cli("finetune-classifier", "--data", str(data_files / "spam.tsv"), *TINY,
             "--out", str(clf)))
    proc = _cli("chat", "--checkpoint", str(clf / "model.safetensors"), input="hi\n")
    assert proc.returncode != 0 and "classifier checkpoint" in proc.stderr
