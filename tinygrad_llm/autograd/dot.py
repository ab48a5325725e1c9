"""Export the graph behind a tensor as Graphviz DOT text (no graphviz needed to make it).

    print(to_dot(loss))        # paste into any DOT viewer, or: dot -Tpng -o graph.png

Tensors are boxes (name, shape, and the values of tiny ones with values=True); ops are
ellipses. Call it before backward(), which frees the graph.
"""

from __future__ import annotations

import numpy as np

from tinygrad_llm.tensor import Tensor


def _label(t: Tensor, values: bool) -> str:
    text = f"{t.name or ''} {tuple(t.shape)}".strip()
    if values and t.size <= 6:
        text += "\\n" + np.array2string(t.data.reshape(-1), precision=3, separator=",")
    if t.grad is not None and values and t.size <= 6:
        text += "\\ngrad " + np.array2string(t.grad.reshape(-1), precision=3, separator=",")
    return text.replace('"', "'")


def to_dot(t: Tensor, values: bool = False) -> str:
    """DOT text for the graph that produced ``t`` (iterative walk, any depth)."""
    lines = ["digraph autograd {", "  rankdir=LR;", "  node [fontname=monospace];"]
    seen: set[int] = set()
    stack = [t]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        lines.append(f'  t{id(node)} [shape=box, label="{_label(node, values)}"];')
        fn = node._fn
        if fn is None:
            continue
        if fn.freed:
            raise RuntimeError("to_dot: the graph was freed by backward(); call to_dot first "
                               "(or backward(retain_graph=True))")
        lines.append(f'  f{id(fn)} [shape=ellipse, label="{type(fn).__name__}"];')
        lines.append(f"  f{id(fn)} -> t{id(node)};")
        for p in fn.parents:
            lines.append(f"  t{id(p)} -> f{id(fn)};")
            stack.append(p)
    lines.append("}")
    return "\n".join(lines) + "\n"
