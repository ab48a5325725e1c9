"""Tensor basics: dtype rules of the constructor, properties, comparisons, creation helpers,
causal masks, and the kernel backend switch."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm import Tensor
from tinygrad_llm import kernels

# ---------------------------------------------------------------------------------------
# dtype rules


@pytest.mark.parametrize("value", [1.5, [1.0, 2.0], [[0.5]], np.float64(2.0)])
def test_python_and_float64_values_become_float32_by_default(value):
    assert Tensor(value).dtype == np.float32


def test_float64_array_becomes_float32_unless_asked():
    a = np.linspace(0.0, 1.0, 5)  # float64
    assert Tensor(a).dtype == np.float32
    assert Tensor(a, dtype=np.float64).dtype == np.float64
    with tg.default_dtype(np.float64):
        assert Tensor(a).dtype == np.float64
        assert Tensor(1.5).dtype == np.float64
    np.testing.assert_allclose(Tensor(a).numpy(), a.astype(np.float32))


def test_other_float_widths_follow_the_default():
    assert Tensor(np.ones(2, np.float16)).dtype == np.float32


@pytest.mark.parametrize("value", [3, [1, 2], np.ones(2, np.int32), np.ones(2, np.uint8)])
def test_integers_become_int64(value):
    assert Tensor(value).dtype == np.int64


def test_booleans_stay_boolean():
    assert Tensor([True, False]).dtype == np.bool_


def test_set_default_dtype_and_its_errors():
    try:
        tg.set_default_dtype(np.float64)
        assert tg.get_default_dtype() == np.float64 and Tensor(1.0).dtype == np.float64
    finally:
        tg.set_default_dtype(np.float32)
    assert Tensor(1.0).dtype == np.float32
    with pytest.raises(TypeError, match="got int32; expected float32 or float64"):
        tg.set_default_dtype(np.int32)


def test_astype():
    x = Tensor([1.7, -2.2])
    assert x.astype(np.float64).dtype == np.float64
    i = x.astype(np.int64)
    assert i.dtype == np.int64 and not i.requires_grad
    np.testing.assert_array_equal(i.numpy(), [1, -2])


# ---------------------------------------------------------------------------------------
# Properties


def test_properties():
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = Tensor(data, requires_grad=True, name="x")
    assert x.shape == (2, 3, 4) and x.ndim == 3 and x.size == 24 and len(x) == 2
    assert x.dtype == np.float32
    assert x.numpy() is x.data  # no copy
    assert x.is_leaf and x.grad is None and x.name == "x"
    assert x.tolist() == data.tolist()
    y = x * 2.0
    assert not y.is_leaf and y.requires_grad


def test_item():
    v = Tensor([[2.5]]).item()
    assert v == 2.5 and isinstance(v, float)
    assert isinstance(Tensor(7).item(), int)
    with pytest.raises(ValueError):
        Tensor([1.0, 2.0]).item()


def test_T_reverses_all_axes():
    data = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(Tensor(data).T.numpy(), data.T)
    data3 = np.arange(24.0).reshape(2, 3, 4)
    assert Tensor(data3).T.shape == (4, 3, 2)
    np.testing.assert_array_equal(Tensor(data3).T.numpy(), data3.transpose(2, 1, 0))


def test_repr_shows_grad_op_and_name():
    x = Tensor([1.0], requires_grad=True, name="w")
    assert "requires_grad=True" in repr(x) and "name='w'" in repr(x)
    assert "fn=Mul" in repr(x * 2.0)
    assert "requires_grad" not in repr(Tensor([1.0]))


def test_truth_value():
    assert bool(Tensor([3.0])) and not bool(Tensor(0.0))
    with pytest.raises(ValueError, match=r"ambiguous"):
        bool(Tensor([1.0, 2.0]))


def test_argmax():
    x = Tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 1.0]])
    np.testing.assert_array_equal(x.argmax(axis=-1).numpy(), [1, 0])
    assert x.argmax().item() == 3


# ---------------------------------------------------------------------------------------
# Comparisons


def test_comparisons_give_boolean_tensors_without_grad():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    other = Tensor([2.0, 2.0, 2.0])
    cases = {
        "<": (x < 2.0, [True, False, False]),
        "<=": (x <= other, [True, True, False]),
        ">": (x > 2.0, [False, False, True]),
        ">=": (x >= other, [False, True, True]),
        "eq": (x.eq(2.0), [False, True, False]),
        "eq tensor": (x.eq(other), [False, True, False]),
    }
    for name, (got, want) in cases.items():
        assert got.dtype == np.bool_, name
        assert not got.requires_grad and got.is_leaf, name
        np.testing.assert_array_equal(got.numpy(), want, err_msg=name)


def test_comparison_result_works_as_a_mask():
    x = Tensor([1.0, -2.0, 3.0], requires_grad=True, dtype=np.float64)
    y = x.masked_fill(x < 0, 0.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 1.0])


# ---------------------------------------------------------------------------------------
# Creation helpers


def test_zeros_ones():
    z = tg.zeros(2, 3)
    assert z.shape == (2, 3) and z.dtype == np.float32 and not z.requires_grad
    assert np.all(z.numpy() == 0)
    o = tg.ones(4, requires_grad=True)
    assert o.requires_grad and np.all(o.numpy() == 1)
    assert tg.zeros((2, 3)).shape == (2, 3) and tg.ones([3, 1]).shape == (3, 1)
    assert tg.zeros(2, dtype=np.float64).dtype == np.float64  # regression
    assert tg.ones(2, dtype=np.float64).dtype == np.float64
    assert tg.zeros(3, dtype=np.int64).dtype == np.int64


def test_randn_is_reproducible_with_a_generator():
    a = tg.randn(3, 4, rng=np.random.default_rng(5))
    b = tg.randn(3, 4, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.shape == (3, 4) and a.dtype == np.float32
    assert tg.randn(2, dtype=np.float64, rng=np.random.default_rng(0)).dtype == np.float64


def test_tensor_function():
    t = tg.tensor([1.0, 2.0], requires_grad=True)
    assert isinstance(t, Tensor) and t.requires_grad and t.dtype == np.float32
    assert tg.tensor([1, 2]).dtype == np.int64


def test_cat_stack_split_shapes():
    a, b = tg.zeros(2, 3), tg.ones(4, 3)
    assert tg.cat([a, b]).shape == (6, 3) and tg.concatenate([a, a], axis=1).shape == (2, 6)
    assert tg.stack([a, a, a]).shape == (3, 2, 3)
    assert tg.stack([a, a], axis=-1).shape == (2, 3, 2)
    parts = tg.split(tg.zeros(2, 7), 3)
    assert [p.shape for p in parts] == [(2, 3), (2, 3), (2, 1)]
    with pytest.raises(ValueError, match="split_size must be positive"):
        tg.split(a, 0)
    with pytest.raises(tg.ShapeError, match=r"stack: .*\(2, 3\), \(4, 3\)"):
        tg.stack([a, b])
    with pytest.raises(tg.ShapeError, match=r"cat: shapes \(2, 3\), \(4, 3\)"):
        tg.cat([a, b], axis=1)


# ---------------------------------------------------------------------------------------
# Causal masks


@pytest.mark.parametrize("n, m, k", [(4, None, 1), (3, 5, 1), (5, 3, 0), (4, 4, -1)])
def test_triu_and_tril_masks(n, m, k):
    cols = n if m is None else m
    ones = np.ones((n, cols), dtype=bool)
    up, low = tg.triu_mask(n, m, k=k), tg.tril_mask(n, m, k=k)
    assert up.dtype == np.bool_ and up.shape == (n, cols)
    np.testing.assert_array_equal(up, np.triu(ones, k))
    np.testing.assert_array_equal(low, np.tril(ones, k))
    # the default k's split the matrix: "future" and "past or present"
    np.testing.assert_array_equal(tg.triu_mask(n, m), ~tg.tril_mask(n, m))


def test_causal_mask_hides_the_future_in_softmax():
    scores = Tensor(np.random.default_rng(0).standard_normal((4, 4)))
    p = scores.masked_fill(tg.triu_mask(4), -np.inf).softmax(axis=-1).numpy()
    assert np.all(p[np.triu_indices(4, 1)] == 0)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-6)
    assert p[0, 0] == 1.0


# ---------------------------------------------------------------------------------------
# Backend switch


def test_set_and_use_backend():
    start = tg.get_backend()
    try:
        tg.set_backend("numpy")
        assert tg.get_backend() == "numpy"
        with tg.use_backend("numba"):
            assert tg.get_backend() == "numba"
        assert tg.get_backend() == "numpy"
        with pytest.raises(RuntimeError):
            with tg.use_backend("numba"):
                raise RuntimeError("inside")
        assert tg.get_backend() == "numpy"  # restored after an exception
    finally:
        tg.set_backend(start)


def test_bad_backend_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"got 'cuda'; expected one of \('numpy', 'numba'\)"):
        tg.set_backend("cuda")
    with pytest.raises(ValueError, match="cuda"):
        with tg.use_backend("cuda"):
            pass


def test_dispatch_calls_the_backend_in_use():
    def twice_ref(x):
        """Reference doc."""
        return ("ref", x)

    run = kernels.dispatch(twice_ref, lambda x: ("nb", x))
    assert run.__name__ == "twice" and run.__doc__ == "Reference doc."
    with tg.use_backend("numpy"):
        assert run(1) == ("ref", 1)
    with tg.use_backend("numba"):
        assert run(2) == ("nb", 2)
    fallback = kernels.dispatch(twice_ref, None)  # no Numba version (yet): the reference
    with tg.use_backend("numba"):
        assert fallback(3) == ("ref", 3)


def test_backend_fixture_sets_the_backend(backend):
    assert tg.get_backend() == backend


def _import_with_backend(value: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TINYGRAD_LLM_BACKEND=value)
    code = "import tinygrad_llm as tg; print(tg.get_backend())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("value", ["numpy", "numba"])
def test_backend_env_var(value):
    run = _import_with_backend(value)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == value


def test_bad_backend_env_var_fails_at_import():
    run = _import_with_backend("bogus")
    assert run.returncode != 0
    assert "TINYGRAD_LLM_BACKEND" in run.stderr and "'bogus'" in run.stderr


def test_leaf_grad_accumulates_in_place_and_never_aliases():
    """A second backward adds into the same .grad array; an op that hands one fresh array to
    two inputs does not make their .grad share memory (adding into one would change both)."""
    from tinygrad_llm import Function

    class Twice(Function):  # out = a + b, backward gives the *same* new array to both
        def forward(self, a, b):
            return a + b

        def backward(self, dout):
            g = dout * 1.0
            return g, g

    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    Twice.apply(a, b).sum().backward()
    assert not np.shares_memory(a.grad, b.grad)
    first = a.grad
    (a * 2.0).sum().backward()
    assert a.grad is first  # added in place
    np.testing.assert_array_equal(a.grad, [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(b.grad, [1.0, 1.0, 1.0])


def test_backward_frees_each_activation_once_its_op_is_done():
    """An intermediate result is released as soon as backward has passed the op that made
    it, not at the end (activations leave memory while the gradients arrive)."""
    import weakref

    x = Tensor(np.ones(4), requires_grad=True)
    h2 = (x * 2.0) * 3.0  # order: sum, then the op making h2, then the op making x * 2
    h2_ref = weakref.ref(h2)
    loss = h2.sum()
    del h2
    alive = [h2_ref() is not None for _ in loss.backward_steps()]
    assert alive == [True, True, False]
    np.testing.assert_array_equal(x.grad, np.full(4, 6.0))


def test_fused_loss_backward_twice_with_retain_graph():
    """linear_cross_entropy computes its gradients in forward; with retain_graph every
    further backward must give them again, unchanged by what earlier ones added into .grad."""
    from tinygrad_llm import functional as F

    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((7, 3)), requires_grad=True, dtype=np.float64)
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True, dtype=np.float64)
    targets = np.array([1, 6, 0, 2])
    loss = F.linear_cross_entropy(x, w, targets)
    loss.backward(retain_graph=True)
    once = w.grad.copy()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(w.grad, 3 * once, rtol=1e-12)
