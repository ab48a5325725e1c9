"""Text generation: the book's greedy loop (chapter 4, section 4.7) and the decoding
strategies of chapter 5 (section 5.3: temperature, top-k), plus top-p, end-of-text stops,
batched prompts and a KV cache.

    ids = text_to_token_ids("Every effort moves you", tokenizer)       # (1, T) int64
    out = generate(model, ids, max_new_tokens=20, temperature=0.8, top_k=40, seed=1)
    print(token_ids_to_text(out, tokenizer))

Each step turns the logits of the last position into the next token:
  - temperature 0: greedy, the argmax (deterministic; top-k/top-p do not change it);
  - temperature t > 0: logits / t (t < 1 sharpens, t > 1 flattens), then optionally keep
    only the top_k largest logits and/or the smallest set of most probable tokens whose
    probability adds up to top_p (nucleus sampling), then sample from the softmax.

With ``use_cache=True`` (the default) the prompt is run once ("prefill") and every later
step feeds only the newest token, its keys and values appended to a KVCache, so a step
costs time linear in the context instead of recomputing the whole prefix.

When the window fills (more than ``context_size`` tokens), generation *slides*: the model
only ever sees the last ``context_size`` tokens, as the book's cropping loop does. GPT-2's
position embeddings are absolute, so sliding shifts every token's position and invalidates
all cached keys and values: the cache is reset and the last ``context_size`` tokens are
re-prefilled. The tokens are therefore identical to generating without the cache, but once
the window is full each step costs a full forward pass of ``context_size`` tokens.

``tokenizer`` is anything with ``encode(text) -> list[int]`` and ``decode(ids) -> str``
(``tinygrad_llm.data.get_tokenizer("gpt2")``, a ``tiktoken`` encoding, ...).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from tinygrad_llm.random import get_rng
from tinygrad_llm.tensor import ShapeError, Tensor, no_grad

ENDOFTEXT = "<|endoftext|>"


# ---------------------------------------------------------------------------------------
# Text <-> token ids


def text_to_token_ids(text: str, tokenizer: Any) -> np.ndarray:
    """Encode ``text`` to an int64 array of shape (1, T) (a batch of one).

    ``<|endoftext|>`` is allowed in the text when the tokenizer's encode takes
    ``allowed_special`` (as tiktoken's does).
    """
    encode = tokenizer.encode
    try:
        params = inspect.signature(encode).parameters
        takes_special = "allowed_special" in params or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):  # a builtin without a signature
        takes_special = False
    ids = encode(text, allowed_special={ENDOFTEXT}) if takes_special else encode(text)
    return np.asarray(list(ids), dtype=np.int64).reshape(1, -1)


def token_ids_to_text(token_ids: Any, tokenizer: Any) -> str | list[str]:
    """Decode ids of shape (T,) or (1, T) to a str; a batch (B, T) gives a list of B strs."""
    arr = token_ids.data if isinstance(token_ids, Tensor) else np.asarray(token_ids)
    if arr.ndim == 1:
        return tokenizer.decode(arr.tolist())
    if arr.ndim == 2:
        if arr.shape[0] == 1:
            return tokenizer.decode(arr[0].tolist())
        return [tokenizer.decode(row.tolist()) for row in arr]
    raise ShapeError(f"token_ids_to_text: expected ids of shape (T,) or (B, T), got {arr.shape}")


# ---------------------------------------------------------------------------------------
# Helpers


def _as_ids(idx: Any) -> np.ndarray:
    arr = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ShapeError(f"generate: expected token ids of shape (B, T) or (T,), got {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"generate: token ids must be integers, got dtype {arr.dtype}")
    if arr.shape[1] == 0:
        raise ValueError("generate: the prompt is empty; give at least one token "
                         "(e.g. the <|endoftext|> id)")
    return arr.astype(np.int64)  # a copy: the caller's array is never changed


def _modules(model: Any) -> list:
    """Every module of ``model`` (walking them takes ~1 ms at GPT-2 size: once per stream)."""
    return list(model.modules()) if hasattr(model, "modules") else []


@contextmanager
def _inference(model: Any, modules: list | None = None) -> Iterator[None]:
    """eval() and no_grad() for one forward pass; restores every module's training flag.

    Entered around each model call (not across yields), so the caller's code between
    streamed tokens runs in its own mode. ``modules``: ``_modules(model)``, if known.
    """
    modules = _modules(model) if modules is None else modules
    flags = [m.training for m in modules]
    for m in modules:
        m.training = False
    try:
        with no_grad():
            yield
    finally:
        for m, flag in zip(modules, flags):
            m.training = flag


def _context_size(model: Any, context_size: int | None) -> int:
    limit = getattr(getattr(model, "cfg", None), "context_length", None)
    if context_size is None:
        if limit is None:
            raise ValueError("generate: pass context_size (the model has no cfg.context_length)")
        return int(limit)
    if isinstance(context_size, bool) or not isinstance(context_size, (int, np.integer)) \
            or context_size <= 0:
        raise ValueError(f"generate: context_size must be a positive int, got {context_size!r}")
    if limit is not None and context_size > limit:
        raise ValueError(f"generate: context_size={context_size} is more than the model's "
                         f"context_length={limit}")
    return int(context_size)


def _last_logits(model: Any, ids: np.ndarray, cache: Any = None,
                 modules: list | None = None) -> np.ndarray:
    """Logits of the last position, (B, V), in the model's dtype (a view, not a copy)."""
    with _inference(model, modules):
        if hasattr(model, "make_kv_cache"):  # a GPTModel: only the last position's head
            logits = model(ids, kv_cache=cache, last_only=True)  # (B, 1, V)
        else:
            logits = model(ids)  # (B, T, V)
    data = logits.data if isinstance(logits, Tensor) else np.asarray(logits)
    return data[:, -1, :]  # (B, V)


# ---------------------------------------------------------------------------------------
# Filters and sampling (vectorised over the batch and the vocabulary)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def apply_top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """Keep each row's k largest logits, set the rest to -inf (ties with the k-th are kept)."""
    v = logits.shape[-1]
    if k >= v:
        return logits
    kth = np.partition(logits, v - k, axis=-1)[..., v - k : v - k + 1]  # (B, 1) k-th largest
    return np.where(logits < kth, -np.inf, logits)


def apply_top_p(logits: np.ndarray, p: float) -> np.ndarray:
    """Nucleus filter: keep the fewest most-probable tokens whose probabilities sum to >= p.

    Sort each row by probability (descending); a token is dropped when the tokens ranked
    before it already reach p. The most probable token is always kept.
    """
    if p >= 1.0:
        return logits
    order = np.argsort(-logits, axis=-1, kind="stable")  # (B, V) descending
    probs = _softmax(np.take_along_axis(logits, order, axis=-1))  # (B, V) sorted
    before = np.cumsum(probs, axis=-1) - probs  # (B, V) mass ranked above each token
    drop = np.empty(logits.shape, dtype=bool)
    np.put_along_axis(drop, order, before >= p, axis=-1)  # back to vocabulary order
    return np.where(drop, -np.inf, logits)


def sample_next_token(logits: np.ndarray, temperature: float = 0.0, top_k: int | None = None,
                      top_p: float | None = None,
                      rng: np.random.Generator | None = None) -> np.ndarray:
    """The next token id of each row from last-position logits (B, V): an int64 (B,) array.

    Sampling computes in float64; greedy takes the argmax of the logits as they are (the
    same index: widening to float64 keeps every value and their order).
    """
    logits = np.asarray(logits)
    if temperature == 0.0:
        return np.argmax(logits, axis=-1).astype(np.int64)  # greedy: first max on ties
    logits = logits.astype(np.float64) / temperature
    if top_k is not None:
        logits = apply_top_k(logits, top_k)
    if top_p is not None:
        logits = apply_top_p(logits, top_p)
    probs = _softmax(logits)  # (B, V), zero where filtered
    cdf = np.cumsum(probs, axis=-1)  # (B, V)
    rng = rng if rng is not None else get_rng()
    # inverse-CDF sampling: u in (0, total]; the first index with cdf >= u has p > 0
    u = (1.0 - rng.random(len(cdf))) * cdf[:, -1]  # (B,)
    choice = (cdf < u[:, None]).sum(axis=-1)  # (B,)
    return np.minimum(choice, logits.shape[-1] - 1).astype(np.int64)


def _check_sampling(max_new_tokens, temperature, top_k, top_p) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) \
            or max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    if not temperature >= 0.0:
        raise ValueError(f"generate: temperature must be >= 0 (0 is greedy), got {temperature}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer))
                              or top_k < 1):
        raise ValueError(f"generate: top_k must be an int >= 1 or None, got {top_k!r}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"generate: top_p must be in (0, 1] or None, got {top_p!r}")


# ---------------------------------------------------------------------------------------
# Generation


def generate_text_simple(model: Any, idx: Any, max_new_tokens: int,
                         context_size: int) -> np.ndarray:
    """The book's greedy loop (listing 4.8): crop to the window, run, take the argmax, append.

    No KV cache: every step runs the whole window. Runs in eval mode under no_grad.
    Returns the int64 ids (B, T + max_new_tokens).
    """
    idx = _as_ids(idx)
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]  # (B, <= context_size) crop to the window
        with _inference(model):
            logits = model(idx_cond)  # (B, T, V)
        logits = logits.data[:, -1, :]  # (B, V) only the last position predicts a new token
        idx_next = np.argmax(logits, axis=-1, keepdims=True)  # (B, 1)
        idx = np.concatenate([idx, idx_next], axis=1)  # (B, T + 1)
    return idx


def generate_stream(model: Any, idx: Any, max_new_tokens: int, context_size: int | None = None,
                    temperature: float = 0.0, top_k: int | None = None,
                    top_p: float | None = None, eos_id: int | None = None,
                    seed: int | None = None, use_cache: bool = True) -> Iterator[np.ndarray]:
    """Yield each new token as it is produced: an int64 array (B,) per step.

    Args:
        model: a GPTModel (or any model mapping (B, T) ids to (B, T, V) logits; the KV
            cache is used only when the model has ``make_kv_cache``).
        idx: the prompts, (B, T) or (T,) ints (numpy array, list or Tensor).
        max_new_tokens: at most this many steps.
        context_size: the window the model sees (default: its context_length).
        temperature, top_k, top_p: see the module docstring; temperature 0 is greedy.
        eos_id: a row that produces it is finished: from then on it yields ``eos_id``
            (padding); the stream ends when every row has finished.
        seed: sample from a Generator seeded with it (reproducible); None uses
            ``tinygrad_llm.random.get_rng()`` (reproducible after ``manual_seed``).
        use_cache: decode with a KVCache (same tokens, much faster).
    """
    # checked here, when called; the generator below runs only when iterated
    _check_sampling(max_new_tokens, temperature, top_k, top_p)
    ids = _as_ids(idx)
    window = _context_size(model, context_size)
    rng = np.random.default_rng(seed) if seed is not None else get_rng()
    return _stream(model, ids, int(max_new_tokens), window, temperature, top_k, top_p, eos_id,
                   rng, use_cache)


def _stream(model: Any, ids: np.ndarray, max_new_tokens: int, window: int, temperature: float,
            top_k: int | None, top_p: float | None, eos_id: int | None,
            rng: np.random.Generator, use_cache: bool) -> Iterator[np.ndarray]:
    b, t = ids.shape
    buf = np.empty((b, t + max_new_tokens), dtype=np.int64)  # prompt + everything generated
    buf[:, :t] = ids
    n = t  # tokens in buf so far
    modules = _modules(model)
    cache = None
    if use_cache and hasattr(model, "make_kv_cache"):
        cache = model.make_kv_cache(batch_size=b, capacity=window)
    finished = np.zeros(b, dtype=bool)
    for _ in range(max_new_tokens):
        context = buf[:, max(0, n - window):n]  # (B, <= window) what the model may see
        if cache is None:
            logits = _last_logits(model, context, None, modules)
        elif 0 < cache.pos == n - 1 < cache.capacity:
            # the cache holds every token but the newest: feed just that one
            logits = _last_logits(model, buf[:, n - 1:n], cache, modules)
        else:
            # first step, or the window slid (every position shifted): prefill it again
            cache.reset()
            logits = _last_logits(model, context, cache, modules)
        next_ids = sample_next_token(logits, temperature, top_k, top_p, rng)  # (B,)
        if eos_id is not None:
            next_ids = np.where(finished, eos_id, next_ids)  # finished rows are padded
            finished |= next_ids == eos_id
        buf[:, n] = next_ids
        n += 1
        yield next_ids.copy()
        if eos_id is not None and finished.all():
            return


def generate(model: Any, idx: Any, max_new_tokens: int, context_size: int | None = None,
             temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
             eos_id: int | None = None, seed: int | None = None,
             use_cache: bool = True) -> np.ndarray:
    """Generate up to ``max_new_tokens`` tokens after each prompt; returns int64 (B, T + n).

    Arguments as ``generate_stream``. n is max_new_tokens unless every row reached
    ``eos_id`` earlier; a row that stopped first is padded with ``eos_id``. Unlike the
    book's single-prompt loop, the eos token itself is kept in the output.
    """
    ids = _as_ids(idx)
    steps = list(generate_stream(model, ids, max_new_tokens, context_size, temperature, top_k,
                                 top_p, eos_id, seed, use_cache))
    if not steps:
        return ids
    return np.concatenate([ids, np.stack(steps, axis=1)], axis=1)  # (B, T + n)
