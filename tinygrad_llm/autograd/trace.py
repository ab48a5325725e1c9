"""Print backprop one op per line: index, op, output, shapes and the largest gradient.

    loss = model(x).sum()
    print_backward(loss)       # runs loss.backward() and prints every step

Setting TINYGRAD_LLM_TRACE=1 prints the same lines for every backward().
"""

from __future__ import annotations

from tinygrad_llm.tensor import Tensor


def print_backward(t: Tensor, grad=None, retain_graph: bool = False, file=None) -> list[str]:
    """Run t.backward(), printing one line per step; return the lines."""
    lines = []
    for step in t.backward_steps(grad, retain_graph):
        line = step.line()
        lines.append(line)
        print(line, file=file)
    return lines
