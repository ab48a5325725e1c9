"""FeedForward and TransformerBlock, the repeated unit of GPT (chapter 4, sections 4.3-4.5).

A block is pre-LayerNorm (GPT-2's arrangement): each sub-layer sees a normalised copy of
its input and adds its result back onto the input (a shortcut, or residual, connection):

    x = x + Dropout(MultiHeadAttention(LayerNorm1(x)))
    x = x + Dropout(FeedForward(LayerNorm2(x)))

The shortcuts give gradients a path around every sub-layer, which is what lets deep stacks
train (section 4.4). The block keeps the shape: (B, T, C) in, (B, T, C) out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tinygrad_llm import functional as F
from tinygrad_llm.config import GPTConfig
from tinygrad_llm.nn.activation import GELU
from tinygrad_llm.nn.attention import LayerKVCache, MultiHeadAttention
from tinygrad_llm.nn.dropout import Dropout
from tinygrad_llm.nn.linear import Linear
from tinygrad_llm.nn.module import Module, Sequential
from tinygrad_llm.nn.norm import LayerNorm
from tinygrad_llm.tensor import Tensor


class FeedForward(Module):
    """Position-wise MLP: Linear(C, 4C) -> GELU -> Linear(4C, C), the same for every token.

    ``layers.0`` expands to 4C features (room to compute per-token features), ``layers.2``
    projects back to C; the book's parameter names are ``ff.layers.0`` and ``ff.layers.2``.
    """

    def __init__(self, cfg: GPTConfig | Mapping[str, Any]) -> None:
        super().__init__()
        c = GPTConfig.from_dict(cfg).emb_dim
        self.layers = Sequential(Linear(c, 4 * c), GELU(), Linear(4 * c, c))

    def forward(self, x: Tensor) -> Tensor:
        expand, activation, project = self.layers
        if type(activation) is GELU and type(project) is Linear:
            # = self.layers(x), with GELU and the projection as one op that recomputes the
            # GELU in backward instead of keeping its (B, T, 4C) output
            h = expand(x)  # (B, T, 4C)
            return F.gelu_linear(h, project.weight, project.bias)  # (B, T, C)
        return self.layers(x)  # (B, T, C) -> (B, T, 4C) -> (B, T, C)


class TransformerBlock(Module):
    """Pre-LayerNorm block: norm1 -> attention -> shortcut; norm2 -> FeedForward -> shortcut."""

    def __init__(self, cfg: GPTConfig | Mapping[str, Any]) -> None:
        super().__init__()
        cfg = GPTConfig.from_dict(cfg)
        self.att = MultiHeadAttention(
            d_in=cfg.emb_dim, d_out=cfg.emb_dim, context_length=cfg.context_length,
            dropout=cfg.drop_rate, num_heads=cfg.n_heads, qkv_bias=cfg.qkv_bias)
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg.emb_dim)
        self.norm2 = LayerNorm(cfg.emb_dim)
        self.drop_shortcut = Dropout(cfg.drop_rate)

    def forward(self, x: Tensor, kv_cache: LayerKVCache | None = None) -> Tensor:
        """x (B, T, C) -> (B, T, C); ``kv_cache`` is this layer's view of a KVCache."""
        shortcut = x  # (B, T, C)
        x = self.norm1(x)  # (B, T, C)
        x = self.att(x, kv_cache=kv_cache)  # (B, T, C)
        x = self.drop_shortcut(x)  # (B, T, C)
        x = x + shortcut  # (B, T, C) the first shortcut

        shortcut = x  # (B, T, C)
        x = self.norm2(x)  # (B, T, C)
        x = self.ff(x)  # (B, T, C)
        x = self.drop_shortcut(x)  # (B, T, C)
        return x + shortcut  # (B, T, C) the second shortcut
