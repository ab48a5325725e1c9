"""Layers and models (the book's chapters 3 and 4), PyTorch-like: ``from tinygrad_llm import nn``.

module.py      Module, Parameter, Sequential, ModuleList (state dicts, train/eval, freezing)
linear.py      Linear                    embedding.py   Embedding
norm.py        LayerNorm (scale, shift)  activation.py  GELU
dropout.py     Dropout
attention.py   simple_self_attention, SelfAttention_v1/v2, CausalAttention,
               MultiHeadAttentionWrapper, MultiHeadAttention, KVCache
transformer.py FeedForward, TransformerBlock
gpt.py         GPTModel, ParameterReport
"""

from __future__ import annotations

from tinygrad_llm.nn.activation import GELU
from tinygrad_llm.nn.attention import (
    CausalAttention,
    KVCache,
    LayerKVCache,
    MultiHeadAttention,
    MultiHeadAttentionWrapper,
    SelfAttention_v1,
    SelfAttention_v2,
    simple_self_attention,
)
from tinygrad_llm.nn.dropout import Dropout
from tinygrad_llm.nn.embedding import Embedding
from tinygrad_llm.nn.gpt import GPTModel, ParameterReport
from tinygrad_llm.nn.linear import Linear
from tinygrad_llm.nn.module import (
    LoadResult,
    Module,
    ModuleList,
    Parameter,
    Sequential,
    StateDictError,
)
from tinygrad_llm.nn.norm import LayerNorm
from tinygrad_llm.nn.transformer import FeedForward, TransformerBlock

__all__ = [
    "GELU",
    "CausalAttention",
    "Dropout",
    "Embedding",
    "FeedForward",
    "GPTModel",
    "KVCache",
    "LayerKVCache",
    "LayerNorm",
    "Linear",
    "LoadResult",
    "Module",
    "ModuleList",
    "MultiHeadAttention",
    "MultiHeadAttentionWrapper",
    "Parameter",
    "ParameterReport",
    "SelfAttention_v1",
    "SelfAttention_v2",
    "Sequential",
    "StateDictError",
    "TransformerBlock",
    "simple_self_attention",
]
