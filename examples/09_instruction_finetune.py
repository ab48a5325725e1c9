"""Chapter 7: instruction fine-tuning, answers for the test set, and scoring them.

Run (offline, with the data folder):

    TINYGRAD_LLM_DATA_DIR=../shared/data TIKTOKEN_CACHE_DIR=../shared/tiktoken-cache \\
        OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/09_instruction_finetune.py

(one BLAS thread: these matrices are small, and on shared cores OpenBLAS's waiting threads
measured several times slower.)

``--gpt2 355M`` is the book's setup (GPT-2 medium weights, lr 5e-5, 2 epochs; needs the
weights and far more time); ``--judge ollama`` scores with a local Ollama server as the book
does (``ollama serve`` + ``ollama pull llama3``); ``--tiny`` is a seconds-long smoke run.

What it does, section by section as the book: the 1100 instruction records split 935 / 55
/ 110 (train / validation / test) and formatted Alpaca-style; ``custom_collate_fn`` on the
book's hand-made batch (padding, the -100 targets); the data loaders; a model; the loss
before and during fine-tuning (``train.run_training``, which needs nothing special: the
cross-entropy skips the -100 targets); the answers to the test instructions, written to
``OUT/instruction-data-with-response.json``; their average score.

The default base model is a small GPT built here (128-dim, 4 layers, 4 heads, context 128,
dropout 0.1; ``finetune.INSTRUCT_BASE``). It is not pretrained, so fine-tuning it is
training from scratch on 52k tokens: it learns the answer format and common phrasings
("The capital of ... is ..."), not facts. The offline judge is 100 x the SQuAD token F1
of each answer against the reference (word overlap, deterministic; not comparable with the
book's Llama 3 scores).

Measured here (2 shared cores, the command above):
    5 epochs (580 steps) with the prompt masked: loss 11.04 -> train 2.15, validation 3.63;
    answers fluent in form, wrong in content ("The binary equivalent of the decimal number
    10 is 1010." -> "The melting point of the word for the word is approximately.");
    Average score (offline judge): 13.70 over 110 answers;
    training 4.37 minutes, wall time 4.6 minutes.
    Other runs of this model: 2 epochs unmasked without dropout 6.3; 5 epochs unmasked
    11.0; 8 epochs 15.3 unmasked, 17.8 masked (8.7 minutes on a busier machine).
(The book, GPT-2 medium judged by Llama 3 8B: an average score of about 50.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tinygrad_llm import manual_seed
from tinygrad_llm.data import (
    Splits,
    custom_collate_fn,
    format_input,
    get_tokenizer,
    instruction_splits,
    load_instruction_data,
)
from tinygrad_llm.finetune import (
    INSTRUCT_BASE,
    JudgeUnavailableError,
    create_instruction_dataloader,
    default_lr,
    generate_model_scores,
    generate_response,
    generate_responses,
    get_judge,
    load_base_model,
    save_finetuned,
    trainable_summary,
)
from tinygrad_llm.optim import AdamW, decay_groups
from tinygrad_llm.train import calc_loss_loader, run_training


def section(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gpt2", help="start from GPT-2 weights (355M is the book's choice)")
    ap.add_argument("--data", help="a JSON list of records (default: the book's data set)")
    ap.add_argument("--epochs", type=int, help="default 2 with --gpt2 (the book's), else 5")
    ap.add_argument("--lr", type=float, help="default 5e-5 with --gpt2 (the book's), else 1e-3")
    ap.add_argument("--mask-instruction", action=argparse.BooleanOptionalAction,
                    help="learn only the responses (exercise 7.2); default on for the built "
                    "model (it measured better), off with --gpt2 (the book's main text)")
    ap.add_argument("--limit-test", type=int, help="answer only the first N test records")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--judge", choices=("offline", "ollama"), default="offline")
    ap.add_argument("--ollama-model", default="llama3")
    ap.add_argument("--ollama-url", default="http://localhost:11434/api/chat")
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--out", default="runs/09_instruction_finetune")
    ap.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = ap.parse_args()
    start = time.perf_counter()
    manual_seed(args.seed)
    tokenizer = get_tokenizer("gpt2")
    judge = get_judge(args.judge, model=args.ollama_model, url=args.ollama_url) \
        if args.judge == "ollama" else get_judge("offline")
    if args.judge == "ollama":
        try:
            judge.check()  # before training, not after
        except JudgeUnavailableError as e:
            raise SystemExit(str(e)) from None

    section("7.2 the data")
    data = load_instruction_data(args.data)
    splits = instruction_splits(data, seed=args.seed)
    if args.tiny:
        splits = Splits(splits.train[:32], splits.val[:8], splits.test[:3])
    print(f"{len(data)} records: {len(splits.train)} training, {len(splits.val)} validation, "
          f"{len(splits.test)} test")
    entry = data[min(50, len(data) - 1)]
    print(f"\n{format_input(entry)}\n\n### Response:\n{entry['output']}")

    section("7.3 batching: custom_collate_fn on the book's hand-made batch")
    inputs, targets = custom_collate_fn([[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]])
    print(f"inputs:\n{inputs}\ntargets:\n{targets}")

    section("7.4-7.5 data loaders and the model")
    # GPT-2 weights with --gpt2, else a small GPTModel of INSTRUCT_BASE (not pretrained)
    tiny = dict(emb_dim=16, n_layers=1, n_heads=2, drop_rate=0.0) if args.tiny else {}
    model, source = load_base_model(INSTRUCT_BASE, tokenizer.n_vocab, gpt2=args.gpt2, **tiny)
    print(f"Base model ({source}): {model.cfg}")
    print(trainable_summary(model))
    ctx = model.cfg.context_length
    mask = args.mask_instruction if args.mask_instruction is not None else source == "built"
    print(f"Targets of the prompt tokens masked (exercise 7.2): {mask}")
    kw = dict(batch_size=8, allowed_max_length=ctx, mask_instruction=mask, seed=args.seed)
    train_loader = create_instruction_dataloader(splits.train, tokenizer, shuffle=True,
                                                 drop_last=True, **kw)
    val_loader = create_instruction_dataloader(splits.val, tokenizer, **kw)
    shapes = [x.shape for x, _ in list(train_loader)[:4]]
    print(f"{len(train_loader)} training batches, the first of shapes {shapes}")
    print(f"Before fine-tuning, to {splits.val[0]['instruction']!r}: "
          f"{generate_response(model, tokenizer, splits.val[0], max_new_tokens=20)!r}")

    section("7.6 fine-tuning")
    model.eval()
    print(f"Training loss: {calc_loss_loader(train_loader, model, num_batches=5):.3f}, "
          f"Validation loss: {calc_loss_loader(val_loader, model, num_batches=5):.3f}")
    epochs = args.epochs or (2 if source == "gpt2" else (1 if args.tiny else 5))
    lr = args.lr if args.lr is not None else default_lr(source)  # 5e-5 for GPT-2, else 1e-3
    optimizer = AdamW(decay_groups(model, 0.1), lr=lr, weight_decay=0.1)
    steps = len(train_loader) * epochs
    t0 = time.perf_counter()
    history, _ = run_training(model, train_loader, val_loader, optimizer, epochs, eval_freq=25,
                              eval_iter=5, start_context=format_input(splits.val[0]),
                              tokenizer=tokenizer, peak_lr=lr, warmup_steps=max(1, steps // 20),
                              initial_lr=lr * 0.01, min_lr=lr * 0.1, max_norm=1.0,
                              progress=not args.tiny)
    print(f"Training completed in {(time.perf_counter() - t0) / 60:.2f} minutes.")
    out = Path(args.out)
    path = save_finetuned(out / "model.safetensors", model,
                          {"task": "instruction", "history": history.to_dict()})
    print(f"Saved {path}")

    section("7.7 answers for the test set")
    test = splits.test[: args.limit_test] if args.limit_test else splits.test
    t1 = time.perf_counter()
    results = generate_responses(model, tokenizer, test, args.max_new_tokens,
                                 path=out / "instruction-data-with-response.json",
                                 progress=not args.tiny)
    for r in results[:3]:
        print(f"\n{format_input(r)}\n\nCorrect response:\n>> {r['output']}\n\n"
              f"Model response:\n>> {r['model_response']}\n" + "-" * 40)
    print(f"{len(results)} answers in {time.perf_counter() - t1:.1f} s, written to "
          f"{out / 'instruction-data-with-response.json'}")

    section("7.8 scoring the answers")
    scores = generate_model_scores(results, "model_response", judge, progress=not args.tiny)
    print(f"Judge: {judge!r}")
    print(f"Number of scores: {len(scores)} of {len(results)}")
    print(f"Average score: {np.mean(scores) if scores else float('nan'):.2f}")
    print(f"wall time {(time.perf_counter() - start) / 60:.2f} minutes")


if __name__ == "__main__":
    main()
