"""Every differentiable op against central finite differences, on both kernel backends
(and the fused attention also with its plain-Numba block products).

One table, ``OPS``: each OpSpec says how to call the op, how many float inputs it takes,
where their values come from (``domain``: an interval, or a strategy factory such as
``distinct`` for max or ``nonzero`` for 1/x), how their shapes are drawn, and which
constant inputs (axes, masks, ids, targets) go with them. The test draws inputs with
hypothesis and asks ``gradcheck`` (float64, full Jacobian for small outputs) to agree.

``test_table_covers_every_op`` walks the graphs the table builds and fails if some
Function class in tinygrad_llm/ops/ is never exercised, so a new op needs a row here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import arrays as float_arrays
from strategies import (
    axes,
    axis,
    broadcastable_shapes,
    distinct,
    nonzero,
    shapes,
    shapes_broadcasting_to,
    token_ids,
)

import tinygrad_llm as tg
from tinygrad_llm import Function, Tensor, gradcheck
from tinygrad_llm import functional as F
from tinygrad_llm.ops import elementwise, matmul, movement, nn_ops, reduce

Domain = tuple[float, float] | Callable[[tuple[int, ...]], st.SearchStrategy]


@dataclass(frozen=True)
class OpSpec:
    """One row of the table.

    Attributes:
        name: test id.
        fn: called as fn(*float_inputs, *extra) with float64 Tensors; returns a Tensor.
        n_inputs: how many differentiable (float) inputs fn takes first.
        domain: where every float input's values come from; ``domains`` overrides it per
            input. An interval (lo, hi), or a function shape -> strategy of arrays.
        shapes: strategy of a tuple whose first n_inputs items are the inputs' shapes; any
            further items are geometry (an axis, a size) for ``extra``. Default: one shape
            shared by all inputs, or broadcastable shapes if ``broadcast``.
        extra: geometry tuple -> strategy of a tuple of constant inputs (axes, masks, ids).
        examples: fraction of the hypothesis profile's max_examples (costly ops < 1).
    """

    name: str
    fn: Callable[..., Tensor]
    n_inputs: int = 1
    domain: Domain = (-3.0, 3.0)
    domains: tuple[Domain, ...] | None = None
    shapes: st.SearchStrategy | None = None
    broadcast: bool = False
    extra: Callable[[tuple], st.SearchStrategy] | None = None
    examples: float = 1.0

    def shape_strategy(self) -> st.SearchStrategy:
        if self.shapes is not None:
            return self.shapes
        if self.broadcast:
            return broadcastable_shapes(self.n_inputs)
        return shapes(max_side=4).map(lambda s: (s,) * self.n_inputs)

    def inputs(self) -> st.SearchStrategy[list]:
        @st.composite
        def draw_inputs(draw) -> list:
            geometry = draw(self.shape_strategy())
            domains = self.domains or (self.domain,) * self.n_inputs
            floats = [draw(d(s) if callable(d) else float_arrays(s, d))
                      for d, s in zip(domains, geometry[: self.n_inputs])]
            consts = list(draw(self.extra(geometry))) if self.extra is not None else []
            return floats + consts

        return draw_inputs()

    def max_examples(self) -> int:
        return max(3, round(settings.default.max_examples * self.examples))


def extra(*strategies: Callable[[tuple], st.SearchStrategy]):
    """Build ``OpSpec.extra`` from one strategy factory per constant input."""
    return lambda geometry: st.tuples(*(f(geometry) for f in strategies))


def fixed(*values):
    """Constant inputs that do not depend on the drawn shapes."""
    return lambda geometry: st.just(values)


def along(shape_strategy: st.SearchStrategy) -> st.SearchStrategy:
    """(shape,) plus a drawn axis of it, as geometry: (shape, axis)."""
    return shape_strategy.flatmap(lambda s: st.tuples(st.just(s), axis(len(s))))


# ---------------------------------------------------------------------------------------
# Shape strategies for the ops with structure


@st.composite
def matmul_shapes(draw, kind: str):
    """(a.shape, b.shape) for a @ b, by kind of product."""
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    if kind == "2d":
        return (m, k), (k, n)
    if kind == "batched":
        b = draw(st.integers(1, 3))
        return (b, m, k), (b, k, n)
    if kind == "broadcast":  # batch dims that broadcast, e.g. (2, 1, m, k) @ (3, k, n)
        ba, bb = draw(broadcastable_shapes(2, min_dims=0, max_dims=2, max_side=3))
        return (*ba, m, k), (*bb, k, n)
    if kind == "nd_2d":  # a batch of rows times one matrix: the single-GEMM path
        batch = draw(shapes(min_dims=1, max_dims=2, max_side=3))
        return (*batch, m, k), (k, n)
    if kind == "vector":  # NumPy's 1-D rules on either side
        b = draw(st.integers(1, 3))
        return draw(st.sampled_from([
            ((k,), (k, n)), ((m, k), (k,)), ((k,), (k,)),
            ((b, m, k), (k,)), ((k,), (b, k, n)),
        ]))
    raise ValueError(kind)


@st.composite
def concat_geometry(draw, n: int):
    """n shapes equal except along a drawn axis, plus that axis (maybe negative)."""
    base = list(draw(shapes(max_side=3)))
    ax = draw(axis(len(base)))
    out = []
    for _ in range(n):
        base[ax] = draw(st.integers(1, 3))
        out.append(tuple(base))
    return (*out, ax)


@st.composite
def layer_norm_shapes(draw):
    x = draw(shapes(min_dims=1, max_dims=3, max_side=4).filter(lambda s: s[-1] >= 2))
    return x, (x[-1],), (x[-1],)


@st.composite
def linear_shapes(draw, bias: bool):
    batch = draw(shapes(min_dims=0, max_dims=2, max_side=3))
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    out = ((*batch, n_in), (n_out, n_in))
    return out + ((n_out,),) if bias else out


@st.composite
def embedding_geometry(draw):
    v, c = draw(st.integers(2, 6)), draw(st.integers(1, 3))
    ids_shape = draw(shapes(min_dims=1, max_dims=2, min_side=2, max_side=4))
    return (v, c), ids_shape


@st.composite
def cross_entropy_geometry(draw):
    rows = draw(shapes(min_dims=1, max_dims=2, max_side=4))
    return ((*rows, draw(st.integers(2, 5))),)


@st.composite
def linear_cross_entropy_geometry(draw, bias: bool):
    """x (..., C), w (V, C), [b (V,)], then the logits' shape (..., V) for the targets."""
    rows = draw(shapes(min_dims=1, max_dims=2, max_side=4))
    c, v = draw(st.integers(1, 3)), draw(st.integers(2, 5))
    out = ((*rows, c), (v, c)) + (((v,),) if bias else ())
    return out + ((*rows, v),)


def _linear_ce_chunked(x, w, b, t):
    """linear_cross_entropy with chunks of at most 2 rows, so the kernel's chunk walk (and
    its additions into dw) runs even at these sizes."""
    from tinygrad_llm.kernels import linear_cross_entropy as k_lce

    saved, k_lce.CHUNK_ELEMENTS = k_lce.CHUNK_ELEMENTS, 2 * w.shape[0]
    try:
        return F.linear_cross_entropy(x, w, t, bias=b)
    finally:
        k_lce.CHUNK_ELEMENTS = saved


@st.composite
def ce_targets(draw, geometry):
    """Targets for logits of geometry[0], with some rows set to ignore_index=-100
    (never all of them: the mean would be over nothing)."""
    logits = geometry[0]
    t = draw(token_ids(logits[-1], logits[:-1]))
    ignore = draw(float_arrays(logits[:-1], (0.0, 1.0))) < 0.3
    ignore.reshape(-1)[0] = False
    return (np.where(ignore, -100, t),)


@st.composite
def attention_shapes(draw, causal_prefix: bool):
    b, h, d = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    if causal_prefix:  # Tq < Tk: the queries are the last positions (KV-cache decoding)
        tk = draw(st.integers(2, 4))
        tq = draw(st.integers(1, tk - 1))
    else:
        tk = tq = draw(st.integers(1, 4))
    return (b, h, tq, d), (b, h, tk, d), (b, h, tk, d)


@st.composite
def basic_index(draw, geometry):
    """Ints, slices (any step), None and Ellipsis; the result is never empty."""
    shape = geometry[0]
    index = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True)
                 .filter(lambda i: np.empty(shape)[i].size > 0))
    return (index,)


@st.composite
def int_array_index(draw, geometry):
    """An integer array (negative ids too, with a repeat) on one axis, slices elsewhere."""
    shape = geometry[0]
    ax = draw(st.integers(0, len(shape) - 1))
    n = shape[ax]
    ids = draw(st.lists(st.integers(-n, n - 1), min_size=2, max_size=5))
    ids.append(ids[0])  # repeated element: dx needs a scatter-add
    return ((slice(None),) * ax + (np.array(ids),),)


@st.composite
def mixed_advanced_index(draw, geometry):
    """Integer arrays mixed with an int, None or Ellipsis, on a 2-D or 3-D input."""
    shape = geometry[0]
    ids0 = np.array(draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=4)))
    ids_last = np.array(draw(st.lists(st.integers(0, shape[-1] - 1), min_size=1, max_size=3)))
    pair = np.resize(ids_last, ids0.shape)  # broadcasts with ids0
    choices = [
        (ids0, None),
        (Ellipsis, ids_last),
        (ids0, Ellipsis, pair),
        (shape[0] - 1, ids_last) if len(shape) == 2 else (0, slice(None), ids_last),
    ]
    return (draw(st.sampled_from(choices)),)


@st.composite
def bool_index(draw, geometry):
    """A boolean mask over the whole array or over its leading axes (at least one True)."""
    shape = geometry[0]
    lead = draw(st.integers(1, len(shape)))
    mask = draw(float_arrays(shape[:lead], (0.0, 1.0))) < 0.5
    mask.reshape(-1)[draw(st.integers(0, mask.size - 1))] = True
    return (mask,)


def reshape_target(geometry):
    shape = geometry[0]
    same_dims = st.permutations(shape).map(tuple)
    with_one = st.permutations((*shape, 1)).map(tuple)
    inferred = same_dims.map(lambda s: (-1,) + s[1:])
    return st.tuples(st.one_of(st.just((-1,)), same_dims, with_one, inferred))


def split_args(geometry):
    shape, ax = geometry[0], geometry[1]
    return st.tuples(st.integers(1, max(shape[ax], 1)), st.just(ax))


def _split_cat(x, size, ax):
    # scale each chunk differently so that a mixed-up chunk gradient would show
    parts = x.split(size, ax)
    return tg.cat([p * float(i + 1) for i, p in enumerate(parts)], axis=ax)


def _dropout(x, p):
    # a fresh generator with a fixed seed per call: every evaluation drops the same elements
    return F.dropout(x, p, training=True, rng=np.random.default_rng(7))


def _causal_softmax(x):
    # the attention idiom: hide the future with -1e9, then softmax over the keys
    return x.masked_fill(tg.triu_mask(x.shape[-1]), -1e9).softmax(axis=-1)


def _rmatmul_ndarray(b):
    a = np.linspace(-1.0, 1.0, 2 * b.shape[0]).reshape(2, b.shape[0])  # a constant ndarray
    return a @ b


def _radd_ndarray(x):
    return np.linspace(-1.0, 1.0, x.shape[-1]) + x


def _ids_shape(geometry):
    return geometry[1]


# ---------------------------------------------------------------------------------------
# The table

POSITIVE = (0.2, 4.0)
ANY = (-3.0, 3.0)

OPS: list[OpSpec] = [
    # -- elementwise, binary with broadcasting (0-d operands included) ------------------
    OpSpec("add", lambda a, b: a + b, n_inputs=2, broadcast=True),
    OpSpec("sub", lambda a, b: a - b, n_inputs=2, broadcast=True),
    OpSpec("mul", lambda a, b: a * b, n_inputs=2, broadcast=True),
    OpSpec("div", lambda a, b: a / b, n_inputs=2, broadcast=True,
           domains=(ANY, nonzero(0.5, 3.0))),
    OpSpec("pow_tensor", lambda a, b: a**b, n_inputs=2, broadcast=True,
           domains=((0.5, 3.0), (-2.0, 2.0))),
    # -- with a Python number or a NumPy array on either side ---------------------------
    OpSpec("add_scalar", lambda x: x + 2.5),
    OpSpec("radd_scalar", lambda x: 2.5 + x),
    OpSpec("radd_ndarray", _radd_ndarray),
    OpSpec("sub_scalar", lambda x: x - 1.5),
    OpSpec("rsub_scalar", lambda x: 2.0 - x),
    OpSpec("mul_scalar", lambda x: x * -1.5),
    OpSpec("rmul_scalar", lambda x: 3.0 * x),
    OpSpec("div_scalar", lambda x: x / 4.0),
    OpSpec("rdiv_scalar", lambda x: 1.0 / x, domain=nonzero(0.5, 3.0)),
    OpSpec("rpow_scalar", lambda x: 2.0**x),
    # -- elementwise, unary -------------------------------------------------------------
    OpSpec("neg", lambda x: -x),
    OpSpec("pow_int", lambda x, c: x**c, extra=extra(lambda g: st.sampled_from([2, 3]))),
    OpSpec("pow_real", lambda x, c: x.pow(c), domain=POSITIVE,
           extra=extra(lambda g: st.sampled_from([0.5, -1.0, -1.5, 2.5]))),
    OpSpec("exp", lambda x: x.exp()),
    OpSpec("log", lambda x: x.log(), domain=(0.1, 5.0)),
    OpSpec("sqrt", lambda x: x.sqrt(), domain=(0.1, 5.0)),
    OpSpec("tanh", lambda x: x.tanh(), domain=(-4.0, 4.0)),
    OpSpec("relu", lambda x: x.relu(), domain=nonzero(0.1, 3.0)),
    OpSpec("relu_functional", F.relu, domain=nonzero(0.1, 3.0)),
    OpSpec("sigmoid", lambda x: x.sigmoid(), domain=(-8.0, 8.0)),
    OpSpec("gelu", lambda x: x.gelu(), domain=(-4.0, 4.0)),
    OpSpec("gelu_functional", F.gelu, domain=(-4.0, 4.0)),
    OpSpec("astype_float64", lambda x: x.astype(np.float64) * 2.0),
    # -- matmul -------------------------------------------------------------------------
    OpSpec("matmul_2d", lambda a, b: a @ b, n_inputs=2, shapes=matmul_shapes("2d")),
    OpSpec("matmul_batched", lambda a, b: a @ b, n_inputs=2, shapes=matmul_shapes("batched")),
    OpSpec("matmul_broadcast_batch", lambda a, b: a.matmul(b), n_inputs=2,
           shapes=matmul_shapes("broadcast")),
    OpSpec("matmul_nd_by_2d", lambda a, b: a @ b, n_inputs=2, shapes=matmul_shapes("nd_2d")),
    OpSpec("matmul_1d_operands", lambda a, b: a @ b, n_inputs=2,
           shapes=matmul_shapes("vector")),
    OpSpec("rmatmul_ndarray", _rmatmul_ndarray, shapes=matmul_shapes("2d").map(lambda s: s[1:])),
    # -- reductions (axis: None, int, tuple; keepdims both ways) ------------------------
    OpSpec("sum", lambda x, ax, kd: x.sum(axis=ax, keepdims=kd),
           shapes=shapes(min_dims=0, max_side=4).map(lambda s: (s,)),
           extra=extra(lambda g: axes(len(g[0]), allow_empty=True), lambda g: st.booleans())),
    OpSpec("mean", lambda x, ax, kd: x.mean(axis=ax, keepdims=kd),
           extra=extra(lambda g: axes(len(g[0])), lambda g: st.booleans())),
    OpSpec("max", lambda x, ax, kd: x.max(axis=ax, keepdims=kd), domain=distinct(),
           extra=extra(lambda g: axes(len(g[0])), lambda g: st.booleans())),
    OpSpec("var", lambda x, ax, kd, c: x.var(axis=ax, keepdims=kd, correction=c),
           shapes=shapes(min_side=2, max_side=4).map(lambda s: (s,)),
           extra=extra(lambda g: axes(len(g[0])), lambda g: st.booleans(),
                       lambda g: st.sampled_from([0, 1]))),
    # -- movement -----------------------------------------------------------------------
    OpSpec("reshape", lambda x, s: x.reshape(s), extra=reshape_target),
    OpSpec("flatten", lambda x: x.flatten(1) * 1.0, shapes=shapes(min_dims=2).map(lambda s: (s,))),
    OpSpec("transpose", lambda x, d0, d1: x.transpose(d0, d1),
           shapes=shapes(min_dims=2, max_side=4).map(lambda s: (s,)),
           extra=extra(lambda g: axis(len(g[0])), lambda g: axis(len(g[0])))),
    OpSpec("permute", lambda x, p: x.permute(p),
           extra=extra(lambda g: st.permutations(range(len(g[0]))).map(tuple))),
    OpSpec("T", lambda x: x.T),
    OpSpec("getitem_basic", lambda x, i: x[i], extra=basic_index),
    OpSpec("getitem_int_array_repeats", lambda x, i: x[i], extra=int_array_index),
    OpSpec("getitem_mixed_advanced", lambda x, i: x[i],
           shapes=shapes(min_dims=2, max_dims=3, max_side=4).map(lambda s: (s,)),
           extra=mixed_advanced_index),
    OpSpec("getitem_bool_mask", lambda x, m: x[m], extra=bool_index),
    OpSpec("getitem_tensor_index", lambda x, i: x[Tensor(i)], extra=int_array_index,
           shapes=shapes(min_dims=1, max_dims=1, max_side=5).map(lambda s: (s,))),
    OpSpec("concatenate", lambda a, b, c, ax: tg.cat([a, b, c], axis=ax), n_inputs=3,
           shapes=concat_geometry(3), extra=lambda g: st.just((g[3],))),
    OpSpec("stack", lambda a, b, ax: tg.stack([a, b], axis=ax), n_inputs=2,
           shapes=shapes(min_dims=0, max_dims=2, max_side=3).map(lambda s: (s, s)),
           extra=extra(lambda g: st.integers(-len(g[0]) - 1, len(g[0])))),
    OpSpec("split", _split_cat, shapes=along(shapes(max_side=5)), extra=split_args),
    OpSpec("masked_fill", lambda x, m, v: x.masked_fill(m, v),
           extra=extra(lambda g: shapes_broadcasting_to(g[0]).flatmap(
               lambda s: float_arrays(s, (0.0, 1.0)).map(lambda a: a < 0.5)),
               lambda g: st.sampled_from([0.0, -1e9, 2.5]))),
    OpSpec("masked_fill_causal_softmax", _causal_softmax,
           shapes=shapes(min_dims=1, max_dims=2, max_side=3).flatmap(
               lambda lead: st.integers(1, 4).map(lambda t: ((*lead, t, t),)))),
    OpSpec("where", lambda a, b, cond: tg.where(cond, a, b), n_inputs=2,
           shapes=broadcastable_shapes(3),
           extra=lambda g: float_arrays(g[2], (0.0, 1.0)).map(lambda a: (a < 0.5,))),
    OpSpec("where_scalar_branch", lambda a, cond: tg.where(cond, 0.5, a),
           extra=lambda g: float_arrays(g[0], (0.0, 1.0)).map(lambda a: (a < 0.5,))),
    # -- nn ops -------------------------------------------------------------------------
    OpSpec("softmax", lambda x, ax: x.softmax(axis=ax), domain=(-4.0, 4.0),
           extra=extra(lambda g: axis(len(g[0])))),
    OpSpec("softmax_functional", lambda x, ax: F.softmax(x, axis=ax), domain=(-4.0, 4.0),
           extra=extra(lambda g: axis(len(g[0])))),
    OpSpec("log_softmax", lambda x, ax: F.log_softmax(x, axis=ax), domain=(-4.0, 4.0),
           extra=extra(lambda g: axis(len(g[0])))),
    OpSpec("embedding", lambda w, ids: F.embedding(ids, w), shapes=embedding_geometry(),
           extra=lambda g: token_ids(g[0][0], g[1], with_repeat=True).map(lambda i: (i,))),
    OpSpec("dropout", _dropout, extra=extra(lambda g: st.sampled_from([0.1, 0.5]))),
    OpSpec("layer_norm", lambda x, w, b: F.layer_norm(x, w, b), n_inputs=3,
           shapes=layer_norm_shapes()),
    OpSpec("linear_bias", F.linear, n_inputs=3, shapes=linear_shapes(bias=True)),
    OpSpec("linear_no_bias", F.linear, n_inputs=2, shapes=linear_shapes(bias=False)),
    OpSpec("gelu_linear_bias", F.gelu_linear, n_inputs=3, shapes=linear_shapes(bias=True)),
    OpSpec("gelu_linear_no_bias", F.gelu_linear, n_inputs=2, shapes=linear_shapes(bias=False)),
    OpSpec("cross_entropy", lambda logits, t: F.cross_entropy(logits, t), domain=(-4.0, 4.0),
           shapes=cross_entropy_geometry(), extra=lambda g: ce_targets(g)),
    OpSpec("linear_cross_entropy", lambda x, w, t: F.linear_cross_entropy(x, w, t), n_inputs=2,
           shapes=linear_cross_entropy_geometry(bias=False), extra=lambda g: ce_targets(g[2:])),
    OpSpec("linear_cross_entropy_bias_chunked", _linear_ce_chunked, n_inputs=3,
           shapes=linear_cross_entropy_geometry(bias=True), extra=lambda g: ce_targets(g[3:])),
    OpSpec("sdpa_causal", lambda q, k, v, s: F.scaled_dot_product_attention(q, k, v, scale=s),
           n_inputs=3, shapes=attention_shapes(causal_prefix=False),
           extra=extra(lambda g: st.sampled_from([None, 0.7])), examples=0.5),
    OpSpec("sdpa_fewer_queries", lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
           n_inputs=3, shapes=attention_shapes(causal_prefix=True), examples=0.5),
]


# ---------------------------------------------------------------------------------------
# The tests


@pytest.mark.parametrize("spec", OPS, ids=lambda s: s.name)
def test_grad_matches_finite_differences(spec: OpSpec, backend: str) -> None:
    # @given inside: per-op example counts, and the backend fixture stays outside hypothesis
    @settings(max_examples=spec.max_examples(), suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        inputs = data.draw(spec.inputs(), label=f"{spec.name} inputs")
        assert gradcheck(spec.fn, inputs)

    check()



ATTENTION_OPS = [s for s in OPS if s.name.startswith("sdpa")]


@pytest.mark.parametrize("spec", ATTENTION_OPS, ids=lambda s: s.name)
def test_attention_grad_with_plain_numba_products(spec: OpSpec, monkeypatch) -> None:
    """The numba backend's fused attention with its block products in plain Numba (the path of
    NumPy builds without OpenBLAS; the test above runs the OpenBLAS products where found)."""
    from tinygrad_llm.kernels import attention, use_backend

    monkeypatch.setattr(attention, "USE_BLAS", False)
    with use_backend("numba"):
        test_grad_matches_finite_differences(spec, "numba")


def _ops_in_graph(out: Tensor) -> set[str]:
    seen, names, stack = set(), set(), [out]
    while stack:
        t = stack.pop()
        if id(t) in seen or t._fn is None:
            continue
        seen.add(id(t))
        names.add(type(t._fn).__name__)
        stack.extend(t._fn.parents)
    return names


def _all_op_classes() -> set[str]:
    classes = set()
    for module in (elementwise, reduce, movement, matmul, nn_ops):
        for name, obj in inspect.getmembers(module, inspect.isclass):
            defined_here = obj.__module__ == module.__name__
            if defined_here and issubclass(obj, Function) and obj is not Function:
                classes.add(name)
    return classes


def _record_ops(spec: OpSpec, covered: set[str]) -> None:
    """Build one graph with spec's fn (one drawn example) and add its op names to covered."""

    @settings(max_examples=1, database=None)
    @given(data=st.data())
    def record(data: st.DataObject) -> None:
        inputs = data.draw(spec.inputs())
        args = [Tensor(x, requires_grad=True, dtype=np.float64)
                if isinstance(x, np.ndarray) and x.dtype.kind == "f" else x for x in inputs]
        with tg.default_dtype(np.float64):
            covered.update(_ops_in_graph(spec.fn(*args)))

    record()


def test_table_covers_every_op() -> None:
    covered: set[str] = set()
    for spec in OPS:
        _record_ops(spec, covered)
    assert "MatMul" in covered  # the walk itself works
    missing = _all_op_classes() - covered
    assert not missing, f"ops with no row in OPS: {sorted(missing)}"
