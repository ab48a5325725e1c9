"""Optimizers against their published update rules, schedules and clipping."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_llm import Tensor
from tinygrad_llm.optim import (SGD, AdamW, WarmupCosineSchedule, clip_grad_norm,
                                warmup_cosine_lr)


def _param(rng, shape, dtype=np.float64):
    return Tensor(rng.standard_normal(shape), requires_grad=True, dtype=dtype)


def _adamw_by_hand(p, grads, lr, b1, b2, eps, wd):
    """Algorithm 2 of Loshchilov & Hutter as PyTorch implements it, written out in float64."""
    p = p.astype(np.float64).copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        p = p - lr * wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        mhat, vhat = m / (1 - b1**t), v / (1 - b2**t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adamw_matches_published_rule_step_by_step(backend, rng, dtype):
    p = _param(rng, (5, 3), dtype)
    start = p.data.astype(np.float64).copy()
    grads = [rng.standard_normal((5, 3)) for _ in range(6)]
    opt = AdamW([p], lr=0.01, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    for k, g in enumerate(grads, start=1):
        p.grad = g.astype(dtype)
        opt.step()
        want = _adamw_by_hand(start, [x.astype(dtype).astype(np.float64) for x in grads[:k]],
                              0.01, 0.9, 0.95, 1e-8, 0.1)
        tol = 1e-12 if dtype == np.float64 else 2e-6
        np.testing.assert_allclose(p.data, want, rtol=tol, atol=tol)


def test_adamw_param_groups_exempt_from_decay(rng):
    w, b = _param(rng, (3, 3)), _param(rng, (3,))
    b_start = b.data.copy()
    opt = AdamW([{"params": [w]}, {"params": [b], "weight_decay": 0.0}], lr=0.1,
                weight_decay=0.5)
    w.grad, b.grad = np.zeros((3, 3)), np.zeros(3)
    w_start = w.data.copy()
    opt.step()  # zero gradients: only the decay moves anything
    np.testing.assert_allclose(w.data, w_start * (1 - 0.1 * 0.5))
    np.testing.assert_array_equal(b.data, b_start)


def test_adamw_skips_params_without_grad(rng):
    p, q = _param(rng, (2,)), _param(rng, (2,))
    q0 = q.data.copy()
    opt = AdamW([p, q], lr=0.1)
    p.grad = np.ones(2)
    opt.step()
    np.testing.assert_array_equal(q.data, q0)
    assert 1 not in opt.state


def test_optimizer_state_dict_round_trip_continues_identically(rng):
    grads = [rng.standard_normal((4,)) for _ in range(6)]
    a = _param(rng, (4,))
    b = Tensor(a.data.copy(), requires_grad=True, dtype=np.float64)
    opt_a = AdamW([a], lr=0.05, weight_decay=0.1)
    for g in grads[:3]:
        a.grad = g
        opt_a.step()
    sd = opt_a.state_dict()
    b.data[:] = a.data
    opt_b = AdamW([b], lr=0.05, weight_decay=0.1)
    opt_b.load_state_dict(sd)
    for g in grads[3:]:
        a.grad, b.grad = g, g.copy()
        opt_a.step()
        opt_b.step()
    np.testing.assert_array_equal(a.data, b.data)


def test_optimizer_state_dict_mismatch_errors(rng):
    opt = AdamW([_param(rng, (4,))], lr=0.1)
    other = AdamW([_param(rng, (4,)), _param(rng, (2,))], lr=0.1)
    with pytest.raises(ValueError, match="group 0 saved 1 parameters"):
        other.load_state_dict(opt.state_dict())


def test_sgd_momentum_matches_rule(rng):
    p = _param(rng, (3,))
    x = p.data.copy()
    buf = None
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    for _ in range(4):
        g = rng.standard_normal(3)
        p.grad = g
        opt.step()
        g = g + 0.01 * x
        buf = g if buf is None else 0.9 * buf + g
        x = x - 0.1 * buf
    np.testing.assert_allclose(p.data, x, rtol=1e-12)


def test_zero_grad_and_bad_arguments(rng):
    p = _param(rng, (2,))
    p.grad = np.ones(2)
    opt = AdamW([p])
    opt.zero_grad()
    assert p.grad is None
    with pytest.raises(ValueError, match="empty parameter list"):
        AdamW([])
    with pytest.raises(ValueError, match="betas"):
        AdamW([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="unknown keys"):
        AdamW([{"params": [p], "momentum": 0.9}])


def test_warmup_cosine_schedule_shape():
    lrs = [warmup_cosine_lr(s, 100, peak_lr=1e-3, warmup_steps=10, min_lr=1e-5,
                            initial_lr=1e-6) for s in range(101)]
    assert lrs[0] == pytest.approx(1e-6)
    assert lrs[10] == pytest.approx(1e-3)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))  # rising during warmup
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # falling afterwards
    assert lrs[100] == pytest.approx(1e-5)
    assert lrs[55] == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))  # halfway: cosine at pi/2


def test_schedule_sets_optimizer_lr(rng):
    opt = AdamW([_param(rng, (2,))], lr=123.0)
    sched = WarmupCosineSchedule(opt, total_steps=10, peak_lr=0.1, warmup_steps=2)
    assert opt.param_groups[0]["lr"] == 0.0
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup_cosine_lr(0, 10, 0.1, warmup_steps=11)


@given(st.floats(0.01, 10.0), st.integers(0, 2**31 - 1))
def test_clip_grad_norm(max_norm, seed):
    rng = np.random.default_rng(seed)
    ps = [_param(rng, (3, 2)), _param(rng, (4,))]
    for p in ps:
        p.grad = rng.standard_normal(p.shape) * 3
    before = [p.grad.copy() for p in ps]
    norm = clip_grad_norm(ps, max_norm)
    assert norm == pytest.approx(math.sqrt(sum((g**2).sum() for g in before)))
    after = math.sqrt(sum((p.grad**2).sum() for p in ps))
    assert after <= max_norm * (1 + 1e-6)
    if norm <= max_norm:
        for p, g in zip(ps, before):
            np.testing.assert_array_equal(p.grad, g)
    else:  # one common scale keeps the direction
        ratio = ps[0].grad / before[0]
        np.testing.assert_allclose(ratio, ratio.flat[0])
