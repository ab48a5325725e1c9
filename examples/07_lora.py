"""Appendix E: parameter-efficient fine-tuning with LoRA, on the spam classifier.

Run (offline, with the data folder):

    TINYGRAD_LLM_DATA_DIR=../shared/data TIKTOKEN_CACHE_DIR=../shared/tiktoken-cache \\
        OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/07_lora.py

(one BLAS thread: these matrices are small, and on shared cores OpenBLAS's waiting threads
measured several times slower.)

``--gpt2 124M`` runs the book's setup (GPT-2 small weights, rank 16, alpha 16, lr 5e-5;
needs the weights); ``--tiny`` is a seconds-long smoke run.

What it does, as the book: a GPT gets the 2-class head of chapter 6; every parameter is
frozen ("Total trainable parameters after: 0"); ``replace_linear_with_lora`` wraps every
Linear, the new head included, with ``LinearWithLoRA`` ("Total trainable LoRA parameters");
the model prints with its ``LinearWithLoRA`` layers; it is fine-tuned with the chapter 6
loop and evaluated. Beyond the book: the adapters are saved alone (``save_lora``, with the
new head's frozen base weights, which no pretrained model holds), loaded into a fresh copy
of the base model, and merged into the weights (``merge_lora``) with unchanged outputs.

The default base model is the small GPT of ``examples/08_classify_spam.py`` (64-dim, 2
layers; ``finetune.CLASSIFIER_BASE``), built here and *not* pretrained: LoRA then learns
low-rank updates of random frozen weights (and a random frozen embedding), a random-features
model. Pretraining it first as a language model on the training messages
(``--base-epochs 5``, ``pretrain_on_texts``, 1.5 minutes) measured no better here (test
accuracy 90.3% vs 91.7%): 32k tokens teach a model little. With ``--gpt2`` LoRA adapts a
pretrained model, as in the book.

Measured here (2 shared cores, the command above):
    Total trainable LoRA parameters: 37,920 (of 3,324,482; 13 Linear layers wrapped)
    after 5 epochs: Training accuracy 97.60%, Validation accuracy 90.60%,
    Test accuracy 91.67%; the saved adapters reload exactly (difference 0) and merged
    weights give the same logits (max difference 7.6e-07); wall time 16 s.
(The book, GPT-2 small with rank 16: 100.00% / 96.64% / 98.00%.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tinygrad_llm import GPTModel, manual_seed
from tinygrad_llm.data import Splits, get_tokenizer, spam_splits
from tinygrad_llm.finetune import (
    CLASSIFIER_BASE,
    calc_accuracy_loader,
    classifier_logits,
    create_spam_dataloaders,
    default_lr,
    load_base_model,
    pretrain_on_texts,
    train_classifier_simple,
)
from tinygrad_llm.nn import (
    LinearWithLoRA,
    load_lora,
    merge_lora,
    prepare_classifier,
    replace_linear_with_lora,
    save_lora,
)
from tinygrad_llm.optim import AdamW, decay_groups


def section(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


def trainable(model) -> int:
    return model.num_parameters(trainable_only=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gpt2", help="start from GPT-2 weights (124M, ..., a file or folder)")
    ap.add_argument("--data", help="a label<TAB>text file (default: the SMS Spam Collection)")
    ap.add_argument("--base-epochs", type=int, default=0,
                    help="first pretrain the built model as a language model on the training "
                    "messages for N epochs (default 0; see the docstring)")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, help="default 5e-5 with --gpt2 (the book's), else 1e-3")
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--out", default="runs/07_lora", help="folder for the adapters")
    ap.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = ap.parse_args()
    start = time.perf_counter()
    manual_seed(args.seed)
    tokenizer = get_tokenizer("gpt2")

    section("E.3 the data and the base model")
    splits = spam_splits(args.data, seed=args.seed)
    if args.tiny:
        splits = Splits(splits.train[:48], splits.val[:16], splits.test[:16])
    print(f"{len(splits.train)} training, {len(splits.val)} validation, {len(splits.test)} "
          f"test messages")
    # GPT-2 weights with --gpt2, else a small GPTModel of CLASSIFIER_BASE (not pretrained)
    tiny = dict(emb_dim=16, n_layers=1, n_heads=2, context_length=32) if args.tiny else {}
    model, source = load_base_model(CLASSIFIER_BASE, tokenizer.n_vocab, gpt2=args.gpt2, **tiny)
    print(f"Base model ({source}): {model.cfg}")
    if source == "built":
        epochs = min(args.base_epochs, 1) if args.tiny else args.base_epochs
        if epochs:
            t0 = time.perf_counter()
            h = pretrain_on_texts(model, [t for t, _ in splits.train], tokenizer, epochs,
                                  seed=args.seed, progress=not args.tiny)
            print(f"Pretrained it as a language model on the training messages for {epochs} "
                  f"epoch(s) in {(time.perf_counter() - t0) / 60:.2f} minutes: validation "
                  f"loss {h.val_losses[0]:.2f} -> {h.val_losses[-1]:.2f}")
    base_cfg, base_state = model.cfg, model.state_dict()  # what LoRA must leave alone
    train_loader, val_loader, test_loader = create_spam_dataloaders(
        splits, tokenizer, batch_size=8, context_length=model.cfg.context_length, seed=args.seed)

    section("E.4 LoRA")
    prepare_classifier(model, num_classes=2)  # the chapter 6 head: Linear(emb_dim, 2)
    model.requires_grad_(True)
    print(f"Total trainable parameters before: {trainable(model):,}")
    model.requires_grad_(False)
    print(f"Total trainable parameters after: {trainable(model):,}")
    replace_linear_with_lora(model, rank=args.rank, alpha=args.alpha)
    print(f"Total trainable LoRA parameters: {trainable(model):,}")
    n_wrapped = sum(isinstance(m, LinearWithLoRA) for m in model.modules())
    print(f"{n_wrapped} Linear layers wrapped; the first block's attention:")
    print(model.trf_blocks[0].att)
    print(f"and the head: {model.out_head}")

    kw = dict(pooling="last_real")
    for name, loader in (("Training", train_loader), ("Validation", val_loader),
                         ("Test", test_loader)):
        print(f"{name} accuracy before: "
              f"{calc_accuracy_loader(loader, model, num_batches=10, **kw) * 100:.2f}%")

    lr = args.lr if args.lr is not None else default_lr(source)  # 5e-5 for GPT-2, else 1e-3
    optimizer = AdamW(decay_groups(model, 0.1), lr=lr, weight_decay=0.1)
    t0 = time.perf_counter()
    train_classifier_simple(model, train_loader, val_loader, optimizer, num_epochs=args.epochs,
                            eval_freq=50, eval_iter=5, progress=not args.tiny, **kw)
    print(f"Training completed in {(time.perf_counter() - t0) / 60:.2f} minutes.")
    for name, loader in (("Training", train_loader), ("Validation", val_loader),
                         ("Test", test_loader)):
        print(f"{name} accuracy: {calc_accuracy_loader(loader, model, **kw) * 100:.2f}%")

    section("beyond the book: adapters alone, and merging")
    w0 = base_state["trf_blocks.0.att.W_query.weight"]
    same = np.array_equal(model.trf_blocks[0].att.W_query.linear.weight.data, w0)
    print(f"The frozen base weights did not move (block 0 W_query equal): {same}")
    path = save_lora(model, Path(args.out) / "lora.safetensors", include=("out_head.",))
    print(f"Adapters (+ the new head's base weights): {path}, "
          f"{path.stat().st_size / 2**20:.2f} MB")
    x, _ = next(iter(test_loader))
    before = classifier_logits(model.eval(), x, **kw).data
    fresh = GPTModel(base_cfg)
    fresh.load_state_dict(base_state)
    prepare_classifier(fresh, num_classes=2)
    load_lora(fresh, path)
    reloaded = classifier_logits(fresh.eval(), x, **kw).data
    print(f"Base model + loaded adapters, max |logit difference|: "
          f"{np.abs(reloaded - before).max():.2e}")
    merge_lora(model)
    after = classifier_logits(model, x, **kw).data
    print(f"merged into the weights: {model.num_parameters():,} parameters, plain Linear "
          f"layers again; max |logit difference| merged vs adapters: "
          f"{np.abs(after - before).max():.2e}")
    print(f"wall time {(time.perf_counter() - start) / 60:.2f} minutes")


if __name__ == "__main__":
    main()
