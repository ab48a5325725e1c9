"""Download, verify and cache the public data sets used in the book.

The book downloads its data inline: "the-verdict.txt" in chapter 2 (section 2.2), the SMS
Spam Collection in chapter 6 (section 6.2), the instruction data in chapter 7 (section 7.2)
and GPT-2's BPE files with its weights in chapter 5 (section 5.5). :func:`fetch` does the
same once, carefully:

* lookup order: ``data_dir`` (argument, else the ``TINYGRAD_LLM_DATA_DIR`` environment
  variable, if set) first, then the cache folder (argument, else ``~/.cache/tinygrad_llm``);
  local file names follow the offline mirror's layout (``the-verdict.txt``,
  ``sms_spam_collection/SMSSpamCollection.tsv``, ``gpt2/vocab.bpe``, ...);
* every file is checked against its published sha256;
* a download goes to a temporary file in the destination folder and is renamed with
  :func:`os.replace` only once complete and verified, so a failed, interrupted or corrupt
  download never leaves a partial file behind;
* offline with no local copy, the error names the URL that failed and how to point
  ``TINYGRAD_LLM_DATA_DIR`` at a folder holding the files.

What is verified for the SMS Spam Collection: UCI publishes a zip archive
(``sms+spam+collection.zip``) whose own sha256 is not recorded here, because it could not be
computed on an offline machine; the zip is therefore not checksum-verified. The known sha256
is that of the extracted ``SMSSpamCollection`` file in the mirrored form (one
``label<TAB>text`` line per message, no header). After extraction the file is compared with
it: a match is a verified copy; a mismatch keeps the file and emits a :class:`UserWarning`
naming both checksums (the file's content is still validated line by line when
:func:`tinygrad_llm.data.spam_splits` reads it). Pass ``sha256=...`` to make the check strict.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = [
    "DATASETS",
    "ChecksumError",
    "DataNotAvailableError",
    "DatasetSpec",
    "RemoteFile",
    "data_dir",
    "default_cache_dir",
    "fetch",
]

log = logging.getLogger(__name__)

ENV_DATA_DIR = "TINYGRAD_LLM_DATA_DIR"
_CHUNK = 1 << 16


class DataNotAvailableError(RuntimeError):
    """A data file is neither available locally nor downloadable."""


class ChecksumError(ValueError):
    """A file's sha256 differs from the published one."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set.

    Attributes:
        path: local path relative to the data/cache folder (POSIX separators).
        url: where the file is published (``http(s)://`` or ``file://``).
        sha256: checksum of the local file (for ``zip_member`` files: of the extracted
            member), or ``None`` when unknown (not verified).
        zip_member: when set, ``url`` is a zip archive and this member is extracted.
        strict: when ``False`` a checksum mismatch warns instead of raising (used where the
            known checksum is that of a mirrored copy, see the module docstring).
    """

    path: str
    url: str
    sha256: str | None
    zip_member: str | None = None
    strict: bool = True


@dataclass(frozen=True)
class DatasetSpec:
    """A named data set: one file (``fetch`` returns its path) or several files in one
    folder (``fetch`` returns the folder)."""

    name: str
    files: tuple[RemoteFile, ...]
    description: str = ""

    @property
    def target(self) -> str:
        """Relative path that :func:`fetch` returns: the file, or the files' common folder."""
        if len(self.files) == 1:
            return self.files[0].path
        parents = {str(Path(f.path).parent) for f in self.files}
        if len(parents) != 1:
            raise ValueError(
                f"data set {self.name!r}: a multi-file data set must keep its files in one "
                f"folder, got folders {sorted(parents)}"
            )
        return parents.pop()


_BOOK = "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main"
_GPT2 = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main"

DATASETS: dict[str, DatasetSpec] = {
    "the-verdict": DatasetSpec(
        "the-verdict",
        (
            RemoteFile(
                "the-verdict.txt",
                f"{_BOOK}/ch02/01_main-chapter-code/the-verdict.txt",
                "b41e41a68f0398a3154ae69e2e4c0e2694e17fe0d66730536837f1b01935b31f",
            ),
        ),
        "Edith Wharton's short story (public domain), pretraining text of chapters 2 and 5",
    ),
    "tinyshakespeare": DatasetSpec(
        "tinyshakespeare",
        (
            RemoteFile(
                "tinyshakespeare.txt",
                "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                "tinyshakespeare/input.txt",
                "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            ),
        ),
        "tiny-shakespeare corpus (about 1.1 MB), a larger pretraining text",
    ),
    "sms-spam": DatasetSpec(
        "sms-spam",
        (
            RemoteFile(
                "sms_spam_collection/SMSSpamCollection.tsv",
                "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
                # sha256 of the extracted file in its mirrored form; the zip's own checksum
                # is unknown (not computable offline), so the zip itself is not verified.
                "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
                zip_member="SMSSpamCollection",
                strict=False,
            ),
        ),
        "SMS Spam Collection (UCI data set 228), chapter 6",
    ),
    "instruction-data": DatasetSpec(
        "instruction-data",
        (
            RemoteFile(
                "instruction-data.json",
                f"{_BOOK}/ch07/01_main-chapter-code/instruction-data.json",
                "7e09a9af353722ca15c18bc580f093f9c39d3178335a75177319cb1e1d163944",
            ),
        ),
        "1100 Alpaca-style instruction/input/output records, chapter 7",
    ),
    "instruction-data-with-preference": DatasetSpec(
        "instruction-data-with-preference",
        (
            RemoteFile(
                "instruction-data-with-preference.json",
                f"{_BOOK}/ch07/04_preference-tuning-with-dpo/instruction-data-with-preference.json",
                "305315abf14f65fa42c01a0877572f832606571c2a7d49f152ac1d758b16756e",
            ),
        ),
        "the instruction records with chosen/rejected answers (preference tuning)",
    ),
    "gpt2-vocab": DatasetSpec(
        "gpt2-vocab",
        (
            RemoteFile(
                "gpt2/vocab.bpe",
                f"{_GPT2}/vocab.bpe",
                "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
            ),
            RemoteFile(
                "gpt2/encoder.json",
                f"{_GPT2}/encoder.json",
                "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
            ),
        ),
        "GPT-2's published BPE merges (vocab.bpe) and vocabulary (encoder.json)",
    ),
}


def _env_data_dir() -> Path | None:
    value = os.environ.get(ENV_DATA_DIR, "").strip()
    return Path(value).expanduser() if value else None


def data_dir() -> Path | None:
    """The folder named by ``TINYGRAD_LLM_DATA_DIR`` (looked in first), or ``None``."""
    return _env_data_dir()


def default_cache_dir() -> Path:
    """The download cache, ``~/.cache/tinygrad_llm``."""
    return Path.home() / ".cache" / "tinygrad_llm"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    url: str | None = None,
    sha256: str | None = None,
    download: bool = True,
    timeout: float = 60.0,
    registry: Mapping[str, DatasetSpec] | None = None,
) -> Path:
    """Return the local path of data set ``name``, downloading and verifying it if needed.

    Args:
        name: one of ``DATASETS`` ("the-verdict", "tinyshakespeare", "sms-spam",
            "instruction-data", "instruction-data-with-preference", "gpt2-vocab").
        data_dir: folder looked in first; default ``$TINYGRAD_LLM_DATA_DIR`` if set. It is
            only read, never written.
        cache_dir: folder looked in next and where downloads go; default
            ``~/.cache/tinygrad_llm``.
        url, sha256: override the registry's URL / checksum (single-file data sets only);
            an explicit ``sha256`` is always checked strictly.
        download: if ``False``, never touch the network (raise when no local copy exists).
        timeout: seconds for the connection and each read.
        registry: the table of data sets (default :data:`DATASETS`).

    Returns:
        The file's path, or for multi-file data sets ("gpt2-vocab") the folder holding them.

    Raises:
        ValueError: unknown ``name`` or bad overrides.
        ChecksumError: a file's sha256 differs from the expected one (a downloaded file is
            removed; a file in ``data_dir`` is left alone and reported).
        DataNotAvailableError: no local copy and the download failed.
    """
    spec = _resolve_spec(name, registry, url, sha256)
    data_root = Path(data_dir).expanduser() if data_dir is not None else _env_data_dir()
    cache_root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()

    # 1. A complete copy in the data folder (read-only: a bad copy is reported, not removed).
    if data_root is not None and all((data_root / f.path).is_file() for f in spec.files):
        for f in spec.files:
            _verify(f, data_root / f.path, where=f"{ENV_DATA_DIR}/data_dir {data_root}")
        return data_root / spec.target

    # 2. The cache folder: reuse verified files, (re)download the others.
    missing: list[RemoteFile] = []
    for f in spec.files:
        path = cache_root / f.path
        if path.is_file():
            try:
                _verify(f, path, where=f"cache {cache_root}")
                continue
            except ChecksumError as exc:
                warnings.warn(
                    f"{exc}; removing the cached copy and downloading it again", stacklevel=2
                )
                path.unlink(missing_ok=True)
        missing.append(f)
    if missing and not download:
        raise DataNotAvailableError(
            f"data set {spec.name!r} is not available locally and download=False: "
            f"looked for {', '.join(f.path for f in missing)} in "
            f"{_describe_roots(data_root, cache_root)}. "
            f"Set {ENV_DATA_DIR} to a folder holding these files or call fetch({spec.name!r})."
        )
    looked = _describe_roots(data_root, cache_root)
    for f in missing:
        _download(spec, f, cache_root / f.path, timeout, looked)
    return cache_root / spec.target


def _resolve_spec(
    name: str,
    registry: Mapping[str, DatasetSpec] | None,
    url: str | None,
    sha256: str | None,
) -> DatasetSpec:
    table = DATASETS if registry is None else registry
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__} {name!r}")
    if name not in table:
        raise ValueError(
            f"name: unknown data set {name!r}; expected one of {sorted(table)} "
            "(or pass registry=... with your own DatasetSpec)"
        )
    spec = table[name]
    if url is None and sha256 is None:
        return spec
    if len(spec.files) != 1:
        raise ValueError(
            f"url/sha256 overrides apply to single-file data sets, but {name!r} has "
            f"{len(spec.files)} files; pass registry={{...}} with a DatasetSpec instead"
        )
    if sha256 is not None and (
        len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower())
    ):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    f = spec.files[0]
    f = replace(
        f,
        url=f.url if url is None else url,
        sha256=f.sha256 if sha256 is None else sha256.lower(),
        strict=f.strict if sha256 is None else True,
    )
    return replace(spec, files=(f,))


def _verify(f: RemoteFile, path: Path, *, where: str) -> None:
    if f.sha256 is None:
        return
    got = sha256_file(path)
    if got == f.sha256:
        return
    message = f"checksum mismatch for {path} (in {where}): expected sha256 {f.sha256}, got {got}"
    if f.strict:
        raise ChecksumError(message + f"; replace it with the file published at {f.url}")
    warnings.warn(
        message + " (the known checksum is that of a mirrored copy; using the file anyway)",
        stacklevel=3,
    )


def _describe_roots(data_root: Path | None, cache_root: Path) -> str:
    first = (
        f"data_dir {data_root}" if data_root is not None else f"data_dir (${ENV_DATA_DIR} unset)"
    )
    return f"{first} and cache {cache_root}"


def _download(spec: DatasetSpec, f: RemoteFile, target: Path, timeout: float, looked: str) -> None:
    """Download ``f`` to ``target`` through a temporary file in the same folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temps: list[str] = []

    def new_temp() -> tuple[int, str]:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        temps.append(tmp)
        return fd, tmp

    log.info("downloading %s from %s", f.path, f.url)
    try:
        fd, tmp = new_temp()
        with os.fdopen(fd, "wb") as out:
            digest = _copy_url(out, timeout, spec, f, looked)
        if f.zip_member is not None:
            fd, member_tmp = new_temp()
            with os.fdopen(fd, "wb") as out:
                digest = _extract_member(tmp, f, out)
            tmp = member_tmp
        if f.sha256 is not None and digest != f.sha256:
            if f.strict:
                raise ChecksumError(
                    f"checksum mismatch for {f.url}: expected sha256 {f.sha256}, got {digest}; "
                    "the downloaded file was removed (a corrupt or changed download: try again, "
                    "or check the URL)"
                )
            warnings.warn(
                f"{f.path} extracted from {f.url} has sha256 {digest}, not {f.sha256} (the "
                "checksum of the mirrored copy); keeping it, its content is validated when read",
                stacklevel=3,
            )
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a cache may be shared
        os.replace(tmp, target)
        temps.remove(tmp)
    finally:
        for leftover in temps:
            try:
                os.remove(leftover)
            except FileNotFoundError:
                pass


def _copy_url(out: object, timeout: float, spec: DatasetSpec, f: RemoteFile, looked: str) -> str:
    """Stream ``f.url`` into ``out``; return the sha256 of the bytes written."""
    url = f.url
    h = hashlib.sha256()
    received = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "tinygrad-llm-fetch"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                h.update(chunk)
                out.write(chunk)  # type: ignore[attr-defined]
                received += len(chunk)
            if length is not None and length.isdigit() and received != int(length):
                raise http.client.IncompleteRead(b"", int(length) - received)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = _reason(exc, received)
        raise DataNotAvailableError(
            f"could not download data set {spec.name!r}: {url} failed ({reason}); no partial "
            f"file was kept. No local copy of {f.path} was found either (looked in {looked}). "
            f"If you are offline, "
            f"put the file at <folder>/{f.path} and set {ENV_DATA_DIR}=<folder> (or pass "
            f"data_dir=<folder>); the file's sha256 should be {f.sha256 or '(not recorded)'}."
        ) from exc
    return h.hexdigest()


def _reason(exc: BaseException, received: int) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed after {received} bytes, {exc.expected} bytes missing"
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"{exc.reason}"
    return f"{type(exc).__name__}: {exc}"


def _extract_member(zip_path: str, f: RemoteFile, out: object) -> str:
    """Copy member ``f.zip_member`` of the zip at ``zip_path`` into ``out``; return its sha256."""
    h = hashlib.sha256()
    try:
        with zipfile.ZipFile(zip_path) as archive:
            names = archive.namelist()
            member = f.zip_member
            if member not in names:
                raise DataNotAvailableError(
                    f"the archive downloaded from {f.url} has no member {member!r} "
                    f"(members: {names[:10]}); the publisher may have changed its layout"
                )
            with archive.open(member) as src:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    h.update(chunk)
                    out.write(chunk)  # type: ignore[attr-defined]
    except zipfile.BadZipFile as exc:
        raise DataNotAvailableError(
            f"the file downloaded from {f.url} is not a valid zip archive ({exc}); it was removed"
        ) from exc
    return h.hexdigest()
