"""tinygrad-llm: a GPT-style language model from the first gradient, on the CPU.

A NumPy reverse-mode autograd engine (``Tensor``) with Numba kernels for the hot ops,
and on top of it the pipeline of "Build a Large Language Model (From Scratch)".
"""

from tinygrad_llm import runtime as _runtime

# before NumPy loads: OpenBLAS threads that sleep at once, malloc that keeps freed memory (see
# tinygrad_llm/runtime.py for why and the measurements)
_runtime.set_openblas_timeout()
_runtime.keep_heap()

# the tensor module must be imported first (it imports the ops, which import it back)
from tinygrad_llm.tensor import ShapeError, Tensor  # noqa: F401,E402
from tinygrad_llm.switches import (  # noqa: F401,E402
    AnomalyError,
    default_dtype,
    detect_anomaly,
    get_default_dtype,
    is_grad_enabled,
    no_grad,
    set_default_dtype,
)
from tinygrad_llm.creation import (  # noqa: F401,E402
    cat,
    concatenate,
    ones,
    randn,
    split,
    stack,
    tensor,
    tril_mask,
    triu_mask,
    where,
    zeros,
)
from tinygrad_llm.autograd.trace import BackwardStep  # noqa: F401,E402
from tinygrad_llm.function import Function  # noqa: F401,E402
from tinygrad_llm import functional  # noqa: F401,E402
from tinygrad_llm.kernels import get_backend, set_backend, use_backend  # noqa: F401,E402
from tinygrad_llm.autograd import GradcheckError, gradcheck, print_backward, to_dot  # noqa: F401,E402

__version__ = "0.1.0"

# -- the model layer and generation (chapters 3-5): nn, GPTModel, generate -----------------
from tinygrad_llm import nn  # noqa: F401,E402
from tinygrad_llm.config import PRESETS, GPTConfig  # noqa: F401,E402
from tinygrad_llm.generate import (  # noqa: F401,E402
    generate,
    generate_stream,
    generate_text_simple,
    text_to_token_ids,
    token_ids_to_text,
)
from tinygrad_llm.nn import (  # noqa: F401,E402
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
from tinygrad_llm.random import get_rng, get_rng_state, manual_seed, set_rng_state  # noqa: F401,E402

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
