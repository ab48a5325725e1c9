"""Chapter 5: pretraining a GPT on "The Verdict", then decoding with temperature and top-k.

Run (offline, with the data folder):

    TINYGRAD_LLM_DATA_DIR=../shared/data TIKTOKEN_CACHE_DIR=../shared/tiktoken-cache \\
        .venv/bin/python examples/05_pretrain.py

What you see, as the book walks through it:

1. the loss of the untrained model on the training and validation text (about 10.9,
   i.e. ln 50257: every token equally likely) and its perplexity;
2. the training run (AdamW, lr 4e-4, weight decay 0.1), evaluation every few steps and a
   greedy sample after each epoch: the samples go from repeated commas to phrases of the
   story as the training loss falls;
3. next-token probabilities at temperatures 1, 0.1 and 5 on the book's toy vocabulary,
   and text from the trained model with greedy decoding, temperature 1.4 with top-k 25,
   and top-p 0.9, side by side.

Measured here (2 cores, numba backend, defaults: 4 layers, 256 wide, context 128,
10 epochs): see the closing note of the pretraining issue; ``--tiny`` runs in seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tinygrad_llm import GPTConfig, GPTModel
from tinygrad_llm.data import create_dataloader, fetch, get_tokenizer, train_val_split
from tinygrad_llm.generate import generate, text_to_token_ids, token_ids_to_text
from tinygrad_llm.optim import AdamW
from tinygrad_llm.random import manual_seed
from tinygrad_llm.train import calc_loss_loader, perplexity, plot_losses, train_model_simple


def softmax_with_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    scaled = logits / temperature
    e = np.exp(scaled - scaled.max())
    return e / e.sum()


def show_temperature_scaling() -> None:
    """The book's section 5.3.1: how temperature reshapes a next-token distribution."""
    vocab = ["closer", "every", "effort", "forward", "inches", "moves", "pizza", "toward",
             "you"]
    logits = np.array([4.51, 0.89, -1.90, 6.75, 1.63, -1.62, -1.89, 6.28, 1.79])
    print("\nNext-token probabilities after 'every effort moves you' (toy vocabulary):")
    print(f"{'token':>9s}" + "".join(f"  T={t:<5}" for t in (1, 0.1, 5)))
    probs = [softmax_with_temperature(logits, t) for t in (1, 0.1, 5)]
    for i, word in enumerate(vocab):
        print(f"{word:>9s}" + "".join(f"  {p[i]:7.3f}" for p in probs))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="a text file (default: the-verdict via fetch)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--context-length", type=int, default=128)
    ap.add_argument("--emb-dim", type=int, default=256)
    ap.add_argument("--n-layers", type=int, default=4)
    ap.add_argument("--n-heads", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--plot", metavar="PNG", help="write the loss plot here")
    ap.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    ap.add_argument("--seed", type=int, default=123)
    args = ap.parse_args(argv)
    if args.tiny:
        args.epochs, args.context_length, args.emb_dim, args.n_layers = 1, 32, 32, 1

    text = Path(args.data or fetch("the-verdict")).read_text(encoding="utf-8")
    tokenizer = get_tokenizer("gpt2")
    manual_seed(args.seed)
    cfg = GPTConfig(vocab_size=tokenizer.n_vocab, context_length=args.context_length,
                    emb_dim=args.emb_dim, n_heads=args.n_heads, n_layers=args.n_layers,
                    drop_rate=0.1, qkv_bias=False)
    model = GPTModel(cfg)
    train_text, val_text = train_val_split(text, 0.9)
    ctx = cfg.context_length
    train_loader = create_dataloader(train_text, args.batch_size, ctx, ctx, shuffle=True,
                                     drop_last=True, seed=args.seed, tokenizer=tokenizer)
    val_loader = create_dataloader(val_text, args.batch_size, ctx, ctx, shuffle=False,
                                   drop_last=False, seed=args.seed, tokenizer=tokenizer)
    print(f"{len(text):,} characters, {len(tokenizer.encode(text)):,} tokens; model "
          f"{model.num_parameters():,} parameters")

    model.eval()
    train_loss = calc_loss_loader(train_loader, model)
    val_loss = calc_loss_loader(val_loader, model)
    print(f"Before training: train loss {train_loss:.3f}, validation loss {val_loss:.3f} "
          f"(perplexity {perplexity(val_loss):,.0f}; ln 50257 = {np.log(50257):.3f})")

    optimizer = AdamW(model.parameters(), lr=4e-4, weight_decay=0.1)
    start = time.perf_counter()
    tr, va, seen = train_model_simple(model, train_loader, val_loader, optimizer,
                                      num_epochs=args.epochs, eval_freq=5, eval_iter=5,
                                      start_context="Every effort moves you",
                                      tokenizer=tokenizer)
    print(f"Training took {time.perf_counter() - start:.1f} s; final train loss {tr[-1]:.3f},"
          f" validation loss {va[-1]:.3f}")
    if args.plot:
        plot_losses(np.linspace(0, args.epochs, len(tr)), seen, tr, va, args.plot)

    show_temperature_scaling()
    prompt = text_to_token_ids("Every effort moves you", tokenizer)
    print("\nDecoding from the trained model, 25 new tokens:")
    for label, kw in [("greedy", {}),
                      ("temperature 1.4, top-k 25", dict(temperature=1.4, top_k=25)),
                      ("temperature 1.0, top-p 0.9", dict(temperature=1.0, top_p=0.9))]:
        out = generate(model, prompt, max_new_tokens=25, context_size=ctx, seed=args.seed, **kw)
        print(f"  {label:>27s}: {token_ids_to_text(out, tokenizer)!r}")


if __name__ == "__main__":
    main()
