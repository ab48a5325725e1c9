"""The ``tinygrad-llm`` command.

    tinygrad-llm pretrain                 # a small GPT on "The Verdict", a few minutes
    tinygrad-llm generate --checkpoint runs/pretrain/model.safetensors --prompt "Every effort"
    tinygrad-llm generate --gpt2 124M --prompt "Hello, I am"
    tinygrad-llm info runs/pretrain/model.safetensors

Each subcommand has ``--help``. Flags map one to one onto GPTConfig fields and training
settings; nothing is read from globals.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

# The default pretraining model: small enough to train on "The Verdict" in a few minutes
# on 2 cores, big enough to memorise it. Its output head (50257 x 256) holds most of it.
PRETRAIN_DEFAULTS = dict(context_length=128, emb_dim=256, n_heads=4, n_layers=4,
                         drop_rate=0.1, qkv_bias=False, tie_weights=False)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (GPTConfig fields)")
    g.add_argument("--preset", help="start from a preset: 'tiny', 'gpt2-small (124M)', ...")
    g.add_argument("--config", help="a JSON file with GPTConfig keys (the book's dict)")
    g.add_argument("--context-length", type=_positive_int)
    g.add_argument("--emb-dim", type=_positive_int)
    g.add_argument("--n-heads", type=_positive_int)
    g.add_argument("--n-layers", type=_positive_int)
    g.add_argument("--drop-rate", type=float)
    g.add_argument("--qkv-bias", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--tie-weights", action=argparse.BooleanOptionalAction, default=None)


def _model_config(args, vocab_size: int):
    from tinygrad_llm.config import PRESETS, GPTConfig

    fields = dict(PRETRAIN_DEFAULTS)
    if args.preset:
        if args.preset not in PRESETS:
            raise SystemExit(f"--preset: unknown {args.preset!r}; choose from {list(PRESETS)}")
        fields.update(PRESETS[args.preset].to_dict())
    if args.config:
        fields.update(json.loads(Path(args.config).read_text()))
    for name in ("context_length", "emb_dim", "n_heads", "n_layers", "drop_rate", "qkv_bias",
                 "tie_weights"):
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    fields["vocab_size"] = vocab_size
    return GPTConfig.from_dict(fields)


def _read_text(path: str | None) -> tuple[str, str]:
    from tinygrad_llm.data import fetch

    if path is None:
        path = str(fetch("the-verdict"))
    p = Path(path)
    if not p.is_file():
        raise SystemExit(f"--data: {p} is not a file")
    return p.read_text(encoding="utf-8"), str(p)


# ---------------------------------------------------------------------------------------
# pretrain


def cmd_pretrain(args) -> int:
    from tinygrad_llm import io
    from tinygrad_llm.data import create_dataloader, get_tokenizer, train_val_split
    from tinygrad_llm.nn import GPTModel
    from tinygrad_llm.optim import AdamW, decay_groups
    from tinygrad_llm.random import manual_seed, set_rng_state
    from tinygrad_llm.train import History, plot_losses, run_training

    out = Path(args.out)
    ckpt_path = out / "model.safetensors"
    tokenizer = get_tokenizer("gpt2")
    resume = None
    if args.resume:
        # read once: the model now, the optimizer's state and the RNG once it is built
        resume = io.load_checkpoint(args.resume, restore_rng=False)
        saved = resume["extra"].get("args", {})
        for key in ("data", "batch_size", "seed", "lr", "weight_decay", "train_ratio",
                    "warmup_steps", "min_lr", "max_norm", "eval_freq", "eval_iter",
                    "start_context"):
            if key in saved:
                setattr(args, key, saved[key])
        if args.epochs is None:
            args.epochs = saved.get("epochs")
        model = resume["model"]
        cfg = model.cfg
        print(f"Resuming {args.resume} at step {resume['step']}")
    else:
        manual_seed(args.seed)
    if args.epochs is None:
        args.epochs = 10
    text, data_path = _read_text(args.data)
    args.data = data_path
    if resume is None:
        cfg = _model_config(args, tokenizer.n_vocab)
        model = GPTModel(cfg)

    train_text, val_text = train_val_split(text, args.train_ratio)
    ctx = cfg.context_length
    try:
        train_loader = create_dataloader(train_text, batch_size=args.batch_size, max_length=ctx,
                                         stride=ctx, shuffle=True, drop_last=True,
                                         seed=args.seed, tokenizer=tokenizer)
        val_loader = create_dataloader(val_text, batch_size=args.batch_size, max_length=ctx,
                                       stride=ctx, shuffle=False, drop_last=False,
                                       seed=args.seed, tokenizer=tokenizer)
    except ValueError as e:
        raise SystemExit(f"pretrain: {e}") from None

    optimizer = AdamW(decay_groups(model, args.weight_decay), lr=args.lr,
                      weight_decay=args.weight_decay)
    history = None
    if resume is not None:
        io.load_optimizer_state(optimizer, resume)
        if resume["rng"] is not None:
            set_rng_state(resume["rng"])  # the dropout masks the stopped run would draw next
        history = History.from_dict(resume["extra"]["history"])
        resume = None  # let the copy of the optimizer state go
    n_params = model.num_parameters()
    print(f"Data: {data_path} ({len(text):,} characters); {len(train_loader)} train and "
          f"{len(val_loader)} validation batches of {args.batch_size} x {ctx} tokens")
    print(f"Model: {n_params:,} parameters ({n_params * 4 / 2**20:.1f} MB), {cfg}")

    saved_args = {k: v for k, v in vars(args).items() if k != "func"}

    def save(h: History, step: int) -> None:
        io.save_checkpoint(ckpt_path, model, optimizer, step=step,
                           extra={"history": h.to_dict(), "args": saved_args})

    start = time.perf_counter()
    h, finished = run_training(
        model, train_loader, val_loader, optimizer, args.epochs, args.eval_freq, args.eval_iter,
        args.start_context, tokenizer, peak_lr=args.lr, warmup_steps=args.warmup_steps,
        initial_lr=args.lr * 0.01 if args.min_lr is not None else None, min_lr=args.min_lr,
        max_norm=args.max_norm, history=history, progress=not args.no_progress,
        on_epoch_end=lambda epoch, h: save(h, h.global_step))
    save(h, h.global_step)
    seconds = time.perf_counter() - start
    if not finished:
        print(f"Stopped at step {h.global_step}; checkpoint saved to {ckpt_path}. "
              f"Continue with: tinygrad-llm pretrain --resume {ckpt_path} --out {out}")
        return 130
    print(f"Trained {h.global_step} steps, {h.tokens_seen:,} tokens in {seconds:.1f} s; "
          f"final train loss {h.train_losses[-1]:.3f}, val loss {h.val_losses[-1]:.3f}")
    print(f"Checkpoint: {ckpt_path}")
    if not args.no_plot and h.train_losses:
        epochs_seen = np.linspace(0, args.epochs, len(h.train_losses))
        png = plot_losses(epochs_seen, h.track_tokens_seen, h.train_losses, h.val_losses,
                          out / "loss.png")
        if png:
            print(f"Loss plot: {png}")
    return 0


# ---------------------------------------------------------------------------------------
# generate and info


def load_model(checkpoint: str | None, gpt2: str | None):
    """(model, info) from a tinygrad-llm checkpoint or from GPT-2 weights (size, file or
    folder); info is the checkpoint's ``extra`` metadata ({} for GPT-2 weights)."""
    from tinygrad_llm import io

    if (checkpoint is None) == (gpt2 is None):
        raise SystemExit("give exactly one of --checkpoint PATH or --gpt2 SIZE_OR_PATH")
    if checkpoint is not None:
        ckpt = io.load_checkpoint(checkpoint, restore_rng=False)
        return ckpt["model"], ckpt["extra"]
    return io.load_gpt2(gpt2), {}


def _classes(info: dict, model) -> str:
    """'N classes (label, ...)' of a classifier checkpoint's info."""
    n = int(info.get("num_classes", model.out_head.weight.shape[0]))
    labels = info.get("labels")
    return f"{n} classes" + (f" ({', '.join(map(str, labels))})" if labels else "")


def cmd_generate(args) -> int:
    from tinygrad_llm.data import get_tokenizer
    from tinygrad_llm.generate import generate_stream, text_to_token_ids

    model, info = load_model(args.checkpoint, args.gpt2)
    if info.get("task") == "classification":
        raise SystemExit(
            f"generate: {args.checkpoint} is a classifier checkpoint (finetune-classifier): "
            f"its head scores {_classes(info, model)} instead of predicting the next token, "
            f"so it cannot generate text. Generate from a language model checkpoint instead "
            f"(tinygrad-llm pretrain, or finetune-instruct, which `chat` also talks to) or "
            f"--gpt2; classify texts with it from Python: "
            f"tinygrad_llm.finetune.load_finetuned(path) and classify_review(text, ...).")
    tokenizer = get_tokenizer("gpt2")
    ids = text_to_token_ids(args.prompt, tokenizer)
    eos = None if args.no_eos else tokenizer.eot_token
    print(args.prompt, end="", flush=True)
    new: list[int] = []
    shown = ""
    for token in generate_stream(model, ids, max_new_tokens=args.max_new_tokens,
                                 temperature=args.temperature, top_k=args.top_k,
                                 top_p=args.top_p, eos_id=eos, seed=args.seed):
        if eos is not None and int(token[0]) == eos:
            break
        new.append(int(token[0]))
        text = tokenizer.decode(new)
        if not text.endswith("\ufffd"):  # wait for the rest of a multi-byte character
            print(text[len(shown):], end="", flush=True)
            shown = text
    print(tokenizer.decode(new)[len(shown):])
    return 0


def cmd_info(args) -> int:
    if args.path is not None and args.checkpoint is not None:
        raise SystemExit("info: give the checkpoint once (PATH or --checkpoint PATH)")
    model, info = load_model(args.path or args.checkpoint, args.gpt2)
    total = model.num_parameters()
    task = info.get("task")
    if task == "classification":
        print(f"task: classifier with {_classes(info, model)} (finetune-classifier); "
              f"out_head is {model.out_head}")
    elif task:
        print(f"task: {task}")
    print(f"config: {json.dumps(model.cfg.to_dict())}")
    print(f"parameters: {total:,} ({total * 4 / 2**20:.1f} MB at float32)")
    if not getattr(model.cfg, "tie_weights", False):
        print(f"without the output head: {total - model.out_head.num_parameters():,}")
    print(f"trainable: {model.num_parameters(trainable_only=True):,}")
    return 0


# ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinygrad-llm", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pretrain", help="pretrain a GPT on a text file (default: The Verdict)",
                       description="Pretrain a GPT (the book's chapter 5) with AdamW, "
                       "evaluation and a sample every epoch, a checkpoint and a loss plot.")
    p.add_argument("--data", help="a UTF-8 text file (default: the-verdict, fetched or from "
                   "$TINYGRAD_LLM_DATA_DIR)")
    _add_model_flags(p)
    p.add_argument("--epochs", type=_positive_int, help="default 10")
    p.add_argument("--batch-size", type=_positive_int, default=4)
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate")
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--min-lr", type=float, default=None,
                   help="enable warmup + cosine decay down to this learning rate")
    p.add_argument("--max-norm", type=float, default=1.0, help="gradient clipping norm")
    p.add_argument("--train-ratio", type=float, default=0.9)
    p.add_argument("--eval-freq", type=_positive_int, default=5)
    p.add_argument("--eval-iter", type=_positive_int, default=5)
    p.add_argument("--start-context", default="Every effort moves you")
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from its checkpoint")
    p.add_argument("--out", default="runs/pretrain", help="folder for checkpoint and plot")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plot", action="store_true", help="skip the loss plot")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("generate", help="generate text from a checkpoint or GPT-2 weights")
    p.add_argument("--checkpoint", help="a checkpoint written by pretrain")
    p.add_argument("--gpt2", help="GPT-2 weights: 124M|355M|774M|1558M, a file or a folder")
    p.add_argument("--prompt", default="Every effort moves you")
    p.add_argument("--max-new-tokens", type=_positive_int, default=50)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--top-k", type=_positive_int)
    p.add_argument("--top-p", type=float)
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--no-eos", action="store_true", help="do not stop at <|endoftext|>")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("info", help="parameters, memory and config of a checkpoint")
    p.add_argument("path", nargs="?", metavar="CHECKPOINT")
    p.add_argument("--checkpoint", help="the checkpoint, as a flag (as for generate)")
    p.add_argument("--gpt2", help="GPT-2 weights instead of a checkpoint")
    p.set_defaults(func=cmd_info)
    from tinygrad_llm.cli_finetune import add_finetune_commands  # chapters 6-7, appendix E

    add_finetune_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
