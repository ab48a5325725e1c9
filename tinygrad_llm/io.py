"""Saving and loading: the safetensors file format with NumPy alone, training checkpoints,
and the public GPT-2 weights in and out (the book's chapter 5, section 5.5).

safetensors layout: an 8-byte little-endian header length N, N bytes of JSON
({name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}),
then the raw little-endian tensor bytes. Reading memory-maps the file, so a tensor is only
copied when it is converted (e.g. transposed into this project's layout).

Every write goes to a temporary file in the target folder that is renamed over the target
once complete, so a crash mid-save leaves the previous file intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator

import numpy as np

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
           "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


class CheckpointError(ValueError):
    """A checkpoint or weights file that is corrupt or does not fit the model."""


# ---------------------------------------------------------------------------------------
# safetensors


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[object]:
    """Open a temporary file beside ``path`` for binary writing; rename it over ``path``
    only if the block finishes without an exception (else remove it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_safetensors(path: str | os.PathLike, tensors: dict[str, np.ndarray],
                     metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` (name -> array) to a .safetensors file, atomically."""
    header: dict = {}
    if metadata:
        bad = [k for k, v in metadata.items() if not isinstance(v, str)]
        if bad:
            raise TypeError(f"save_safetensors: metadata values must be str, not for {bad}")
        header["__metadata__"] = dict(metadata)
    offset, arrays = 0, []
    for name, arr in tensors.items():
        arr = np.asarray(arr)
        if arr.dtype not in _NAMES:
            raise TypeError(f"save_safetensors: {name!r} has unsupported dtype {arr.dtype}")
        # (not np.ascontiguousarray: it turns a 0-d array into shape (1,))
        arr = np.array(arr, dtype=arr.dtype.newbyteorder("<"), order="C", copy=None)
        header[name] = {"dtype": _NAMES[arr.dtype.newbyteorder("=")], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
        arrays.append(arr)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # pad so the data starts 8-byte aligned
    with atomic_write(path) as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for arr in arrays:
            f.write(arr.data if arr.size else b"")


def read_safetensors_header(path: str | os.PathLike) -> tuple[dict, int]:
    """Return (header dict, byte offset where the data starts)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        first = f.read(8)
        if len(first) < 8:
            raise CheckpointError(f"{path}: not a safetensors file (only {size} bytes)")
        n = int.from_bytes(first, "little")
        if n > size - 8:
            raise CheckpointError(f"{path}: header length {n} runs past the end of the "
                                  f"{size}-byte file (truncated or not safetensors)")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(
                f"{path}: the safetensors header is not valid JSON ({e})") from None
    data_size = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        if info["dtype"] not in _DTYPES and info["dtype"] != "BF16":
            raise CheckpointError(f"{path}: tensor {name!r} has unsupported dtype "
                                  f"{info['dtype']}")
        itemsize = 2 if info["dtype"] == "BF16" else np.dtype(_DTYPES[info["dtype"]]).itemsize
        if end > data_size or end - begin != itemsize * int(np.prod(info["shape"])):
            raise CheckpointError(f"{path}: tensor {name!r} ({info['dtype']} "
                                  f"{info['shape']}) has offsets {begin}..{end} that do not "
                                  f"fit its shape or the file (truncated?)")
    return header, 8 + n


def load_safetensors(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Return (name -> read-only memory-mapped array, metadata). BF16 is widened to F32."""
    header, start = read_safetensors_header(path)
    metadata = header.pop("__metadata__", {}) or {}
    if not header:
        return {}, metadata
    mm = np.memmap(path, dtype=np.uint8, mode="r", offset=start).view(np.ndarray)
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        chunk = mm[begin:end]
        if info["dtype"] == "BF16":  # bfloat16 is the top half of a float32
            arr = (chunk.view("<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = chunk.view(np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name] = arr.reshape(tuple(info["shape"]))
    return out, metadata


# ---------------------------------------------------------------------------------------
# Training checkpoints: model + optimizer + step + RNG state + config


CHECKPOINT_FORMAT = "tinygrad-llm-checkpoint-v1"


def save_checkpoint(path: str | os.PathLike, model, optimizer=None, step: int = 0,
                    extra: dict | None = None) -> Path:
    """Save model weights, optimizer state, step, RNG state and config in one file.

    Tensors go in the safetensors body ("model.<name>", "optim.<i>.<slot>"); the config,
    step, RNG state, optimizer hyperparameters and ``extra`` (JSON-able) in its metadata.
    """
    from tinygrad_llm.random import get_rng_state

    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    meta = {"format": CHECKPOINT_FORMAT, "step": str(int(step)),
            "rng": json.dumps(get_rng_state()), "extra": json.dumps(extra or {})}
    cfg = getattr(model, "cfg", None)
    if cfg is not None:
        meta["config"] = json.dumps(cfg.to_dict())
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars = {}
        for i, slots in sd["state"].items():
            for slot, v in slots.items():
                if isinstance(v, np.ndarray):
                    tensors[f"optim.{i}.{slot}"] = v
                else:
                    scalars[f"{i}.{slot}"] = v
        meta["optimizer"] = json.dumps({"type": type(optimizer).__name__,
                                        "param_groups": sd["param_groups"], "scalars": scalars})
    path = Path(path)
    save_safetensors(path, tensors, meta)
    return path


def load_checkpoint(path: str | os.PathLike, model=None, optimizer=None,
                    restore_rng: bool = True) -> dict:
    """Load a checkpoint written by ``save_checkpoint``, reading the file once.

    With ``model=None`` a GPTModel is built from the saved config; a classifier (``extra``
    with ``task="classification"``, as ``finetune.save_finetuned`` writes) gets its
    ``Linear(emb_dim, num_classes)`` head back, every parameter trainable.

    Returns a dict with "model", "step", "config", "extra", "path", and what a caller that
    builds its optimizer only after loading needs (``pretrain --resume``): "optimizer_state"
    (for ``load_optimizer_state``; None if none was saved) and "rng" (the saved RNG state,
    for ``random.set_rng_state``; restored here already unless ``restore_rng=False``).
    Raises CheckpointError naming every missing or unexpected key, shape mismatch, or
    config value that differs.
    """
    from tinygrad_llm.config import GPTConfig
    from tinygrad_llm.random import set_rng_state

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    tensors, meta = load_safetensors(path)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a tinygrad-llm checkpoint (format "
                              f"{meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r}); "
                              f"for GPT-2 weights use load_gpt2()")
    cfg = GPTConfig.from_dict(json.loads(meta["config"])) if "config" in meta else None
    extra = json.loads(meta.get("extra", "{}"))
    num_classes = _num_classes(extra, tensors)
    if model is None:
        if cfg is None:
            raise CheckpointError(f"{path}: no config saved; pass the model to load into")
        from tinygrad_llm.nn import GPTModel

        model = GPTModel(cfg)
        if num_classes is not None:
            from tinygrad_llm.nn.heads import prepare_classifier

            prepare_classifier(model, num_classes)
            model.requires_grad_(True)  # prepare_classifier froze the body for training
    elif cfg is not None and getattr(model, "cfg", None) is not None:
        mine, saved = model.cfg.to_dict(), cfg.to_dict()
        diff = [f"{k}: checkpoint has {saved.get(k)!r}, model has {mine.get(k)!r}"
                for k in sorted(set(mine) | set(saved))
                if mine.get(k) != saved.get(k) and k != "drop_rate"]
        if diff:
            raise CheckpointError(f"{path}: config differs from the model's: " + "; ".join(diff))
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except (KeyError, ValueError) as e:
        hint = ""
        if num_classes is not None:
            hint = (f" (a classifier checkpoint with {num_classes} classes: load it with "
                    f"model=None, or give the model prepare_classifier(model, {num_classes}) "
                    f"first)")
        raise CheckpointError(f"{path}: {e}{hint}") from None
    ckpt = {"model": model, "step": int(meta.get("step", 0)), "config": cfg, "extra": extra,
            "path": path, "optimizer_state": _optimizer_state(tensors, meta),
            "rng": json.loads(meta["rng"]) if "rng" in meta else None}
    if optimizer is not None:
        load_optimizer_state(optimizer, ckpt)
    if restore_rng and ckpt["rng"] is not None:
        set_rng_state(ckpt["rng"])
    return ckpt


def _num_classes(extra: dict, tensors: dict[str, np.ndarray]) -> int | None:
    """The class count of a classifier checkpoint (None for a language model): the
    metadata's ``num_classes``, else the rows of the saved head."""
    if extra.get("task") != "classification":
        return None
    if "num_classes" in extra:
        return int(extra["num_classes"])
    head = tensors.get("model.out_head.weight")
    return int(head.shape[0]) if head is not None else None


def _optimizer_state(tensors: dict[str, np.ndarray], meta: dict[str, str]) -> dict | None:
    """The saved optimizer as {"type", "param_groups", "state"}, or None. The arrays are
    copied out of the memory map, so a caller holding them does not keep the file open
    (which would block saving over it on Windows)."""
    if "optimizer" not in meta:
        return None
    info = json.loads(meta["optimizer"])
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, i, slot = k.split(".", 2)
            state.setdefault(int(i), {})[slot] = np.array(v)
    for k, v in info["scalars"].items():
        i, slot = k.split(".", 1)
        state.setdefault(int(i), {})[slot] = v
    return {"type": info["type"], "param_groups": info["param_groups"], "state": state}


def load_optimizer_state(optimizer, ckpt: dict) -> None:
    """Restore ``optimizer`` (built on ``ckpt["model"]``'s parameters) from the result of
    ``load_checkpoint``, without reading the file again."""
    path, saved = ckpt.get("path", "checkpoint"), ckpt.get("optimizer_state")
    if saved is None:
        raise CheckpointError(f"{path}: holds no optimizer state")
    if saved["type"] != type(optimizer).__name__:
        raise CheckpointError(f"{path}: optimizer state is for {saved['type']}, "
                              f"not {type(optimizer).__name__}")
    try:
        optimizer.load_state_dict({"param_groups": saved["param_groups"],
                                   "state": saved["state"]})
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None


# ---------------------------------------------------------------------------------------
# GPT-2 weights in the public Hugging Face safetensors layout

GPT2_SIZES = {  # size -> (hub repository, preset name, n_heads)
    "124M": ("openai-community/gpt2", "gpt2-small (124M)", 12),
    "355M": ("openai-community/gpt2-medium", "gpt2-medium (355M)", 16),
    "774M": ("openai-community/gpt2-large", "gpt2-large (774M)", 20),
    "1558M": ("openai-community/gpt2-xl", "gpt2-xl (1558M)", 25),
}
_ALIASES = {"gpt2": "124M", "gpt2-small": "124M", "gpt2-medium": "355M",
            "gpt2-large": "774M", "gpt2-xl": "1558M"}
_HEADS_BY_WIDTH = {768: 12, 1024: 16, 1280: 20, 1600: 25}
HUB_URL = "https://huggingface.co/{repo}/resolve/main/{file}"


def _gpt2_size(name: str) -> str | None:
    key = name.strip()
    for size, (repo, preset, _) in GPT2_SIZES.items():
        if key in (size, repo, preset, repo.split("/")[1]):
            return size
    return _ALIASES.get(key)


def gpt2_weights_path(size: str, cache_dir=None, download: bool = True) -> Path:
    """The local model.safetensors of a published GPT-2 size, downloading it if needed.

    Looked for in $TINYGRAD_LLM_DATA_DIR/gpt2-<size>/ and the cache folder first. The hub
    publishes no checksum we could pin offline, so the download is not sha256-verified; it
    is checked to be a complete safetensors file with every expected tensor when loaded.
    """
    from tinygrad_llm.data import DatasetSpec, RemoteFile, fetch

    repo = GPT2_SIZES[size][0]
    folder = f"gpt2-{size}"
    spec = DatasetSpec(folder, (
        RemoteFile(f"{folder}/model.safetensors", HUB_URL.format(repo=repo,
                                                                  file="model.safetensors"), None),
        RemoteFile(f"{folder}/config.json", HUB_URL.format(repo=repo, file="config.json"), None),
    ), f"GPT-2 {size} weights from the model hub")
    return fetch(folder, registry={folder: spec}, cache_dir=cache_dir,
                 download=download) / "model.safetensors"


def _find_weights(size_or_path: str | os.PathLike, cache_dir=None, download=True) -> Path:
    p = Path(size_or_path)
    if p.is_dir():
        if not (p / "model.safetensors").is_file():
            raise FileNotFoundError(f"load_gpt2: folder {p} holds no model.safetensors")
        return p / "model.safetensors"
    if p.is_file():
        return p
    size = _gpt2_size(str(size_or_path))
    if size is None:
        raise ValueError(
            f"load_gpt2: {str(size_or_path)!r} is neither a file, a folder, nor a GPT-2 size; "
            f"sizes: {', '.join(GPT2_SIZES)} (or 'gpt2', 'gpt2-medium', ...)")
    return gpt2_weights_path(size, cache_dir=cache_dir, download=download)


def _block_map(i: int) -> list[tuple[str, str, str]]:
    """(our name, GPT-2 name, how) for block i; how: '' copy, 'T' transpose, 'q'/'k'/'v'
    a third of the fused c_attn (transposed for weights)."""
    ours, theirs = f"trf_blocks.{i}", f"h.{i}"
    rows = [(f"{ours}.norm1.scale", f"{theirs}.ln_1.weight", ""),
            (f"{ours}.norm1.shift", f"{theirs}.ln_1.bias", ""),
            (f"{ours}.norm2.scale", f"{theirs}.ln_2.weight", ""),
            (f"{ours}.norm2.shift", f"{theirs}.ln_2.bias", ""),
            (f"{ours}.att.out_proj.weight", f"{theirs}.attn.c_proj.weight", "T"),
            (f"{ours}.att.out_proj.bias", f"{theirs}.attn.c_proj.bias", ""),
            (f"{ours}.ff.layers.0.weight", f"{theirs}.mlp.c_fc.weight", "T"),
            (f"{ours}.ff.layers.0.bias", f"{theirs}.mlp.c_fc.bias", ""),
            (f"{ours}.ff.layers.2.weight", f"{theirs}.mlp.c_proj.weight", "T"),
            (f"{ours}.ff.layers.2.bias", f"{theirs}.mlp.c_proj.bias", "")]
    for j, part in enumerate("qkv"):
        w = ("W_query", "W_key", "W_value")[j]
        rows.append((f"{ours}.att.{w}.weight", f"{theirs}.attn.c_attn.weight", part))
        rows.append((f"{ours}.att.{w}.bias", f"{theirs}.attn.c_attn.bias", part))
    return rows


def gpt2_name_map(n_layers: int) -> list[tuple[str, str, str]]:
    """The one table from this project's parameter names to GPT-2 checkpoint names.

    GPT-2 stores its linear weights (in, out) (a "Conv1D"), so they are transposed into
    our (out, in) Linear layout; Q, K and V are fused in c_attn along the output axis.
    """
    rows = [("tok_emb.weight", "wte.weight", ""), ("pos_emb.weight", "wpe.weight", ""),
            ("final_norm.scale", "ln_f.weight", ""), ("final_norm.shift", "ln_f.bias", "")]
    for i in range(n_layers):
        rows += _block_map(i)
    return rows


def _convert_in(arr: np.ndarray, how: str) -> np.ndarray:
    if how in ("q", "k", "v"):
        j = "qkv".index(how)
        d = arr.shape[-1] // 3
        part = arr[..., j * d:(j + 1) * d]
        return np.ascontiguousarray(part.T if arr.ndim == 2 else part, dtype=np.float32)
    if how == "T":
        return np.ascontiguousarray(arr.T, dtype=np.float32)
    return np.asarray(arr, dtype=np.float32)


def load_gpt2(size_or_path: str | os.PathLike = "124M", cache_dir=None,
              download: bool = True, drop_rate: float = 0.0):
    """Load published GPT-2 weights into a new GPTModel (qkv bias on, head tied to wte).

    Args:
        size_or_path: "124M" | "355M" | "774M" | "1558M" (or "gpt2", "gpt2-medium", ...),
            a model.safetensors file, or a folder holding one (and optionally config.json).
        cache_dir, download: where hub downloads go; download=False never uses the network.
    Raises:
        CheckpointError naming every missing or misshapen tensor.
    """
    from tinygrad_llm.config import GPTConfig
    from tinygrad_llm.nn import GPTModel

    path = _find_weights(size_or_path, cache_dir, download)
    raw, _ = load_safetensors(path)
    tensors = {(k[len("transformer."):] if k.startswith("transformer.") else k): v
               for k, v in raw.items()}
    for key in ("wte.weight", "wpe.weight"):
        if key not in tensors:
            raise CheckpointError(f"{path}: no {key!r} tensor; not a GPT-2 checkpoint "
                                  f"(found {sorted(tensors)[:5]} ...)")
    vocab, emb = tensors["wte.weight"].shape
    context = tensors["wpe.weight"].shape[0]
    n_layers = len({k.split(".")[1] for k in tensors if k.startswith("h.")})
    n_heads = _HEADS_BY_WIDTH.get(emb)
    config_json = path.parent / "config.json"
    if config_json.is_file():
        n_heads = json.loads(config_json.read_text()).get("n_head", n_heads)
    if n_heads is None:
        raise CheckpointError(f"{path}: cannot tell the number of heads for width {emb}; "
                              f"put a config.json with n_head beside the file")
    head = tensors.get("lm_head.weight")
    # every published size ties the head to wte; an exported untied model keeps its own
    tied = head is None or np.array_equal(head, tensors["wte.weight"])
    cfg = GPTConfig(vocab_size=vocab, context_length=context, emb_dim=emb, n_heads=n_heads,
                    n_layers=n_layers, drop_rate=drop_rate, qkv_bias=True, tie_weights=tied)
    model = GPTModel(cfg)
    expected = {n: p.shape for n, p in model.named_parameters()}
    state, problems, used = {}, [], set()
    for ours, theirs, how in gpt2_name_map(n_layers):
        if theirs not in tensors:
            problems.append(f"missing {theirs!r} (for {ours})")
            continue
        used.add(theirs)
        arr = _convert_in(tensors[theirs], how)
        if ours in expected and arr.shape != expected[ours]:
            problems.append(f"{theirs!r} gives {ours} shape {arr.shape}, expected "
                            f"{expected[ours]}")
            continue
        state[ours] = arr
    if head is not None:
        used.add("lm_head.weight")
        if not tied:
            state["out_head.weight"] = np.asarray(head, dtype=np.float32)
    ignored = {k for k in tensors if k.endswith(".attn.bias") or k.endswith(".attn.masked_bias")}
    unexpected = sorted(set(tensors) - used - ignored)
    if unexpected:
        problems.append(f"unexpected tensors {unexpected[:10]}"
                        f"{' ...' if len(unexpected) > 10 else ''}")
    if problems:
        raise CheckpointError(f"{path}: does not fit GPT-2 ({len(problems)} problem(s)): "
                              + "; ".join(problems))
    model.load_state_dict(state, strict=False)
    return model


def export_gpt2(model, folder: str | os.PathLike) -> Path:
    """Write ``model`` as model.safetensors + config.json in the Hugging Face GPT-2 layout."""
    cfg = model.cfg
    sd = model.state_dict()
    out: dict[str, np.ndarray] = {}
    fused: dict[str, dict[str, np.ndarray]] = {}
    for ours, theirs, how in gpt2_name_map(cfg.n_layers):
        arr = sd.get(ours)
        if arr is None and ours.endswith(".bias"):  # qkv_bias=False: GPT-2 has zero biases
            w = sd[ours[: -len("bias")] + "weight"]
            arr = np.zeros(w.shape[0], dtype=np.float32)
        if how in ("q", "k", "v"):
            fused.setdefault(theirs, {})[how] = arr.T if arr.ndim == 2 else arr
            if len(fused[theirs]) == 3:
                parts = fused.pop(theirs)
                out[theirs] = np.concatenate([parts[c] for c in "qkv"], axis=-1)
        else:
            out[theirs] = arr.T if how == "T" else arr
    if not getattr(cfg, "tie_weights", False):
        out["lm_head.weight"] = sd["out_head.weight"]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_safetensors(folder / "model.safetensors",
                     {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()},
                     {"format": "pt"})
    hf = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
          "vocab_size": cfg.vocab_size, "n_positions": cfg.context_length,
          "n_ctx": cfg.context_length, "n_embd": cfg.emb_dim, "n_layer": cfg.n_layers,
          "n_head": cfg.n_heads, "n_inner": None, "activation_function": "gelu_new",
          "layer_norm_epsilon": 1e-5, "resid_pdrop": cfg.drop_rate, "embd_pdrop": cfg.drop_rate,
          "attn_pdrop": cfg.drop_rate, "initializer_range": 0.02, "bos_token_id": 50256,
          "eos_token_id": 50256, "tie_word_embeddings": bool(getattr(cfg, "tie_weights", False))}
    with atomic_write(folder / "config.json") as f:
        f.write(json.dumps(hf, indent=2).encode())
    return folder
