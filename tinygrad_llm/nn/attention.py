"""Self-attention as the book builds it, step by step (chapter 3), and the KV cache.

Each variant adds one idea to the previous one:

* ``simple_self_attention`` (3.3): no weights. Scores are dot products of the inputs,
  ``w = softmax(x x^T)``, and each context vector is ``z = w x``.
* ``SelfAttention_v1`` (3.4.1): trainable matrices project the inputs to queries, keys and
  values, ``q = x W_q`` etc., and the scores are scaled: ``w = softmax(q k^T / sqrt(d_k))``.
* ``SelfAttention_v2`` (3.4.2): the same with ``Linear`` layers (``q = x W_q^T + b``).
* ``CausalAttention`` (3.5): token i may only look at tokens <= i. Scores above the
  diagonal are set to -inf *before* the softmax (so each row still sums to 1), and dropout
  zeros some attention weights while training.
* ``MultiHeadAttentionWrapper`` (3.6.1): several CausalAttention heads side by side, their
  outputs concatenated.
* ``MultiHeadAttention`` (3.6.2): the same in one go: one projection for all heads,
  split into H heads of D = d_out / H features, attended in parallel, merged and mixed by
  ``out_proj``. This is the one GPTModel uses.

Given equivalent weights all of them give the same numbers (the tests check it).

MultiHeadAttention has two paths that compute the same thing:
  - fused: ``F.scaled_dot_product_attention`` (one op, never keeps a (T, T) matrix for
    backward), used whenever the attention dropout would do nothing (eval, or p == 0);
  - explicit: scores, masked_fill(-inf), softmax, dropout, @ values, as in the book, used
    when dropout on the attention weights is active (the fused op has no dropout).

The KV cache (``KVCache``) keeps each layer's keys and values of the tokens seen so far,
so decoding one more token computes the query, key and value of that token only and
attends over the stored ones: per-token cost linear in the context length instead of
recomputing the whole prefix.
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_llm import functional as F
from tinygrad_llm.creation import cat, stack, triu_mask
from tinygrad_llm.nn.dropout import Dropout
from tinygrad_llm.nn.linear import Linear
from tinygrad_llm.nn.module import Module, ModuleList, Parameter
from tinygrad_llm.random import uniform
from tinygrad_llm.tensor import ShapeError, Tensor, get_default_dtype, no_grad


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


# ---------------------------------------------------------------------------------------
# 3.3 Attention without trainable weights


def simple_self_attention(inputs, return_weights: bool = False):
    """Context vectors z = softmax(x x^T) x of a (T, d) input (section 3.3.2).

    Row i of the weights says how much token i attends to each token j; the context vector
    of token i is the weighted sum of all inputs. Returns z (T, d), and the weights (T, T)
    too if ``return_weights``.
    """
    x = _as_tensor(inputs)  # (T, d)
    if x.ndim != 2:
        raise ShapeError(f"simple_self_attention: expected a (T, d) input, got {x.shape}")
    attn_scores = x @ x.T  # (T, T)  omega_ij = x_i . x_j
    attn_weights = attn_scores.softmax(axis=-1)  # (T, T)  each row sums to 1
    context = attn_weights @ x  # (T, d)
    return (context, attn_weights) if return_weights else context


# ---------------------------------------------------------------------------------------
# 3.4 Self-attention with trainable weights


class SelfAttention_v1(Module):
    """Scaled dot-product self-attention with raw parameter matrices (section 3.4.1).

    W_query, W_key, W_value are (d_in, d_out), multiplied from the right: q = x W_query.
    They start uniform in [0, 1) like the book's ``torch.rand``.
    """

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.W_query = Parameter(uniform(0.0, 1.0, (d_in, d_out)))  # (d_in, d_out)
        self.W_key = Parameter(uniform(0.0, 1.0, (d_in, d_out)))  # (d_in, d_out)
        self.W_value = Parameter(uniform(0.0, 1.0, (d_in, d_out)))  # (d_in, d_out)

    def attention_weights(self, x: Tensor) -> Tensor:
        """softmax(q k^T / sqrt(d_k)): (..., T, T), row i = token i's weights."""
        x = _as_tensor(x)
        queries = x @ self.W_query  # (..., T, d_out)
        keys = x @ self.W_key  # (..., T, d_out)
        attn_scores = queries @ keys.transpose(-2, -1)  # (..., T, T)
        # dividing by sqrt(d_k) keeps the scores' variance ~1, so softmax is not too peaked
        return (attn_scores / math.sqrt(keys.shape[-1])).softmax(axis=-1)  # (..., T, T)

    def forward(self, x: Tensor) -> Tensor:
        x = _as_tensor(x)
        values = x @ self.W_value  # (..., T, d_out)
        return self.attention_weights(x) @ values  # (..., T, d_out)


class SelfAttention_v2(Module):
    """Self-attention with Linear layers (section 3.4.2): q = x W_query.weight^T (+ bias).

    Equivalent to v1 when ``v1.W_query == v2.W_query.weight.T`` (and so on) and no bias.
    """

    def __init__(self, d_in: int, d_out: int, qkv_bias: bool = False) -> None:
        super().__init__()
        self.W_query = Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = Linear(d_in, d_out, bias=qkv_bias)

    def attention_weights(self, x: Tensor) -> Tensor:
        """softmax(q k^T / sqrt(d_k)): (..., T, T)."""
        x = _as_tensor(x)
        queries = self.W_query(x)  # (..., T, d_out)
        keys = self.W_key(x)  # (..., T, d_out)
        attn_scores = queries @ keys.transpose(-2, -1)  # (..., T, T)
        return (attn_scores / math.sqrt(keys.shape[-1])).softmax(axis=-1)  # (..., T, T)

    def forward(self, x: Tensor) -> Tensor:
        x = _as_tensor(x)
        values = self.W_value(x)  # (..., T, d_out)
        return self.attention_weights(x) @ values  # (..., T, d_out)


# ---------------------------------------------------------------------------------------
# 3.5 Causal attention


class CausalAttention(Module):
    """Self-attention in which token i sees only tokens 0..i, with dropout (section 3.5.3).

    Input (B, T, d_in) with T <= context_length. ``mask`` is the (context_length,
    context_length) boolean "future" mask, True above the diagonal (the book's buffer).
    """

    def __init__(self, d_in: int, d_out: int, context_length: int, dropout: float,
                 qkv_bias: bool = False) -> None:
        super().__init__()
        self.d_out, self.context_length = d_out, context_length
        self.W_query = Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = Dropout(dropout)
        self.mask = triu_mask(context_length)  # (ctx, ctx) bool, a constant (not a parameter)

    def _check(self, x: Tensor) -> None:
        if x.ndim != 3:
            raise ShapeError(f"{type(self).__name__}: expected x of shape (B, T, d_in), got "
                             f"{x.shape} (for one sequence use x[None])")
        if x.shape[1] > self.context_length:
            raise ValueError(f"{type(self).__name__}: {x.shape[1]} tokens is more than "
                             f"context_length={self.context_length}")

    def attention_weights(self, x: Tensor) -> Tensor:
        """Causal softmax(q k^T / sqrt(d_k)) before dropout: (B, T, T), zero above the diagonal."""
        x = _as_tensor(x)
        self._check(x)
        num_tokens = x.shape[1]
        queries = self.W_query(x)  # (B, T, d_out)
        keys = self.W_key(x)  # (B, T, d_out)
        attn_scores = queries @ keys.transpose(1, 2)  # (B, T, T)
        # -inf before the softmax: exp(-inf) = 0, and each row is still normalised to 1
        mask = self.mask[:num_tokens, :num_tokens]  # (T, T) True above the diagonal
        attn_scores = attn_scores.masked_fill(mask, -np.inf)  # (B, T, T)
        return (attn_scores / math.sqrt(keys.shape[-1])).softmax(axis=-1)  # (B, T, T)

    def forward(self, x: Tensor) -> Tensor:
        x = _as_tensor(x)
        attn_weights = self.attention_weights(x)  # (B, T, T)
        attn_weights = self.dropout(attn_weights)  # (B, T, T) some weights zeroed in training
        values = self.W_value(x)  # (B, T, d_out)
        return attn_weights @ values  # (B, T, d_out)


# ---------------------------------------------------------------------------------------
# 3.6 Multi-head attention


class MultiHeadAttentionWrapper(Module):
    """``num_heads`` CausalAttention heads run one after another, outputs concatenated.

    Output width is ``num_heads * d_out`` (section 3.6.1).
    """

    def __init__(self, d_in: int, d_out: int, context_length: int, dropout: float,
                 num_heads: int, qkv_bias: bool = False) -> None:
        super().__init__()
        self.heads = ModuleList(
            CausalAttention(d_in, d_out, context_length, dropout, qkv_bias)
            for _ in range(num_heads)
        )

    def attention_weights(self, x: Tensor) -> Tensor:
        """Every head's weights stacked: (B, num_heads, T, T)."""
        return stack([head.attention_weights(x) for head in self.heads], axis=1)  # (B, n, T, T)

    def forward(self, x: Tensor) -> Tensor:
        return cat([head(x) for head in self.heads], axis=-1)  # (B, T, num_heads * d_out)


class MultiHeadAttention(Module):
    """Causal multi-head attention with one Q/K/V projection split into heads (section 3.6.2).

    d_out must be divisible by num_heads; each head gets D = d_out // num_heads features:

        q, k, v = x W_q^T, x W_k^T, x W_v^T           (B, T, d_out), viewed (B, H, T, D)
        head_h  = softmax(q_h k_h^T / sqrt(D) + causal mask) v_h            (B, H, T, D)
        out     = concat_h(head_h) W_o^T + b_o                              (B, T, d_out)

    ``forward(x, kv_cache=None)``: with a ``LayerKVCache`` the new keys/values are appended
    to the cached ones and x's tokens (the next positions) attend over all of them.
    """

    def __init__(self, d_in: int, d_out: int, context_length: int, dropout: float,
                 num_heads: int, qkv_bias: bool = False) -> None:
        super().__init__()
        if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads <= 0:
            raise ValueError(f"MultiHeadAttention: num_heads must be a positive int, "
                             f"got {num_heads!r}")
        if d_out % num_heads != 0:
            raise ValueError(f"MultiHeadAttention: d_out={d_out} must be divisible by "
                             f"num_heads={num_heads} (each head gets d_out // num_heads)")
        self.d_out, self.num_heads, self.context_length = d_out, num_heads, context_length
        self.head_dim = d_out // num_heads
        self.W_query = Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = Linear(d_out, d_out)  # mixes the heads' outputs
        self.dropout = Dropout(dropout)
        self.mask = triu_mask(context_length)  # (ctx, ctx) bool, True = a future position

    def _heads(self, linear: Linear, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        y = linear(x)  # (B, T, d_out)
        # split the last axis into heads, then put heads before tokens
        return y.reshape(b, t, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 3:
            raise ShapeError(f"MultiHeadAttention: expected x of shape (B, T, d_in), got "
                             f"{x.shape} (for one sequence use x[None])")

    def _project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        self._check_input(x)
        queries = self._heads(self.W_query, x)  # (B, H, T, D)
        keys = self._heads(self.W_key, x)  # (B, H, T, D)
        values = self._heads(self.W_value, x)  # (B, H, T, D)
        return queries, keys, values

    def _check_length(self, num_keys: int) -> None:
        if num_keys > self.context_length:
            raise ValueError(f"MultiHeadAttention: attending over {num_keys} positions, more "
                             f"than context_length={self.context_length}")

    def attention_weights(self, x: Tensor) -> Tensor:
        """The causal attention weights of every head (no dropout): (B, H, T, T)."""
        queries, keys, _ = self._project(_as_tensor(x))
        self._check_length(keys.shape[2])
        return self._explicit_weights(queries, keys)  # (B, H, T, T)

    def _explicit_weights(self, queries: Tensor, keys: Tensor) -> Tensor:
        tq, tk = queries.shape[2], keys.shape[2]
        attn_scores = queries @ keys.transpose(2, 3)  # (B, H, Tq, Tk)
        # queries are the last Tq of Tk positions: query i sits at position tk - tq + i
        mask = self.mask[tk - tq:tk, :tk]  # (Tq, Tk) True where key j is in query i's future
        attn_scores = attn_scores.masked_fill(mask, -np.inf)  # (B, H, Tq, Tk)
        return (attn_scores / math.sqrt(self.head_dim)).softmax(axis=-1)  # (B, H, Tq, Tk)

    def forward(self, x: Tensor, kv_cache: LayerKVCache | None = None,
                force_explicit: bool = False) -> Tensor:
        """x (B, T, d_in) -> (B, T, d_out).

        Args:
            kv_cache: this layer's view of a KVCache; runs without gradient recording.
            force_explicit: take the step-by-step path even when the fused op could be used
                (for tests and learners; the two give the same numbers).
        """
        x = _as_tensor(x)
        self._check_input(x)
        b, t = x.shape[0], x.shape[1]
        if kv_cache is not None:
            with no_grad():  # cached keys are plain arrays: no gradient flows through them
                queries, k_all, v_all = self._project_cached(x, kv_cache)
                keys, values = Tensor(k_all, dtype=k_all.dtype), Tensor(v_all, dtype=v_all.dtype)
                return self._attend(queries, keys, values, b, t, force_explicit)  # (B, T, d_out)
        queries, keys, values = self._project(x)  # each (B, H, T, D)
        return self._attend(queries, keys, values, b, t, force_explicit)  # (B, T, d_out)

    def _project_cached(self, x: Tensor,
                        kv_cache: LayerKVCache) -> tuple[Tensor, np.ndarray, np.ndarray]:
        """Queries of the new tokens; keys and values of the cached tokens and the new ones.

        The three projections run as one GEMM (a GEMV when decoding a token) against their
        weights stacked along the output axis (``LayerKVCache.fused_qkv``, stacked once per
        sequence); the new keys and values go straight into the cache.
        """
        b, t = x.shape[0], x.shape[1]
        fused = kv_cache.fused_qkv(self.W_query, self.W_key, self.W_value)
        if fused is None:  # projections that are not plain Linears (LoRA): one by one
            queries, keys, values = self._project(x)  # each (B, H, T, D)
            return (queries, *kv_cache.update(keys.data, values.data))  # k, v (B, H, pos+T, D)
        qkv = F.linear(x, *fused).data  # (B, T, 3 d_out)
        # (B, T, 3, H, D) -> (3, B, H, T, D): views, as _heads makes them
        qkv = qkv.reshape(b, t, 3, self.num_heads, self.head_dim).transpose(2, 0, 3, 1, 4)
        k_all, v_all = kv_cache.update(qkv[1], qkv[2])  # each (B, H, pos+T, D)
        return Tensor(qkv[0], dtype=qkv.dtype), k_all, v_all  # queries (B, H, T, D)

    def _attend(self, queries: Tensor, keys: Tensor, values: Tensor, b: int, t: int,
                force_explicit: bool) -> Tensor:
        self._check_length(keys.shape[2])
        if self.dropout.active or force_explicit:
            attn_weights = self._explicit_weights(queries, keys)  # (B, H, T, Tk)
            attn_weights = self.dropout(attn_weights)  # (B, H, T, Tk)
            context = attn_weights @ values  # (B, H, T, D)
        else:
            # the same math in one fused op; it keeps no (T, Tk) matrix for backward
            context = F.scaled_dot_product_attention(queries, keys, values)  # (B, H, T, D)
        # merge the heads back: (B, H, T, D) -> (B, T, H, D) -> (B, T, d_out)
        context = context.transpose(1, 2).reshape(b, t, self.d_out)  # (B, T, d_out)
        return self.out_proj(context)  # (B, T, d_out)

    def extra_repr(self) -> str:
        return f"d_out={self.d_out}, num_heads={self.num_heads}"


# ---------------------------------------------------------------------------------------
# The KV cache


class KVCache:
    """Keys and values of every layer for the tokens processed so far, for fast decoding.

    ``keys[i]`` and ``values[i]`` are preallocated (B, H, capacity, D) arrays for layer i;
    positions ``0 .. pos - 1`` hold data. A forward pass of T new tokens writes them at
    ``pos .. pos + T - 1`` in every layer, then ``advance(T)`` moves ``pos`` on (GPTModel
    does both). ``reset()`` empties the cache for a new prompt (the arrays are reused).

    The cache holds at most ``capacity`` (the model's context_length) positions; going
    past it is an error here. How generation deals with a full window is decided in
    ``generate.py`` (it slides: see ``generate_stream``).

    It also keeps, per layer, the query/key/value weights stacked into one matrix
    (``LayerKVCache.fused_qkv``) so that decoding a token projects it with one GEMV instead
    of three; they are stacked when a sequence starts (pos == 0), like the keys and values
    they produce.
    """

    def __init__(self, n_layers: int, batch_size: int, n_heads: int, head_dim: int,
                 capacity: int, dtype=None) -> None:
        dtype = np.dtype(dtype or get_default_dtype())
        shape = (batch_size, n_heads, capacity, head_dim)
        self.keys = [np.zeros(shape, dtype) for _ in range(n_layers)]  # n x (B, H, ctx, D)
        self.values = [np.zeros(shape, dtype) for _ in range(n_layers)]  # n x (B, H, ctx, D)
        self.capacity, self.batch_size = capacity, batch_size
        self.pos = 0  # number of positions filled
        # layer index -> (source arrays, stacked weight, stacked bias): see fused_qkv
        self.fused: dict[int, tuple[tuple, Tensor, Tensor | None]] = {}

    @property
    def n_layers(self) -> int:
        return len(self.keys)

    @property
    def remaining(self) -> int:
        """How many more positions fit."""
        return self.capacity - self.pos

    def reset(self) -> None:
        """Forget every cached position (between prompts)."""
        self.pos = 0

    def advance(self, n: int) -> None:
        """Mark n more positions as filled (after every layer has written them)."""
        if self.pos + n > self.capacity:
            raise ValueError(f"KVCache: advancing {n} from position {self.pos} passes the "
                             f"capacity of {self.capacity}")
        self.pos += n

    def layer(self, index: int) -> LayerKVCache:
        """The view that layer ``index``'s attention writes through."""
        return LayerKVCache(self, index)

    def __repr__(self) -> str:
        b, h, c, d = self.keys[0].shape if self.keys else (0, 0, self.capacity, 0)
        return (f"KVCache(n_layers={self.n_layers}, B={b}, H={h}, D={d}, pos={self.pos}, "
                f"capacity={c})")


class LayerKVCache:
    """One layer's slice of a KVCache: ``update`` writes new keys/values and returns all."""

    def __init__(self, cache: KVCache, index: int) -> None:
        self.cache, self.index = cache, index

    def update(self, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Store k, v (B, H, T, D) at positions pos..pos+T-1; return keys/values 0..pos+T-1."""
        c = self.cache
        keys, values = c.keys[self.index], c.values[self.index]  # (B, H, ctx, D)
        start, t = c.pos, k.shape[2]
        want = keys.shape[:2] + keys.shape[3:]
        if k.shape != v.shape or k.shape[:2] + k.shape[3:] != want:
            raise ShapeError(f"KVCache: got keys {k.shape} and values {v.shape}; this cache "
                             f"holds (B, H, T, D) with (B, H, D) = {want}")
        if start + t > c.capacity:
            raise ValueError(f"KVCache: {t} new tokens after {start} cached ones pass the "
                             f"capacity of {c.capacity} (the context length); reset() it or "
                             f"feed fewer tokens")
        keys[:, :, start:start + t] = k
        values[:, :, start:start + t] = v
        return keys[:, :, :start + t], values[:, :, :start + t]  # (B, H, pos+T, D) views

    def fused_qkv(self, *linears: Linear) -> tuple[Tensor, Tensor | None] | None:
        """The weights (out, in) of ``linears`` stacked along the output axis, and their biases.

        For one GEMM instead of several: ``F.linear(x, w, b)`` then gives their outputs side
        by side. Stacked when this layer sees the first tokens of a sequence (pos == 0) and
        reused for the tokens that follow: the cached keys and values were made with the
        weights of that moment too, so changing the weights mid-sequence needs a ``reset()``
        either way. Stacked again, as well, when a layer holds another array than before (a
        new model, weights assigned). Costs one copy of the weights per layer while the
        cache lives. None when the layers are not all plain ``Linear``s (LoRA wrappers,
        subclasses) or their dtypes or biases differ: the caller runs them one by one.
        """
        if any(type(m) is not Linear for m in linears):
            return None
        weights = tuple(m.weight.data for m in linears)
        biases = tuple(None if m.bias is None else m.bias.data for m in linears)
        with_bias = [bias is not None for bias in biases]
        if len({(w.dtype, w.shape[1:]) for w in weights}) != 1 or any(with_bias) != all(with_bias):
            return None
        sources = weights + biases
        entry = self.cache.fused.get(self.index)
        if entry is not None and self.cache.pos > 0 and all(
                a is b for a, b in zip(entry[0], sources, strict=True)):
            return entry[1], entry[2]
        w = np.concatenate(weights, axis=0, out=_reusable(entry, 1, weights))  # (sum out, in)
        b = (np.concatenate(biases, axis=0, out=_reusable(entry, 2, biases))
             if all(with_bias) else None)  # (sum of out,)
        fused = Tensor(w, dtype=w.dtype), None if b is None else Tensor(b, dtype=b.dtype)
        self.cache.fused[self.index] = (sources, *fused)
        return fused


def _reusable(entry: tuple | None, i: int, parts: tuple[np.ndarray, ...]) -> np.ndarray | None:
    """entry[i]'s array when the stack of ``parts`` fits it (no new allocation), else None."""
    old = None if entry is None else entry[i]
    if old is None or old.dtype != parts[0].dtype:
        return None
    shape = (sum(p.shape[0] for p in parts),) + parts[0].shape[1:]
    return old.data if old.shape == shape else None
