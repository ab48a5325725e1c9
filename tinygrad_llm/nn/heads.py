"""Classification head for a GPTModel (the book's chapter 6, sections 6.5 and 6.6).

The book turns a pretrained GPT into a classifier in three moves:

    model.requires_grad_(False)                          # freeze everything
    model.out_head = Linear(emb_dim, num_classes)        # new head: (B, T, num_classes)
    unfreeze model.trf_blocks[-1] and model.final_norm   # plus the new head

``prepare_classifier(model, num_classes=2, train_last_blocks=1)`` does exactly that
(``train_last_blocks`` generalises "the last block": 0 trains only the final norm and the
head, ``n_layers`` every block). Which position's logits are read is the loss's business;
see ``tinygrad_llm.finetune``.
"""

from __future__ import annotations

import numpy as np

from tinygrad_llm.nn.linear import Linear
from tinygrad_llm.nn.module import Module
from tinygrad_llm.tensor import default_dtype


def prepare_classifier(model: Module, num_classes: int = 2, train_last_blocks: int = 1) -> Module:
    """Give ``model`` a fresh ``Linear(emb_dim, num_classes)`` head and set what trains.

    Afterwards exactly these parameters have ``requires_grad``: the last
    ``train_last_blocks`` transformer blocks, ``final_norm`` and the new ``out_head``
    (weight and bias, PyTorch-default initialisation from the package RNG, in the
    model's dtype). A config with ``tie_weights`` (GPT-2's) gets it switched off, since the
    new head no longer shares the token embedding. In place; returns ``model``.
    """
    for name in ("trf_blocks", "final_norm", "out_head", "tok_emb"):
        if not hasattr(model, name):
            raise TypeError(f"prepare_classifier: model has no {name!r}; expected a GPTModel, "
                            f"got {type(model).__name__}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 2:
        raise ValueError(f"prepare_classifier: num_classes must be an int >= 2, "
                         f"got {num_classes!r}")
    n_blocks = len(model.trf_blocks)
    if isinstance(train_last_blocks, bool) or not isinstance(train_last_blocks, (int, np.integer)) \
            or not 0 <= train_last_blocks <= n_blocks:
        raise ValueError(f"prepare_classifier: train_last_blocks must be in 0..{n_blocks} "
                         f"(the model has {n_blocks} blocks), got {train_last_blocks!r}")
    emb_dim = model.tok_emb.weight.shape[1]
    model.requires_grad_(False)
    with default_dtype(model.tok_emb.weight.dtype):  # the head matches the model's dtype
        model.out_head = Linear(emb_dim, int(num_classes))  # (B, T, C) -> (B, T, num_classes)
    for block in list(model.trf_blocks)[n_blocks - int(train_last_blocks):]:
        block.requires_grad_(True)
    model.final_norm.requires_grad_(True)
    model.out_head.requires_grad_(True)
    cfg = getattr(model, "cfg", None)
    if cfg is not None and getattr(cfg, "tie_weights", False):
        model.cfg = cfg.replace(tie_weights=False)  # the new head shares nothing
    return model

