"""GPTConfig: the model's hyperparameters, with the book's keys (chapter 4, section 4.1).

The book describes a model with a plain dict::

    GPT_CONFIG_124M = {"vocab_size": 50257, "context_length": 1024, "emb_dim": 768,
                       "n_heads": 12, "n_layers": 12, "drop_rate": 0.1, "qkv_bias": False}

``GPTConfig.from_dict(GPT_CONFIG_124M)`` turns it into a frozen, validated dataclass, and
``GPTModel`` accepts either form. Two fields go beyond the book: ``tie_weights`` (share the
output head with the token embedding, as the published GPT-2 does) and ``init`` (how
weights are drawn: "torch", PyTorch's default layer initialisation that the book's code
gets, or "gpt2", GPT-2's N(0, 0.02) scheme).

``PRESETS`` holds the four GPT-2 sizes of the book's chapter 5 table (with chapter 4's
drop_rate 0.1 and qkv_bias False; the published weights need qkv_bias=True, which
``io.load_gpt2`` sets) and "tiny", a model small enough for tests and smoke runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

INITS = ("torch", "gpt2")


@dataclass(frozen=True)
class GPTConfig:
    """Hyperparameters of a GPTModel; field names are the book's dict keys."""

    vocab_size: int = 50257  # V: number of token ids (GPT-2's BPE has 50,257)
    context_length: int = 1024  # longest input, in tokens (rows of the position embedding)
    emb_dim: int = 768  # C: width of every token's vector through the model
    n_heads: int = 12  # H: attention heads per layer; emb_dim must divide by it
    n_layers: int = 12  # number of transformer blocks
    drop_rate: float = 0.1  # dropout probability (embeddings, attention weights, shortcuts)
    qkv_bias: bool = False  # bias in the query/key/value projections (GPT-2 has them)
    tie_weights: bool = False  # out_head shares tok_emb's weight (GPT-2 does; the book not)
    init: str = "torch"  # "torch": PyTorch's layer defaults; "gpt2": N(0, 0.02) scheme

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value <= 0:
                raise ValueError(f"GPTConfig.{name}: must be a positive int, got {value!r}")
            object.__setattr__(self, name, int(value))  # numpy ints -> int, for JSON
        if self.emb_dim % self.n_heads:
            raise ValueError(
                f"GPTConfig: emb_dim={self.emb_dim} is not divisible by n_heads={self.n_heads}; "
                f"each head gets emb_dim // n_heads features (e.g. 768 and 12 give 64)"
            )
        rate = self.drop_rate
        if isinstance(rate, bool) or not isinstance(rate, Real) or not 0.0 <= rate < 1.0:
            raise ValueError(f"GPTConfig.drop_rate: must be a float in [0, 1), got {rate!r}")
        object.__setattr__(self, "drop_rate", float(rate))
        for name in ("qkv_bias", "tie_weights"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(
                    f"GPTConfig.{name}: must be True or False, got {getattr(self, name)!r}"
                )
        if self.init not in INITS:
            raise ValueError(f"GPTConfig.init: got {self.init!r}; expected one of {INITS}")

    @property
    def head_dim(self) -> int:
        """D = emb_dim // n_heads, the width of one attention head."""
        return self.emb_dim // self.n_heads

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | GPTConfig) -> GPTConfig:
        """Build from the book's dict (missing keys take the 124M defaults).

        Unknown keys are an error (a typo like ``"n_head"`` would otherwise be ignored).
        """
        if isinstance(d, GPTConfig):
            return d
        if not isinstance(d, Mapping):
            raise TypeError(f"GPTConfig.from_dict: expected a dict, got {type(d).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"GPTConfig.from_dict: unknown keys {unknown}; known keys: {known}")
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        """The book's dict (plus tie_weights and init); from_dict(to_dict()) round-trips."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> GPTConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


_GPT2_BASE = {"vocab_size": 50257, "context_length": 1024, "drop_rate": 0.1, "qkv_bias": False}

PRESETS: dict[str, GPTConfig] = {
    "gpt2-small (124M)": GPTConfig(**_GPT2_BASE, emb_dim=768, n_layers=12, n_heads=12),
    "gpt2-medium (355M)": GPTConfig(**_GPT2_BASE, emb_dim=1024, n_layers=24, n_heads=16),
    "gpt2-large (774M)": GPTConfig(**_GPT2_BASE, emb_dim=1280, n_layers=36, n_heads=20),
    "gpt2-xl (1558M)": GPTConfig(**_GPT2_BASE, emb_dim=1600, n_layers=48, n_heads=25),
    # GPT-2's vocabulary so that real tokenizers fit, everything else small and fast
    "tiny": GPTConfig(vocab_size=50257, context_length=32, emb_dim=32, n_heads=4, n_layers=2,
                      drop_rate=0.0, qkv_bias=False),
}
