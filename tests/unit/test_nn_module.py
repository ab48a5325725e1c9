"""Module machinery: parameter discovery and names, modes, freezing, state dicts, tying."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm import Tensor, default_dtype, nn
from tinygrad_llm.random import manual_seed


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.act = nn.GELU()
        self.blocks = [nn.Linear(4, 4, bias=False), nn.LayerNorm(4)]
        self.fc2 = nn.Linear(4, 2)
        self.note = "not a parameter"
        self.constant = np.ones(3)  # plain arrays are not parameters

    def forward(self, x):
        x = self.act(self.fc1(x))
        for b in self.blocks:
            x = b(x)
        return self.fc2(x)


def test_named_parameters_walk_attributes_in_order():
    manual_seed(0)
    m = TwoLayer()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "blocks.0.weight", "blocks.1.scale",
                     "blocks.1.shift", "fc2.weight", "fc2.bias"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in m.parameters())
    assert m.num_parameters() == 3 * 4 + 4 + 16 + 4 + 4 + 8 + 2


def test_sequential_and_modulelist_name_by_index():
    seq = nn.Sequential(nn.Linear(2, 3), nn.GELU(), nn.Linear(3, 1))
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    ml = nn.ModuleList([nn.LayerNorm(2)]).append(nn.LayerNorm(2))
    assert [n for n, _ in ml.named_parameters()] == ["0.scale", "0.shift", "1.scale", "1.shift"]
    assert len(ml) == 2 and isinstance(ml[1], nn.LayerNorm)
    y = seq(Tensor(np.ones((5, 2))))
    assert y.shape == (5, 1)
    with pytest.raises(TypeError, match="expected a Module"):
        ml.append("no")
    ml[0] = nn.Linear(2, 2, bias=False)  # replacing a child renames nothing else
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "1.scale", "1.shift"]
    with pytest.raises(TypeError, match="expected a Module"):
        ml[0] = 3


def test_modules_and_train_eval_flags():
    m = TwoLayer()
    mods = list(m.modules())
    assert mods[0] is m and len(mods) == 6  # self, fc1, act, blocks.0, blocks.1, fc2
    assert m.eval() is m and not any(x.training for x in m.modules())
    m.train()
    assert all(x.training for x in m.modules())
    m.train(False)
    assert not m.blocks[1].training
    assert [n for n, _ in m.named_modules()][:3] == ["", "fc1", "act"]


def test_zero_grad_and_freezing_stops_gradients():
    m = TwoLayer()
    x = Tensor(np.random.default_rng(0).standard_normal((5, 3)))
    m(x).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())

    m.requires_grad_(False)
    m.fc2.requires_grad_(True)  # fine-tune only the last layer
    assert m.num_parameters(trainable_only=True) == 10
    m(x).sum().backward()
    assert m.fc2.weight.grad is not None and m.fc2.bias.grad is not None
    assert m.fc1.weight.grad is None and m.blocks[0].weight.grad is None

    m.requires_grad_(False)
    with pytest.raises(RuntimeError, match="does not require grad"):
        m(x).sum().backward()


def test_parameter_dtype_follows_default():
    assert nn.Parameter(np.ones(3, dtype=np.float64)).dtype == np.float32
    assert nn.Parameter(np.arange(3)).dtype == np.float32  # ints become float
    with default_dtype(np.float64):
        assert nn.Linear(2, 2).weight.dtype == np.float64
        assert nn.Parameter([1, 2]).dtype == np.float64


def test_state_dict_round_trip_and_copies():
    manual_seed(1)
    a = TwoLayer()
    manual_seed(2)
    b = TwoLayer()
    x = Tensor(np.random.default_rng(0).standard_normal((4, 3)))
    sd = a.state_dict()
    assert list(sd) == [n for n, _ in a.named_parameters()]
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    saved = a.fc1.weight.data.copy()
    a.fc1.weight.data += 1.0  # training later must not change a saved dict
    assert np.array_equal(sd["fc1.weight"], saved)
    a.fc1.weight.data[...] = saved

    w_obj, w_arr = b.fc1.weight, b.fc1.weight.data
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert b.fc1.weight is w_obj and b.fc1.weight.data is w_arr  # loaded in place
    np.testing.assert_array_equal(a(x).data, b(x).data)
    sd["fc1.weight"][...] = 0  # the model does not alias the dict either
    assert np.any(b.fc1.weight.data != 0)


def test_load_state_dict_casts_and_accepts_tensors():
    m = nn.Linear(2, 2)
    m.load_state_dict({"weight": Tensor(np.eye(2)), "bias": np.zeros(2, dtype=np.float64)})
    assert m.weight.dtype == np.float32
    np.testing.assert_array_equal(m.weight.data, np.eye(2))


def test_load_state_dict_reports_every_problem_at_once():
    m = TwoLayer()
    sd = m.state_dict()
    del sd["fc1.bias"], sd["blocks.1.shift"]
    sd["fc2.weight"] = np.zeros((3, 3))
    sd["blocks.0.weight"] = np.zeros((4,))
    sd["extra.weight"] = np.zeros(1)
    sd["fc3.bias"] = np.zeros(1)
    before = m.fc1.weight.data.copy()
    with pytest.raises(nn.StateDictError) as info:
        m.load_state_dict(sd)
    msg = str(info.value)
    for key in ("fc1.bias", "blocks.1.shift", "extra.weight", "fc3.bias"):
        assert key in msg
    assert "fc2.weight: got (3, 3), model has (2, 4)" in msg
    assert "blocks.0.weight: got (4,), model has (4, 4)" in msg
    assert "missing keys (2)" in msg and "unexpected keys (2)" in msg
    assert "shape mismatches (2)" in msg
    np.testing.assert_array_equal(m.fc1.weight.data, before)  # nothing was changed
    assert isinstance(info.value, ValueError)


def test_load_state_dict_non_strict_returns_what_it_skipped():
    m = TwoLayer()
    sd = {"fc1.weight": np.zeros((4, 3)), "bogus": np.zeros(2)}
    result = m.load_state_dict(sd, strict=False)
    assert result.unexpected_keys == ["bogus"]
    assert "fc1.bias" in result.missing_keys and "fc1.weight" not in result.missing_keys
    assert np.all(m.fc1.weight.data == 0)
    with pytest.raises(nn.StateDictError, match="shape mismatches"):
        m.load_state_dict({"fc1.weight": np.zeros((1, 1))}, strict=False)


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(5, 3)
        self.head = nn.Linear(3, 5, bias=False)
        self.head.weight = self.emb.weight


def test_tied_parameters_counted_once_and_alias_loads():
    m = Tied()
    assert [n for n, _ in m.named_parameters()] == ["emb.weight"]
    assert [n for n, _ in m.named_parameters(remove_duplicate=False)] == ["emb.weight",
                                                                          "head.weight"]
    assert m.num_parameters() == 15 and list(m.state_dict()) == ["emb.weight"]
    m.load_state_dict({"head.weight": np.ones((5, 3))})  # the alias is accepted
    assert m.emb.weight.data.sum() == 15
    # a gradient from both uses accumulates into the one parameter
    x = m.head(m.emb(np.array([0, 1])))
    x.sum().backward()
    assert m.emb.weight.grad.shape == (5, 3)


def test_repr_lists_children():
    text = repr(TwoLayer())
    assert "(fc1): Linear(in_features=3, out_features=4, bias=True)" in text
    assert "(blocks.1): LayerNorm(4, eps=1e-05)" in text


def test_forward_must_be_defined():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)
