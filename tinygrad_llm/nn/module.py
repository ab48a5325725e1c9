"""Module, Parameter, Sequential, ModuleList: PyTorch's torch.nn containers, by walking attributes.

A ``Module`` finds its parameters by looking at its own attributes (``vars(self)``), in
the order they were assigned: a ``Parameter`` is a parameter, a ``Module`` is a child whose
parameters get a dotted prefix, and a list or tuple of them gives children named by index.
So ``GPTModel`` gets the names of the book's PyTorch model with no registration code:

    tok_emb.weight, trf_blocks.0.att.W_query.weight, trf_blocks.0.ff.layers.0.bias, ...

A parameter reachable under two names (weight tying: ``out_head.weight is tok_emb.weight``)
is listed once, under the first name; the other name stays an accepted alias when loading.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from tinygrad_llm.tensor import Tensor, get_default_dtype


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates: ``requires_grad=True``.

    Floats take the default dtype (float32 unless inside ``default_dtype(np.float64)``),
    integers are converted to it too (a parameter is always a float array).
    """

    def __init__(self, data: Any, requires_grad: bool = True, name: str | None = None):
        arr = data.data if isinstance(data, Tensor) else np.asarray(data)
        if arr.dtype.kind != "f":  # integer / bool input: a parameter is always float
            arr = arr.astype(get_default_dtype())
        super().__init__(arr, requires_grad=requires_grad, name=name)

    def __repr__(self) -> str:
        return f"Parameter({self.data!r}, requires_grad={self.requires_grad})"


class StateDictError(ValueError):
    """A state dict that does not fit the module; the message lists every problem."""


class LoadResult(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped (both empty when everything fit)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of every layer: override ``forward``; call the module to run it."""

    training: bool = True  # class default, so subclasses need not call super().__init__()

    def __init__(self) -> None:
        self.training = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # -- walking the attributes ------------------------------------------------------------
    def _named_entries(self) -> Iterator[tuple[str, Parameter | Module]]:
        """Direct members: (name, Parameter or Module), in assignment order."""
        for name, value in vars(self).items():
            if isinstance(value, (Parameter, Module)):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, (Parameter, Module)):
                        yield f"{name}.{i}", item

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for self ("") and every submodule, each module once."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:  # iterative depth-first walk, children in assignment order
            name, mod = stack.pop()
            if id(mod) in seen:
                continue
            seen.add(id(mod))
            yield name, mod
            children = [(f"{name}.{n}" if name else n, m)
                        for n, m in mod._named_entries() if isinstance(m, Module)]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        """self and every submodule, each once."""
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "",
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) for every parameter of self and its submodules.

        A shared parameter is listed once (under its first name) unless
        ``remove_duplicate=False``, which lists every name it can be reached by.
        """
        seen: set[int] = set()
        for mod_name, mod in self.named_modules(prefix):
            for name, p in mod._named_entries():
                if not isinstance(p, Parameter):
                    continue
                if remove_duplicate and id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter once (tied weights count once)."""
        for _, p in self.named_parameters():
            yield p

    # -- modes and gradients -------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set the ``training`` flag of self and every submodule (dropout acts in training)."""
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self) -> Module:
        """``train(False)``: dropout off."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``grad = None``)."""
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, flag: bool = True) -> Module:
        """Freeze (False) or unfreeze (True) every parameter; returns self."""
        for p in self.parameters():
            p.requires_grad = bool(flag)
        return self

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameter elements (tied weights counted once)."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # -- state dicts -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """name -> a copy of the parameter's array (copies: training does not change them)."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> LoadResult:
        """Copy arrays into the parameters by name (in place, cast to each parameter's dtype).

        Every problem is collected before anything is changed and reported in one
        ``StateDictError``: missing keys and unexpected keys (only when ``strict``) and
        shape mismatches (always). A tied parameter may be given under any of its names.
        """
        by_name = dict(self.named_parameters(remove_duplicate=False))
        canonical = dict(self.named_parameters())
        aliases: dict[int, list[str]] = {}
        for name, p in by_name.items():
            aliases.setdefault(id(p), []).append(name)
        unexpected = [k for k in state_dict if k not in by_name]
        missing = [name for name, p in canonical.items()
                   if not any(a in state_dict for a in aliases[id(p)])]
        mismatched = []
        for key, value in state_dict.items():
            if key in by_name:
                shape = np.shape(value.data if isinstance(value, Tensor) else value)
                if shape != by_name[key].shape:
                    mismatched.append(f"{key}: got {shape}, model has {by_name[key].shape}")
        problems = []
        if strict and missing:
            problems.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
        if mismatched:
            problems.append(f"shape mismatches ({len(mismatched)}): {'; '.join(mismatched)}")
        if problems:
            raise StateDictError(
                f"load_state_dict into {type(self).__name__}: " + " | ".join(problems)
            )
        for key, value in state_dict.items():
            if key in by_name:
                p = by_name[key]
                arr = np.asarray(value.data if isinstance(value, Tensor) else value)
                if p.data.flags.writeable:
                    np.copyto(p.data, arr, casting="unsafe")  # in place: optimizers keep p
                else:
                    p.data = np.array(arr, dtype=p.dtype)
        return LoadResult(missing, unexpected)

    # -- printing ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """Layer settings shown by repr (override in layers)."""
        return ""

    def __repr__(self) -> str:
        children = [(n, m) for n, m in self._named_entries() if isinstance(m, Module)]
        extra = self.extra_repr()
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = [f"{type(self).__name__}("] + ([f"  {extra}"] if extra else [])
        for n, m in children:
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({n}): {body}")
        return "\n".join(lines) + "\n)"


class ModuleList(Module):
    """A list of modules whose parameters are named by index (``blocks.0.weight``)."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        self._items: list[Module] = []
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: expected a Module, got {type(module).__name__}")
        self._items.append(module)
        return self

    def _named_entries(self) -> Iterator[tuple[str, Parameter | Module]]:
        for i, m in enumerate(self._items):
            yield str(i), m

    def __getitem__(self, i: int) -> Module:
        return self._items[i]

    def __setitem__(self, i: int, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: expected a Module, got {type(module).__name__}")
        self._items[i] = module

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._items)


class Sequential(ModuleList):
    """Modules applied one after another: ``Sequential(a, b)(x) == b(a(x))``."""

    def __init__(self, *modules: Module) -> None:
        super().__init__(modules)

    def forward(self, x: Any) -> Any:
        for m in self._items:
            x = m(x)
        return x
