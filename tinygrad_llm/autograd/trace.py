"""One backward step, for learners: what an op got and gave, printed one per line.

``Tensor.backward_steps()`` yields a ``BackwardStep`` after each op; ``step.line()`` is
one line (index, op, output, shapes and the largest gradient), ``step.explain()`` the
op's formula and, for small arrays, the values.

    loss = model(x).sum()
    print_backward(loss)       # runs loss.backward() and prints every step

Setting TINYGRAD_LLM_TRACE=1 prints the same lines for every backward().
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinygrad_llm.tensor import Tensor


@dataclass
class BackwardStep:
    """What one op did during backward: its output, the gradient it got, the ones it gave."""

    index: int
    op_class: type
    inputs: tuple
    out: Tensor
    dout: np.ndarray
    grads: tuple = field(default_factory=tuple)

    @property
    def op(self) -> str:
        return self.op_class.__name__

    def input_names(self) -> list[str]:
        return [p.name or f"input{i}" for i, p in enumerate(self.inputs)]

    def line(self) -> str:
        """One line: index, op, output, shapes and max |grad| per input."""
        parts = []
        for name, g in zip(self.input_names(), self.grads):
            if g is None:
                parts.append(f"{name}: -")
            else:
                parts.append(f"{name}: {tuple(g.shape)} max|g|={np.abs(g).max(initial=0):.3g}")
        out = self.out.name or "out"
        return f"[{self.index:3d}] {self.op:<20s} {out} {tuple(self.dout.shape)} -> " + ", ".join(
            parts
        )

    def explain(self) -> str:
        """The op's formula (its docstring) and, for small arrays, the values."""
        doc = (self.op_class.__doc__ or "").strip()
        lines = [f"step {self.index}: {self.op}", doc, f"dout =\n{_small(self.dout)}"]
        for name, g in zip(self.input_names(), self.grads):
            lines.append(f"d{name} =\n{_small(g)}" if g is not None else f"d{name} = None")
        return "\n".join(lines)

    def __repr__(self) -> str:
        grads = {n: (None if g is None else tuple(g.shape))
                 for n, g in zip(self.input_names(), self.grads)}
        return (f"BackwardStep(index={self.index}, op={self.op!r}, out={self.out.name!r}, "
                f"dout={tuple(self.dout.shape)}, grads={grads})")


def _small(a) -> str:
    if a is None:
        return "None"
    a = np.asarray(a)
    if a.size <= 16:
        return np.array2string(a, precision=4, suppress_small=True)
    return f"<array {a.shape}, mean {a.mean():.4g}, max|.| {np.abs(a).max():.4g}>"


def print_backward(t: Tensor, grad=None, retain_graph: bool = False, file=None) -> list[str]:
    """Run t.backward(), printing one line per step; return the lines."""
    lines = []
    for step in t.backward_steps(grad, retain_graph):
        line = step.line()
        lines.append(line)
        print(line, file=file)
    return lines
