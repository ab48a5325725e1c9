"""Byte-level byte pair encoding (BPE) written from scratch.

Chapter 2, section 2.5 of the book uses GPT-2's BPE tokenizer through ``tiktoken`` and
explains the algorithm; this module implements it:

* **Byte level.** Text is UTF-8 encoded, so every string is representable with the 256
  single-byte tokens and there is never an unknown word. GPT-2 stores its byte tokens as
  printable characters; :func:`bytes_to_unicode` is that mapping (used to read and write
  ``encoder.json``/``vocab.bpe`` and this module's JSON files).
* **Pre-tokenization.** A regular expression (:data:`GPT2_PATTERN`, GPT-2's published one)
  splits text into words, numbers, punctuation runs and whitespace; merges never cross
  those pieces.
* **Merging.** Every token has a rank (its id). A piece is encoded by starting from its bytes
  and repeatedly merging the adjacent pair whose concatenation is the lowest-ranked token
  (leftmost on ties) until no adjacent pair forms a token. This is the rule ``tiktoken``
  applies, so :meth:`BPETokenizer.from_gpt2` encodes exactly as ``tiktoken``'s "gpt2".
* **Training** (:meth:`BPETokenizer.train`) counts adjacent pairs over the pre-tokenized
  pieces (weighted by piece frequency), repeatedly creates a token for the most frequent pair
  and merges it, updating the counts incrementally, until the target vocabulary size.
* **Special tokens** such as ``<|endoftext|>`` are matched in the text before
  pre-tokenization, with ``tiktoken``'s ``allowed_special``/``disallowed_special`` semantics.

Encoding caches each distinct piece, so a few MB of ordinary text encode in seconds.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import warnings
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import regex

from tinygrad_llm.data._checks import check_int

__all__ = ["GPT2_PATTERN", "BPETokenizer", "bytes_to_unicode"]

# GPT-2's pre-tokenizer (published with its encoder.py). Possessive quantifiers would be
# equivalent; the plain form is kept as published.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

ENDOFTEXT = "<|endoftext|>"
_FORMAT = "tinygrad_llm-bpe"
_FORMAT_VERSION = 1
_CACHE_LIMIT = 1 << 20  # distinct pieces kept in the encode cache before it is cleared
_LONG_PIECE = 128  # pieces longer than this use the O(n log n) heap merge
_INF = float("inf")


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table.

    Bytes that are printable, non-space Latin-1 characters map to themselves; the other 68
    bytes (control characters, space, ...) map to ``chr(256 + k)`` in increasing byte order.
    """
    printable = set(range(ord("!"), ord("~") + 1))
    printable |= set(range(ord("\xa1"), ord("\xac") + 1))
    printable |= set(range(ord("\xae"), ord("\xff") + 1))
    table: dict[int, str] = {}
    extra = 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@lru_cache(maxsize=1)
def _unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


def _to_printable(token: bytes) -> str:
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def _from_printable(text: str, where: str) -> bytes:
    table = _unicode_to_bytes()
    try:
        return bytes(table[c] for c in text)
    except KeyError as exc:
        raise ValueError(
            f"{where}: {text!r} is not a byte-level token (character {exc.args[0]!r} is not in "
            "GPT-2's byte-to-unicode table); is this a GPT-2 style BPE file?"
        ) from None


@lru_cache(maxsize=64)
def _special_regex(tokens: frozenset[str]) -> regex.Pattern[str]:
    # Longest first, so a special token that contains another one wins.
    alternatives = sorted(tokens, key=lambda t: (-len(t), t))
    return regex.compile("|".join(regex.escape(t) for t in alternatives))


class BPETokenizer:
    """A byte-level BPE tokenizer.

    Args:
        ranks: every mergeable token's bytes -> its id (= its merge priority, lower merges
            first). Must contain all 256 single bytes.
        special_tokens: special token text -> id (ids distinct from ``ranks``' ids).
        pattern: the pre-tokenization regular expression (``regex`` module syntax).
        merges: optional record of the training merges as ``(left_id, right_id, new_id)``;
            informational (encoding only needs ``ranks``).
        name: a label used in ``repr``.

    Usually built with :meth:`train`, :meth:`from_gpt2` or :meth:`load`.
    """

    def __init__(
        self,
        ranks: Mapping[bytes, int],
        special_tokens: Mapping[str, int] | None = None,
        *,
        pattern: str = GPT2_PATTERN,
        merges: Sequence[tuple[int, int, int]] = (),
        name: str = "bpe",
    ) -> None:
        if not isinstance(ranks, Mapping):
            raise TypeError(f"ranks must be a mapping bytes -> int, got {type(ranks).__name__}")
        missing = [b for b in range(256) if bytes([b]) not in ranks]
        if missing:
            raise ValueError(
                f"ranks must contain all 256 single-byte tokens (byte-level BPE), but "
                f"{len(missing)} are missing, e.g. byte {missing[0]}; start from "
                "BPETokenizer.train(...) or BPETokenizer.from_gpt2()"
            )
        decoder: dict[int, bytes] = {}
        for token, rank in ranks.items():
            if not isinstance(token, bytes) or not token:
                raise TypeError(f"ranks keys must be non-empty bytes, got {token!r}")
            rank = check_int(f"ranks[{token!r}]", rank, minimum=0)
            if rank in decoder:
                raise ValueError(
                    f"ranks: id {rank} is used by both {decoder[rank]!r} and {token!r}; "
                    "every token needs its own id"
                )
            decoder[rank] = token
        specials: dict[str, int] = {}
        for text, tid in (special_tokens or {}).items():
            if not isinstance(text, str) or not text:
                raise TypeError(f"special_tokens keys must be non-empty str, got {text!r}")
            tid = check_int(f"special_tokens[{text!r}]", tid, minimum=0)
            if tid in decoder:
                raise ValueError(
                    f"special_tokens: id {tid} of {text!r} is already the id of "
                    f"{decoder[tid]!r}; give special tokens ids after the mergeable tokens"
                )
            decoder[tid] = text.encode("utf-8")
            specials[text] = tid
        try:
            self._regex = regex.compile(pattern)
        except regex.error as exc:
            raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
        self.pattern = pattern
        self.name = name
        self.special_tokens: dict[str, int] = specials
        self.merges: list[tuple[int, int, int]] = [tuple(m) for m in merges]  # type: ignore[misc]
        self._ranks: dict[bytes, int] = dict(ranks)
        self._decoder = decoder
        self._special_set = frozenset(specials)
        self._cache: dict[str, tuple[int, ...]] = {}

    # ------------------------------------------------------------------ properties
    @property
    def n_vocab(self) -> int:
        """Number of ids (largest id + 1), as in ``tiktoken.Encoding.n_vocab``."""
        return max(self._decoder) + 1

    @property
    def eot_token(self) -> int | None:
        """Id of ``<|endoftext|>``, or ``None`` when it is not a special token here."""
        return self.special_tokens.get(ENDOFTEXT)

    @property
    def special_tokens_set(self) -> frozenset[str]:
        return self._special_set

    @property
    def mergeable_ranks(self) -> dict[bytes, int]:
        """A copy of the bytes -> rank table (``tiktoken``'s ``mergeable_ranks``)."""
        return dict(self._ranks)

    def __repr__(self) -> str:
        return (
            f"BPETokenizer(name={self.name!r}, n_vocab={self.n_vocab}, "
            f"special_tokens={self.special_tokens})"
        )

    # ------------------------------------------------------------------ encoding
    def encode(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | Collection[str] = "all",
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> list[int]:
        """Encode ``text`` to token ids.

        Special-token handling follows ``tiktoken.Encoding.encode``: occurrences of allowed
        special tokens become their ids; an occurrence of a disallowed one raises
        ``ValueError``; ``disallowed_special=()`` encodes such text as ordinary text.
        Unlike ``tiktoken`` (whose default is ``allowed_special=set()``) the default here
        allows all of this tokenizer's special tokens, as the book's examples do with
        ``allowed_special={"<|endoftext|>"}``; pass ``allowed_special=set()`` for
        ``tiktoken``'s default.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        allowed = self._special_set if allowed_special == "all" else frozenset(allowed_special)
        if disallowed_special == "all":
            disallowed = self._special_set - allowed
        else:
            disallowed = frozenset(disallowed_special)
        if disallowed:
            match = _special_regex(disallowed).search(text)
            if match is not None:
                token = match.group()
                raise ValueError(
                    f"text contains the special token {token!r} at index {match.start()}, "
                    f"which is not allowed: pass allowed_special={{{token!r}}} to encode it as "
                    "the special token, or disallowed_special=() to encode it as ordinary text"
                )
        text = _fix_surrogates(text)
        active = allowed & self._special_set
        if not active:
            return self._encode_ordinary(text)
        out: list[int] = []
        start = 0
        for match in _special_regex(active).finditer(text):
            out += self._encode_ordinary(text[start : match.start()])
            out.append(self.special_tokens[match.group()])
            start = match.end()
        out += self._encode_ordinary(text[start:])
        return out

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` treating special-token text as ordinary text."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self._encode_ordinary(_fix_surrogates(text))

    def _encode_ordinary(self, text: str) -> list[int]:
        cache = self._cache
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        out: list[int] = []
        get = cache.get
        for piece in self._regex.findall(text):
            ids = get(piece)
            if ids is None:
                ids = self._encode_piece(piece.encode("utf-8"))
                cache[piece] = ids
            out += ids
        return out

    def _encode_piece(self, piece: bytes) -> tuple[int, ...]:
        """Byte-pair merge one pre-tokenized piece (lowest rank first, leftmost on ties)."""
        ranks = self._ranks
        rank = ranks.get(piece)
        if rank is not None:
            return (rank,)
        if len(piece) > _LONG_PIECE:
            return self._merge_heap(piece)
        return self._merge_linear(piece)

    def _merge_linear(self, piece: bytes) -> tuple[int, ...]:
        """The merge loop for short pieces: O(n) per merge, in C-level ``min``/``index``."""
        ranks = self._ranks
        get = ranks.get
        # bounds[j]..bounds[j+1] is part j; pair_ranks[j] ranks parts j and j+1 merged.
        bounds = list(range(len(piece) + 1))
        pair_ranks = [get(piece[i : i + 2], _INF) for i in range(len(piece) - 1)]
        while pair_ranks:
            best = min(pair_ranks)
            if best == _INF:
                break
            i = pair_ranks.index(best)
            del bounds[i + 1]
            del pair_ranks[i]
            if i > 0:
                pair_ranks[i - 1] = get(piece[bounds[i - 1] : bounds[i + 1]], _INF)
            if i < len(pair_ranks):
                pair_ranks[i] = get(piece[bounds[i] : bounds[i + 2]], _INF)
        return tuple(ranks[piece[bounds[j] : bounds[j + 1]]] for j in range(len(bounds) - 1))

    def _merge_heap(self, piece: bytes) -> tuple[int, ...]:
        """Same merge rule as :meth:`_merge_linear` with a heap and a linked list of parts,
        so a very long piece (say a megabyte without spaces) costs O(n log n), not O(n^2)."""
        get = self._ranks.get
        n = len(piece)
        nxt = list(range(1, n + 1))  # part starting at s ends at nxt[s]
        prv = list(range(-1, n - 1))  # previous part's start
        alive = [True] * n
        heap = [(r, s) for s in range(n - 1) if (r := get(piece[s : s + 2])) is not None]
        heapq.heapify(heap)
        while heap:
            rank, s = heapq.heappop(heap)
            if not alive[s]:
                continue
            mid = nxt[s]
            if mid >= n:
                continue
            end = nxt[mid]
            if get(piece[s:end]) != rank:
                continue  # stale entry: a neighbour was merged since it was pushed
            alive[mid] = False
            nxt[s] = end
            if end < n:
                prv[end] = s
                r = get(piece[s : nxt[end]])
                if r is not None:
                    heapq.heappush(heap, (r, s))
            p = prv[s]
            if p >= 0:
                r = get(piece[p:end])
                if r is not None:
                    heapq.heappush(heap, (r, p))
        ranks = self._ranks
        out = []
        s = 0
        while s < n:
            out.append(ranks[piece[s : nxt[s]]])
            s = nxt[s]
        return tuple(out)

    # ------------------------------------------------------------------ decoding
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Concatenate the bytes of ``ids`` (special tokens give their text)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()  # type: ignore[union-attr]
        decoder = self._decoder
        try:
            return b"".join([decoder[i] for i in ids])
        except KeyError as exc:
            raise ValueError(
                f"ids: token id {exc.args[0]!r} is not in this tokenizer's vocabulary "
                f"(ids go up to {self.n_vocab - 1}); were the ids made by another tokenizer?"
            ) from None
        except TypeError:
            bad = next(i for i in ids if not isinstance(i, int))
            raise TypeError(f"ids must be ints, got {type(bad).__name__} {bad!r}") from None

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """Decode ``ids`` to text; invalid UTF-8 (a multi-byte character cut in two) becomes
        U+FFFD with the default ``errors="replace"``, as in ``tiktoken``."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token."""
        return self.decode_bytes([token_id])

    # ------------------------------------------------------------------ training
    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        *,
        special_tokens: Sequence[str] = (ENDOFTEXT,),
        pattern: str = GPT2_PATTERN,
        verbose: bool = False,
    ) -> BPETokenizer:
        """Learn merges on ``text`` until the vocabulary holds ``vocab_size`` ids.

        The vocabulary is the 256 byte tokens, then one token per learned merge, then the
        ``special_tokens`` (ids at the end, like GPT-2's ``<|endoftext|>`` = 50256). Special
        token text inside ``text`` is cut out before counting. The most frequent adjacent
        pair wins each round; ties go to the smallest ``(left_id, right_id)``, so training
        is deterministic. If the text runs out of pairs first, a ``UserWarning`` says so
        and the vocabulary is smaller.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        specials = list(special_tokens)
        for s in specials:
            if not isinstance(s, str) or not s:
                raise TypeError(f"special_tokens must be non-empty strings, got {s!r}")
        if len(set(specials)) != len(specials):
            raise ValueError(f"special_tokens has duplicates: {specials}")
        vocab_size = check_int(
            "vocab_size",
            vocab_size,
            minimum=256 + len(specials),
            fix=f"the vocabulary needs the 256 byte tokens plus {len(specials)} special tokens",
        )
        n_merges = vocab_size - 256 - len(specials)
        pat = regex.compile(pattern)

        segments = _special_regex(frozenset(specials)).split(text) if specials else [text]
        piece_counts: Counter[str] = Counter()
        for segment in segments:
            piece_counts.update(pat.findall(_fix_surrogates(segment)))
        words = [list(p.encode("utf-8")) for p in piece_counts]
        freqs = list(piece_counts.values())

        stats: dict[tuple[int, int], int] = defaultdict(int)
        where: dict[tuple[int, int], set[int]] = defaultdict(set)
        for wi, word in enumerate(words):
            f = freqs[wi]
            for pair in itertools.pairwise(word):
                stats[pair] += f
                where[pair].add(wi)
        heap = [(-c, pair) for pair, c in stats.items()]
        heapq.heapify(heap)

        vocab = [bytes([b]) for b in range(256)]
        ranks = {tok: i for i, tok in enumerate(vocab)}
        merges: list[tuple[int, int, int]] = []
        while len(vocab) < 256 + n_merges:
            pair = None
            while heap:
                neg, candidate = heapq.heappop(heap)
                if stats.get(candidate, 0) == -neg > 0:
                    pair = candidate
                    break
            if pair is None:
                break
            a, b = pair
            merged = vocab[a] + vocab[b]
            new_id = ranks.get(merged)
            if new_id is None:  # the usual case; else the bytes already are a token
                new_id = len(vocab)
                vocab.append(merged)
                ranks[merged] = new_id
            merges.append((a, b, new_id))
            if verbose and len(merges) % 100 == 0:
                print(f"merge {len(merges)}: {merged!r} (count {-neg})")
            changed: set[tuple[int, int]] = set()
            for wi in where.pop(pair, ()):
                word = words[wi]
                new_word = _merge_word(word, a, b, new_id)
                if len(new_word) == len(word):
                    continue  # stale index: the pair left this word earlier
                f = freqs[wi]
                for p in itertools.pairwise(word):
                    stats[p] -= f
                    changed.add(p)
                for p in itertools.pairwise(new_word):
                    stats[p] += f
                    where[p].add(wi)
                    changed.add(p)
                words[wi] = new_word
            for p in changed:
                c = stats.get(p, 0)
                if c > 0:
                    heapq.heappush(heap, (-c, p))
                else:
                    stats.pop(p, None)
                    where.pop(p, None)
        if len(vocab) < 256 + n_merges:
            warnings.warn(
                f"BPETokenizer.train: the text has no more pairs to merge after "
                f"{len(vocab) - 256} new tokens; the vocabulary has "
                f"{len(vocab) + len(specials)} ids instead of vocab_size={vocab_size} "
                "(train on more text for a larger vocabulary)",
                stacklevel=2,
            )
        special_ids = {s: len(vocab) + i for i, s in enumerate(specials)}
        return cls(ranks, special_ids, pattern=pattern, merges=merges, name="bpe-trained")

    # ------------------------------------------------------------------ GPT-2 files
    @classmethod
    def from_gpt2(
        cls,
        vocab_path: str | os.PathLike[str] | None = None,
        encoder_path: str | os.PathLike[str] | None = None,
    ) -> BPETokenizer:
        """Load GPT-2's published ``vocab.bpe`` (merges) and ``encoder.json`` (ids).

        Without paths, both files are found with ``tinygrad_llm.data.fetch("gpt2-vocab")``
        (``TINYGRAD_LLM_DATA_DIR`` first, then the cache, then a download). The result
        encodes and decodes exactly like ``tiktoken.get_encoding("gpt2")``, with
        ``<|endoftext|>`` = 50256 as its special token.
        """
        if (vocab_path is None) != (encoder_path is None):
            raise ValueError(
                "from_gpt2: pass both vocab_path and encoder_path, or neither (then they are "
                f"fetched), got vocab_path={vocab_path!r}, encoder_path={encoder_path!r}"
            )
        if vocab_path is None or encoder_path is None:
            from tinygrad_llm.data.download import fetch

            folder = fetch("gpt2-vocab")
            vocab_path, encoder_path = folder / "vocab.bpe", folder / "encoder.json"
        ranks, specials, merges = _read_gpt2_files(Path(vocab_path), Path(encoder_path))
        return cls(ranks, specials, pattern=GPT2_PATTERN, merges=merges, name="gpt2")

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the tokenizer as JSON (tokens in GPT-2's printable byte form)."""
        data = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "name": self.name,
            "pattern": self.pattern,
            "tokens": {_to_printable(tok): rank for tok, rank in self._ranks.items()},
            "special_tokens": self.special_tokens,
            "merges": [list(m) for m in self.merges],
        }
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BPETokenizer:
        """Read a tokenizer written by :meth:`save`."""
        path = Path(path)
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"path: {path} is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(
                f"path: {path} is not a BPETokenizer file (expected a JSON object with "
                f"format={_FORMAT!r}); write one with BPETokenizer.save()"
            )
        if data.get("version") != _FORMAT_VERSION:
            raise ValueError(
                f"path: {path} has format version {data.get('version')!r}, this code reads "
                f"version {_FORMAT_VERSION}"
            )
        for key in ("pattern", "tokens", "special_tokens"):
            if key not in data:
                raise ValueError(f"path: {path} lacks the key {key!r}")
        ranks = {
            _from_printable(tok, f"{path} tokens"): rank for tok, rank in data["tokens"].items()
        }
        merges = [tuple(m) for m in data.get("merges", [])]
        return cls(
            ranks,
            data["special_tokens"],
            pattern=data["pattern"],
            merges=merges,  # type: ignore[arg-type]
            name=data.get("name", "bpe"),
        )

    def to_tiktoken(self, name: str | None = None) -> Any:
        """The same tokenizer as a ``tiktoken.Encoding`` (useful as a fast encoder)."""
        import tiktoken

        return tiktoken.Encoding(
            name or self.name,
            pat_str=self.pattern,
            mergeable_ranks=dict(self._ranks),
            special_tokens=dict(self.special_tokens),
        )


def _fix_surrogates(text: str) -> str:
    """Replace lone surrogates (not encodable as UTF-8) with U+FFFD, as ``tiktoken`` does."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _merge_word(word: list[int], a: int, b: int, new_id: int) -> list[int]:
    out: list[int] = []
    i, n = 0, len(word)
    while i < n:
        if i + 1 < n and word[i] == a and word[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def _read_gpt2_files(
    vocab_path: Path, encoder_path: Path
) -> tuple[dict[bytes, int], dict[str, int], list[tuple[int, int, int]]]:
    """Parse and cross-check GPT-2's ``vocab.bpe`` and ``encoder.json``."""
    for label, p in (("vocab_path", vocab_path), ("encoder_path", encoder_path)):
        if not p.is_file():
            raise FileNotFoundError(
                f"{label}: {p} does not exist; get GPT-2's files with "
                "tinygrad_llm.data.fetch('gpt2-vocab')"
            )
    try:
        encoder = json.loads(encoder_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"encoder_path: {encoder_path} is not valid JSON ({exc})") from None
    if not isinstance(encoder, dict):
        raise TypeError(f"encoder_path: {encoder_path} must hold a JSON object token -> id")
    specials: dict[str, int] = {}
    ranks: dict[bytes, int] = {}
    for token, tid in encoder.items():
        if token in (ENDOFTEXT, "<|startoftext|>"):
            specials[token] = tid
        else:
            ranks[_from_printable(token, f"encoder_path {encoder_path}")] = tid
    lines = vocab_path.read_text(encoding="utf-8").split("\n")
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    merges: list[tuple[int, int, int]] = []
    for lineno, line in enumerate(lines, start=2):
        if not line:
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise ValueError(
                f"vocab_path: {vocab_path} line {lineno}: expected two tokens separated by a "
                f"space, got {line!r}"
            )
        left = _from_printable(parts[0], f"vocab_path line {lineno}")
        right = _from_printable(parts[1], f"vocab_path line {lineno}")
        ids = [ranks.get(left), ranks.get(right), ranks.get(left + right)]
        expected = 256 + len(merges)
        if None in ids or ids[2] != expected:
            raise ValueError(
                f"vocab_path line {lineno}: merge {line!r} should create the token with id "
                f"{expected} in {encoder_path.name}, got {ids[2]}; vocab.bpe and encoder.json "
                "do not belong together"
            )
        merges.append((ids[0], ids[1], ids[2]))  # type: ignore[arg-type]
    return ranks, specials, merges
