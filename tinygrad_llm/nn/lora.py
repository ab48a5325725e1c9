"""LoRA: low-rank adaptation of Linear layers (the book's appendix E; Hu et al. 2021,
"LoRA: Low-Rank Adaptation of Large Language Models", arXiv:2106.09685).

A frozen Linear ``y = x W^T + b`` gets a trainable low-rank update beside it:

    y = x W^T + b  +  (alpha / rank) * x A B        A (in, r), B (r, out), r << in, out

A starts Kaiming-uniform and B at zero, so at the start the update is exactly zero and the
adapted model computes what the base model computes; training moves only A and B, which
hold ``r * (in + out)`` numbers per layer instead of ``in * out``.

    replace_linear_with_lora(model, rank=16, alpha=16)   # freeze, then wrap every Linear
    ...train...
    save_lora(model, "adapters.safetensors")              # A and B alone (a few MB)
    merge_lora(model)                                     # W <- W + (alpha/r) (A B)^T

Parameter names follow the book's PyTorch model: the wrapped layer keeps its weight under
``<name>.linear.weight`` and the adapter adds ``<name>.lora.A`` and ``<name>.lora.B``
(``trf_blocks.0.att.W_query.linear.weight``, ``trf_blocks.0.att.W_query.lora.A``, ...).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from tinygrad_llm.nn.linear import Linear
from tinygrad_llm.nn.module import Module, Parameter
from tinygrad_llm.random import get_rng_state, set_rng_state, uniform
from tinygrad_llm.tensor import Tensor, default_dtype, get_default_dtype

LORA_FORMAT = "tinygrad-llm-lora-v1"


def _check_rank_alpha(rank, alpha) -> tuple[int, float]:
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank <= 0:
        raise ValueError(f"LoRA: rank must be a positive int (e.g. 8 or 16), got {rank!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number)) \
            or not math.isfinite(alpha):
        raise ValueError(f"LoRA: alpha must be a finite number (often equal to rank), "
                         f"got {alpha!r}")
    return int(rank), float(alpha)


class LoRALayer(Module):
    """The low-rank update ``(alpha / rank) * x @ A @ B``: (..., in_dim) -> (..., out_dim).

    A (in_dim, rank) is drawn like PyTorch's ``kaiming_uniform_(A, a=sqrt(5))``, which
    the book uses: PyTorch takes a 2-D tensor's fan-in from its *second* size, here
    ``rank``, and the gain sqrt(2 / (1 + a^2)) = sqrt(1/3) makes the bound
    sqrt(3) * gain / sqrt(rank) = 1 / sqrt(rank): A ~ U(-1/sqrt(rank), 1/sqrt(rank)).
    B (rank, out_dim) starts at zero, so the layer's output starts at zero.

    Args:
        dtype: of A and B (default: the default dtype); LinearWithLoRA passes the wrapped
            layer's dtype.
    """

    def __init__(self, in_dim: int, out_dim: int, rank: int, alpha: float,
                 dtype=None) -> None:
        super().__init__()
        for name, n in (("in_dim", in_dim), ("out_dim", out_dim)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
                raise ValueError(f"LoRALayer: {name} must be a positive int, got {n!r}")
        self.rank, self.alpha = _check_rank_alpha(rank, alpha)
        dtype = np.dtype(dtype) if dtype is not None else get_default_dtype()
        bound = 1.0 / math.sqrt(self.rank)  # kaiming_uniform_(a=sqrt(5)) with fan_in = rank
        with default_dtype(dtype):  # a Parameter takes the default dtype
            self.A = Parameter(uniform(-bound, bound, (in_dim, self.rank)))
            self.B = Parameter(np.zeros((self.rank, out_dim)))

    @property
    def scaling(self) -> float:
        """alpha / rank: keeps the update's size comparable when the rank changes."""
        return self.alpha / self.rank

    def forward(self, x: Tensor) -> Tensor:
        # (x A) first: the (..., rank) intermediate is the small one
        return (x @ self.A @ self.B) * self.scaling  # (..., in) -> (..., r) -> (..., out)

    def delta_weight(self) -> np.ndarray:
        """The update as a Linear weight, ``scaling * (A B)^T``: (out_dim, in_dim)."""
        return (self.scaling * (self.A.data @ self.B.data)).T

    def extra_repr(self) -> str:
        return (f"in_dim={self.A.shape[0]}, out_dim={self.B.shape[1]}, rank={self.rank}, "
                f"alpha={self.alpha:g}")


class LinearWithLoRA(Module):
    """A Linear plus a LoRALayer: ``linear(x) + lora(x)`` (the book's ``LinearWithLoRA``).

    The wrapped layer is used as is (not copied): freeze it with
    ``linear.requires_grad_(False)`` (``replace_linear_with_lora`` does).
    """

    def __init__(self, linear: Linear, rank: int, alpha: float) -> None:
        super().__init__()
        if not isinstance(linear, Linear):
            raise TypeError(f"LinearWithLoRA: linear must be a Linear, got "
                            f"{type(linear).__name__}")
        self.linear = linear
        self.lora = LoRALayer(linear.in_features, linear.out_features, rank, alpha,
                              dtype=linear.weight.dtype)

    @property
    def in_features(self) -> int:
        return self.linear.in_features

    @property
    def out_features(self) -> int:
        return self.linear.out_features

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x) + self.lora(x)  # (..., out) frozen path + low-rank update

    def merged(self) -> Linear:
        """A plain Linear computing the same function (new arrays; this layer unchanged)."""
        lin = self.linear
        state = get_rng_state()
        out = Linear(lin.in_features, lin.out_features, bias=lin.bias is not None)
        set_rng_state(state)  # its random init is overwritten: leave the RNG where it was
        out.training = lin.training
        w = lin.weight.data + self.lora.delta_weight().astype(lin.weight.dtype)  # (out, in)
        with default_dtype(w.dtype):
            out.weight = Parameter(w, requires_grad=lin.weight.requires_grad)
            out.bias = (Parameter(lin.bias.data.copy(), requires_grad=lin.bias.requires_grad)
                        if lin.bias is not None else None)
        return out


# ---------------------------------------------------------------------------------------
# Walking a model and swapping layers


def _swap_modules(model: Module, make) -> int:
    """Replace every child ``m`` of every module reachable from ``model`` (attributes,
    lists and tuples of them, as Module walks them) by ``make(m)`` when it returns a
    module, in place. A child reachable twice is replaced by the same new object.
    Returns the number of distinct children replaced."""
    done: dict[int, Module] = {}
    seen: set[int] = set()
    stack: list[Module] = [model]

    def swap(value):
        if not isinstance(value, Module):
            return value
        if id(value) in done:
            return done[id(value)]
        new = make(value)
        if new is None:
            stack.append(value)  # not replaced: look inside it
            return value
        done[id(value)] = new
        return new

    while stack:  # iterative walk: no recursion limit for deep models
        mod = stack.pop()
        if id(mod) in seen:
            continue
        seen.add(id(mod))
        for name, value in list(vars(mod).items()):
            if isinstance(value, Module):
                setattr(mod, name, swap(value))
            elif isinstance(value, list):
                value[:] = [swap(v) for v in value]
            elif isinstance(value, tuple) and any(isinstance(v, Module) for v in value):
                setattr(mod, name, tuple(swap(v) for v in value))
    return len(done)


def replace_linear_with_lora(model: Module, rank: int, alpha: float) -> Module:
    """Freeze ``model``, then wrap every Linear in it with ``LinearWithLoRA`` (in place).

    The book's appendix E: every Linear, recursively, the output head included (a
    classification head too). Afterwards exactly the A and B matrices are trainable:
    ``model.num_parameters(trainable_only=True) == sum(rank * (in + out))`` over the
    wrapped layers. Layers already wrapped are left alone. Returns ``model``.
    """
    rank, alpha = _check_rank_alpha(rank, alpha)
    if not isinstance(model, Module):
        raise TypeError(f"replace_linear_with_lora: model must be a Module, got "
                        f"{type(model).__name__}")
    model.requires_grad_(False)

    def make(m: Module) -> Module | None:
        if isinstance(m, LinearWithLoRA):
            return m  # already adapted: keep it, and do not wrap its inner Linear
        if isinstance(m, Linear):
            return LinearWithLoRA(m, rank, alpha)
        return None

    if isinstance(model, Linear):
        raise TypeError("replace_linear_with_lora: model is itself a Linear; wrap it with "
                        "LinearWithLoRA(linear, rank, alpha) instead")
    _swap_modules(model, make)
    return model


def lora_layers(model: Module) -> list[tuple[str, LoRALayer]]:
    """(dotted name, LoRALayer) of every adapter in ``model``, in parameter order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, LoRALayer)]


def merge_lora(model: Module) -> Module:
    """Fold every adapter into its base weight, ``W <- W + (alpha/rank) (A B)^T``, and put
    the resulting plain Linear where the wrapper was (in place; returns ``model``).

    The outputs are unchanged (up to float rounding) and the model has its original
    parameter names again, so it saves and loads like any model. A base weight shared
    with another parameter (GPT-2's output head tied to the token embedding) is not
    changed in place: the merged head gets its own weight, and ``model.cfg.tie_weights``
    is set to False when the model has such a config.
    """
    if isinstance(model, LinearWithLoRA):
        raise TypeError("merge_lora: model is itself a LinearWithLoRA; use model.merged()")
    wrappers = [m for m in model.modules() if isinstance(m, LinearWithLoRA)]
    if not wrappers:
        return model
    shared = {id(p) for name, p in model.named_parameters(remove_duplicate=False)
              if not name.endswith((".linear.weight", ".linear.bias"))}
    untied = any(id(w.linear.weight) in shared for w in wrappers)
    _swap_modules(model, lambda m: m.merged() if isinstance(m, LinearWithLoRA) else None)
    cfg = getattr(model, "cfg", None)
    if untied and cfg is not None and getattr(cfg, "tie_weights", False):
        model.cfg = cfg.replace(tie_weights=False)
    return model


# ---------------------------------------------------------------------------------------
# Saving and loading the adapters alone


def save_lora(model: Module, path: str | os.PathLike,
              include: Iterable[str] = ()) -> Path:
    """Write the adapters (every ``...lora.A`` / ``...lora.B``) to a safetensors file,
    atomically; the rank and alpha of each go in its metadata.

    Args:
        include: name prefixes of further parameters to store, e.g. ``("out_head.",)``
            for a new classification head whose base weight is not in the base model.
    """
    from tinygrad_llm.io import save_safetensors

    layers = lora_layers(model)
    if not layers:
        raise ValueError("save_lora: the model has no LoRA adapters; call "
                         "replace_linear_with_lora(model, rank, alpha) first")
    prefixes = tuple(include)
    tensors = {name: p.data for name, p in model.named_parameters()
               if ".lora." in f".{name}" or (prefixes and name.startswith(prefixes))}
    meta = {"format": LORA_FORMAT,
            "layers": json.dumps({name: {"rank": m.rank, "alpha": m.alpha}
                                  for name, m in layers})}
    cfg = getattr(model, "cfg", None)
    if cfg is not None and hasattr(cfg, "to_dict"):
        meta["config"] = json.dumps(cfg.to_dict())
    path = Path(path)
    save_safetensors(path, tensors, meta)
    return path


def load_lora(model: Module, path: str | os.PathLike) -> Module:
    """Load adapters written by ``save_lora`` into ``model`` (in place; returns it).

    A model without adapters is first prepared with ``replace_linear_with_lora`` using
    the saved rank and alpha (which must then be the same for every layer). Every missing
    or unexpected name, rank/alpha or shape mismatch is reported at once in one
    ``ValueError`` before anything is changed.
    """
    from tinygrad_llm.io import CheckpointError, load_safetensors

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_lora: {path} does not exist")
    tensors, meta = load_safetensors(path)
    if meta.get("format") != LORA_FORMAT:
        raise CheckpointError(f"load_lora: {path} is not a LoRA adapter file (format "
                              f"{meta.get('format')!r}, expected {LORA_FORMAT!r})")
    saved = json.loads(meta["layers"])
    if not lora_layers(model):
        settings = {(v["rank"], v["alpha"]) for v in saved.values()}
        if len(settings) != 1:
            raise ValueError(f"load_lora: {path} has layers of different rank/alpha "
                             f"{sorted(settings)}; wrap the model's layers yourself first")
        (rank, alpha), = settings
        replace_linear_with_lora(model, rank, alpha)
    mine = dict(lora_layers(model))
    problems = []
    missing = [n for n in mine if n not in saved]
    unexpected = [n for n in saved if n not in mine]
    if missing:
        problems.append(f"adapters missing from the file ({len(missing)}): {', '.join(missing)}")
    if unexpected:
        problems.append(f"adapters the model lacks ({len(unexpected)}): "
                        f"{', '.join(unexpected)}")
    differ = [f"{n}: file rank={saved[n]['rank']} alpha={saved[n]['alpha']:g}, model "
              f"rank={m.rank} alpha={m.alpha:g}" for n, m in mine.items()
              if n in saved and (saved[n]["rank"], saved[n]["alpha"]) != (m.rank, m.alpha)]
    if differ:
        problems.append("rank/alpha differ: " + "; ".join(differ))
    params = dict(model.named_parameters(remove_duplicate=False))
    extra = [k for k in tensors if k not in params]
    if extra:
        problems.append(f"tensors the model has no parameter for: {', '.join(extra)}")
    shapes = [f"{k}: file {tuple(v.shape)}, model {params[k].shape}"
              for k, v in tensors.items() if k in params and tuple(v.shape) != params[k].shape]
    if shapes:
        problems.append("shape mismatches: " + "; ".join(shapes))
    if problems:
        raise ValueError(f"load_lora: {path} does not fit the model: " + " | ".join(problems))
    model.load_state_dict(dict(tensors), strict=False)
    return model
