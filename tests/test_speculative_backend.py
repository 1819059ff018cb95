"""The transformers backend on tiny randomly initialised Llama models (2 layers, hidden 32, no
download): cached logits against a fresh pass, the vocabulary cut or padded to the tokenizer's,
`generate` for every method on CPU (and CUDA under the gpu marker), drafter invariance of strong
GLS, the study's command line on saved models, and clear errors for bad input."""

from __future__ import annotations

import json

import pytest
import torch

import dsc
from dsc.speculative import METHODS, SharedNoise, generate

pytest.importorskip("transformers")

from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config  # noqa: E402

from dsc.speculative import loading, study  # noqa: E402
from dsc.speculative.backend import CausalLM  # noqa: E402
from dsc.speculative.verifiers import SINGLE_DRAFT_METHODS  # noqa: E402

VOCAB = 256  # the byte tokenizer's


def tiny_model(seed: int, vocab: int = VOCAB + 8) -> LlamaForCausalLM:
    """A 2-layer Llama whose output head is ``vocab`` wide (by default wider than the tokenizer,
    as Qwen2.5's heads are)."""
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    return LlamaForCausalLM(config).eval()


def byte_tokenizer(order=sorted) -> PreTrainedTokenizerFast:
    """A byte-level tokenizer (256 tokens, no merges): every text encodes. ``order`` arranges the
    byte symbols into ids, so two orders give two different tokenizers of one size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {c: i for i, c in enumerate(order(pre_tokenizers.ByteLevel.alphabet()))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=backend)


def saved(tmp_path, name, model, tokenizer):
    path = tmp_path / name
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_cached_tail_logits_equal_a_fresh_forward_pass():
    """Rounds of growing rows with different cached lengths (none, some, all) and counts."""
    lm = CausalLM(tiny_model(0), VOCAB)
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(VOCAB, (3, 20), generator=g)
    fresh = lm.logits(tokens)
    for lengths, count in (([5, 7, 4], 2), ([9, 7, 6], 3), ([12, 8, 11], 1), ([12, 8, 11], 4), ([20, 9, 16], 2)):
        tail = lm.tail_logits(tokens, torch.tensor(lengths), count)
        assert tail.shape == (3, count, VOCAB)
        for i, n in enumerate(lengths):
            assert torch.allclose(tail[i], fresh[i, n - count:n], atol=1e-5)
    assert lm.cache.hits > 0


def test_vocabulary_is_cut_or_padded_to_the_tokenizers():
    model = tiny_model(0, vocab=40)
    tokens = torch.randint(40, (2, 6), generator=torch.Generator().manual_seed(2))
    raw = model(input_ids=tokens).logits
    assert torch.equal(CausalLM(model, 32).logits(tokens), raw[..., :32])
    padded = CausalLM(model, 48).logits(tokens)
    assert torch.equal(padded[..., :40], raw) and bool((padded[..., 40:] == float("-inf")).all())
    probs = dsc.speculative.probabilities(padded[:, -1])
    assert bool((probs[:, 40:] == 0).all()) and torch.allclose(probs.sum(-1), torch.ones(2, dtype=torch.float64))


def run(method, target, drafter, temperatures=(1.0, 1.5), seed=0, tokens=7, length=3):
    models = study.Models(target, 20, 1.0, list(temperatures), drafter=drafter)
    device = target.device
    prompts = torch.randint(VOCAB, (3, 6), generator=torch.Generator().manual_seed(3)).to(device)
    k = 1 if method in SINGLE_DRAFT_METHODS else 2
    return generate(method, prompts, torch.tensor([6, 4, 5], device=device), tokens, k, length, models.draft_next,
                    models.target_block, SharedNoise(seed))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_every_method_generates_on_the_models_device(device):
    target = CausalLM(tiny_model(0).to(device), VOCAB)
    drafter = CausalLM(tiny_model(1, vocab=VOCAB).to(device), VOCAB)  # another head width, reconciled
    for method in METHODS:
        out = run(method, target, drafter)
        assert out.tokens.shape == (3, 7) and out.tokens.device.type == device
        assert int(out.tokens.min()) >= 0 and int(out.tokens.max()) < VOCAB
        assert bool((out.block_efficiency >= 1).all()) and bool((out.block_efficiency <= 4).all())
        if method != "gls_strong":  # its min over the rejected drafts' rows too may end a block
            # the target as its own drafter at its own temperature: every draft token is accepted
            same = run(method, target, CausalLM(target.model, VOCAB), temperatures=(1.0,))
            assert bool((same.emitted == 4 * same.target_calls).all()), method


def test_strong_gls_output_does_not_depend_on_the_drafter():
    target = CausalLM(tiny_model(0), VOCAB)
    drafters = CausalLM(target.model, VOCAB), CausalLM(tiny_model(1), VOCAB)  # the target itself, another net
    outputs = [run("gls_strong", target, drafter, seed=4, tokens=10) for drafter in drafters]
    assert torch.equal(outputs[0].tokens, outputs[1].tokens)
    assert bool((outputs[0].accepted > outputs[1].accepted).all())  # the drafts still differ


def test_study_runs_on_saved_models(tmp_path):
    tokenizer = byte_tokenizer()
    target = saved(tmp_path, "target", tiny_model(0), tokenizer)
    drafter = saved(tmp_path, "drafter", tiny_model(1, vocab=VOCAB), tokenizer)
    out = tmp_path / "out"
    study.main(["--target", str(target), "--drafter", str(drafter), "--device", "cpu", "--methods", "gls,specinfer",
                "--drafts", "2", "--seeds", "1", "--tokens", "3", "--mixed", "", "--out", str(out)])
    result = json.loads((out / "results.json").read_text())
    assert [(r["method"], r["drafts"]) for r in result["summary"]] == [("gls", 2), ("specinfer", 2)]
    assert all(len(r["text"]) == len(study.PROMPTS) for r in result["runs"])


def no_model_load(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a model was loaded")
    monkeypatch.setattr(loading, "load_model", fail)
    monkeypatch.setattr(study, "load_models", fail)


def test_bad_models_are_clear_errors_before_any_model_call(tmp_path, monkeypatch):
    no_model_load(monkeypatch)
    with pytest.raises(dsc.ConfigError, match="no such file"):
        loading.resolve(tmp_path / "missing")
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(dsc.ConfigError, match="gguf"):
        loading.resolve(tmp_path / "weights.bin")
    target = saved(tmp_path, "target", tiny_model(0), byte_tokenizer())
    other = saved(tmp_path, "other", tiny_model(1), byte_tokenizer(order=lambda a: sorted(a, reverse=True)))
    with pytest.raises(dsc.ConfigError, match="different tokenizers"):
        loading.load_tokenizer_pair(target, other)
    for argv in (["--target", str(target), "--drafter", str(other)], ["--target", str(tmp_path / "missing")],
                 ["--temperature", "0"], ["--draft-temperature", "-1"], ["--top-k", "0"], ["--dtype", "float64"],
                 ["--target", str(target), "--chat-template"], ["--mixed", "2:1"]):
        with pytest.raises(SystemExit):
            study.main([*argv, "--device", "cpu", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_a_gguf_architecture_transformers_cannot_load_is_a_clear_error(tmp_path):
    gguf = pytest.importorskip("gguf")
    import numpy as np

    writer = gguf.GGUFWriter(str(tmp_path / "model.gguf"), "rwkv7")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    source = loading.resolve(tmp_path / "model.gguf")
    with pytest.raises(dsc.ConfigError, match="rwkv7"):
        loading.load_tokenizer(source)
    with pytest.raises(dsc.ConfigError, match="rwkv7"):
        loading.load_model(source, torch.device("cpu"), torch.float32)


def test_bad_settings_are_clear_errors():
    lm = CausalLM(tiny_model(0), VOCAB)
    for top_k, temperatures in ((50, [0.0]), (50, [1.0, -2.0]), (0, [1.0]), (2.5, [1.0])):
        with pytest.raises(dsc.ConfigError):
            study.Models(lm, top_k, temperatures[0], temperatures[1:] or [1.0])
    with pytest.raises(dsc.ConfigError, match="chat template"):
        study.encode_prompts(byte_tokenizer(), ["hi"], chat_template=True)
    with pytest.raises(dsc.ConfigError, match="dtype"):
        loading.resolve_dtype("int8")
    with pytest.raises(dsc.InvalidArgumentError, match="count"):
        lm.tail_logits(torch.zeros(1, 3, dtype=torch.long), torch.tensor([2]), count=3)
    sliding = Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, use_sliding_window=True, sliding_window=8,
                          max_window_layers=1)
    from transformers import Qwen2ForCausalLM

    with pytest.raises(dsc.ConfigError, match="full attention"):
        CausalLM(Qwen2ForCausalLM(sliding), 64)
