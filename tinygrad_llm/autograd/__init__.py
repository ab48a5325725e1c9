"""Tools to look inside autograd: a finite-difference gradient checker, a printed trace of
every backward step, and a Graphviz DOT export of the graph."""

from tinygrad_llm.autograd.dot import to_dot  # noqa: F401
from tinygrad_llm.autograd.gradcheck import GradcheckError, gradcheck  # noqa: F401
from tinygrad_llm.autograd.trace import print_backward  # noqa: F401
