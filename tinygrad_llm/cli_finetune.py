"""The fine-tuning subcommands of ``tinygrad-llm`` (the book's chapters 6 and 7, appendix E).

    tinygrad-llm finetune-classifier                  # SMS spam, a small GPT built here
    tinygrad-llm finetune-classifier --gpt2 124M      # the book's setup (needs the weights)
    tinygrad-llm finetune-classifier --lora 16        # LoRA adapters instead
    tinygrad-llm finetune-instruct                    # instruction data, answers, scores
    tinygrad-llm finetune-instruct --judge ollama     # scored by a local Ollama server
    tinygrad-llm chat --checkpoint runs/instruct/model.safetensors

``add_finetune_commands(subparsers)`` registers them on the main parser (``cli.py``).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

_BASE_HELP = (
    "Base model: --checkpoint PATH (a tinygrad-llm checkpoint, e.g. from `tinygrad-llm "
    "pretrain`), --gpt2 SIZE_OR_PATH (published GPT-2 weights: 124M, 355M, ..., a file or a "
    "folder), or, by default, a small GPT built here ({emb_dim}-dim, {n_layers} layers, "
    "{n_heads} heads, context {context_length}, dropout {drop_rate}; the model flags change "
    "it).")


def _text(*paragraphs: str) -> str:
    """Paragraphs wrapped to 88 columns for a RawDescriptionHelpFormatter."""
    return "\n\n".join(textwrap.fill(p, 88, break_on_hyphens=False) for p in paragraphs)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _add_base_flags(p: argparse.ArgumentParser, base: dict) -> None:
    g = p.add_argument_group("base model")
    g.add_argument("--checkpoint", help="a tinygrad-llm checkpoint to start from")
    g.add_argument("--gpt2", help="GPT-2 weights: 124M|355M|774M|1558M, a file or a folder")
    for flag, key in (("--emb-dim", "emb_dim"), ("--n-layers", "n_layers"),
                      ("--n-heads", "n_heads"), ("--context-length", "context_length")):
        g.add_argument(flag, type=_positive_int, default=base[key],
                       help="built model only (default %(default)s)")
    g.add_argument("--drop-rate", type=float,
                   help=f"dropout while fine-tuning (default {base['drop_rate']} for the built "
                   f"model, else 0.0 as the book fine-tunes)")


def _add_train_flags(p: argparse.ArgumentParser, epochs: int | None, batch_size: int,
                     eval_freq: int) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=_positive_int, default=epochs,
                   help="default %(default)s" if epochs else "default: see above")
    g.add_argument("--batch-size", type=_positive_int, default=batch_size,
                   help="default %(default)s")
    g.add_argument("--lr", type=float, help="learning rate (default: see above)")
    g.add_argument("--weight-decay", type=float, default=0.1, help="default %(default)s")
    g.add_argument("--lora", type=_positive_int, metavar="RANK",
                   help="train LoRA adapters of this rank on every Linear instead (appendix E)")
    g.add_argument("--alpha", type=float, help="LoRA alpha (default: equal to the rank)")
    g.add_argument("--eval-freq", type=_positive_int, default=eval_freq,
                   help="evaluate every N steps (default %(default)s)")
    g.add_argument("--eval-iter", type=_positive_int, default=5,
                   help="batches per evaluation (default %(default)s)")
    g.add_argument("--seed", type=int, default=123)
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def _start(args, base: dict, read_splits, what: str):
    """What both fine-tuning commands do first: seed, the GPT-2 tokenizer, the data splits
    (``read_splits()``; its ValueError becomes a --data message), and the base model with the
    dropout rate of --drop-rate (default: the built model's, else 0.0).

    Returns (tokenizer, splits, model, source); source as ``finetune.load_base_model``.
    """
    from tinygrad_llm.data import get_tokenizer
    from tinygrad_llm.finetune import load_base_model
    from tinygrad_llm.random import manual_seed

    manual_seed(args.seed)
    tokenizer = get_tokenizer("gpt2")
    try:
        splits = read_splits()
    except ValueError as e:
        raise SystemExit(f"--data: {e}") from None
    print(f"Data: {len(splits.train)} train, {len(splits.val)} validation, {len(splits.test)} "
          f"test {what}")
    if args.checkpoint and args.gpt2:
        raise SystemExit("give at most one of --checkpoint PATH and --gpt2 SIZE_OR_PATH")
    sizes = {k: getattr(args, k) for k in ("emb_dim", "n_layers", "n_heads", "context_length")}
    try:
        model, source = load_base_model(base, tokenizer.n_vocab, gpt2=args.gpt2 or None,
                                        checkpoint=args.checkpoint or None, **sizes)
    except (TypeError, ValueError) as e:
        flag = "--checkpoint" if args.checkpoint else "--gpt2" if args.gpt2 else "model flags"
        raise SystemExit(f"{flag}: {e}") from None
    if args.drop_rate is None:
        args.drop_rate = base["drop_rate"] if source == "built" else 0.0
    _set_dropout(model, args.drop_rate)
    return tokenizer, splits, model, source


def _set_dropout(model, rate: float) -> None:
    """Set every Dropout layer's rate to ``rate`` and record it in ``model.cfg``."""
    from tinygrad_llm.nn import Dropout

    for m in model.modules():
        if isinstance(m, Dropout):
            m.p = rate
    model.cfg = model.cfg.replace(drop_rate=rate)


def _optimizer(model, lr: float, weight_decay: float):
    from tinygrad_llm.optim import AdamW, decay_groups

    return AdamW(decay_groups(model, weight_decay), lr=lr, weight_decay=weight_decay)


def _apply_lora(model, args) -> None:
    from tinygrad_llm.finetune import trainable_summary
    from tinygrad_llm.nn.lora import replace_linear_with_lora

    alpha = args.alpha if args.alpha is not None else float(args.lora)
    before = model.num_parameters(trainable_only=True)
    replace_linear_with_lora(model, args.lora, alpha)
    print(f"LoRA rank {args.lora}, alpha {alpha:g}: trainable parameters before "
          f"{before:,}, after {model.num_parameters(trainable_only=True):,} "
          f"({trainable_summary(model)})")


def _finish_lora(model, args, out: Path, include=()) -> None:
    from tinygrad_llm.nn.lora import merge_lora, save_lora

    if args.lora:
        path = save_lora(model, out / "lora.safetensors", include=include)
        print(f"LoRA adapters: {path}")
        merge_lora(model)


# ---------------------------------------------------------------------------------------
# finetune-classifier


def cmd_finetune_classifier(args) -> int:
    from tinygrad_llm.data import spam_splits
    from tinygrad_llm.finetune import (
        CLASSIFIER_BASE,
        SPAM_LABELS,
        calc_accuracy_loader,
        classify_review,
        create_spam_dataloaders,
        default_lr,
        pretrain_on_texts,
        save_finetuned,
        train_classifier_simple,
        trainable_summary,
    )
    from tinygrad_llm.nn.heads import prepare_classifier

    start = time.perf_counter()
    tokenizer, splits, model, source = _start(
        args, CLASSIFIER_BASE, lambda: spam_splits(args.data, seed=args.seed), "messages")
    progress = not args.no_progress
    if args.base_epochs:
        print(f"Pretraining the base model for {args.base_epochs} epoch(s) on the training "
              f"messages (next-token prediction, no labels)")
        pretrain_on_texts(model, [t for t, _ in splits.train], tokenizer, args.base_epochs,
                          batch_size=args.batch_size, seed=args.seed, progress=progress)
    train_all = args.train_all if args.train_all is not None else (source == "built"
                                                                   and not args.base_epochs)
    loaders = create_spam_dataloaders(splits, tokenizer, args.batch_size,
                                      model.cfg.context_length, seed=args.seed)
    train_loader, val_loader, test_loader = loaders
    max_length = train_loader.dataset.max_length
    try:
        prepare_classifier(model, num_classes=2, train_last_blocks=args.train_last_blocks)
    except ValueError as e:
        raise SystemExit(f"--train-last-blocks: {e}") from None
    if args.lora:
        _apply_lora(model, args)
        what = "LoRA adapters"
    elif train_all:
        model.requires_grad_(True)
        what = "every parameter (a model not pretrained has nothing to keep frozen)"
    else:
        what = (f"the last {args.train_last_blocks} block(s), the final norm and the new "
                f"head (the book's rule)")
    print(f"Model ({source}): {model.cfg.n_layers} layers, {model.cfg.emb_dim}-dim; "
          f"training {what}; {trainable_summary(model)}")
    lr = args.lr if args.lr is not None else default_lr(source)
    optimizer = _optimizer(model, lr, args.weight_decay)
    kw = dict(pooling=args.pooling)
    t0 = time.perf_counter()
    train_classifier_simple(model, train_loader, val_loader, optimizer, args.epochs,
                            args.eval_freq, args.eval_iter, progress=progress, **kw)
    minutes = (time.perf_counter() - t0) / 60
    print(f"Training completed in {minutes:.2f} minutes.")
    accs = [calc_accuracy_loader(loader, model, **kw) for loader in loaders]
    for name, acc in zip(("Training", "Validation", "Test"), accs):
        print(f"{name} accuracy: {acc * 100:.2f}%")
    out = Path(args.out)
    _finish_lora(model, args, out, include=("out_head.",))
    info = {"task": "classification", "num_classes": 2, "labels": list(SPAM_LABELS),
            "pooling": args.pooling, "pad_token_id": 50256, "max_length": max_length,
            "accuracy": dict(zip(("train", "val", "test"), accs)),
            "args": {k: v for k, v in vars(args).items() if k != "func"}}
    path = save_finetuned(out / "model.safetensors", model, info)
    print(f"Checkpoint: {path}")
    for text in ("You are a winner you have been specially selected to receive $1000 cash "
                 "or a $2000 award.",
                 "Hey, just wanted to check if we're still on for dinner tonight? Let me know!"):
        label = classify_review(text, model, tokenizer, max_length=max_length, **kw)
        print(f"{label:>8}: {text}")
    print(f"Total time: {(time.perf_counter() - start) / 60:.2f} minutes")
    return 0


# ---------------------------------------------------------------------------------------
# finetune-instruct


def cmd_finetune_instruct(args) -> int:
    from tinygrad_llm.data import format_input, instruction_splits, load_instruction_data
    from tinygrad_llm.finetune import (
        INSTRUCT_BASE,
        JudgeUnavailableError,
        create_instruction_dataloader,
        default_lr,
        generate_model_scores,
        generate_responses,
        get_judge,
        save_finetuned,
        trainable_summary,
    )
    from tinygrad_llm.train import run_training

    start = time.perf_counter()
    judge = None
    if args.judge == "ollama":  # check first: no point training for an hour, then failing
        judge = get_judge("ollama", model=args.ollama_model, url=args.ollama_url)
        try:
            judge.check()
        except JudgeUnavailableError as e:
            raise SystemExit(str(e)) from None
    tokenizer, splits, model, source = _start(
        args, INSTRUCT_BASE,
        lambda: instruction_splits(load_instruction_data(args.data), seed=args.seed), "records")
    ctx = model.cfg.context_length
    if args.epochs is None:
        args.epochs = 5 if source == "built" else 2
    if args.mask_instruction is None:
        args.mask_instruction = source == "built"
    loader_kw = dict(batch_size=args.batch_size, allowed_max_length=ctx,
                     mask_instruction=args.mask_instruction, seed=args.seed)
    train_loader = create_instruction_dataloader(splits.train, tokenizer, shuffle=True,
                                                 drop_last=True, **loader_kw)
    val_loader = create_instruction_dataloader(splits.val, tokenizer, **loader_kw)
    if args.lora:
        _apply_lora(model, args)
    print(f"Model ({source}): {model.cfg.n_layers} layers, {model.cfg.emb_dim}-dim, context "
          f"{ctx}; {trainable_summary(model)}")
    lr = args.lr if args.lr is not None else default_lr(source)
    optimizer = _optimizer(model, lr, args.weight_decay)
    steps = len(train_loader) * args.epochs
    t0 = time.perf_counter()
    history, finished = run_training(
        model, train_loader, val_loader, optimizer, args.epochs, args.eval_freq,
        args.eval_iter, format_input(splits.val[0]), tokenizer, peak_lr=lr,
        warmup_steps=max(1, steps // 20), initial_lr=lr * 0.01, min_lr=lr * 0.1,
        max_norm=1.0, progress=not args.no_progress)
    print(f"Training completed in {(time.perf_counter() - t0) / 60:.2f} minutes"
          f"{'' if finished else ' (stopped early by Ctrl-C)'}.")
    out = Path(args.out)
    _finish_lora(model, args, out)
    info = {"task": "instruction", "args": {k: v for k, v in vars(args).items() if k != "func"},
            "history": history.to_dict()}
    ckpt = save_finetuned(out / "model.safetensors", model, info)
    print(f"Checkpoint: {ckpt}")

    test = splits.test[: args.limit_test] if args.limit_test else splits.test
    print(f"Generating answers for {len(test)} test records ...")
    results = generate_responses(model, tokenizer, test, args.max_new_tokens,
                                 path=out / "instruction-data-with-response.json",
                                 progress=not args.no_progress)
    for entry in results[:3]:
        print(f"\n{format_input(entry)}\n\nCorrect response:\n>> {entry['output']}\n\n"
              f"Model response:\n>> {entry['model_response']}\n" + "-" * 40)
    print(f"Answers: {out / 'instruction-data-with-response.json'}")
    judge = judge or get_judge("offline")
    try:
        scores = generate_model_scores(results, "model_response", judge,
                                       progress=not args.no_progress)
    except JudgeUnavailableError as e:
        print(str(e), file=sys.stderr)
        return 1
    print(f"Judge: {judge!r}")
    print(f"Number of scores: {len(scores)} of {len(results)}")
    if scores:
        print(f"Average score: {np.mean(scores):.2f}")
    print(f"Total time: {(time.perf_counter() - start) / 60:.2f} minutes")
    return 0


# ---------------------------------------------------------------------------------------
# chat


def _held_back(text: str) -> str:
    """The part of a streamed answer that is safe to show: a trailing newline or '#'
    might begin a '### ...' section header, where the answer ends."""
    return text.rstrip("\n#")


def cmd_chat(args) -> int:
    from tinygrad_llm import io
    from tinygrad_llm.data import get_tokenizer
    from tinygrad_llm.finetune import load_finetuned, response_prompt
    from tinygrad_llm.generate import generate_stream, text_to_token_ids

    if (args.checkpoint is None) == (args.gpt2 is None):
        raise SystemExit("chat: give exactly one of --checkpoint PATH or --gpt2 SIZE_OR_PATH")
    if args.checkpoint:
        model, info = load_finetuned(args.checkpoint)
        if info.get("task") == "classification":
            raise SystemExit(f"chat: {args.checkpoint} is a classifier checkpoint; chat needs "
                             f"an instruction fine-tuned model (tinygrad-llm finetune-instruct)")
    else:
        model = io.load_gpt2(args.gpt2)
    tokenizer = get_tokenizer("gpt2")
    eot = tokenizer.eot_token
    ctx = model.cfg.context_length
    interactive = sys.stdin.isatty()
    if interactive:
        print("Type an instruction (an empty line skips; 'exit' or Ctrl-D ends).")
    while True:
        if interactive:
            print(">>> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:  # EOF
            break
        line = line.strip()
        if line.lower() in ("exit", "quit"):
            break
        if not line:
            continue
        ids = text_to_token_ids(response_prompt({"instruction": line, "input": ""}),
                                tokenizer)[:, -ctx:]
        new: list[int] = []
        shown = ""
        for token in generate_stream(model, ids, max_new_tokens=args.max_new_tokens,
                                     temperature=args.temperature, top_k=args.top_k,
                                     top_p=args.top_p, eos_id=eot, seed=args.seed):
            if int(token[0]) == eot:
                break
            new.append(int(token[0]))
            text = tokenizer.decode(new)
            if "###" in text or text.endswith("\ufffd"):
                if "###" in text:
                    break  # the model starts another section: the answer is over
                continue  # wait for the rest of a multi-byte character
            safe = _held_back(text)
            if len(safe) > len(shown):
                print(safe[len(shown):], end="", flush=True)
                shown = safe
        final = tokenizer.decode(new).split("###", 1)[0].rstrip()
        print(final[len(shown):] if final.startswith(shown) else "", flush=True)
    return 0


# ---------------------------------------------------------------------------------------


def add_finetune_commands(sub) -> None:
    """Register finetune-classifier, finetune-instruct and chat on ``sub``."""
    from tinygrad_llm.finetune import CLASSIFIER_BASE, INSTRUCT_BASE

    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "finetune-classifier", formatter_class=fmt,
        help="fine-tune a GPT to classify SMS spam (chapter 6; --lora for appendix E)",
        description=_text(
            "Fine-tune a GPT as a spam classifier (the book's chapter 6): a new 2-class head, "
            "read at the last real (non-padding) token, trained on the balanced SMS Spam "
            "Collection; prints train/validation/test accuracy and saves the model "
            "(OUT/model.safetensors; with --lora also the adapters, OUT/lora.safetensors).",
            _BASE_HELP.format(**CLASSIFIER_BASE),
            "What trains: the book's rule freezes everything, then trains the last "
            "transformer block, the final norm and the new head (--train-last-blocks). A "
            "built model is not pretrained, so by default every parameter trains instead "
            "(--no-train-all for the book's rule); --base-epochs N first pretrains it as a "
            "language model on the training messages, after which the book's rule applies. "
            "--lora RANK trains only LoRA adapters on every Linear (appendix E), merged "
            "into the weights before saving.",
            "Learning rate: 5e-5 with --gpt2 (the book's), else 1e-3."))
    p.add_argument("--data", help="a label<TAB>text file (default: the SMS Spam Collection, "
                   "fetched or from $TINYGRAD_LLM_DATA_DIR)")
    _add_base_flags(p, CLASSIFIER_BASE)
    p.add_argument("--base-epochs", type=int, default=0,
                   help="pretrain the base on the training texts for N epochs first")
    p.add_argument("--train-last-blocks", type=int, default=1,
                   help="blocks that train with the book's rule (default %(default)s)")
    p.add_argument("--train-all", action=argparse.BooleanOptionalAction, default=None,
                   help="train every parameter (default: only for a built, unpretrained model)")
    p.add_argument("--pooling", choices=("last_real", "last"), default="last_real",
                   help="read the logits of the last real token (default) or of the last "
                   "position like the book")
    _add_train_flags(p, epochs=5, batch_size=8, eval_freq=50)
    p.add_argument("--out", default="runs/classifier", help="folder for the checkpoint")
    p.set_defaults(func=cmd_finetune_classifier)

    p = sub.add_parser(
        "finetune-instruct", formatter_class=fmt,
        help="instruction fine-tuning, answers for the test set and their scores (chapter 7)",
        description=_text(
            "Fine-tune a GPT to follow instructions (the book's chapter 7) on the instruction "
            "data set, save it (OUT/model.safetensors), answer the test instructions into "
            "OUT/instruction-data-with-response.json and score the answers 0-100 with a "
            "judge.",
            _BASE_HELP.format(**INSTRUCT_BASE),
            "A built model is not pretrained: fine-tuning it is training from scratch on the "
            "instruction data, which teaches the answer format and little else; GPT-2 "
            "weights (--gpt2 355M is the book's choice) give real answers.",
            "Defaults that depend on the base: a built model trains 5 epochs with the "
            "prompt's targets masked (--mask-instruction, the book's exercise 7.2, which "
            "measured better for it); a checkpoint or GPT-2 weights train 2 epochs without "
            "masking (the book's main text).",
            "Learning rate: 5e-5 with --gpt2 (the book's), else 1e-3; warmup, cosine decay "
            "to a tenth, gradient clipping at 1.",
            "Judges: offline (default): 100 x the SQuAD token F1 of the answer against the "
            "reference answer (word overlap; deterministic, no model). ollama: the book's "
            "prompt to a model served by a local Ollama server (--ollama-model, "
            "--ollama-url); checked before training."))
    p.add_argument("--data", help="a JSON list of {instruction, input, output} (default: the "
                   "book's instruction-data.json, fetched or from $TINYGRAD_LLM_DATA_DIR)")
    _add_base_flags(p, INSTRUCT_BASE)
    p.add_argument("--mask-instruction", action=argparse.BooleanOptionalAction,
                   help="learn only the responses (the book's exercise 7.2; default: see above)")
    _add_train_flags(p, epochs=None, batch_size=8, eval_freq=20)
    p.add_argument("--max-new-tokens", type=_positive_int, default=64,
                   help="answer length limit (default %(default)s)")
    p.add_argument("--limit-test", type=_positive_int, help="answer only the first N test records")
    p.add_argument("--judge", choices=("offline", "ollama"), default="offline")
    p.add_argument("--ollama-model", default="llama3")
    p.add_argument("--ollama-url", default="http://localhost:11434/api/chat")
    p.add_argument("--out", default="runs/instruct", help="folder for checkpoint and answers")
    p.set_defaults(func=cmd_finetune_instruct)

    p = sub.add_parser("chat", help="talk to an instruction fine-tuned checkpoint",
                       description="Read an instruction per line from stdin, format it like the "
                       "training data and stream the model's answer, until EOF or 'exit'. "
                       "Each line is answered on its own (no conversation memory).")
    p.add_argument("--checkpoint", help="a checkpoint written by finetune-instruct")
    p.add_argument("--gpt2", help="GPT-2 weights instead (not instruction-tuned)")
    p.add_argument("--max-new-tokens", type=_positive_int, default=128)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--top-k", type=_positive_int)
    p.add_argument("--top-p", type=float)
    p.add_argument("--seed", type=int, default=123)
    p.set_defaults(func=cmd_chat)
