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

# -- fine-tuning layers (appendix E, chapter 6): LoRA and the classification head -----------
from tinygrad_llm.nn.heads import prepare_classifier  # noqa: E402
from tinygrad_llm.nn.lora import (  # noqa: E402
    LinearWithLoRA,
    LoRALayer,
    load_lora,
    lora_layers,
    merge_lora,
    replace_linear_with_lora,
    save_lora,
)

__all__ += [
    "LinearWithLoRA",
    "LoRALayer",
    "load_lora",
    "lora_layers",
    "merge_lora",
    "prepare_classifier",
    "replace_linear_with_lora",
    "save_lora",
]
