"""fetch(): lookup order, sha256 verification, atomic downloads (local HTTP server, no internet)."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinygrad_llm.data import (
    DATASETS,
    ChecksumError,
    DataNotAvailableError,
    DatasetSpec,
    RemoteFile,
    data_dir,
    fetch,
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Server:
    """A tiny HTTP server on 127.0.0.1 serving in-memory files, with failure modes."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}  # path -> (body, mode)
        self.hits: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if self.path not in server.files:
                    self.send_error(404, "Not Found")
                    return
                body, mode = server.files[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "truncate":  # announce the full length, send half, hang up
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def add(self, path: str, body: bytes, mode: str = "ok") -> str:
        self.files[path] = (body, mode)
        return self.url(path)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def _module_server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def server(_module_server: _Server) -> _Server:
    _module_server.files.clear()
    _module_server.hits.clear()
    return _module_server


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    # CI sets TINYGRAD_LLM_DATA_DIR; these tests control the lookup themselves.
    monkeypatch.delenv("TINYGRAD_LLM_DATA_DIR", raising=False)


def registry_for(
    url: str, digest: str | None, path: str = "sub/file.txt"
) -> dict[str, DatasetSpec]:
    return {"x": DatasetSpec("x", (RemoteFile(path, url, digest),))}


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


BODY = b"the quick brown fox\n" * 500


def test_download_verifies_and_caches(server: _Server, tmp_path: Path) -> None:
    url = server.add("/f.txt", BODY)
    path = fetch("x", cache_dir=tmp_path, registry=registry_for(url, sha(BODY)))
    assert path == tmp_path / "sub" / "file.txt"
    assert path.read_bytes() == BODY
    assert leftovers(tmp_path) == ["sub/file.txt"]
    # Cache hit: no second request.
    again = fetch("x", cache_dir=tmp_path, registry=registry_for(url, sha(BODY)))
    assert again == path
    assert server.hits["/f.txt"] == 1


def test_url_and_sha256_overrides(server: _Server, tmp_path: Path) -> None:
    url = server.add("/v.txt", BODY)
    path = fetch("the-verdict", url=url, sha256=sha(BODY), cache_dir=tmp_path)
    assert path == tmp_path / "the-verdict.txt"
    assert path.read_bytes() == BODY


def test_checksum_mismatch_removes_download(server: _Server, tmp_path: Path) -> None:
    url = server.add("/f.txt", BODY)
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        fetch("x", cache_dir=tmp_path, registry=registry_for(url, wrong))
    message = str(info.value)
    assert wrong in message and sha(BODY) in message and url in message
    assert leftovers(tmp_path) == []


def test_interrupted_download_leaves_no_partial_file(server: _Server, tmp_path: Path) -> None:
    url = server.add("/f.txt", BODY, mode="truncate")
    with pytest.raises(DataNotAvailableError) as info:
        fetch("x", cache_dir=tmp_path, registry=registry_for(url, sha(BODY)))
    assert url in str(info.value)
    assert "connection closed" in str(info.value)
    assert leftovers(tmp_path) == []


def test_http_error_names_url_and_env_var(server: _Server, tmp_path: Path) -> None:
    url = server.url("/missing.txt")
    with pytest.raises(DataNotAvailableError) as info:
        fetch("x", cache_dir=tmp_path, registry=registry_for(url, None))
    message = str(info.value)
    assert url in message and "404" in message
    assert "TINYGRAD_LLM_DATA_DIR" in message
    assert leftovers(tmp_path) == []


def test_offline_connection_refused(tmp_path: Path) -> None:
    # Bind then close a socket to get a port with nothing listening.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/f.txt"
    with pytest.raises(DataNotAvailableError, match="TINYGRAD_LLM_DATA_DIR"):
        fetch("x", cache_dir=tmp_path, registry=registry_for(url, None), timeout=5)


def test_data_dir_is_looked_in_first(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "data"
    (local / "sub").mkdir(parents=True)
    (local / "sub" / "file.txt").write_bytes(BODY)
    url = server.add("/f.txt", b"something else")
    monkeypatch.setenv("TINYGRAD_LLM_DATA_DIR", str(local))
    assert data_dir() == local
    path = fetch("x", cache_dir=tmp_path / "cache", registry=registry_for(url, sha(BODY)))
    assert path == local / "sub" / "file.txt"
    assert server.hits == {}
    # An explicit data_dir argument works the same way.
    monkeypatch.delenv("TINYGRAD_LLM_DATA_DIR")
    path = fetch(
        "x", data_dir=local, cache_dir=tmp_path / "cache", registry=registry_for(url, sha(BODY))
    )
    assert path == local / "sub" / "file.txt"


def test_bad_copy_in_data_dir_is_reported_not_removed(tmp_path: Path) -> None:
    local = tmp_path / "data"
    (local / "sub").mkdir(parents=True)
    (local / "sub" / "file.txt").write_bytes(b"tampered")
    with pytest.raises(ChecksumError, match=sha(b"tampered")):
        fetch(
            "x",
            data_dir=local,
            cache_dir=tmp_path / "cache",
            registry=registry_for("http://127.0.0.1:9/x", sha(BODY)),
        )
    assert (local / "sub" / "file.txt").read_bytes() == b"tampered"


def test_corrupt_cached_copy_is_downloaded_again(server: _Server, tmp_path: Path) -> None:
    url = server.add("/f.txt", BODY)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "file.txt").write_bytes(b"corrupt")
    with pytest.warns(UserWarning, match="downloading it again"):
        path = fetch("x", cache_dir=tmp_path, registry=registry_for(url, sha(BODY)))
    assert path.read_bytes() == BODY


def test_download_false_and_absent(tmp_path: Path) -> None:
    with pytest.raises(DataNotAvailableError, match="download=False"):
        fetch("the-verdict", cache_dir=tmp_path, download=False)


def test_file_url(tmp_path: Path) -> None:
    src = tmp_path / "published.txt"
    src.write_bytes(BODY)
    path = fetch("x", cache_dir=tmp_path / "c", registry=registry_for(src.as_uri(), sha(BODY)))
    assert path.read_bytes() == BODY


def _zip_with(member: str, body: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(member, body)
        z.writestr("readme", b"about the data")
    return buf.getvalue()


def test_zip_member_is_extracted_and_verified(server: _Server, tmp_path: Path) -> None:
    tsv = b"ham\thello there\nspam\tWIN a prize now\n"
    url = server.add("/spam.zip", _zip_with("SMSSpamCollection", tsv))
    spec = DATASETS["sms-spam"]
    member = spec.files[0]
    strict = RemoteFile(member.path, url, sha(tsv), zip_member=member.zip_member)
    path = fetch("s", cache_dir=tmp_path, registry={"s": DatasetSpec("s", (strict,))})
    assert path == tmp_path / "sms_spam_collection" / "SMSSpamCollection.tsv"
    assert path.read_bytes() == tsv
    assert leftovers(tmp_path) == ["sms_spam_collection/SMSSpamCollection.tsv"]


def test_sms_spam_checksum_is_not_strict(server: _Server, tmp_path: Path) -> None:
    # The registry's checksum is the mirrored copy's: a differing extracted file warns only.
    tsv = b"ham\thello there\n"
    url = server.add("/spam.zip", _zip_with("SMSSpamCollection", tsv))
    with pytest.warns(UserWarning, match="mirrored"):
        path = fetch("sms-spam", url=url, cache_dir=tmp_path)
    assert path.read_bytes() == tsv
    # An explicit sha256 makes the check strict.
    with pytest.raises(ChecksumError):
        fetch("sms-spam", url=url, sha256="f" * 64, cache_dir=tmp_path / "other")


def test_zip_without_member_fails_cleanly(server: _Server, tmp_path: Path) -> None:
    url = server.add("/spam.zip", _zip_with("other-name", b"x"))
    with pytest.raises(DataNotAvailableError, match="SMSSpamCollection"):
        fetch("sms-spam", url=url, cache_dir=tmp_path)
    assert leftovers(tmp_path) == []


def test_multi_file_dataset_returns_folder(server: _Server, tmp_path: Path) -> None:
    a, b = b'{"a": 1}', b"#version: 0.2\n"
    files = (
        RemoteFile("gpt2/vocab.bpe", server.add("/vocab.bpe", b), sha(b)),
        RemoteFile("gpt2/encoder.json", server.add("/encoder.json", a), sha(a)),
    )
    folder = fetch("g", cache_dir=tmp_path, registry={"g": DatasetSpec("g", files)})
    assert folder == tmp_path / "gpt2"
    assert (folder / "vocab.bpe").read_bytes() == b
    assert (folder / "encoder.json").read_bytes() == a


def test_registry_has_the_books_data_sets() -> None:
    assert set(DATASETS) == {
        "the-verdict",
        "tinyshakespeare",
        "sms-spam",
        "instruction-data",
        "instruction-data-with-preference",
        "gpt2-vocab",
    }
    for spec in DATASETS.values():
        for f in spec.files:
            assert f.url.startswith("https://")
            assert f.sha256 is not None and len(f.sha256) == 64
    assert DATASETS["gpt2-vocab"].target == "gpt2"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown data set"):
        fetch("nope")
    with pytest.raises(ValueError, match="single-file"):
        fetch("gpt2-vocab", url="http://127.0.0.1:9/x")
    with pytest.raises(ValueError, match="64 hex"):
        fetch("the-verdict", sha256="abc")


def test_no_warning_on_verified_hit(server: _Server, tmp_path: Path) -> None:
    url = server.add("/f.txt", BODY)
    fetch("x", cache_dir=tmp_path, registry=registry_for(url, sha(BODY)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fetch("x", cache_dir=tmp_path, registry=registry_for(url, sha(BODY)))
