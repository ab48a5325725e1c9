"""Sliding-window sampling of a token stream into training batches (chapter 2, section 2.6).

The book's ``GPTDatasetV1`` cuts the token ids of a text into input windows of
``max_length`` tokens, starting every ``stride`` tokens, with the targets being the same
windows shifted one token to the right; ``create_dataloader_v1`` batches them.
:class:`GPTDataset` and :func:`create_dataloader` do the same with NumPy:

* The windows are **views** of the one token array (``sliding_window_view`` then every
  ``stride``-th row), so a 100M-token corpus costs its tokens' memory, not
  100M x ``max_length``; a token array stored compactly (e.g. ``uint16``) stays so.
* A batch is gathered with **one fancy index** and returned as ``int64`` arrays of shape
  ``(batch_size, max_length)``.
* :class:`DataLoader` is small and generic (any dataset with ``__len__``/``__getitem__``;
  datasets with a ``get_batch(indices)`` method are batched without a per-item loop).
  Shuffling is seeded: epoch ``k`` uses ``np.random.default_rng([seed, k])``, so every run
  sees the same order and each epoch a different one.

The data layer yields plain NumPy arrays; the model layer wraps them in tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from tinygrad_llm.data._checks import as_token_array, check_fraction, check_int, check_optional_int

__all__ = [
    "DataLoader",
    "GPTDataset",
    "Splits",
    "create_dataloader",
    "default_collate",
    "train_val_split",
]


class Splits(NamedTuple):
    """Train / validation / test parts of a data set (use the names: the book's chapter 7
    cuts its data in the order train, test, validation)."""

    train: list[Any]
    val: list[Any]
    test: list[Any]


class GPTDataset:
    """Input/target windows over one token stream.

    Window ``k`` starts at token ``k * stride``; ``inputs[k] = ids[s : s + max_length]`` and
    ``targets[k] = ids[s + 1 : s + max_length + 1]``. There are
    ``ceil((len(ids) - max_length) / stride)`` windows, exactly as the book's loop
    ``for i in range(0, len(ids) - max_length, stride)``.

    Args:
        token_ids: 1-D sequence or integer array of token ids (kept without copying when it
            already is an integer array).
        max_length: tokens per window (the context length).
        stride: step between window starts (``stride=max_length``: no overlap).

    Attributes:
        tokens: the 1-D token array; ``inputs``/``targets``: read-only ``(len, max_length)``
            views into it.
    """

    def __init__(self, token_ids: Sequence[int] | np.ndarray, max_length: int, stride: int) -> None:
        tokens = as_token_array("token_ids", token_ids)
        max_length = check_int(
            "max_length", max_length, minimum=1, fix="it is the number of tokens per window"
        )
        stride = check_int(
            "stride",
            stride,
            minimum=1,
            fix="it is the step between window starts (stride=max_length: no overlap)",
        )
        if len(tokens) < max_length + 1:
            raise ValueError(
                f"token_ids: got {len(tokens)} tokens, but max_length={max_length} needs at "
                f"least max_length + 1 = {max_length + 1} (inputs plus the shifted target); "
                "use a longer text or a smaller max_length"
            )
        self.tokens = tokens
        self.max_length = max_length
        self.stride = stride
        windows = np.lib.stride_tricks.sliding_window_view(tokens, max_length + 1)[::stride]
        windows.flags.writeable = False
        self._windows = windows
        self.inputs = windows[:, :-1]
        self.targets = windows[:, 1:]

    @classmethod
    def from_text(
        cls, text: str, tokenizer: Any = None, max_length: int = 256, stride: int = 128
    ) -> GPTDataset:
        """Tokenize ``text`` (GPT-2 BPE by default) and build the dataset, as ``GPTDatasetV1``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if tokenizer is None:
            from tinygrad_llm.data.tokenizers import get_tokenizer

            tokenizer = get_tokenizer("gpt2")
        ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
        if len(ids) < check_int("max_length", max_length, minimum=1) + 1:
            raise ValueError(
                f"text: it has {len(ids)} tokens ({len(text)} characters), but "
                f"max_length={max_length} needs at least {max_length + 1}; use a longer text "
                "or a smaller max_length"
            )
        return cls(ids, max_length, stride)

    def __len__(self) -> int:
        return int(self._windows.shape[0])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self)
        i = check_int("index", index)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of range for a GPTDataset of {n} windows")
        return (
            self.inputs[i].astype(np.int64, copy=True),
            self.targets[i].astype(np.int64, copy=True),
        )

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and targets of windows ``indices``: two int64 ``(len(indices), max_length)``
        arrays gathered with one fancy index each."""
        idx = np.asarray(indices, dtype=np.intp)
        inputs = self._windows[idx, :-1].astype(np.int64, copy=False)
        targets = self._windows[idx, 1:].astype(np.int64, copy=False)
        return inputs, targets

    def __repr__(self) -> str:
        return (
            f"GPTDataset({len(self.tokens)} tokens, max_length={self.max_length}, "
            f"stride={self.stride}, windows={len(self)})"
        )


def default_collate(items: Sequence[Any]) -> Any:
    """Stack items into arrays: tuples are stacked field by field (``(inputs, labels)``)."""
    if not items:
        raise ValueError("items is empty; a batch needs at least one item")
    first = items[0]
    if isinstance(first, tuple):
        return tuple(_stack([item[k] for item in items], k) for k in range(len(first)))
    return _stack(list(items), None)


def _stack(values: list[Any], field: int | None) -> np.ndarray:
    arrays = [np.asarray(v) for v in values]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        where = "items" if field is None else f"field {field} of the items"
        raise ValueError(
            f"{where} have different shapes {sorted(shapes)} and cannot be stacked; pad them "
            "first or pass a collate_fn (e.g. custom_collate_fn for instruction data)"
        )
    out = np.stack(arrays)
    if out.dtype.kind in "iub" and out.dtype != np.bool_:
        out = out.astype(np.int64, copy=False)
    return out


class DataLoader:
    """Batches of a dataset, optionally shuffled with a seed.

    Args:
        dataset: anything with ``__len__`` and ``__getitem__``; when it also has
            ``get_batch(indices)`` and no ``collate_fn`` is given, batches come from it
            (one vectorized gather instead of a per-item loop).
        batch_size: items per batch.
        shuffle: a new permutation each epoch; epoch ``k`` (the ``k``-th ``iter()``, from
            0) uses ``np.random.default_rng([seed, k])``. :meth:`set_epoch` sets ``k``.
        drop_last: drop the final batch if it has fewer than ``batch_size`` items.
        seed: non-negative int; ``None`` draws one from the OS (then see ``self.seed``).
        collate_fn: turns a list of items into a batch (default :func:`default_collate`).

    Raises:
        ValueError: empty dataset, or ``drop_last`` with fewer items than ``batch_size``
            (every epoch would yield nothing).
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                f"dataset must have __len__ and __getitem__, got {type(dataset).__name__}"
            )
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.seed = check_optional_int("seed", seed, minimum=0)
        if self.seed is None:
            self.seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1)
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"collate_fn must be callable, got {type(collate_fn).__name__}")
        n = len(dataset)
        if n == 0:
            raise ValueError("dataset is empty; a DataLoader needs at least one item")
        if drop_last and n < self.batch_size:
            raise ValueError(
                f"drop_last=True with batch_size={self.batch_size} but the dataset has only "
                f"{n} item(s): every epoch would yield no batch; lower batch_size to <= {n}, "
                "set drop_last=False, or use more data (for text: more tokens, a smaller "
                "max_length or stride)"
            )
        self.dataset = dataset
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` produce epoch ``epoch``'s order."""
        self.epoch = check_int("epoch", epoch, minimum=0)

    def order(self, epoch: int) -> np.ndarray:
        """The item order of epoch ``epoch``."""
        n = len(self.dataset)
        order = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)  # half the memory
        if self.shuffle:
            np.random.default_rng([self.seed, epoch]).shuffle(order)
        return order

    def __iter__(self) -> Iterator[Any]:
        n = len(self.dataset)
        # Without shuffling no index array is built (a 100M-window dataset needs none).
        order = self.order(self.epoch) if self.shuffle else None
        self.epoch += 1
        stop = len(self) * self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            end = min(start + self.batch_size, n)
            idx = np.arange(start, end) if order is None else order[start:end]
            yield self._batch(idx)

    def _batch(self, idx: np.ndarray) -> Any:
        if self.collate_fn is None and hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(idx)
        items = [self.dataset[int(i)] for i in idx]
        return (self.collate_fn or default_collate)(items)

    def __repr__(self) -> str:
        return (
            f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, "
            f"batch_size={self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last}, "
            f"seed={self.seed}, batches={len(self)})"
        )


def create_dataloader(
    text_or_ids: str | Sequence[int] | np.ndarray,
    batch_size: int = 4,
    max_length: int = 256,
    stride: int = 128,
    shuffle: bool = True,
    drop_last: bool = True,
    seed: int | None = 123,
    tokenizer: Any = None,
) -> DataLoader:
    """The book's ``create_dataloader_v1``: a :class:`DataLoader` over a :class:`GPTDataset`.

    ``text_or_ids`` is a text (tokenized with ``tokenizer``, GPT-2 BPE by default) or token
    ids. Each batch is ``(inputs, targets)``, two int64 arrays of shape
    ``(batch_size, max_length)``; ``len(loader)`` is the number of batches per epoch.
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if isinstance(text_or_ids, str):
        dataset = GPTDataset.from_text(text_or_ids, tokenizer, max_length, stride)
    else:
        dataset = GPTDataset(text_or_ids, max_length, stride)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed
    )


def train_val_split(data: Any, train_ratio: float = 0.9) -> tuple[Any, Any]:
    """Split a text (characters) or a token sequence at ``int(train_ratio * len(data))``.

    The book (section 5.1.3) splits "the-verdict" 90/10 by characters before tokenizing.
    """
    train_ratio = check_fraction("train_ratio", train_ratio)
    if isinstance(data, (str, np.ndarray)) or hasattr(data, "__getitem__"):
        n = len(data)
    else:
        raise TypeError(f"data must be a str, a sequence or an array, got {type(data).__name__}")
    split = int(train_ratio * n)
    if split == 0 or split == n:
        raise ValueError(
            f"data: {n} element(s) split at train_ratio={train_ratio} leave an empty part; "
            "use more data or a ratio further from 0 and 1"
        )
    return data[:split], data[split:]
