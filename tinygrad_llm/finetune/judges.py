"""The judges that score a model's answers to instruction records (the book's section 7.8).

Scoring (section 7.8): a judge rates each answer 0-100 against the reference answer:

* ``TokenF1Judge`` (offline, the default): the SQuAD token F1 of the answer against the
  reference, times 100; deterministic, needs no model (definition in its docstring).
* ``OllamaJudge``: asks a model served by a local Ollama server (the book uses Llama 3 8B)
  with the book's prompt; off unless chosen; talks HTTP through urllib alone.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from tinygrad_llm.finetune.instruct import _Count

# ---------------------------------------------------------------------------------------
# Judges: score an answer 0-100 against the reference (section 7.8)


class JudgeUnavailableError(RuntimeError):
    """The judge's model server cannot be reached or lacks the model; the message says
    how to fix it."""


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = re.compile(r"[^\w\s]")


def normalize_answer(text: str) -> list[str]:
    """SQuAD's answer normalisation, as tokens: lower-case, punctuation removed, the
    articles a/an/the removed, split on whitespace."""
    text = _PUNCT.sub(" ", text.lower())
    return _ARTICLES.sub(" ", text).split()


class TokenF1Judge:
    """The offline judge: 100 x the SQuAD token F1 of the answer against the reference.

    Both texts are normalised (``normalize_answer``); with ``c`` the number of tokens they
    share counted as multisets, precision ``P = c / len(answer)``, recall
    ``R = c / len(reference)`` and the score is ``100 * 2PR / (P + R)`` (0 when ``c`` is 0;
    100 when both are empty). It measures word overlap only: a correct answer in other
    words scores low, a fluent wrong one that reuses the reference's words scores high.
    Deterministic and needs no model; its numbers are not comparable with an LLM judge's.
    """

    name = "token-f1"

    def score(self, entry: Mapping[str, Any], response: str) -> float:
        ref = normalize_answer(str(entry["output"]))
        ans = normalize_answer(response or "")
        if not ref or not ans:
            return 100.0 if ref == ans else 0.0
        common = sum((Counter(ref) & Counter(ans)).values())
        if common == 0:
            return 0.0
        precision, recall = common / len(ans), common / len(ref)
        return 100.0 * 2 * precision * recall / (precision + recall)

    def __repr__(self) -> str:
        return "TokenF1Judge()"


def judge_prompt(entry: Mapping[str, Any], response: str) -> str:
    """The book's scoring prompt (section 7.8)."""
    from tinygrad_llm.data import format_input

    return (f"Given the input `{format_input(entry)}` "
            f"and correct output `{entry['output']}`, "
            f"score the model response `{response}`"
            f" on a scale from 0 to 100, where 100 is the best score. "
            f"Respond with the integer number only.")


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_score(text: str) -> float | None:
    """The first number in a judge's reply, clipped to 0..100; None when there is none."""
    m = _NUMBER.search(text or "")
    return None if m is None else float(min(100.0, max(0.0, float(m.group()))))


class OllamaJudge:
    """Scores answers with a model served by Ollama (https://ollama.com), as the book does.

    Sends the book's prompt to ``url`` (Ollama's chat API) with temperature 0 and a fixed
    seed, and reads the first number of the reply. Only the standard library is used.
    ``check()`` (called by ``generate_model_scores``) raises ``JudgeUnavailableError`` with
    the fix when no server answers or the model is not pulled.
    """

    name = "ollama"

    def __init__(self, model: str = "llama3", url: str = "http://localhost:11434/api/chat",
                 timeout: float = 120.0, seed: int = 123, num_ctx: int = 2048) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"OllamaJudge: url must be http(s)://host:port/api/chat, "
                             f"got {url!r}")
        self.model, self.url, self.timeout = model, url, timeout
        self.seed, self.num_ctx = seed, num_ctx
        self.base = f"{parts.scheme}://{parts.netloc}"

    def _unreachable(self, err: Exception) -> JudgeUnavailableError:
        reason = getattr(err, "reason", err)
        return JudgeUnavailableError(
            f"OllamaJudge: no Ollama server answers at {self.base} ({reason}). Start one "
            f"with `ollama serve` and get the model with `ollama pull {self.model}` "
            f"(https://ollama.com), give another address with --ollama-url, or score "
            f"offline with --judge offline")

    def _request(self, path_or_url: str, payload: dict | None, timeout: float) -> bytes:
        url = path_or_url if "://" in path_or_url else self.base + path_or_url
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        req = urllib.request.Request(url, data=data, headers={"Content-Type":
                                                              "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as e:
            body = e.read().decode("utf-8", "replace")[:300]
            raise JudgeUnavailableError(
                f"OllamaJudge: {url} answered HTTP {e.code}: {body} (is the model pulled? "
                f"`ollama pull {self.model}`)") from None
        except (urllib.error.URLError, OSError) as e:
            raise self._unreachable(e) from None

    def check(self) -> None:
        """Raise ``JudgeUnavailableError`` unless the server runs and has the model."""
        raw = self._request("/api/tags", None, timeout=min(self.timeout, 10.0))
        try:
            names = [m.get("name", "") for m in json.loads(raw).get("models", [])]
        except (json.JSONDecodeError, AttributeError):
            raise JudgeUnavailableError(f"OllamaJudge: {self.base}/api/tags did not answer "
                                        f"like Ollama: {raw[:200]!r}") from None
        wanted = self.model if ":" in self.model else f"{self.model}:latest"
        if self.model not in names and wanted not in names:
            raise JudgeUnavailableError(
                f"OllamaJudge: the server at {self.base} has no model {self.model!r} "
                f"(it has: {', '.join(names) or 'none'}); run `ollama pull {self.model}`")

    def query(self, prompt: str) -> str:
        """The model's reply to one user message (a streamed reply is joined)."""
        payload = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                   "stream": False,
                   "options": {"seed": self.seed, "temperature": 0, "num_ctx": self.num_ctx}}
        raw = self._request(self.url, payload, self.timeout).decode("utf-8", "replace")
        parts = []
        for line in raw.splitlines():  # one JSON object, or one per line when streamed
            if line.strip():
                try:
                    parts.append(json.loads(line).get("message", {}).get("content", ""))
                except json.JSONDecodeError:
                    raise JudgeUnavailableError(f"OllamaJudge: {self.url} sent something "
                                                f"that is not JSON: {line[:200]!r}") from None
        return "".join(parts)

    def score(self, entry: Mapping[str, Any], response: str) -> float | None:
        """0..100 from the model's reply, or None when the reply holds no number."""
        return parse_score(self.query(judge_prompt(entry, response)))

    def __repr__(self) -> str:
        return f"OllamaJudge(model={self.model!r}, url={self.url!r})"


def get_judge(name: str = "offline", **kwargs: Any):
    """``"offline"`` -> TokenF1Judge(); ``"ollama"`` -> OllamaJudge(**kwargs)."""
    if name in ("offline", "token-f1"):
        return TokenF1Judge()
    if name == "ollama":
        return OllamaJudge(**kwargs)
    raise ValueError(f"judge: got {name!r}, expected 'offline' or 'ollama'")


def generate_model_scores(entries: Sequence[Mapping[str, Any]],
                          json_key: str = "model_response", judge=None,
                          progress: bool = True, file=None) -> list[float]:
    """Score each entry's ``json_key`` answer with ``judge`` (default the offline one):
    the list of scores, skipping replies with no number (each reported), as the book's
    ``generate_model_scores``. The judge's ``check()`` runs first when it has one."""
    judge = judge if judge is not None else TokenF1Judge()
    if hasattr(judge, "check"):
        judge.check()
    missing = [i for i, e in enumerate(entries) if json_key not in e]
    if missing:
        raise KeyError(f"generate_model_scores: entries {missing[:5]} have no {json_key!r}; "
                       f"run generate_responses first or pass json_key=")
    out = file or sys.stdout
    scores: list[float] = []
    bar = _Count("scored", len(entries), enabled=progress)
    for i, entry in enumerate(entries):
        s = judge.score(entry, entry[json_key])
        if s is None:
            print(f"Could not read a score for entry {i}", file=out)
        else:
            scores.append(float(s))
        bar.update(i + 1)
    bar.close()
    return scores


__all__ = [
    "JudgeUnavailableError",
    "OllamaJudge",
    "TokenF1Judge",
    "generate_model_scores",
    "get_judge",
    "judge_prompt",
    "normalize_answer",
    "parse_score",
]
