"""Chapter 3 walk-through: every attention variant on the book's six-token input.

Run:

    .venv/bin/python examples/03_attention.py            (--tiny is accepted: same output)

The input is the book's 3-d embedding of "Your journey starts with one step" (6 x 3).
What you see, section by section:

* 3.3.1 the attention scores of the query "journey" (x^2) against every token,
  ``[0.9544 1.4950 1.4754 0.8434 0.7070 1.0865]``, normalised by a sum and by softmax
  (``[0.1385 0.2379 0.2333 0.1240 0.1082 0.1581]``), and its context vector
  ``[0.4419 0.6515 0.5683]``: the book's numbers exactly (no random weights yet);
* 3.3.2 the whole 6 x 6 weight matrix (rows sum to 1) and all six context vectors;
* 3.4 SelfAttention_v1 and v2 with trainable projections (d_out = 2): query, keys, scaled
  scores and weights for "journey", then all context vectors; v1 given v2's weights
  (transposed) prints the same numbers. These weights come from this package's seeded RNG,
  so the values differ from the book's PyTorch ones, but the steps are the same;
* 3.5 causal attention: the weights zeroed above the diagonal and renormalised, which
  equals masking with -inf before the softmax; dropout on a 6 x 6 matrix of ones (about
  half the entries 0, the rest 2) and on the attention weights; CausalAttention on a
  batch of two copies: shape (2, 6, 2);
* 3.6 MultiHeadAttentionWrapper with two heads: shape (2, 6, 4); MultiHeadAttention:
  shape (2, 6, 2), the fused op and the explicit step-by-step path agreeing.
"""

from __future__ import annotations

import argparse

import numpy as np

from tinygrad_llm import Tensor, nn, tril_mask, triu_mask
from tinygrad_llm.random import manual_seed

WORDS = ["Your", "journey", "starts", "with", "one", "step"]
INPUTS = np.array([
    [0.43, 0.15, 0.89],  # Your     (x^1)
    [0.55, 0.87, 0.66],  # journey  (x^2)
    [0.57, 0.85, 0.64],  # starts   (x^3)
    [0.22, 0.58, 0.33],  # with     (x^4)
    [0.77, 0.25, 0.10],  # one      (x^5)
    [0.05, 0.80, 0.55],  # step     (x^6)
], dtype=np.float32)


def section(title: str) -> None:
    print(f"\n=== {title} ===")


def show(label: str, value) -> None:
    arr = value.data if isinstance(value, Tensor) else np.asarray(value)
    text = np.array2string(arr, precision=4, suppress_small=True)
    sep = "\n" if arr.ndim > 1 else " "
    print(f"{label}:{sep}{text}")


def simple_attention() -> None:
    section("3.3.1 A simple self-attention mechanism, for one query")
    query = INPUTS[1]  # "journey"
    attn_scores_2 = INPUTS @ query  # (6,) dot product of every token with the query
    show("attention scores of 'journey' (x^i . x^2)", attn_scores_2)
    show("normalised by their sum", attn_scores_2 / attn_scores_2.sum())
    attn_weights_2 = Tensor(attn_scores_2).softmax(axis=0)
    show("normalised by softmax", attn_weights_2)
    print(f"sum of the weights: {attn_weights_2.data.sum():.4f}")
    show("context vector z^2 = sum_i w_i x^i", attn_weights_2.data @ INPUTS)

    section("3.3.2 Attention weights for all inputs")
    context, weights = nn.simple_self_attention(INPUTS, return_weights=True)
    show("attention weights softmax(X X^T) (row i: how much token i attends to each)",
         weights)
    show("row sums", weights.data.sum(axis=-1))
    show("all context vectors Z = W X", context)


def trainable_attention(seed: int) -> np.ndarray:
    section("3.4.1 Self-attention with trainable weights, step by step")
    manual_seed(seed)
    sa_v1 = nn.SelfAttention_v1(d_in=3, d_out=2)
    x = Tensor(INPUTS)
    query_2 = x[1] @ sa_v1.W_query  # (2,)
    keys = x @ sa_v1.W_key  # (6, 2)
    values = x @ sa_v1.W_value  # (6, 2)
    show("query of 'journey' (x^2 W_q)", query_2)
    print(f"keys.shape: {keys.shape}, values.shape: {values.shape}")
    attn_scores_2 = query_2 @ keys.T  # (6,)
    show("attention scores of 'journey' (q^2 . k^i)", attn_scores_2)
    d_k = keys.shape[-1]
    attn_weights_2 = (attn_scores_2 / d_k**0.5).softmax(axis=-1)
    show(f"weights: softmax(scores / sqrt(d_k={d_k}))", attn_weights_2)
    show("context vector of 'journey'", attn_weights_2 @ values)

    section("3.4.2 SelfAttention_v1 and SelfAttention_v2 (Linear layers)")
    show("SelfAttention_v1(inputs)", sa_v1(x))
    manual_seed(seed + 1)
    sa_v2 = nn.SelfAttention_v2(d_in=3, d_out=2)
    show("SelfAttention_v2(inputs)", sa_v2(x))
    for name in ("W_query", "W_key", "W_value"):  # Linear stores (out, in): transpose
        getattr(sa_v1, name).data[...] = getattr(sa_v2, name).weight.data.T
    show("SelfAttention_v1 with v2's weights (the same numbers)", sa_v1(x))
    return sa_v2.attention_weights(x).data


def causal_attention(attn_weights: np.ndarray, seed: int) -> None:
    section("3.5.1 Hiding future words with causal attention")
    show("attention weights of SelfAttention_v2", attn_weights)
    n = len(WORDS)
    masked_simple = attn_weights * tril_mask(n)
    show("zeroed above the diagonal", masked_simple)
    renorm = masked_simple / masked_simple.sum(axis=-1, keepdims=True)
    show("renormalised (rows sum to 1 again)", renorm)
    manual_seed(seed + 1)  # rebuild the same v2 to recompute the scores
    sa_v2 = nn.SelfAttention_v2(d_in=3, d_out=2)
    x = Tensor(INPUTS)
    scores = sa_v2.W_query(x) @ sa_v2.W_key(x).T  # (6, 6)
    masked = scores.masked_fill(triu_mask(n), -np.inf)
    show("scores masked with -inf above the diagonal", masked)
    weights = (masked / 2**0.5).softmax(axis=-1)
    show("softmax of the masked scores (the same as renormalising)", weights)
    print(f"max difference: {np.abs(weights.data - renorm).max():.2e}")

    section("3.5.2 Dropout on the attention weights")
    manual_seed(seed)
    dropout = nn.Dropout(0.5)
    show("Dropout(0.5) on a 6 x 6 matrix of ones (kept values scaled by 1/(1-p) = 2)",
         dropout(Tensor(np.ones((6, 6), dtype=np.float32))))
    show("Dropout(0.5) on the causal weights", dropout(weights))

    section("3.5.3 A compact CausalAttention class")
    batch = Tensor(np.stack([INPUTS, INPUTS]))  # (2, 6, 3): two copies
    print(f"batch.shape: {batch.shape}")
    manual_seed(seed)
    ca = nn.CausalAttention(d_in=3, d_out=2, context_length=6, dropout=0.0)
    context = ca(batch)
    print(f"context_vecs.shape: {context.shape}")
    show("context vectors of the first sequence", context[0])


def multi_head(seed: int) -> None:
    batch = Tensor(np.stack([INPUTS, INPUTS]))
    section("3.6.1 Stacking single-head attention layers")
    manual_seed(seed)
    wrapper = nn.MultiHeadAttentionWrapper(3, 2, context_length=6, dropout=0.0, num_heads=2)
    context = wrapper(batch)
    show("MultiHeadAttentionWrapper (two heads of 2, concatenated)", context[0])
    print(f"context_vecs.shape: {context.shape}")

    section("3.6.2 Multi-head attention with weight splits")
    manual_seed(seed)
    mha = nn.MultiHeadAttention(3, 2, context_length=6, dropout=0.0, num_heads=2)
    fused = mha(batch)  # eval or p = 0: one fused attention op
    explicit = mha(batch, force_explicit=True)  # scores, mask, softmax, @ values
    show("MultiHeadAttention (one projection split into 2 heads of 1, then out_proj)",
         fused[0])
    print(f"context_vecs.shape: {fused.shape}")
    print(f"fused op vs explicit path, max difference: "
          f"{np.abs(fused.data - explicit.data).max():.2e}")
    show("attention weights of head 0", mha.attention_weights(batch)[0, 0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=123, help="seed of the trainable weights")
    parser.add_argument("--tiny", action="store_true",
                        help="accepted for the smoke tests (this example is already tiny)")
    args = parser.parse_args(argv)
    simple_attention()
    weights = trainable_attention(args.seed)
    causal_attention(weights, args.seed)
    multi_head(args.seed)


if __name__ == "__main__":
    main()
