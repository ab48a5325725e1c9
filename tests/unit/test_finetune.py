"""Fine-tuning (chapters 6 and 7): the classifier's rules and training, instruction
training, answer generation and extraction, and the judges (offline; Ollama against a fake
local server)."""

from __future__ import annotations

import io as stdio
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from tinygrad_llm import GPTConfig, GPTModel
from tinygrad_llm.data import DataLoader, Splits, format_input
from tinygrad_llm.finetune import (
    JudgeUnavailableError,
    OllamaJudge,
    TokenF1Judge,
    calc_accuracy_loader,
    calc_loss_loader_classifier,
    classifier_logits,
    classify_review,
    clean_response,
    create_instruction_dataloader,
    create_spam_dataloaders,
    default_lr,
    generate_model_scores,
    generate_responses,
    judge_prompt,
    last_token_positions,
    load_base_model,
    load_finetuned,
    parse_score,
    pretrain_on_texts,
    response_prompt,
    save_finetuned,
    train_classifier_simple,
)
from tinygrad_llm.nn import Module
from tinygrad_llm.nn.heads import prepare_classifier
from tinygrad_llm.nn.lora import replace_linear_with_lora
from tinygrad_llm.optim import AdamW
from tinygrad_llm.random import manual_seed
from tinygrad_llm.tensor import Tensor
from tinygrad_llm.train import calc_loss_loader, run_training

PAD = 0
CFG = GPTConfig(vocab_size=20, context_length=8, emb_dim=16, n_heads=2, n_layers=2,
                drop_rate=0.0)


class ByteTokenizer:
    """UTF-8 bytes as token ids, 256 = <|endoftext|>: offline and tiny."""

    eot_token = 256
    n_vocab = 257

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids) -> str:
        return bytes(int(i) for i in ids if int(i) < 256).decode("utf-8", "replace")


class WordIds:
    """'3 5 7' -> [3, 5, 7]."""

    def encode(self, text: str) -> list[int]:
        return [int(w) for w in text.split()]


class ArrayDataset:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def _separable(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 uses tokens 2..10, class 0 tokens 11..19; lengths 2..8, right-padded with 0."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    lengths = rng.integers(2, 9, n)
    low = np.where(y == 1, 2, 11)[:, None]
    x = low + rng.integers(0, 9, (n, 8))
    x[np.arange(8) >= lengths[:, None]] = PAD
    return x.astype(np.int64), y.astype(np.int64)


def _classifier(cfg=CFG, seed=0, train_last_blocks=1):
    manual_seed(seed)
    return prepare_classifier(GPTModel(cfg), 2, train_last_blocks)


# ---------------------------------------------------------------------------------------
# classification


def test_freezing_rule_of_prepare_classifier():
    model = _classifier(CFG.replace(n_layers=3, tie_weights=True))
    assert model.out_head.weight.shape == (2, 16) and model.out_head.bias is not None
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = {n for n, _ in model.named_parameters()
                if n.startswith(("trf_blocks.2.", "final_norm.", "out_head."))}
    assert trainable == expected
    assert model.cfg.tie_weights is False  # the new head shares nothing with tok_emb
    assert model(np.array([[1, 2, 3]])).shape == (1, 3, 2)
    none = prepare_classifier(GPTModel(CFG), 3, train_last_blocks=0)
    assert {n for n, p in none.named_parameters() if p.requires_grad} == {
        "final_norm.scale", "final_norm.shift", "out_head.weight", "out_head.bias"}
    with pytest.raises(ValueError, match="train_last_blocks must be in 0..2"):
        prepare_classifier(GPTModel(CFG), 2, train_last_blocks=3)
    with pytest.raises(ValueError, match="num_classes must be an int >= 2"):
        prepare_classifier(GPTModel(CFG), 1)


def test_last_token_positions_on_hand_made_batch():
    ids = np.array([[5, 6, 0, 0], [5, 6, 7, 8], [0, 0, 0, 0], [5, 0, 6, 0]])
    np.testing.assert_array_equal(last_token_positions(ids, pad_token_id=0), [1, 3, 0, 2])


def test_last_real_pooling_ignores_padding_and_the_book_rule_does_not():
    model = _classifier().eval()
    short = np.array([[3, 4, 5]])
    padded = np.array([[3, 4, 5, PAD, PAD, PAD]])
    a = classifier_logits(model, short, PAD).data
    b = classifier_logits(model, padded, PAD).data
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a, model(short).data[:, -1, :], rtol=1e-5, atol=1e-6)
    book = classifier_logits(model, padded, PAD, pooling="last").data
    np.testing.assert_array_equal(book, model(padded).data[:, -1, :])
    assert not np.allclose(book, b)
    with pytest.raises(ValueError, match="pooling: got 'first'"):
        classifier_logits(model, short, PAD, pooling="first")


def test_accuracy_and_loss_loaders_on_a_scripted_model():
    class Parity(Module):
        """Predicts class (last real token % 2) with logits +-5."""

        def forward(self, ids):
            ids = np.asarray(ids)
            logits = np.stack([(ids % 2 == 0) * 5.0, (ids % 2 == 1) * 5.0], axis=-1)
            return Tensor(logits.astype(np.float32))

    x = np.array([[3, 0, 0], [4, 4, 0], [2, 3, 5], [6, 0, 0]])
    y = np.array([1, 1, 1, 0])  # the second is wrong: its last real token is even
    loader = DataLoader(ArrayDataset(x, y), batch_size=2)
    model = Parity()
    assert calc_accuracy_loader(loader, model, pad_token_id=0) == 0.75
    assert calc_accuracy_loader(loader, model, num_batches=1, pad_token_id=0) == 0.5
    # the book's rule reads position 2: pads (even -> class 0) for rows 0 and 3
    assert calc_accuracy_loader(loader, model, pad_token_id=0, pooling="last") == 0.5
    loss = calc_loss_loader_classifier(loader, model, pad_token_id=0)
    expected = (3 * np.log1p(np.exp(-5.0)) + np.log1p(np.exp(5.0))) / 4
    assert loss == pytest.approx(expected, rel=1e-5)


def test_classifier_learns_a_separable_task():
    """Stated: training the last block + final norm + head of a 2-layer, 32-dim GPT (the
    book's rule) reaches >= 95% held-out accuracy on the token-range task in 96 steps
    (6 epochs x 16 batches of 16). Measured: 98-100% over five initialisation seeds."""
    x, y = _separable(256, seed=1)
    xt, yt = _separable(64, seed=2)
    train = DataLoader(ArrayDataset(x, y), batch_size=16, shuffle=True, drop_last=True, seed=0)
    test = DataLoader(ArrayDataset(xt, yt), batch_size=32)
    model = _classifier(CFG.replace(emb_dim=32))
    before = calc_accuracy_loader(test, model, pad_token_id=PAD)
    opt = AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    out = stdio.StringIO()
    losses, val_losses, train_accs, val_accs, seen = train_classifier_simple(
        model, train, test, opt, num_epochs=6, eval_freq=16, eval_iter=2,
        pad_token_id=PAD, progress=False, file=out)
    assert seen == 6 * 256 and len(train_accs) == len(val_accs) == 6 and len(losses) == 6
    assert "Ep 1 (Step 000000)" in out.getvalue() and "Validation accuracy" in out.getvalue()
    acc = calc_accuracy_loader(test, model, pad_token_id=PAD)
    assert acc >= 0.95, (before, acc)
    assert val_losses[-1] < val_losses[0]
    assert not model.training  # left in eval mode


def test_classify_review_pads_truncates_and_names_the_class():
    model = _classifier()
    tok = WordIds()
    label = classify_review("3 4 5", model, tok, max_length=6, pad_token_id=PAD)
    assert label in ("spam", "not spam")
    # last_real: the padding does not matter; a text longer than the context is truncated
    assert classify_review("3 4 5", model, tok, max_length=None, pad_token_id=PAD) == label
    long = " ".join(["3", "4", "5"] + ["7"] * 20)
    assert classify_review(long, model, tok, max_length=50, pad_token_id=PAD) in (
        "spam", "not spam")
    assert classify_review("3 4 5", model, tok, 6, PAD, labels=("ham", "spam")) in (
        "ham", "spam")
    with pytest.raises(ValueError, match="text: expected a non-empty str"):
        classify_review("", model, tok)


def test_spam_dataloaders_pad_to_the_longest_training_message():
    splits = Splits(train=[("1 2 3", 0), ("4 5", 1)], val=[("6 7 8 9 10", 1)],
                    test=[("1", 0)])
    train, val, test = create_spam_dataloaders(splits, WordIds(), batch_size=2,
                                               pad_token_id=PAD)
    xb, yb = next(iter(val))
    np.testing.assert_array_equal(xb, [[6, 7, 8]])  # truncated to the longest train (3)
    x, _ = next(iter(test))
    np.testing.assert_array_equal(x, [[1, PAD, PAD]])
    train2, _, _ = create_spam_dataloaders(splits, WordIds(), 2, context_length=2,
                                           pad_token_id=PAD)
    assert train2.dataset.max_length == 2


def test_classifier_checkpoint_round_trip(tmp_path):
    model = _classifier().eval()
    ids = np.array([[3, 4, 5, 6]])
    path = save_finetuned(tmp_path / "clf.safetensors", model,
                          {"task": "classification", "pooling": "last_real", "max_length": 6})
    loaded, info = load_finetuned(path)
    assert info["num_classes"] == 2 and info["max_length"] == 6
    np.testing.assert_array_equal(loaded(ids).data, model(ids).data)
    replace_linear_with_lora(model, 2, 2)
    with pytest.raises(ValueError, match="merge_lora"):
        save_finetuned(tmp_path / "x.safetensors", model, {"task": "classification"})


def test_load_base_model_builds_loads_and_refuses_a_classifier(tmp_path):
    from tinygrad_llm import io

    base = dict(context_length=8, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.1)
    model, source = load_base_model(base, 20, n_layers=1)
    assert source == "built" and model.cfg.n_layers == 1 and model.cfg.vocab_size == 20
    assert default_lr(source) == 1e-3 and default_lr("gpt2") == 5e-5
    io.save_checkpoint(tmp_path / "lm.safetensors", model)
    loaded, source = load_base_model(base, checkpoint=tmp_path / "lm.safetensors")
    assert source == "checkpoint" and loaded.cfg == model.cfg
    path = save_finetuned(tmp_path / "clf.safetensors", _classifier(),
                          {"task": "classification"})
    with pytest.raises(ValueError, match="is a classifier checkpoint; start from a language"):
        load_base_model(base, checkpoint=path)
    with pytest.raises(ValueError, match="at most one of gpt2 and checkpoint"):
        load_base_model(base, gpt2="124M", checkpoint=path)


# ---------------------------------------------------------------------------------------
# instruction fine-tuning


RECORDS = [{"instruction": f"Repeat the word {w}.", "input": "", "output": w}
           for w in ("cat", "horse", "sun", "zebra", "ox", "owl", "tiger", "ice")]
BYTE_CFG = GPTConfig(vocab_size=257, context_length=256, emb_dim=32, n_heads=2, n_layers=1,
                     drop_rate=0.0)


def test_instruction_batches_on_hand_made_records():
    """The loader collates like the book: eot appended once, later padding -100."""
    data = [{"instruction": "ab", "input": "", "output": "c"},
            {"instruction": "ab", "input": "", "output": "cdef"}]
    tok = ByteTokenizer()
    inputs, targets = next(iter(create_instruction_dataloader(data, tok, batch_size=2,
                                                              pad_token_id=256)))
    n0 = len(tok.encode(response_prompt(data[0]) + "c"))  # the header is in the training text
    assert inputs.shape == (2, n0 + 3)
    assert targets[0, n0 - 1] == 256 and (targets[0, n0:] == -100).all()
    assert (inputs[0, n0:] == 256).all() and (targets[1] != -100).all()
    masked = next(iter(create_instruction_dataloader(data, tok, batch_size=2, pad_token_id=256,
                                                     mask_instruction=True)))[1]
    prompt = len(tok.encode(format_input(data[0])))
    assert (masked[:, : prompt - 1] == -100).all() and masked[0, prompt - 1] != -100


def test_instruction_loss_falls_on_a_tiny_set():
    tok = ByteTokenizer()
    loader = create_instruction_dataloader(RECORDS, tok, batch_size=4, shuffle=True,
                                           drop_last=True, allowed_max_length=256,
                                           pad_token_id=256)
    inputs, targets = next(iter(loader))
    assert inputs.shape == targets.shape and (targets == -100).any()
    manual_seed(0)
    model = GPTModel(BYTE_CFG)
    before = calc_loss_loader(loader, model)
    opt = AdamW(model.parameters(), lr=3e-3)
    history, finished = run_training(model, loader, loader, opt, num_epochs=15, eval_freq=10,
                                     eval_iter=2, progress=False)
    after = calc_loss_loader(loader, model)
    assert finished and after < 0.6 * before, (before, after)


class Scripted(Module):
    """A 'model' that writes a fixed byte string after any prompt (then end-of-text)."""

    def __init__(self, script: str, prompt_len: int):
        super().__init__()
        self.ids = list(script.encode()) + [256]
        self.prompt_len = prompt_len
        self.cfg = BYTE_CFG.replace(context_length=512)

    def forward(self, ids):
        ids = np.asarray(ids)
        k = min(ids.shape[1] - self.prompt_len, len(self.ids) - 1)
        logits = np.zeros((ids.shape[0], ids.shape[1], 257), dtype=np.float32)
        logits[:, -1, self.ids[k]] = 1.0
        return Tensor(logits)


def test_generate_responses_extracts_and_writes_json(tmp_path):
    tok = ByteTokenizer()
    entry = {"instruction": "Name the capital of France.", "input": "", "output": "Paris"}
    prompt_len = len(tok.encode(response_prompt(entry)))
    path = tmp_path / "out" / "answers.json"
    cases = [("Paris.", "Paris."),  # a plain answer, cut at end-of-text
             ("  Paris\n\n### Instruction:\nagain", "Paris"),  # cut at the next header
             ("### Response:\nParis", "Paris")]  # the header written again: dropped
    for script, expected in cases:
        model = Scripted(script, prompt_len)
        results = generate_responses(model, tok, [entry], max_new_tokens=40, path=path,
                                     progress=False)
        saved = json.loads(path.read_text())
        assert saved == results and saved[0]["output"] == "Paris"
        assert saved[0]["model_response"] == expected
    assert clean_response("Paris<|endoftext|>junk") == "Paris"
    assert not list(path.parent.glob(".*.tmp"))


def test_pretrain_on_texts_lowers_the_loss():
    manual_seed(0)
    model = GPTModel(BYTE_CFG.replace(context_length=16))
    history = pretrain_on_texts(model, ["abcabcabc abc"] * 30, ByteTokenizer(), num_epochs=4,
                                batch_size=4, lr=3e-3, progress=False)
    assert history.val_losses[-1] < history.val_losses[0]


# ---------------------------------------------------------------------------------------
# judges


def test_token_f1_judge_on_hand_made_pairs():
    judge = TokenF1Judge()
    entry = {"instruction": "x", "output": "Paris is the capital of France."}
    assert judge.score(entry, "Paris is the capital of France") == 100.0
    assert judge.score(entry, "London.") == 0.0
    assert judge.score(entry, "") == 0.0
    # answer [capital, is, paris] vs reference [paris, is, capital, of, france]:
    # P = 3/3, R = 3/5, F1 = 2PR/(P+R) = 0.75
    assert judge.score(entry, "The capital is Paris.") == pytest.approx(75.0)
    scores = generate_model_scores([{**entry, "model_response": "The capital is Paris."},
                                    {**entry, "model_response": "London"}],
                                   progress=False)
    assert scores == pytest.approx([75.0, 0.0])
    with pytest.raises(KeyError, match="model_response"):
        generate_model_scores([entry], progress=False)


def test_parse_score():
    assert parse_score("85") == 85.0
    assert parse_score("Score: 92/100") == 92.0
    assert parse_score("150") == 100.0
    assert parse_score("no idea") is None


class _FakeOllama(BaseHTTPRequestHandler):
    replies: list[str] = []
    requests: list[dict] = []
    models = ["llama3:latest"]
    stream = False

    def log_message(self, *args):
        pass

    def _send(self, body: bytes, status: int = 200):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/api/tags":
            self._send(json.dumps({"models": [{"name": m} for m in self.models]}).encode())
        else:
            self._send(b'{"error": "not found"}', 404)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        if body["model"] + ":latest" not in self.models:
            self._send(b'{"error": "model not found"}', 404)
            return
        text = type(self).replies.pop(0)
        if self.stream:  # what Ollama sends without "stream": false: one JSON per line
            half = len(text) // 2
            lines = [{"message": {"content": text[:half]}}, {"message": {"content": text[half:]},
                                                             "done": True}]
            self._send(b"\n".join(json.dumps(x).encode() for x in lines))
        else:
            self._send(json.dumps({"message": {"role": "assistant", "content": text},
                                   "done": True}).encode())


@pytest.fixture
def fake_ollama():
    _FakeOllama.replies, _FakeOllama.requests = [], []
    _FakeOllama.models, _FakeOllama.stream = ["llama3:latest"], False
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOllama)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/chat"
    server.shutdown()
    server.server_close()


def test_ollama_judge_against_a_local_fake_server(fake_ollama):
    judge = OllamaJudge(model="llama3", url=fake_ollama, timeout=10)
    entry = {"instruction": "Name the capital of France.", "input": "", "output": "Paris"}
    entries = [{**entry, "model_response": r} for r in ("Paris", "Lyon", "Rome")]
    _FakeOllama.replies = ["95", "I would give it 20.", "no idea"]
    out = stdio.StringIO()
    scores = generate_model_scores(entries, judge=judge, progress=False, file=out)
    assert scores == [95.0, 20.0]
    assert "Could not read a score for entry 2" in out.getvalue()
    req = _FakeOllama.requests[0]
    assert req["model"] == "llama3" and req["options"]["temperature"] == 0
    assert req["messages"][0]["content"] == judge_prompt(entry, "Paris")
    assert "score the model response `Paris`" in req["messages"][0]["content"]
    _FakeOllama.stream = True
    _FakeOllama.replies = ["87"]
    assert judge.score(entry, "Paris") == 87.0


def test_ollama_judge_missing_model_and_unreachable_server(fake_ollama):
    with pytest.raises(JudgeUnavailableError, match="ollama pull mistral"):
        OllamaJudge(model="mistral", url=fake_ollama).check()
    with pytest.raises(JudgeUnavailableError, match="HTTP 404"):
        OllamaJudge(model="mistral", url=fake_ollama).query("hi")
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    judge = OllamaJudge(url=f"http://127.0.0.1:{port}/api/chat", timeout=5)
    with pytest.raises(JudgeUnavailableError) as err:
        generate_model_scores([{"instruction": "x", "output": "y", "model_response": "y"}],
                              judge=judge, progress=False)
    msg = str(err.value)
    assert f"127.0.0.1:{port}" in msg and "ollama serve" in msg and "--judge offline" in msg
    with pytest.raises(ValueError, match="url must be"):
        OllamaJudge(url="localhost:11434")
