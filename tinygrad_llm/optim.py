"""Optimizers (SGD, AdamW), the learning-rate schedule of the book's appendix D (linear
warmup, then cosine decay), and global-norm gradient clipping.

An optimizer holds parameter groups: dicts with a "params" list and that group's
hyperparameters, so that some parameters (biases, norms) can get another weight decay:

    opt = AdamW(decay_groups(model, weight_decay=0.1), lr=4e-4)

Plain ``AdamW(model.parameters(), weight_decay=0.1)`` decays every parameter, as PyTorch
and the book do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from tinygrad_llm.kernels import adamw as k_adamw
from tinygrad_llm.tensor import Tensor


def _groups(params, defaults: dict) -> list[dict]:
    params = list(params)
    if not params:
        raise ValueError("optimizer: got an empty parameter list (is the model frozen?)")
    if not isinstance(params[0], dict):
        params = [{"params": params}]
    groups = []
    seen: set[int] = set()
    for i, g in enumerate(params):
        if "params" not in g:
            raise ValueError(f"optimizer: parameter group {i} has no 'params' key")
        unknown = set(g) - set(defaults) - {"params"}
        if unknown:
            raise ValueError(f"optimizer: parameter group {i} has unknown keys {sorted(unknown)}; "
                             f"known: {sorted(defaults)}")
        group = {**defaults, **g, "params": list(g["params"])}
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer: group {i} holds a {type(p).__name__}, not a Tensor")
            if id(p) in seen:
                raise ValueError("optimizer: a parameter appears in more than one group")
            seen.add(id(p))
        groups.append(group)
    return groups


class Optimizer:
    """Base class: parameter groups, zero_grad(), state_dict() / load_state_dict()."""

    defaults: dict = {}

    def __init__(self, params, **defaults):
        self.param_groups = _groups(params, defaults)
        self.state: dict[int, dict] = {}  # keyed by the parameter's position over all groups

    def params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def zero_grad(self) -> None:
        for p in self.params():
            p.grad = None

    def step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """{"param_groups": hyperparameters + parameter indices, "state": index -> arrays}."""
        groups, start = [], 0
        for g in self.param_groups:
            n = len(g["params"])
            groups.append({**{k: v for k, v in g.items() if k != "params"},
                           "params": list(range(start, start + n))})
            start += n
        state = {i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                 for i, s in self.state.items()}
        return {"param_groups": groups, "state": state}

    def load_state_dict(self, sd: dict) -> None:
        groups = sd["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"optimizer state: {len(groups)} parameter groups saved, "
                             f"this optimizer has {len(self.param_groups)}")
        params = self.params()
        for i, (saved, mine) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(mine["params"]):
                raise ValueError(f"optimizer state: group {i} saved {len(saved['params'])} "
                                 f"parameters, this one has {len(mine['params'])}")
            for k, v in saved.items():
                if k != "params":
                    mine[k] = tuple(v) if isinstance(v, list) else v
        state = {}
        for key, s in sd["state"].items():
            i = int(key)
            if not 0 <= i < len(params):
                raise ValueError(f"optimizer state: entry {i} is beyond the {len(params)} params")
            for name, v in s.items():
                if isinstance(v, np.ndarray) and v.shape != params[i].shape:
                    raise ValueError(f"optimizer state: {name} of parameter {i} has shape "
                                     f"{v.shape}, the parameter is {params[i].shape}")
            state[i] = {k: (np.array(v, dtype=params[i].dtype) if isinstance(v, np.ndarray)
                            else v) for k, v in s.items()}
        self.state = state


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and L2 weight decay (PyTorch's rule).

    g <- g + weight_decay * p;  buf <- momentum * buf + g;  p <- p - lr * buf
    """

    def __init__(self, params, lr: float = 1e-2, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got "
                             f"{lr}, {momentum}, {weight_decay}")
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)

    def step(self) -> None:
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    g = p.grad
                    if group["weight_decay"]:
                        g = g + group["weight_decay"] * p.data
                    if group["momentum"]:
                        s = self.state.setdefault(i, {})
                        buf = s.get("momentum_buffer")
                        s["momentum_buffer"] = g.copy() if buf is None else (
                            buf * group["momentum"] + g)
                        g = s["momentum_buffer"]
                    p.data -= group["lr"] * g
                i += 1


class AdamW(Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), PyTorch's update rule.

    For each parameter p with gradient g, at step t (1-based, counted per parameter):
        p <- p * (1 - lr * weight_decay)
        m <- beta1 m + (1 - beta1) g,  v <- beta2 v + (1 - beta2) g^2
        p <- p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
    The update runs as one fused kernel per parameter (kernels/adamw.py).
    Every parameter given is decayed; use ``decay_groups(model)`` to exempt biases and norms.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01):
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"AdamW: lr, eps, weight_decay must be >= 0, got {lr}, {eps}, "
                             f"{weight_decay}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"AdamW: betas must be in [0, 1), got {betas}")
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)

    def step(self) -> None:
        i = 0
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is not None:
                    s = self.state.get(i)
                    if s is None:
                        s = self.state[i] = {"step": 0, "m": np.zeros_like(p.data),
                                             "v": np.zeros_like(p.data)}
                    s["step"] += 1
                    k_adamw.adamw_step(p.data, p.grad.astype(p.dtype, copy=False), s["m"],
                                       s["v"], group["lr"], beta1, beta2, group["eps"],
                                       group["weight_decay"], s["step"])
                i += 1


def decay_groups(model, weight_decay: float) -> list[dict]:
    """Two parameter groups: weight_decay on parameters with ndim >= 2 (weight matrices and
    embeddings), none on the rest (biases, LayerNorm scale and shift) — nanoGPT's rule."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def warmup_cosine_lr(step: int, total_steps: int, peak_lr: float, warmup_steps: int = 0,
                     min_lr: float = 0.0, initial_lr: float = 0.0) -> float:
    """The learning rate at ``step`` (0-based) of the book's appendix D schedule.

    Linear warmup from ``initial_lr`` to ``peak_lr`` over ``warmup_steps`` steps, then a
    half cosine from ``peak_lr`` down to ``min_lr`` at the last step.
    """
    if total_steps <= 0 or warmup_steps < 0 or warmup_steps > total_steps:
        raise ValueError(f"warmup_cosine_lr: need 0 <= warmup_steps ({warmup_steps}) <= "
                         f"total_steps ({total_steps}) and total_steps > 0")
    if step < warmup_steps:
        return initial_lr + (peak_lr - initial_lr) * step / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    return min_lr + 0.5 * (peak_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


class WarmupCosineSchedule:
    """Sets every group's lr from ``warmup_cosine_lr`` each time ``step()`` is called."""

    def __init__(self, optimizer: Optimizer, total_steps: int, peak_lr: float,
                 warmup_steps: int = 0, min_lr: float = 0.0, initial_lr: float = 0.0):
        self.optimizer, self.last_step = optimizer, 0
        self.kw = dict(total_steps=total_steps, peak_lr=peak_lr, warmup_steps=warmup_steps,
                       min_lr=min_lr, initial_lr=initial_lr)
        warmup_cosine_lr(0, **self.kw)  # validate now, not at the first step
        self._apply()

    def lr(self) -> float:
        return warmup_cosine_lr(self.last_step, **self.kw)

    def _apply(self) -> None:
        for g in self.optimizer.param_groups:
            g["lr"] = self.lr()

    def step(self) -> float:
        """Advance one step; returns the new learning rate."""
        self.last_step += 1
        self._apply()
        return self.lr()


def clip_grad_norm(params: Iterable[Tensor], max_norm: float) -> float:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping (as PyTorch's clip_grad_norm_ does).
    """
    if max_norm <= 0:
        raise ValueError(f"clip_grad_norm: max_norm must be positive, got {max_norm}")
    grads = [p.grad for p in params if p.grad is not None]
    total = math.sqrt(sum(float(np.dot(g.reshape(-1), g.reshape(-1))) for g in grads))
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in grads:
            g *= scale
    return total
