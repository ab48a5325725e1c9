"""Neural-network ops: softmax, log-softmax, GELU, layer norm, linear, embedding, dropout,
cross-entropy and fused causal attention.

The hot ones call a kernel (tinygrad_llm/kernels/), which runs the Numba version or the
NumPy reference depending on the backend; the formulas live in the kernels' docstrings
and are summed up again here.
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_llm.function import Function
from tinygrad_llm.kernels import attention as k_att
from tinygrad_llm.kernels import cross_entropy as k_ce
from tinygrad_llm.kernels import embedding as k_emb
from tinygrad_llm.kernels import gelu as k_gelu
from tinygrad_llm.kernels import layernorm as k_ln
from tinygrad_llm.kernels import linear_cross_entropy as k_lce
from tinygrad_llm.kernels import matmul as k_mm
from tinygrad_llm.kernels import softmax as k_sm
from tinygrad_llm.tensor import ShapeError


class Softmax(Function):
    """y = exp(x) / sum(exp(x)) along ``axis``.   dx = y * (dout - sum(dout * y))."""

    def forward(self, x, axis=-1):
        self.axis = axis
        y = k_sm.softmax_forward(np.moveaxis(x, axis, -1))  # (..., N)
        self.save_for_backward(y)
        return np.moveaxis(y, -1, axis)

    def backward(self, dout):
        (y,) = self.saved
        dx = k_sm.softmax_backward(np.moveaxis(dout, self.axis, -1), y)
        return (np.moveaxis(dx, -1, self.axis),)


class LogSoftmax(Function):
    """y = x - logsumexp(x) along ``axis``.   dx = dout - softmax(x) * sum(dout)."""

    def forward(self, x, axis=-1):
        self.axis = axis
        m = x.max(axis=axis, keepdims=True)
        y = x - (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True)))
        self.save_for_backward(y)
        return y

    def backward(self, dout):
        (y,) = self.saved
        return (dout - np.exp(y) * dout.sum(axis=self.axis, keepdims=True),)


class GELU(Function):
    """y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (GPT-2's tanh approximation).

    dx = dout * [0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)].
    """

    def forward(self, x):
        self.save_for_backward(x)
        return k_gelu.gelu_forward(x)

    def backward(self, dout):
        return (k_gelu.gelu_backward(dout, self.saved[0]),)


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * w + b over the last axis (biased variance).

    With xhat the normalised x and g = dout * w, per row of n elements:
        dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
        dw = sum over rows of dout * xhat,  db = sum over rows of dout
    """

    def forward(self, x, w, b, eps=1e-5):
        c = x.shape[-1]
        if w.shape != (c,) or b.shape != (c,):
            raise ShapeError(
                f"layer_norm: x has {c} features (shape {x.shape}) but weight is {w.shape} "
                f"and bias {b.shape}; both must be ({c},)"
            )
        x2 = x.reshape(-1, c)  # (N, C)
        out, mean, rstd = k_ln.layernorm_forward(x2, w, b, eps)
        self.save_for_backward(x2, w, mean, rstd)
        return out.reshape(x.shape)

    def backward(self, dout):
        x2, w, mean, rstd = self.saved
        dx, dw, db = k_ln.layernorm_backward(dout.reshape(x2.shape), x2, w, mean, rstd)
        return dx.reshape(dout.shape), dw, db


class Linear(Function):
    """y = x @ w^T + b with w of shape (out, in) (PyTorch's layout).

    Flattened to rows: dx = dout @ w,  dw = dout^T @ x,  db = sum over rows of dout.
    """

    name = "linear"

    def _act(self, x2):
        """What multiplies w: the input itself here (GeluLinear applies GELU first)."""
        return x2

    def _act_backward(self, da, x2):
        """The input's gradient from that of _act(x2)."""
        return da

    def forward(self, x, w, b=None):
        if x.shape[-1] != w.shape[1]:
            raise ShapeError(
                f"{self.name}: input has {x.shape[-1]} features (shape {x.shape}) but the "
                f"weight {w.shape} expects {w.shape[1]}; weight is (out_features, in_features)"
            )
        if b is not None and b.shape != (w.shape[0],):
            raise ShapeError(f"{self.name}: bias is {b.shape}, expected ({w.shape[0]},)")
        x2 = x.reshape(-1, x.shape[-1])  # (N, in)
        out = k_mm.matmul_forward(self._act(x2), w.T)  # (N, out)
        if b is not None:
            out += b
        self.save_for_backward(x2, w)
        self.has_bias = b is not None
        return out.reshape(x.shape[:-1] + (w.shape[0],))

    def backward(self, dout):
        x2, w = self.saved
        d2 = dout.reshape(-1, dout.shape[-1])  # (N, out)
        need = self.needs_input_grad
        dx = dw = None
        if need[0]:
            dx = self._act_backward(k_mm.matmul_forward(d2, w), x2)
            dx = dx.reshape(dout.shape[:-1] + (w.shape[1],))
        if need[1]:
            dw = k_mm.matmul_forward(d2.T, self._act(x2))
        grads = (dx, dw)
        if self.has_bias:
            grads += (d2.sum(axis=0) if need[2] else None,)
        return grads


class GeluLinear(Linear):
    """y = gelu(h) @ w^T + b: a feed-forward's activation and second Linear in one op.

    The same numbers as ``linear(gelu(h), w, b)``, but only h is kept for backward; gelu(h),
    which the separate Linear would keep (as big as h: (N, 4C)), is recomputed there.
    Flattened to rows, with g = gelu(h):
        dw = dout^T @ g,  db = sum over rows of dout,  dh = gelu'(h) * (dout @ w)
    """

    name = "gelu_linear"

    def _act(self, x2):
        return k_gelu.gelu_forward(x2)

    def _act_backward(self, da, x2):
        return k_gelu.gelu_backward(da, x2)


class Embedding(Function):
    """y = weight[ids] (a row per id).   dweight = rows of dout scatter-added at ids."""

    def forward(self, weight, ids):
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"embedding: ids must be integers, got {ids.dtype}")
        v = weight.shape[0]
        if ids.size and (ids.min() < 0 or ids.max() >= v):
            bad = ids.max() if ids.max() >= v else ids.min()
            raise IndexError(
                f"embedding: id {bad} is outside the table of {v} rows (valid ids 0..{v - 1}); "
                f"check the tokenizer's vocabulary size against vocab_size"
            )
        self.ids, self.v = ids, v
        return weight[ids]

    def backward(self, dout):
        c = dout.shape[-1]
        return (k_emb.embedding_backward(dout.reshape(-1, c), self.ids.reshape(-1), self.v),)


class Dropout(Function):
    """y = x * mask / (1 - p), mask ~ Bernoulli(1 - p).   dx = dout * mask / (1 - p)."""

    def forward(self, x, p: float, rng: np.random.Generator):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout: p must be in [0, 1), got {p}")
        self.mask = (rng.random(x.shape, dtype=np.float32) >= p) * np.asarray(
            1.0 / (1.0 - p), dtype=x.dtype
        )
        return x * self.mask

    def backward(self, dout):
        return (dout * self.mask,)


class CrossEntropy(Function):
    """loss = mean over kept rows of -log softmax(logits)[target].

    logits (..., V), targets (...) int; rows whose target is ``ignore_index`` are left
    out of the mean.  dlogits = (softmax(logits) - onehot(target)) * dout / n_kept.
    """

    def forward(self, logits, targets, ignore_index=-100):
        v = logits.shape[-1]
        t = _check_targets("cross_entropy", logits.shape, targets, ignore_index)
        l2 = logits.reshape(-1, v)  # (N, V)
        loss, lse = k_ce.cross_entropy_forward(l2, t, ignore_index)
        self.save_for_backward(l2, t, lse)
        self.ignore_index, self.shape = ignore_index, logits.shape
        return loss

    def backward(self, dout):
        l2, t, lse = self.saved
        dl = k_ce.cross_entropy_backward(dout, l2, t, lse, self.ignore_index)
        return (dl.reshape(self.shape),)


class LinearCrossEntropy(Function):
    """loss = cross_entropy(x @ w^T + b, targets): an output head and its loss fused.

    x (..., C), w (V, C), b (V,) or None, targets (...) int. The same numbers as
    ``cross_entropy(linear(x, w, b), targets)`` without keeping the (..., V) logits: the
    kernel (kernels/linear_cross_entropy.py) takes the rows a chunk at a time and, while a
    chunk's logits are at hand, also computes its share of the gradients for dout = 1:
        dlogits = (softmax(logits) - onehot(target)) / n_kept
        dx = dlogits @ w,  dw = dlogits^T @ x,  db = sum over rows of dlogits
    Backward multiplies them by dout (the loss is a scalar).
    """

    def forward(self, x, w, b=None, targets=None, ignore_index=-100):
        if w.ndim != 2 or x.shape[-1] != w.shape[1]:
            raise ShapeError(
                f"linear_cross_entropy: x has {x.shape[-1]} features (shape {x.shape}) but the "
                f"weight {w.shape} expects {w.shape[-1]}; weight is (vocab_size, features)")
        if b is not None and b.shape != (w.shape[0],):
            raise ShapeError(f"linear_cross_entropy: bias is {b.shape}, expected ({w.shape[0]},)")
        t = _check_targets("linear_cross_entropy", x.shape[:-1] + (w.shape[0],), targets,
                           ignore_index)
        need = self.needs_input_grad + (False,) * (3 - len(self.needs_input_grad))
        loss, dx, dw, db = k_lce.linear_cross_entropy(x.reshape(-1, x.shape[-1]), w, b, t,
                                                      ignore_index, need=need)
        self.grads = (None if dx is None else dx.reshape(x.shape), dw, db)
        self.has_bias = b is not None
        return loss

    def backward(self, dout):
        scale = float(dout)
        # hand the arrays over when this is the only backward (the engine may then keep one as
        # a .grad and add into it); copy them when the graph is retained for another one
        keep = self.retain_graph or scale != 1.0
        grads = tuple(None if g is None else g * g.dtype.type(scale) if keep else g
                      for g in self.grads)
        return grads if self.has_bias else grads[:2]


def _check_targets(op: str, logits_shape, targets, ignore_index) -> np.ndarray:
    """targets as a flat int64 array, after checking them against logits of logits_shape."""
    targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"{op}: targets must be integers, got {targets.dtype}")
    if tuple(logits_shape[:-1]) != targets.shape:
        raise ShapeError(
            f"{op}: logits {tuple(logits_shape)} and targets {targets.shape} disagree; "
            f"expected targets of shape {tuple(logits_shape[:-1])} (one class id per row)"
        )
    v = logits_shape[-1]
    t = targets.reshape(-1).astype(np.int64, copy=False)
    kept = t != ignore_index
    if not kept.any():
        raise ValueError(
            f"{op}: every target equals ignore_index={ignore_index}; "
            f"there is nothing to average (check the batch's masking)"
        )
    if t[kept].min() < 0 or t[kept].max() >= v:
        raise IndexError(
            f"{op}: target ids must be in 0..{v - 1} (or ignore_index="
            f"{ignore_index}), got {t[kept].min()}..{t[kept].max()}"
        )
    return t


class CausalAttention(Function):
    """out = softmax(q k^T * scale, masked so query i sees keys <= i) v, in one fused op.

    q (B, H, Tq, D), k and v (B, H, Tk, D), Tq <= Tk (the queries are the last Tq
    positions, as when decoding with a KV cache). Only the row log-sum-exp is saved;
    backward recomputes the attention weights (no (T, T) matrix per head is kept):
        dv = p^T dout,  ds = p * (dout v^T - rowsum(dout * out)),
        dq = ds k * scale,  dk = ds^T q * scale
    """

    def forward(self, q, k, v, scale=None):
        same_bhd = q.shape[:2] + q.shape[3:] == k.shape[:2] + k.shape[3:]
        if q.ndim != 4 or k.shape != v.shape or not same_bhd:
            raise ShapeError(
                f"attention: expected q (B, H, Tq, D) and k, v (B, H, Tk, D); got q {q.shape}, "
                f"k {k.shape}, v {v.shape}"
            )
        if q.shape[2] > k.shape[2]:
            raise ShapeError(f"attention: more queries ({q.shape[2]}) than keys ({k.shape[2]})")
        self.scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
        out, lse = k_att.attention_forward(q, k, v, self.scale)
        self.save_for_backward(q, k, v, out, lse)
        return out

    def backward(self, dout):
        q, k, v, out, lse = self.saved
        return k_att.attention_backward(dout, q, k, v, out, lse, self.scale)
