"""The safetensors reader/writer (NumPy only) and atomic writes."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from tinygrad_llm.io import (CheckpointError, atomic_write, load_safetensors,
                             read_safetensors_header, save_safetensors)


def test_round_trip_dtypes_shapes_and_metadata(tmp_path, rng):
    tensors = {"a": rng.standard_normal((3, 4)).astype(np.float32),
               "b": rng.standard_normal(5), "ids": np.arange(7, dtype=np.int64),
               "scalar": np.array(2.5, dtype=np.float32), "empty": np.zeros((0, 3), np.float32),
               "mask": np.array([True, False])}
    path = tmp_path / "x.safetensors"
    save_safetensors(path, tensors, {"note": "hello"})
    got, meta = load_safetensors(path)
    assert meta == {"note": "hello"}
    assert set(got) == set(tensors)
    for k, v in tensors.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape
        np.testing.assert_array_equal(got[k], v)


def test_layout_is_the_public_format(tmp_path):
    """Parse the file by hand: u64 header length, JSON header, data at the given offsets."""
    path = tmp_path / "x.safetensors"
    save_safetensors(path, {"w": np.array([[1.0, 2.0]], dtype=np.float32)})
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert header["w"] == {"dtype": "F32", "shape": [1, 2], "data_offsets": [0, 8]}
    assert (8 + n) % 8 == 0
    np.testing.assert_array_equal(np.frombuffer(raw[8 + n:], "<f4"), [1.0, 2.0])


def test_loading_is_memory_mapped(tmp_path):
    path = tmp_path / "x.safetensors"
    save_safetensors(path, {"w": np.ones((100, 100), np.float32)})
    got, _ = load_safetensors(path)
    assert isinstance(got["w"].base, np.ndarray) and not got["w"].flags.writeable


def test_bf16_is_widened(tmp_path):
    x = np.array([1.5, -2.0, 3.25], dtype=np.float32)
    bf16 = (x.view(np.uint32) >> 16).astype("<u2")
    header = json.dumps({"x": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}).encode()
    path = tmp_path / "b.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bf16.tobytes())
    got, _ = load_safetensors(path)
    np.testing.assert_array_equal(got["x"], x)


def test_truncated_and_garbage_files_name_the_problem(tmp_path):
    path = tmp_path / "x.safetensors"
    save_safetensors(path, {"w": np.ones((10, 10), np.float32)})
    raw = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(raw[:-4])
    with pytest.raises(CheckpointError, match="'w'.*truncated"):
        read_safetensors_header(tmp_path / "cut.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError, match="header length"):
        load_safetensors(tmp_path / "junk.safetensors")
    (tmp_path / "tiny.safetensors").write_bytes(b"abc")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_safetensors(tmp_path / "tiny.safetensors")


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    save_safetensors(path, {"w": np.zeros(3, np.float32)})
    before = path.read_bytes()

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with atomic_write(path) as f:
            f.write(b"partial")
            raise Boom()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"]  # no temp left over
    with pytest.raises(TypeError, match="unsupported dtype"):
        save_safetensors(path, {"c": np.array([1 + 2j])})
    assert path.read_bytes() == before
