"""The gradient checker itself: it must fail loudly, and precisely, on wrong gradients.

Each test builds a deliberately broken Function and checks that gradcheck raises a
GradcheckError that names the input, the element and both values.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from tinygrad_llm import Function, GradcheckError, ShapeError, Tensor, gradcheck


class Square(Function):
    """out = x^2, correct: dx = 2 x dout."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, dout):
        return (2.0 * self.saved[0] * dout,)


class SquareForgetsTwo(Function):
    """out = x^2 with the classic slip dx = x dout (the factor 2 forgotten)."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, dout):
        return (self.saved[0] * dout,)


class MulWrongSecond(Function):
    """out = a * b with db wrong (uses b instead of a); da is right."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, dout):
        a, b = self.saved
        return dout * b, dout * b


class SquareOneWrongElement(Function):
    """out = x^2, right everywhere except at element (1, 2) of the input."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, dout):
        dx = 2.0 * self.saved[0] * dout
        dx[1, 2] += 0.5
        return (dx,)


class SumSquaresLeaky(Function):
    """out = sum(x^2) (a scalar); its backward is right unless dout == 0, where it leaks 1s."""

    def forward(self, x):
        self.save_for_backward(x)
        return np.asarray((x * x).sum())

    def backward(self, dout):
        x = self.saved[0]
        return (2.0 * x * dout if np.any(dout != 0) else np.ones_like(x),)


class SumSquaresDrifting(Function):
    """out = sum(x^2); every backward after the second returns twice the gradient."""

    calls = 0

    def forward(self, x):
        self.save_for_backward(x)
        return np.asarray((x * x).sum())

    def backward(self, dout):
        SumSquaresDrifting.calls += 1
        scale = 1.0 if SumSquaresDrifting.calls <= 2 else 2.0
        return (scale * 2.0 * self.saved[0] * dout,)


class WrongShape(Function):
    """Returns a gradient of the wrong shape."""

    def forward(self, x):
        return x * 1.0

    def backward(self, dout):
        return (dout.sum(axis=0),)


@pytest.fixture
def x34():
    return np.random.default_rng(0).standard_normal((3, 4))


def test_correct_function_passes(x34):
    assert gradcheck(Square.apply, [x34]) is True
    assert gradcheck(lambda t: Square.apply(t).sum(), [x34]) is True


def test_wrong_gradient_names_input_element_and_values(x34):
    with pytest.raises(GradcheckError) as info:
        gradcheck(SquareForgetsTwo.apply, [x34])
    msg = str(info.value)
    assert "input 0" in msg and "shape (3, 4)" in msg
    # numeric is 2x, analytic x: both are printed, with their errors
    m = re.search(r"element \((\d+), (\d+)\).*numeric (\S+), analytic (\S+),", msg)
    assert m, msg
    i, j = int(m.group(1)), int(m.group(2))
    numeric, analytic = float(m.group(3)), float(m.group(4))
    assert numeric == pytest.approx(2 * x34[i, j], rel=1e-5)
    assert analytic == pytest.approx(x34[i, j], rel=1e-5)
    assert "abs error" in msg and "rel error" in msg


def test_wrong_gradient_of_second_input_is_attributed_to_it(x34):
    b = np.random.default_rng(1).standard_normal((3, 4))
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(3, 4\)\)"):
        gradcheck(MulWrongSecond.apply, [x34, b])


def test_worst_element_is_reported(x34):
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda t: SquareOneWrongElement.apply(t).sum(), [x34])
    msg = str(info.value)
    assert "element (1, 2)" in msg
    assert "1 of 12 values" in msg


def test_float32_inputs_warn_and_are_checked_in_float64(x34):
    with pytest.warns(UserWarning, match="float32"):
        assert gradcheck(Square.apply, [x34.astype(np.float32)])
    with pytest.warns(UserWarning, match="float32"):
        with pytest.raises(GradcheckError):
            gradcheck(SquareForgetsTwo.apply, [Tensor(x34, requires_grad=True)])


def test_float64_inputs_do_not_warn(x34):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gradcheck(Square.apply, [x34])


def test_nonzero_gradient_for_zero_dout_is_detected(x34):
    # the full Jacobian check passes (dout is never 0 for a scalar output) ...
    with pytest.raises(GradcheckError, match="zero upstream gradient gave a non-zero"):
        gradcheck(SumSquaresLeaky.apply, [x34])


def test_backward_runs_that_disagree_are_detected(x34):
    SumSquaresDrifting.calls = 0
    with pytest.raises(GradcheckError, match="two backward passes .* disagree"):
        gradcheck(SumSquaresDrifting.apply, [x34])


def test_random_direction_mode_passes_a_correct_op_and_catches_a_bug():
    big = np.random.default_rng(2).standard_normal((30, 30))  # 900 > max_elements=512
    assert gradcheck(lambda t: Square.apply(t).sum(), [big])
    with pytest.raises(GradcheckError, match="random direction"):
        gradcheck(lambda t: SquareForgetsTwo.apply(t).sum(), [big])
    # the mode can be forced on small inputs too
    small = np.random.default_rng(3).standard_normal((4, 4))
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(4, 4\)\), random direction"):
        gradcheck(SquareForgetsTwo.apply, [small], max_elements=8)


def test_gradient_of_wrong_shape_is_an_error(x34):
    with pytest.raises(ShapeError, match=r"WrongShape.backward .* shape \(4,\), expected \(3, 4\)"):
        gradcheck(WrongShape.apply, [x34])


def test_constant_inputs_are_not_differentiated(x34):
    # b as a Tensor without requires_grad: MulWrongSecond's bad db is never looked at
    b = Tensor(np.random.default_rng(1).standard_normal((3, 4)), dtype=np.float64)
    assert gradcheck(MulWrongSecond.apply, [x34, b])
    # integer arrays and Python values pass through unchanged
    ids = np.array([0, 2, 2])
    assert gradcheck(lambda t, i, s: t[i] * s, [x34, ids, 3.0])


def test_non_contiguous_input_is_perturbed_correctly(x34):
    # regression: an F-ordered input used to be perturbed through a copy (numeric == 0)
    assert gradcheck(lambda t: (t * t).sum(), [x34.T])
    assert gradcheck(lambda t: t @ t.T, [np.asfortranarray(x34)])


def test_large_constant_outputs_do_not_break_the_difference_quotient(x34):
    # regression: v . f(x) with -1e9 entries cancelled catastrophically (20 > 16 outputs)
    mask = np.random.default_rng(4).random((5, 4)) < 0.5
    x54 = np.random.default_rng(5).standard_normal((5, 4))
    assert gradcheck(lambda t, m: t.masked_fill(m, -1e9), [x54, mask])


def test_empty_output_checks_trivially(x34):
    assert gradcheck(lambda t: t[0:0] * 2.0, [x34])


def test_fn_must_return_a_tensor(x34):
    with pytest.raises(TypeError, match="must return a Tensor"):
        gradcheck(lambda t: t.data, [x34])


def test_inputs_are_left_unchanged(x34):
    before = x34.copy()
    gradcheck(Square.apply, [x34])
    np.testing.assert_array_equal(x34, before)
