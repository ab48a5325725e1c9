"""The ``tinygrad-llm`` command in-process on tiny checkpoints (no tokenizer, no network):
info and generate on a classifier checkpoint of ``finetune-classifier``."""

from __future__ import annotations

import pytest

from tinygrad_llm import GPTConfig, GPTModel, cli
from tinygrad_llm.finetune import save_finetuned
from tinygrad_llm.nn.heads import prepare_classifier
from tinygrad_llm.random import manual_seed

CFG = GPTConfig(vocab_size=20, context_length=8, emb_dim=12, n_heads=2, n_layers=1,
                drop_rate=0.0)


@pytest.fixture
def classifier_checkpoint(tmp_path):
    """A 3-class classifier saved the way finetune-classifier saves one."""
    manual_seed(0)
    model = prepare_classifier(GPTModel(CFG), num_classes=3)
    return save_finetuned(tmp_path / "clf" / "model.safetensors", model,
                          {"task": "classification", "labels": ["a", "b", "c"],
                           "pooling": "last_real", "max_length": 8})


def test_info_on_a_classifier_checkpoint(classifier_checkpoint, capsys):
    assert cli.main(["info", str(classifier_checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "classifier with 3 classes" in out and "parameters:" in out
    assert cli.main(["info", "--checkpoint", str(classifier_checkpoint)]) == 0  # as generate
    assert "classifier with 3 classes" in capsys.readouterr().out


def test_generate_refuses_a_classifier_checkpoint_and_says_why(classifier_checkpoint):
    with pytest.raises(SystemExit) as e:
        cli.main(["generate", "--checkpoint", str(classifier_checkpoint), "--prompt", "x"])
    msg = str(e.value)
    assert "classifier" in msg and "3 classes" in msg and "cannot generate" in msg
    assert "pretrain" in msg  # names the fix: a language model checkpoint
