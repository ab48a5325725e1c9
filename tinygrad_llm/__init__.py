"""tinygrad-llm: a GPT-style language model from the first gradient, on the CPU.

A NumPy reverse-mode autograd engine (``Tensor``) with Numba kernels for the hot ops,
and on top of it the pipeline of "Build a Large Language Model (From Scratch)".
"""

import os as _os
import sys as _sys

# OpenBLAS's worker threads spin for about 0.1 s after every GEMM before they sleep. A
# training step alternates GEMMs with parallel Numba kernels on the same cores, so each
# kernel would share a core with a spinning BLAS thread. With a timeout of 2^4 cycles they
# sleep at once (waking them costs microseconds per GEMM). OpenBLAS reads the variable when
# NumPy loads it, so this only works when tinygrad_llm is imported before NumPy (the CLI
# does); an explicit setting in the environment wins. See benchmarks/bench_train.py.
if "numpy" not in _sys.modules:
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from tinygrad_llm.tensor import (  # noqa: F401,E402  (the tensor module must be imported first)
    AnomalyError,
    BackwardStep,
    ShapeError,
    Tensor,
    cat,
    concatenate,
    default_dtype,
    detect_anomaly,
    get_default_dtype,
    is_grad_enabled,
    no_grad,
    ones,
    randn,
    set_default_dtype,
    split,
    stack,
    tensor,
    tril_mask,
    triu_mask,
    where,
    zeros,
)
from tinygrad_llm.function import Function  # noqa: F401,E402
from tinygrad_llm import functional  # noqa: F401,E402
from tinygrad_llm.kernels import get_backend, set_backend, use_backend  # noqa: F401,E402
from tinygrad_llm.autograd import GradcheckError, gradcheck, print_backward, to_dot  # noqa: F401,E402

__version__ = "0.1.0"

# -- the model layer and generation (chapters 3-5): nn, GPTModel, generate -----------------
from tinygrad_llm import nn  # noqa: F401
from tinygrad_llm.config import PRESETS, GPTConfig  # noqa: F401
from tinygrad_llm.generate import (  # noqa: F401
    generate,
    generate_stream,
    generate_text_simple,
    text_to_token_ids,
    token_ids_to_text,
)
from tinygrad_llm.nn import (  # noqa: F401
    GELU,
    CausalAttention,
    Dropout,
    Embedding,
    FeedForward,
    GPTModel,
    KVCache,
    LayerNorm,
    Linear,
    Module,
    ModuleList,
    MultiHeadAttention,
    MultiHeadAttentionWrapper,
    Parameter,
    SelfAttention_v1,
    SelfAttention_v2,
    Sequential,
    TransformerBlock,
    simple_self_attention,
)
from tinygrad_llm.random import get_rng, get_rng_state, manual_seed, set_rng_state  # noqa: F401

# -- fine-tuning (appendix E, chapter 6): LoRA and the classification head; the loops,
# instruction tools and judges are in tinygrad_llm.finetune ----------------------------------
from tinygrad_llm.nn import (  # noqa: F401,E402
    LinearWithLoRA,
    LoRALayer,
    load_lora,
    merge_lora,
    prepare_classifier,
    replace_linear_with_lora,
    save_lora,
)
