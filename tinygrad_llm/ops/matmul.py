"""Matrix product, 2-D and batched, with broadcasting batch dimensions.

out = a @ b,  a (..., M, K), b (..., K, N).   da = dout @ b^T,  db = a^T @ dout,
each summed over the batch dims that broadcasting added. The common case of a batch of
activations times one weight matrix, (B, T, K) @ (K, N), is done as a single 2-D product
(B*T, K) @ (K, N) so that BLAS sees one big GEMM and db needs no (B, K, N) temporary.
"""

from __future__ import annotations

import numpy as np

from tinygrad_llm.function import Function
from tinygrad_llm.kernels import matmul as k
from tinygrad_llm.ops import unbroadcast
from tinygrad_llm.tensor import ShapeError


class MatMul(Function):
    """out = a @ b.   da = dout @ b^T,  db = a^T @ dout (batch dims summed back)."""

    def forward(self, a, b):
        if a.ndim < 1 or b.ndim < 1:
            raise ShapeError(f"matmul: needs at least 1-D inputs, got {a.shape} and {b.shape}")
        # 1-D operands as in NumPy: a vector is a row (for a) or a column (for b)
        self.squeeze = (a.ndim == 1, b.ndim == 1)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if a2.shape[-1] != b2.shape[-2]:
            raise ShapeError(
                f"matmul: inner sizes differ: a is {a.shape}, b is {b.shape}; expected "
                f"a.shape[-1] == b.shape[-2] (did you mean b.T?)"
            )
        try:
            np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        except ValueError:
            raise ShapeError(
                f"matmul: batch dims {a.shape[:-2]} and {b.shape[:-2]} do not broadcast: a is "
                f"{a.shape}, b is {b.shape}; leading sizes must match or be 1"
            ) from None
        self.save_for_backward(a2, b2)
        if b2.ndim == 2 and a2.ndim > 2:  # (..., M, K) @ (K, N) as one GEMM
            out = k.matmul_forward(a2.reshape(-1, a2.shape[-1]), b2)
            out = out.reshape(a2.shape[:-1] + (b2.shape[-1],))
        else:
            out = k.matmul_forward(a2, b2)
        if self.squeeze[0]:
            out = out[..., 0, :]
        if self.squeeze[1]:
            out = out[..., 0]
        return out

    def backward(self, dout):
        a, b = self.saved
        if self.squeeze[1]:
            dout = dout[..., None]
        if self.squeeze[0]:
            dout = dout[..., None, :]
        if b.ndim == 2 and a.ndim > 2:
            a2, d2 = a.reshape(-1, a.shape[-1]), dout.reshape(-1, dout.shape[-1])
            da, db = k.matmul_backward(d2, a2, b)
            da = da.reshape(a.shape)
        else:
            da, db = k.matmul_backward(dout, a, b)
            da, db = unbroadcast(da, a.shape), unbroadcast(db, b.shape)
        if self.squeeze[0]:
            da = da[0]
        if self.squeeze[1]:
            db = db[:, 0]
        return (da if self.needs_input_grad[0] else None,
                db if self.needs_input_grad[1] else None)
