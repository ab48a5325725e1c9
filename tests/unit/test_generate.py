"""Generation: token/text helpers, greedy and sampled decoding, filters, eos handling,
streaming, modes, and the KV cache (same tokens as without it, sliding window)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_llm as tg
from tinygrad_llm import Tensor, default_dtype, nn
from tinygrad_llm.config import GPTConfig
from tinygrad_llm.generate import (
    apply_top_k,
    apply_top_p,
    generate,
    generate_stream,
    generate_text_simple,
    sample_next_token,
    text_to_token_ids,
    token_ids_to_text,
)
from tinygrad_llm.random import manual_seed

TINY = GPTConfig(vocab_size=11, context_length=6, emb_dim=8, n_heads=2, n_layers=2,
                 drop_rate=0.0)


def tiny_model(seed=0, dtype=np.float64, **changes) -> nn.GPTModel:
    manual_seed(seed)
    with default_dtype(dtype):
        return nn.GPTModel(TINY.replace(**changes))


class CharTokenizer:
    """A character-level tokenizer: all the generation code may assume is encode/decode."""

    def __init__(self, alphabet: str):
        self.chars = sorted(set(alphabet))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def encode(self, text):
        return [self.index[c] for c in text]

    def decode(self, ids):
        return "".join(self.chars[i] for i in ids)


@pytest.fixture(scope="module")
def gpt2_tokenizer():
    tiktoken = pytest.importorskip("tiktoken")
    try:
        return tiktoken.get_encoding("gpt2")
    except Exception as e:  # offline without TIKTOKEN_CACHE_DIR
        pytest.skip(f"tiktoken gpt2 files unavailable: {e}")


class NextIdModel(nn.Module):
    """Scripted logits: always predicts (last token + 1) % vocab (for eos tests)."""

    def __init__(self, vocab=10):
        super().__init__()
        self.vocab = vocab

    def forward(self, idx):
        idx = np.asarray(idx)
        logits = np.zeros(idx.shape + (self.vocab,))
        np.put_along_axis(logits, ((idx + 1) % self.vocab)[..., None], 5.0, axis=-1)
        return Tensor(logits)


# -- text helpers ----------------------------------------------------------------------------


def test_text_round_trip_with_any_tokenizer():
    tok = CharTokenizer("abcdefgh ")
    ids = text_to_token_ids("bad cafe", tok)
    assert ids.shape == (1, 8) and ids.dtype == np.int64
    assert token_ids_to_text(ids, tok) == "bad cafe"
    assert token_ids_to_text(Tensor(ids), tok) == "bad cafe"
    assert token_ids_to_text(ids[0], tok) == "bad cafe"
    assert token_ids_to_text(np.concatenate([ids, ids]), tok) == ["bad cafe", "bad cafe"]
    with pytest.raises(ValueError, match=r"\(T,\) or \(B, T\)"):
        token_ids_to_text(ids[None], tok)


def test_text_helpers_with_tiktoken(gpt2_tokenizer):
    ids = text_to_token_ids("Every effort moves you", gpt2_tokenizer)
    np.testing.assert_array_equal(ids, [[6109, 3626, 6100, 345]])  # the book's ids
    assert text_to_token_ids("Hi<|endoftext|>", gpt2_tokenizer)[0, -1] == 50256
    assert token_ids_to_text(ids, gpt2_tokenizer) == "Every effort moves you"


# -- filters and sampling ----------------------------------------------------------------------


def test_top_k_on_hand_made_logits():
    logits = np.array([[1.0, 5.0, 3.0, 2.0], [0.0, 9.0, 0.0, 9.0]])
    out = apply_top_k(logits, 2)
    np.testing.assert_array_equal(out[0], [-np.inf, 5.0, 3.0, -np.inf])
    np.testing.assert_array_equal(out[1], [-np.inf, 9.0, -np.inf, 9.0])
    np.testing.assert_array_equal(apply_top_k(logits, 3)[1], logits[1])  # ties with k-th kept
    np.testing.assert_array_equal(apply_top_k(logits, 10), logits)


def test_top_p_on_hand_made_logits():
    probs = np.array([0.15, 0.5, 0.05, 0.3])  # sorted: 0.5, 0.3, 0.15, 0.05
    logits = np.log(probs)[None, :] + 2.0  # a shift does not change the softmax
    kept = {p: np.isfinite(apply_top_p(logits, p)[0]) for p in (0.3, 0.79, 0.85, 0.99, 1.0)}
    np.testing.assert_array_equal(kept[0.3], [False, True, False, False])  # top token always
    np.testing.assert_array_equal(kept[0.79], [False, True, False, True])
    np.testing.assert_array_equal(kept[0.85], [True, True, False, True])
    np.testing.assert_array_equal(kept[0.99], [True, True, True, True])
    np.testing.assert_array_equal(kept[1.0], [True, True, True, True])
    rows = np.stack([np.log(probs), np.log(probs[::-1])])  # per row, vectorised
    np.testing.assert_array_equal(np.isfinite(apply_top_p(rows, 0.79)),
                                  [[False, True, False, True], [True, False, True, False]])


def test_sampling_follows_the_filtered_distribution():
    probs = np.array([0.1, 0.4, 0.2, 0.3])
    logits = np.tile(np.log(probs), (40_000, 1))  # one row per draw, vectorised
    draws = sample_next_token(logits, temperature=1.0, rng=np.random.default_rng(0))
    np.testing.assert_allclose(np.bincount(draws, minlength=4) / len(draws), probs, atol=0.01)
    top2 = sample_next_token(logits, 1.0, top_k=2, rng=np.random.default_rng(1))
    assert set(np.unique(top2)) == {1, 3}
    np.testing.assert_allclose((top2 == 1).mean(), 0.4 / 0.7, atol=0.01)
    # temperature 0 is argmax whatever the filters; top_k=1 samples the argmax too
    assert np.all(sample_next_token(logits[:3], 0.0, top_k=3, top_p=0.1) == 1)
    assert np.all(sample_next_token(logits[:50], 2.0, top_k=1) == 1)
    # a low temperature sharpens, a high one flattens
    cold = sample_next_token(logits, 0.2, rng=np.random.default_rng(2))
    hot = sample_next_token(logits, 5.0, rng=np.random.default_rng(2))
    assert (cold == 1).mean() > 0.7 > 0.4 > (hot == 1).mean()


# -- generation ---------------------------------------------------------------------------------


def test_greedy_is_deterministic_and_matches_the_book_loop(backend):
    model = tiny_model(1, dtype=np.float32)
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    out = generate(model, prompt, max_new_tokens=8)
    assert out.shape == (2, 11) and out.dtype == np.int64
    np.testing.assert_array_equal(out[:, :3], prompt)
    np.testing.assert_array_equal(out, generate(model, prompt, max_new_tokens=8))
    np.testing.assert_array_equal(out, generate_text_simple(model, prompt, 8, context_size=6))
    np.testing.assert_array_equal(out, generate(model, prompt, 8, use_cache=False))
    # inputs as a Tensor, a list, or one 1-D prompt
    np.testing.assert_array_equal(generate(model, Tensor(prompt), 8), out)
    np.testing.assert_array_equal(generate(model, [1, 2, 3], 8), out[:1])


@settings(max_examples=12)
@given(seed=st.integers(0, 2**16), batch=st.integers(1, 3), t=st.integers(1, 6),
       new=st.integers(1, 9), window=st.integers(2, 6), sampled=st.booleans(),
       qkv_bias=st.booleans())
def test_kv_cache_gives_the_same_tokens(seed, batch, t, new, window, sampled, qkv_bias):
    """With or without the cache: identical tokens, including past a full window."""
    model = tiny_model(seed, qkv_bias=qkv_bias)
    prompt = np.random.default_rng(seed).integers(0, 11, (batch, t))
    kw = {"temperature": 1.3, "top_k": 6, "top_p": 0.9, "seed": seed} if sampled else {}
    with_cache = generate(model, prompt, new, context_size=window, use_cache=True, **kw)
    without = generate(model, prompt, new, context_size=window, use_cache=False, **kw)
    np.testing.assert_array_equal(with_cache, without)
    if not sampled:
        np.testing.assert_array_equal(with_cache, generate_text_simple(model, prompt, new, window))


def test_cache_prefills_once_then_feeds_one_token_and_slides_when_full():
    model = tiny_model(2)
    seen = []
    original = model.forward

    def spy(idx, kv_cache=None, last_only=False):
        seen.append((np.asarray(idx).shape[1], kv_cache is not None, last_only))
        return original(idx, kv_cache=kv_cache, last_only=last_only)

    model.forward = spy
    generate(model, np.array([[1, 2]]), max_new_tokens=3)
    assert seen == [(2, True, True), (1, True, True), (1, True, True)]
    seen.clear()
    # context 6, prompt 5: prefill 5, one token (window now full), then a re-prefill of
    # the last 6 tokens per step: the documented sliding behaviour
    generate(model, np.array([[1, 2, 3, 4, 5]]), max_new_tokens=4)
    assert [s[0] for s in seen] == [5, 1, 6, 6]
    seen.clear()
    generate(model, np.array([[1, 2, 3, 4, 5, 6, 7, 8]]), max_new_tokens=2, use_cache=False)
    assert seen == [(6, False, True), (6, False, True)]  # cropped to the window


def test_seeded_sampling_is_reproducible():
    model = tiny_model(3)
    prompt = np.array([[1, 2], [3, 4]])
    kw = {"max_new_tokens": 10, "temperature": 1.5, "top_k": 8}
    a = generate(model, prompt, seed=7, **kw)
    np.testing.assert_array_equal(a, generate(model, prompt, seed=7, **kw))
    assert not np.array_equal(a, generate(model, prompt, seed=8, **kw))
    manual_seed(11)  # seed=None draws from the package RNG, as torch.manual_seed does
    b = generate(model, prompt, **kw)
    manual_seed(11)
    np.testing.assert_array_equal(b, generate(model, prompt, **kw))


def test_each_row_stops_at_eos_and_is_padded():
    model = NextIdModel(vocab=10)
    out = generate(model, np.array([[1], [5]]), max_new_tokens=20, context_size=4, eos_id=7)
    np.testing.assert_array_equal(out, [[1, 2, 3, 4, 5, 6, 7], [5, 6, 7, 7, 7, 7, 7]])
    steps = list(generate_stream(model, np.array([[5]]), 20, context_size=4, eos_id=7))
    assert [s.tolist() for s in steps] == [[6], [7]]  # the stream ends at eos
    no_eos = generate(model, np.array([[5]]), 4, context_size=4)
    np.testing.assert_array_equal(no_eos, [[5, 6, 7, 8, 9]])


def test_eos_with_a_real_model_and_cache():
    model = tiny_model(4)
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    free = generate(model, prompt, 6)
    eos = int(free[0, 3])  # row 0's first greedy token
    out = generate(model, prompt, 6, eos_id=eos)
    assert np.all(out[0, 3:] == eos)
    row1 = free[1, 3:]
    stop = int(np.argmax(row1 == eos)) if np.any(row1 == eos) else len(row1)
    np.testing.assert_array_equal(out[1, 3:3 + stop + 1], free[1, 3:3 + stop + 1])
    assert np.all(out[1, 3 + stop:] == eos)


def test_stream_yields_tokens_and_generate_is_built_on_it():
    model = tiny_model(5)
    prompt = np.array([[1, 2, 3], [3, 2, 1]])
    stream = generate_stream(model, prompt, max_new_tokens=5, temperature=0.9, seed=1)
    steps = list(stream)
    assert len(steps) == 5 and all(s.shape == (2,) and s.dtype == np.int64 for s in steps)
    np.testing.assert_array_equal(generate(model, prompt, 5, temperature=0.9, seed=1),
                                  np.concatenate([prompt, np.stack(steps, 1)], 1))
    np.testing.assert_array_equal(generate(model, prompt, 0), prompt)


def test_modes_restored_and_no_graph():
    model = tiny_model(6, drop_rate=0.3)
    model.train()
    model.trf_blocks[0].eval()  # a mixed state is restored exactly
    before = [m.training for m in model.modules()]
    stream = generate_stream(model, np.array([[1, 2]]), 3)
    next(stream)
    assert [m.training for m in model.modules()] == before  # also between streamed tokens
    assert tg.is_grad_enabled()
    list(stream)
    generate(model, np.array([[1, 2]]), 3)
    assert [m.training for m in model.modules()] == before
    assert all(p.grad is None for p in model.parameters())
    # dropout is off during generation: greedy tokens are the same every time
    np.testing.assert_array_equal(generate(model, np.array([[1, 2]]), 5),
                                  generate(model, np.array([[1, 2]]), 5))


@pytest.mark.parametrize("kwargs, message", [
    ({"context_size": 7}, "context_length=6"),
    ({"context_size": 0}, "context_size"),
    ({"temperature": -1.0}, "temperature"),
    ({"top_k": 0}, "top_k"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"max_new_tokens": -1}, "max_new_tokens"),
])
def test_argument_errors_are_raised_at_call_time(kwargs, message):
    model = tiny_model()
    args = {"max_new_tokens": 3} | kwargs
    with pytest.raises(ValueError, match=message):
        generate_stream(model, np.array([[1, 2]]), **args)  # before any iteration


def test_prompt_errors():
    model = tiny_model()
    with pytest.raises(ValueError, match="empty"):
        generate(model, np.zeros((1, 0), dtype=np.int64), 3)
    with pytest.raises(TypeError, match="integers"):
        generate(model, np.array([[1.5]]), 3)
    with pytest.raises(ValueError, match="vocab_size=11"):
        generate(model, np.array([[12]]), 3)
    with pytest.raises(ValueError, match="context_size"):
        generate(NextIdModel(), np.array([[1]]), 3)  # no cfg: the window must be given


# -- the KV cache's stacked Q/K/V weights --------------------------------------------------


def test_cache_stacks_qkv_once_per_sequence_and_restacks_when_weights_change():
    model = tiny_model(7, qkv_bias=True)
    att = model.trf_blocks[0].att
    cache = model.make_kv_cache(1)
    layer = cache.layer(0)
    w, b = layer.fused_qkv(att.W_query, att.W_key, att.W_value)
    np.testing.assert_array_equal(w.data, np.concatenate(
        [att.W_query.weight.data, att.W_key.weight.data, att.W_value.weight.data]))
    np.testing.assert_array_equal(b.data[:8], att.W_query.bias.data)
    cache.advance(1)
    assert layer.fused_qkv(att.W_query, att.W_key, att.W_value)[0] is w  # mid-sequence: reused
    att.W_key.weight.data = att.W_key.weight.data * 2.0  # a new array: stacked again
    w2, _ = layer.fused_qkv(att.W_query, att.W_key, att.W_value)
    np.testing.assert_array_equal(w2.data[8:16], att.W_key.weight.data)
    att.W_value.weight.data[...] += 1.0  # changed in place: seen from the next sequence on
    cache.reset()
    w3, _ = layer.fused_qkv(att.W_query, att.W_key, att.W_value)
    np.testing.assert_array_equal(w3.data[16:], att.W_value.weight.data)


def test_generation_follows_weights_changed_between_calls():
    """In-place updates (as an optimizer makes them) between two generate calls are used."""
    model = tiny_model(8, dtype=np.float32)
    prompt = np.array([[1, 2, 3]])
    before = generate(model, prompt, 3)
    for p in model.parameters():
        p.data[...] = np.random.default_rng(1).standard_normal(p.shape)
    after = generate(model, prompt, 3)
    np.testing.assert_array_equal(after, generate(model, prompt, 3, use_cache=False))
    assert not np.array_equal(before, after)


def test_kv_cache_with_lora_projections_gives_the_same_tokens():
    """LoRA-wrapped projections are not stacked (their update would be lost): same tokens."""
    model = tiny_model(9)
    nn.replace_linear_with_lora(model, rank=2, alpha=2.0)
    for name, p in model.named_parameters():
        if name.endswith("lora.B"):
            p.data[...] = np.random.default_rng(2).standard_normal(p.shape)
    att = model.trf_blocks[0].att
    assert model.make_kv_cache(1).layer(0).fused_qkv(att.W_query, att.W_key, att.W_value) \
        is None
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(generate(model, prompt, 5),
                                  generate(model, prompt, 5, use_cache=False))


def test_greedy_argmax_of_float32_logits_equals_float64():
    logits = np.random.default_rng(3).standard_normal((4, 50257)).astype(np.float32)
    logits[1, [7, 9]] = logits[1].max() + 1.0  # a tie: the first index wins in both
    np.testing.assert_array_equal(sample_next_token(logits),
                                  np.argmax(logits.astype(np.float64), axis=-1))
    assert sample_next_token(logits)[1] == 7
