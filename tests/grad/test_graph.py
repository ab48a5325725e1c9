"""The graph and backward() semantics: reuse, diamonds, deep chains, no_grad, accumulation,
freeing, error messages, anomaly detection, memory, and the tools that show a backward
pass step by step (backward_steps, print_backward, to_dot, TINYGRAD_LLM_TRACE).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm import AnomalyError, ShapeError, Tensor, gradcheck, no_grad
from tinygrad_llm.autograd import print_backward, to_dot


def leaf(values, name: str | None = None) -> Tensor:
    return Tensor(values, requires_grad=True, dtype=np.float64, name=name)


# ---------------------------------------------------------------------------------------
# Shapes of graphs


def test_reuse_of_a_tensor_sums_its_gradients():
    x = leaf([-1.5, 0.5, 2.0])
    y = x * x + x  # x used three times
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 1)


def test_diamond():
    x = leaf([0.3, -0.7])
    a = x * 2.0
    d = (a.exp() * a.tanh()).sum()  # a feeds two branches that meet again
    d.backward()
    e, t = np.exp(2 * x.data), np.tanh(2 * x.data)
    np.testing.assert_allclose(x.grad, 2 * e * t + 2 * e * (1 - t * t))
    assert gradcheck(lambda v: (v * 2.0).exp() * (v * 2.0).tanh(), [x.data])


def test_op_runs_only_after_every_consumer_sent_its_gradient():
    x = leaf([0.2, 1.0])
    a = x.exp()
    a.name = "a"
    c = (a * 3.0 + a).sum()  # a reaches the Add directly and through the Mul
    steps = [s.op for s in c.backward_steps()]
    assert steps.index("Exp") > steps.index("Mul")
    assert steps.index("Exp") > steps.index("Add")
    np.testing.assert_allclose(x.grad, 4 * np.exp(x.data))


def test_deep_chain_of_10000_ops_has_no_recursion_limit():
    x = leaf([1.0, 2.0])
    y = x
    for _ in range(5_000):
        y = y * 1.0001
        y = y + 0.5
    assert "digraph" in to_dot(y)  # the DOT walk is iterative too
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001**5_000] * 2, rtol=1e-9)


def test_deep_chain_can_be_dropped_without_backward():
    x = leaf([1.0])
    y = x
    for _ in range(10_000):
        y = y + 1.0
    del y  # deallocating 10,000 linked tensors must not overflow the C stack
    assert x.grad is None


def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with no_grad():
        y = (x * 3.0).exp()
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    assert y.requires_grad is False and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()
    assert x.grad is None


def test_no_grad_as_decorator_restores_the_previous_state():
    @no_grad()
    def predict(t):
        return t * 2.0

    x = leaf([1.0])
    assert predict(x).requires_grad is False
    assert (x * 2.0).requires_grad is True


def test_inputs_without_requires_grad_build_no_graph():
    a = Tensor([1.0, 2.0])
    y = a * 2.0 + 1.0
    assert not y.requires_grad and y._fn is None


# ---------------------------------------------------------------------------------------
# backward() semantics


def test_leaf_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, -2.0])
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * (2 * x.data))
    x.zero_grad()
    assert x.grad is None


def test_intermediate_gradients_are_dropped_unless_retained():
    x = leaf([1.0, 2.0])
    h = x * 2.0
    h.sum().backward()
    assert h.grad is None
    x2 = leaf([1.0, 2.0])
    h2 = (x2 * 2.0).retain_grad()
    (h2 * h2).sum().backward()
    np.testing.assert_allclose(h2.grad, 2 * h2.data)


def test_second_backward_raises_unless_graph_retained():
    x = leaf([1.0, 3.0])
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="already freed.*retain_graph=True"):
        loss.backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)  # the failed call added nothing

    x = leaf([1.0, 3.0])
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    once = x.grad.copy()
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * once)


def test_backward_frees_what_ops_saved():
    x = leaf([1.0, 3.0])
    y = x.exp()
    fn = y._fn
    y.sum().backward()
    assert fn.freed and fn.saved == () and fn.parents == ()


def test_backward_of_a_non_scalar_needs_grad():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x * 3.0
    with pytest.raises(RuntimeError, match=r"one-element.*\(2, 2\)"):
        y.backward()
    y.backward(np.array([[1.0, 0.0], [0.0, 2.0]]))
    np.testing.assert_allclose(x.grad, [[3.0, 0.0], [0.0, 6.0]])


def test_grad_of_the_wrong_shape_raises():
    y = leaf([1.0, 2.0]) * 2.0
    with pytest.raises(ShapeError, match=r"grad has shape \(3,\), expected \(2,\)"):
        y.backward(np.ones(3))


def test_backward_on_a_leaf_seeds_its_gradient():
    x = leaf([5.0])
    x.backward()
    np.testing.assert_allclose(x.grad, [1.0])


def test_leaf_gradients_never_alias_other_arrays():
    x, z = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    seed = np.array([1.0, 1.0])
    (x + z).backward(seed)  # Add hands the same dout to both parents
    assert x.grad is not z.grad and not np.shares_memory(x.grad, seed)
    x.grad += 100.0
    np.testing.assert_allclose(z.grad, [1.0, 1.0])
    np.testing.assert_allclose(seed, [1.0, 1.0])


def test_requires_grad_on_an_integer_tensor_raises():
    with pytest.raises(TypeError, match="float dtype.*int64"):
        Tensor([1, 2, 3], requires_grad=True)
    with pytest.raises(TypeError, match="int64"):
        Tensor([1, 2, 3]).requires_grad_()


def test_mixed_float_dtypes_raise_naming_both():
    a = Tensor([1.0, 2.0], requires_grad=True)  # float32
    b = Tensor([1.0, 2.0], dtype=np.float64)
    with pytest.raises(TypeError, match=r"Mul.*float32.*float64"):
        a * b


def test_numbers_and_arrays_take_the_dtype_of_a_float64_tensor():
    # regression: float64 tensor + Python float used to raise a float32/float64 mix
    x = leaf([1.0, 2.0])
    for y in (x + 2.0, 2.0 - x, x * np.ones(2), np.ones((3, 2)) @ x, 2.0**x, 1.0 / x):
        assert y.dtype == np.float64


def test_astype_is_differentiable_between_float_dtypes():
    # regression: astype(np.float64) gave float32 and cut the graph
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x.astype(np.float64)
    assert y.dtype == np.float64 and y._fn is not None
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [2.0, 4.0])


def test_cat_and_stack_accept_arrays_among_tensors():
    # regression: the array got a gradient slot of its own and backward raised
    x = leaf([1.0, 2.0])
    const = np.array([5.0, 6.0])
    y = tg.cat([x, const]) * np.arange(4.0)
    z = tg.stack([const, x]).sum(axis=0)
    assert y.dtype == z.dtype == np.float64
    (y.sum() + z.sum()).backward()
    np.testing.assert_allclose(x.grad, [0.0 + 1.0, 1.0 + 1.0])


def test_shape_errors_name_both_shapes():
    a, b = tg.zeros(2, 3), tg.zeros(4, 5)
    with pytest.raises(ShapeError, match=r"\(2, 3\).*\(4, 5\).*b\.T"):
        a @ b
    with pytest.raises(ShapeError, match=r"\(2, 2, 3\).*\(3, 3, 5\)"):
        tg.zeros(2, 2, 3) @ tg.zeros(3, 3, 5)
    with pytest.raises(ShapeError, match=r"add: shapes \(2, 3\) and \(4, 5\)"):
        a + b
    with pytest.raises(ShapeError, match=r"mul: shapes \(3,\) and \(2,\)"):
        tg.zeros(3) * tg.zeros(2)


# ---------------------------------------------------------------------------------------
# Anomaly detection


def test_detect_anomaly_names_the_forward_op():
    x = leaf([1.0, -2.0])
    with tg.detect_anomaly():
        with np.errstate(invalid="ignore"):
            with pytest.raises(AnomalyError, match=r"Log\.forward produced NaN or Inf"):
                x.log()
    with np.errstate(invalid="ignore"):
        assert np.isnan(x.log().data[1])  # outside the block: no check


def test_detect_anomaly_names_the_backward_op():
    x = leaf([0.0, 4.0])
    y = x.sqrt().sum()  # finite forward, but d sqrt/dx is infinite at 0
    with tg.detect_anomaly():
        with np.errstate(divide="ignore"):
            with pytest.raises(AnomalyError, match=r"Sqrt\.backward.*shape \(2,\)"):
                y.backward()
    with np.errstate(divide="ignore"):
        (x.sqrt().sum()).backward()  # outside the block: no check, the Inf goes through
    assert np.isinf(x.grad[0])


# ---------------------------------------------------------------------------------------
# dtype control and detach


def test_default_dtype_context():
    assert tg.get_default_dtype() == np.float32
    with tg.default_dtype(np.float64):
        assert Tensor(1.0).dtype == np.float64
        assert tg.zeros(2).dtype == np.float64
        assert (Tensor([1.0]) * 2.5).dtype == np.float64
        with tg.default_dtype(np.float32):
            assert Tensor(1.0).dtype == np.float32
        assert Tensor(1.0).dtype == np.float64
    assert Tensor(1.0).dtype == np.float32
    with pytest.raises(KeyError):
        with tg.default_dtype(np.float64):
            raise KeyError("boom")
    assert tg.get_default_dtype() == np.float32
    with pytest.raises(TypeError, match="float32 or float64"):
        with tg.default_dtype(np.int32):
            pass


def test_detach_shares_data_and_stops_the_gradient():
    x = leaf([2.0, 3.0])
    d = x.detach()
    assert np.shares_memory(d.data, x.data)
    assert not d.requires_grad and d.is_leaf
    (x * x.detach()).sum().backward()  # d/dx (x * const) = const, not 2x
    np.testing.assert_allclose(x.grad, x.data)


# ---------------------------------------------------------------------------------------
# Memory over many steps


def test_memory_does_not_grow_over_1000_training_steps():
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((16, 3)).astype(np.float32)
    ys = np.sin(xs.sum(axis=1, keepdims=True)).astype(np.float32)
    params = [Tensor(rng.standard_normal((3, 8)) * 0.5, requires_grad=True),
              Tensor(np.zeros(8), requires_grad=True),
              Tensor(rng.standard_normal((8, 1)) * 0.5, requires_grad=True),
              Tensor(np.zeros(1), requires_grad=True)]
    w1, b1, w2, b2 = params

    def step() -> float:
        h = (Tensor(xs) @ w1 + b1).tanh()
        loss = ((h @ w2 + b2 - Tensor(ys)) ** 2).mean()
        loss.backward()
        for p in params:  # hand-written SGD
            p.data -= 0.1 * p.grad
            p.zero_grad()
        return loss.item()

    first = step()
    # Untraced warm-up: CPython's free lists and NumPy's caches fill over the first ~1000
    # steps (~200 kB, then flat); counted, they would look like a leak.
    for _ in range(1000):
        step()
    tracemalloc.start()
    try:
        for i in range(1000):
            last = step()
            if i == 99:
                at_100 = tracemalloc.get_traced_memory()[0]
        at_1000 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert last < 0.5 * first  # it really trained
    # one graph kept alive per step would add ~6 kB a step, ~5 MB over these 900 steps
    assert at_1000 - at_100 < 32 * 1024, f"grew by {at_1000 - at_100} bytes"


# ---------------------------------------------------------------------------------------
# Looking at a backward pass


def _small_net():
    x = Tensor(np.array([[1.0, -2.0], [0.5, 0.0]]), name="x", dtype=np.float64)
    w = leaf([[0.1, 0.2, -0.3], [0.4, -0.5, 0.6]], name="w")
    loss = (x @ w).tanh().sum()
    loss.name = "loss"
    return x, w, loss


def test_backward_steps_come_in_order_with_ops_and_shapes():
    _, w, loss = _small_net()
    steps = loss.backward_steps()
    s0 = next(steps)
    assert (s0.index, s0.op, s0.out.name) == (0, "Sum", "loss")
    assert s0.dout.shape == () and s0.grads[0].shape == (2, 3)
    assert w.grad is None  # nothing reached the leaf yet
    s1 = next(steps)
    assert (s1.index, s1.op) == (1, "Tanh")
    assert "1 - out^2" in s1.explain()  # the op's formula
    s2 = next(steps)
    assert (s2.op, s2.input_names()) == ("MatMul", ["x", "w"])
    assert s2.grads[0] is None and s2.grads[1].shape == (2, 3)
    assert "MatMul" in repr(s2) and "'w': (2, 3)" in repr(s2)
    with pytest.raises(StopIteration):
        next(steps)
    assert w.grad is not None


def test_exhausting_backward_steps_equals_backward():
    _, w1, loss1 = _small_net()
    _, w2, loss2 = _small_net()
    loss1.backward()
    for _ in loss2.backward_steps():
        pass
    np.testing.assert_array_equal(w1.grad, w2.grad)


def test_explain_shows_values_of_small_arrays():
    _, _, loss = _small_net()
    text = next(loss.backward_steps()).explain()
    assert text.startswith("step 0: Sum")
    assert "dout =\n1." in text
    assert "dinput0 =\n[[1. 1. 1.]\n [1. 1. 1.]]" in text


def test_print_backward_prints_one_line_per_op(capsys):
    _, w, loss = _small_net()
    lines = print_backward(loss)
    printed = capsys.readouterr().out.splitlines()
    assert printed == lines and len(lines) == 3
    for line, op in zip(lines, ["Sum", "Tanh", "MatMul"]):
        assert op in line
    assert re.match(r"\[\s*2\] MatMul .* x: -, w: \(2, 3\) max\|g\|=", lines[2])
    assert w.grad is not None


def test_to_dot_is_valid_looking_and_names_every_op():
    x, w, loss = _small_net()
    text = to_dot(loss, values=True)
    assert text.startswith("digraph autograd {") and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    nodes = set(re.findall(r"^\s+([tf]\d+) \[", text, flags=re.M))
    edges = re.findall(r"^\s+([tf]\d+) -> ([tf]\d+);", text, flags=re.M)
    assert len([n for n in nodes if n.startswith("f")]) == 3  # Sum, Tanh, MatMul
    assert len([n for n in nodes if n.startswith("t")]) == 5  # x, w, two outputs, loss
    assert len(edges) == 3 + 4  # op -> output, and input -> op (MatMul has two)
    assert all(a in nodes and b in nodes for a, b in edges)
    for label in ("Sum", "Tanh", "MatMul", "w (2, 3)", "x (2, 2)", "loss ()"):
        assert f'label="{label}' in text
    loss.backward()
    with pytest.raises(RuntimeError, match="freed"):
        to_dot(loss)


_TRACE_SCRIPT = textwrap.dedent("""
    import numpy as np
    from tinygrad_llm import Tensor
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    (x.exp() * 2.0).sum().backward()
    print("done")
""")


@pytest.mark.parametrize("flag", ["1", "0"])
def test_trace_env_var_prints_every_step(flag):
    env = dict(os.environ, TINYGRAD_LLM_TRACE=flag, TINYGRAD_LLM_BACKEND="numpy")
    run = subprocess.run([sys.executable, "-c", _TRACE_SCRIPT], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[-1] == "done"
    if flag == "1":
        assert [line.split()[2] for line in lines[:-1]] == ["Sum", "Mul", "Exp"]
        assert lines[0].startswith("[  0] Sum")
    else:
        assert lines == ["done"]
