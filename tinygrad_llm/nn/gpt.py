"""GPTModel: GPT-2's architecture with the book's names (chapter 4, section 4.6).

    token ids (B, T)
      -> tok_emb (B, T, C) + pos_emb (T, C)      what the token is + where it is
      -> drop_emb
      -> trf_blocks: n_layers x TransformerBlock  attention + feed-forward, with shortcuts
      -> final_norm
      -> out_head (B, T, V)                       one score (logit) per vocabulary entry

The logits at position t score the token that follows tokens 0..t. Parameter names map one
to one onto the book's PyTorch model (``tok_emb.weight``, ``trf_blocks.0.att.W_query.weight``,
``trf_blocks.0.ff.layers.0.bias``, ``trf_blocks.0.norm1.scale``, ``final_norm.shift``,
``out_head.weight``), so its state dict loads with ``load_state_dict``.

Initialisation (``cfg.init``):
  - "torch" (default): each layer's PyTorch default, as the book's model gets them:
    Linear U(-1/sqrt(in), 1/sqrt(in)) for weights and biases, Embedding N(0, 1),
    LayerNorm scale 1 and shift 0.
  - "gpt2": GPT-2's scheme: Linear weights and both embeddings N(0, 0.02), biases 0, and
    the two projections that write into the residual stream (``att.out_proj`` and
    ``ff.layers.2``) N(0, 0.02 / sqrt(2 n_layers)), so the stream's variance does not grow
    with depth.
Both draw from ``tinygrad_llm.random.get_rng()``.

With ``tie_weights`` the output head *is* the token embedding (GPT-2's weight tying):
``out_head.weight is tok_emb.weight``, listed once, under ``tok_emb.weight``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinygrad_llm import functional as F
from tinygrad_llm.config import GPTConfig
from tinygrad_llm.nn.attention import KVCache
from tinygrad_llm.nn.dropout import Dropout
from tinygrad_llm.nn.embedding import Embedding
from tinygrad_llm.nn.linear import Linear
from tinygrad_llm.nn.module import Module, Sequential
from tinygrad_llm.nn.norm import LayerNorm
from tinygrad_llm.nn.transformer import TransformerBlock
from tinygrad_llm.random import normal
from tinygrad_llm.tensor import ShapeError, Tensor, no_grad

# the projections whose output is added onto the residual stream (GPT-2 scales their init)
_RESIDUAL_PROJECTIONS = ("att.out_proj.weight", "ff.layers.2.weight")


@dataclass(frozen=True)
class ParameterReport:
    """Parameter counts and memory of a model (the book's section 4.6 printout)."""

    total: int  # every parameter element once (tied weights once)
    out_head: int  # elements only the output head owns (0 when tied to tok_emb)
    trainable: int  # elements with requires_grad
    nbytes: int  # memory of the parameters at their dtype

    @property
    def without_out_head(self) -> int:
        """total - out_head: the book's "considering weight tying" count (124M for GPT-2)."""
        return self.total - self.out_head

    @property
    def size_mb(self) -> float:
        """nbytes in MB (2**20 bytes, as the book computes it)."""
        return self.nbytes / 2**20

    def __str__(self) -> str:
        return (f"Total number of parameters: {self.total:,}\n"
                f"Number of trainable parameters considering weight tying: "
                f"{self.without_out_head:,}\n"
                f"Trainable parameters: {self.trainable:,}\n"
                f"Total size of the model: {self.size_mb:.2f} MB")


class GPTModel(Module):
    """The GPT model of chapter 4: ``GPTModel(cfg)(idx (B, T)) -> logits (B, T, V)``.

    ``cfg`` is a GPTConfig or the book's dict (``GPT_CONFIG_124M``).
    """

    def __init__(self, cfg: GPTConfig | Mapping[str, Any]) -> None:
        super().__init__()
        cfg = GPTConfig.from_dict(cfg)
        self.cfg = cfg
        self.tok_emb = Embedding(cfg.vocab_size, cfg.emb_dim)  # (V, C)
        self.pos_emb = Embedding(cfg.context_length, cfg.emb_dim)  # (ctx, C)
        self.drop_emb = Dropout(cfg.drop_rate)
        self.trf_blocks = Sequential(*[TransformerBlock(cfg) for _ in range(cfg.n_layers)])
        self.final_norm = LayerNorm(cfg.emb_dim)
        # weight (V, C); tied: the token embedding's (V, C) table, the same layout
        self.out_head = Linear(cfg.emb_dim, cfg.vocab_size, bias=False,
                               weight=self.tok_emb.weight if cfg.tie_weights else None)
        if cfg.init == "gpt2":
            self._init_gpt2()

    def _init_gpt2(self) -> None:
        """Redraw the weights with GPT-2's scheme (see the module docstring)."""
        std = 0.02
        resid_std = std / math.sqrt(2 * self.cfg.n_layers)
        for name, p in self.named_parameters():
            if name.endswith((".scale", ".shift")):
                continue  # LayerNorm keeps ones and zeros
            if p.ndim == 1:
                p.data[...] = 0.0  # biases
            elif name.endswith(_RESIDUAL_PROJECTIONS):
                p.data[...] = normal(resid_std, p.shape)
            else:
                p.data[...] = normal(std, p.shape)  # Linear weights, embeddings

    # -- forward ---------------------------------------------------------------------------
    def forward(self, in_idx, kv_cache: KVCache | None = None, last_only: bool = False) -> Tensor:
        """Logits for every position: (B, T) ids -> (B, T, V).

        Args:
            in_idx: integer token ids, a (B, T) array or Tensor, 1 <= T <= context_length.
            kv_cache: a ``KVCache`` (``make_kv_cache``): in_idx continues the cached tokens
                (positions ``kv_cache.pos ..``), their keys/values are appended, and the
                pass runs without gradient recording.
            last_only: apply final_norm and out_head to the last position only and return
                (B, 1, V): all generation needs, and far cheaper (the head is V x C).
        """
        idx = self._check_ids(in_idx, kv_cache)
        if kv_cache is not None:
            with no_grad():
                return self._forward(idx, kv_cache, last_only)  # (B, T or 1, V)
        return self._forward(idx, None, last_only)  # (B, T or 1, V)

    def loss(self, in_idx, targets, ignore_index: int = -100) -> Tensor:
        """Mean next-token cross-entropy: the number ``F.cross_entropy(self(in_idx), targets)``
        gives, computed without the (B, T, V) logits.

        With a plain Linear head, final_norm's output goes straight into
        ``F.linear_cross_entropy``, which walks the vocabulary in chunks: at GPT-2 size and a
        batch of 4 x 256 tokens that is two 196 MiB arrays (logits and their gradient) fewer.
        Any other head (LoRA-wrapped, say) takes the unfused path.
        """
        idx = self._check_ids(in_idx, None)
        x = self._hidden(idx, None, last_only=False)  # (B, T, C)
        head = self.out_head
        if type(head) is Linear:
            return F.linear_cross_entropy(x, head.weight, targets, bias=head.bias,
                                          ignore_index=ignore_index)
        return F.cross_entropy(head(x), targets, ignore_index=ignore_index)

    def _forward(self, idx: np.ndarray, kv_cache: KVCache | None, last_only: bool) -> Tensor:
        return self.out_head(self._hidden(idx, kv_cache, last_only))  # (B, T, V)

    def _hidden(self, idx: np.ndarray, kv_cache: KVCache | None, last_only: bool) -> Tensor:
        """Everything before out_head: final_norm's output (B, T or 1, C)."""
        start = kv_cache.pos if kv_cache is not None else 0
        num_tokens = idx.shape[1]
        tok_embeds = self.tok_emb(idx)  # (B, T, C)
        pos_embeds = self.pos_emb(np.arange(start, start + num_tokens))  # (T, C)
        x = tok_embeds + pos_embeds  # (B, T, C) broadcast over the batch
        x = self.drop_emb(x)  # (B, T, C)
        for i, block in enumerate(self.trf_blocks):
            x = block(x, kv_cache=kv_cache.layer(i) if kv_cache is not None else None)  # (B, T, C)
        if kv_cache is not None:
            kv_cache.advance(num_tokens)
        if last_only:
            x = x[:, -1:, :]  # (B, 1, C) LayerNorm is per position, so slicing first is exact
        return self.final_norm(x)  # (B, T, C)

    def _check_ids(self, in_idx, kv_cache: KVCache | None) -> np.ndarray:
        idx = in_idx.data if isinstance(in_idx, Tensor) else np.asarray(in_idx)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"GPTModel: token ids must be integers, got dtype {idx.dtype} "
                            f"(convert with ids.astype(np.int64))")
        if idx.ndim != 2 or idx.shape[1] == 0:
            hint = " (for one sequence use idx[None])" if idx.ndim == 1 else ""
            raise ShapeError(f"GPTModel: expected token ids of shape (batch, num_tokens) with "
                             f"num_tokens >= 1, got {idx.shape}{hint}")
        ctx, v = self.cfg.context_length, self.cfg.vocab_size
        start = kv_cache.pos if kv_cache is not None else 0
        if start + idx.shape[1] > ctx:
            if kv_cache is None:
                raise ValueError(
                    f"GPTModel: input has {idx.shape[1]} tokens, more than context_length="
                    f"{ctx}; crop it to the last {ctx} tokens (idx[:, -{ctx}:])")
            raise ValueError(
                f"GPTModel: the KV cache holds {start} tokens; {idx.shape[1]} more pass "
                f"context_length={ctx}; reset() the cache and feed at most {ctx} tokens")
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= v:
            bad = lo if lo < 0 else hi
            raise ValueError(f"GPTModel: token id {bad} is outside the vocabulary "
                             f"(vocab_size={v}: valid ids are 0..{v - 1}); check that the "
                             f"tokenizer matches the model")
        if kv_cache is not None and (kv_cache.n_layers != self.cfg.n_layers
                                     or kv_cache.batch_size != idx.shape[0]):
            raise ValueError(
                f"GPTModel: {kv_cache!r} does not fit {self.cfg.n_layers} layers and a "
                f"batch of {idx.shape[0]}; make it with model.make_kv_cache(batch_size)")
        return idx.astype(np.int64, copy=False)

    # -- helpers ---------------------------------------------------------------------------
    def make_kv_cache(self, batch_size: int = 1, capacity: int | None = None) -> KVCache:
        """An empty KVCache for this model, for up to ``capacity`` (context_length) tokens."""
        cap = self.cfg.context_length if capacity is None else int(capacity)
        if not 1 <= cap <= self.cfg.context_length:
            raise ValueError(f"make_kv_cache: capacity must be in 1..{self.cfg.context_length}"
                             f" (the context length), got {capacity}")
        return KVCache(self.cfg.n_layers, batch_size, self.cfg.n_heads, self.cfg.head_dim,
                       cap, dtype=self.tok_emb.weight.dtype)

    def parameter_report(self) -> ParameterReport:
        """Counts and memory: total, the output head's own share, trainable, bytes."""
        params = list(self.parameters())
        others = {id(p) for name, p in self.named_parameters() if not name.startswith("out_head.")}
        head = sum(p.size for p in self.out_head.parameters() if id(p) not in others)
        return ParameterReport(
            total=sum(p.size for p in params), out_head=head,
            trainable=sum(p.size for p in params if p.requires_grad),
            nbytes=sum(p.data.nbytes for p in params))
