"""Chapter 6: fine-tune a GPT to classify SMS messages as spam or not spam.

Run (offline, with the data folder):

    TINYGRAD_LLM_DATA_DIR=../shared/data TIKTOKEN_CACHE_DIR=../shared/tiktoken-cache \\
        OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/08_classify_spam.py

(one BLAS thread: these matrices are small, and on shared cores OpenBLAS's waiting threads
measured several times slower.)

``--gpt2 124M`` runs the book's setup (GPT-2 small weights, the book's freezing rule,
lr 5e-5; needs the weights); ``--tiny`` is a seconds-long smoke run on a few messages.

What it does, section by section as the book: the balanced SMS Spam Collection split
70/10/20 (1045 / 149 / 300 messages, padded to the longest training message); a GPT whose
``out_head`` becomes ``Linear(emb_dim, 2)`` (the book's ``Outputs dimensions: (1, 4, 2)``);
accuracy before training (about chance); ``train_classifier_simple`` with its loss and
accuracy printouts; the final train/validation/test accuracy; ``classify_review`` on the
book's two example texts.

The default base model is a small GPT built here (64-dim, 2 layers, 4 heads, dropout 0.1;
``finetune.CLASSIFIER_BASE``). It is not pretrained, so all of it trains (the book's rule,
last block + final norm + head, is for pretrained models: ``--gpt2``). Logits are read at
the last real token (``pooling="last_real"``; ``--pooling last`` is the book's rule).

Measured here (2 shared cores, the command above):
    before fine-tuning (10 batches): 45.00% / 53.75% / 47.50% (chance)
    after 5 epochs: Training accuracy 99.81%, Validation accuracy 93.29%,
    Test accuracy 93.67%; both example texts classified as in the book;
    training 0.21 minutes, wall time 15 s.
(The book, with GPT-2 small: 97.21% / 97.32% / 95.67%.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tinygrad_llm import manual_seed
from tinygrad_llm.data import Splits, get_tokenizer, spam_splits
from tinygrad_llm.finetune import (
    CLASSIFIER_BASE,
    calc_accuracy_loader,
    calc_loss_loader_classifier,
    classifier_logits,
    classify_review,
    create_spam_dataloaders,
    default_lr,
    load_base_model,
    save_finetuned,
    train_classifier_simple,
    trainable_summary,
)
from tinygrad_llm.nn import prepare_classifier
from tinygrad_llm.optim import AdamW, decay_groups

TEXTS = ("You are a winner you have been specially selected to receive $1000 cash or a $2000 "
         "award.",
         "Hey, just wanted to check if we're still on for dinner tonight? Let me know!")


def section(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gpt2", help="start from GPT-2 weights (124M, ..., a file or folder)")
    ap.add_argument("--data", help="a label<TAB>text file (default: the SMS Spam Collection)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, help="default 5e-5 with --gpt2 (the book's), else 1e-3")
    ap.add_argument("--pooling", choices=("last_real", "last"), default="last_real")
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--out", default="runs/08_classify_spam", help="folder for the checkpoint")
    ap.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = ap.parse_args()
    start = time.perf_counter()
    manual_seed(args.seed)
    tokenizer = get_tokenizer("gpt2")

    section("6.2-6.3 the data")
    splits = spam_splits(args.data, seed=args.seed)
    if args.tiny:
        splits = Splits(splits.train[:48], splits.val[:16], splits.test[:16])
    spam_share = np.mean([label for _, label in splits.train])
    print(f"{len(splits.train)} training, {len(splits.val)} validation, {len(splits.test)} "
          f"test messages; {spam_share:.0%} of the training messages are spam")

    section("6.4-6.5 the model and its new head")
    # GPT-2 weights with --gpt2, else a small GPTModel of CLASSIFIER_BASE (not pretrained)
    tiny = dict(emb_dim=16, n_layers=1, n_heads=2, context_length=32) if args.tiny else {}
    model, source = load_base_model(CLASSIFIER_BASE, tokenizer.n_vocab, gpt2=args.gpt2, **tiny)
    print(f"Base model ({source}): {model.cfg}")
    train_loader, val_loader, test_loader = create_spam_dataloaders(
        splits, tokenizer, batch_size=8, context_length=model.cfg.context_length, seed=args.seed)
    inputs, labels = next(iter(train_loader))
    print(f"{len(train_loader)} training batches, {len(val_loader)} validation batches, "
          f"{len(test_loader)} test batches")
    print(f"Input batch dimensions: {inputs.shape}; label batch dimensions: {labels.shape}")
    prepare_classifier(model, num_classes=2, train_last_blocks=1)
    if source == "built":
        model.requires_grad_(True)  # nothing pretrained to keep: train all of it
    print(trainable_summary(model))
    ids = np.array([tokenizer.encode("Do you have time")])
    model.eval()
    outputs = model(ids)
    print(f"Inputs: {ids.tolist()}  Inputs dimensions: {ids.shape}")
    print(f"Outputs dimensions: {outputs.shape}")
    last = outputs.data[:, -1, :].astype(float)
    pooled = classifier_logits(model, ids, pooling=args.pooling).data.astype(float)
    print(f"Last output token: {np.round(last, 4).tolist()}")
    print(f"Logits read at the last real token ({args.pooling}): {np.round(pooled, 4).tolist()}")

    section("6.6 accuracy and loss before fine-tuning (10 batches)")
    kw = dict(pooling=args.pooling)
    for name, loader in (("Training", train_loader), ("Validation", val_loader),
                         ("Test", test_loader)):
        acc = calc_accuracy_loader(loader, model, num_batches=10, **kw)
        loss = calc_loss_loader_classifier(loader, model, num_batches=5, **kw)
        print(f"{name} accuracy: {acc * 100:.2f}%   loss: {loss:.3f}")

    section("6.7 fine-tuning")
    lr = args.lr if args.lr is not None else default_lr(source)  # 5e-5 for GPT-2, else 1e-3
    optimizer = AdamW(decay_groups(model, 0.1), lr=lr, weight_decay=0.1)
    t0 = time.perf_counter()
    train_classifier_simple(model, train_loader, val_loader, optimizer, num_epochs=args.epochs,
                            eval_freq=50, eval_iter=5, progress=not args.tiny, **kw)
    print(f"Training completed in {(time.perf_counter() - t0) / 60:.2f} minutes.")
    for name, loader in (("Training", train_loader), ("Validation", val_loader),
                         ("Test", test_loader)):
        print(f"{name} accuracy: {calc_accuracy_loader(loader, model, **kw) * 100:.2f}%")

    section("6.8 using the classifier")
    max_length = train_loader.dataset.max_length
    for text in TEXTS:
        print(f"{classify_review(text, model, tokenizer, max_length=max_length, **kw)!r:12} "
              f"<- {text}")
    path = save_finetuned(Path(args.out) / "model.safetensors", model,
                          {"task": "classification", "pooling": args.pooling,
                           "max_length": max_length, "labels": ["not spam", "spam"]})
    print(f"Saved {path}; wall time {(time.perf_counter() - start) / 60:.2f} minutes")


if __name__ == "__main__":
    main()
