"""VLLMBackend's pure parts, without vLLM: the module imports, settings, flags of a completion.

These run in every environment (the main one has no vLLM).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from backends.vllm_backend import VLLMSettings, _step_sample, _unit_rows


def test_module_import_does_not_import_vllm():
    code = "import sys, backends.vllm_backend; assert 'vllm' not in sys.modules, 'vllm imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_defaults_are_the_papers():
    s = VLLMSettings(policy="p", prm="q")
    assert (s.temperature, s.top_p, s.step_tokens, s.solution_tokens, s.stop) == (
        0.8,
        1.0,
        256,
        2048,
        "\n\n",
    )
    assert s.scorer == "prm" and s.step_tag == "<extra_0>"


@pytest.mark.parametrize(
    "changes",
    [
        {"scorer": "prm", "prm": None},
        {"scorer": "majority"},
        {"embedder_engine": "bge"},
        {"step_tokens": 0},
        {"solution_tokens": 0},
        {"stop": ""},
    ],
)
def test_invalid_settings_are_rejected(changes):
    with pytest.raises(ValueError):
        VLLMSettings(**{"policy": "p", "prm": "q", **changes})


def test_engine_kwargs_share_settings_and_let_each_engine_override():
    s = VLLMSettings(
        policy="p",
        prm="q",
        kv_cache_memory_bytes=2**28,
        enforce_eager=True,
        max_model_len=4096,
        distributed_executor_backend="uni",
        prm_engine_kwargs={"kv_cache_memory_bytes": 2**29, "max_model_len": 5000},
    )
    policy, prm, embed = (s.engine_kwargs(role) for role in ("policy", "prm", "embed"))
    assert policy["kv_cache_memory_bytes"] == 2**28 and policy["max_model_len"] == 4096
    assert "runner" not in policy and "gpu_memory_utilization" not in policy
    assert prm["runner"] == "pooling" and prm["kv_cache_memory_bytes"] == 2**29
    assert prm["max_model_len"] == 5000
    assert embed["runner"] == "pooling" and "max_model_len" not in embed
    assert all(k["distributed_executor_backend"] == "uni" for k in (policy, prm, embed))
    with pytest.raises(ValueError):
        s.engine_kwargs("critic")


@dataclasses.dataclass
class Completion:
    """The fields of vllm's CompletionOutput that the backend reads."""

    text: str
    token_ids: tuple[int, ...]
    finish_reason: str | None
    stop_reason: int | str | None = None


@pytest.mark.parametrize(
    ("completion", "remaining", "expected"),
    [
        # stopped at the delimiter: the step ends, the solution goes on
        (Completion("a\n\n", (1, 2), "stop", "\n\n"), 100, (False, False)),
        # EOS: finished, not truncated (stop_reason None) ...
        (Completion("a", (1, 9), "stop", None), 100, (True, False)),
        # ... or a stop token of the generation config (stop_reason an int)
        (Completion("a", (1, 7), "stop", 7), 100, (True, False)),
        # the per-step cap: neither (the search may prune a runaway step)
        (Completion("abc", (1, 2, 3), "length"), 100, (False, False)),
        # the per-solution cap: finished and truncated
        (Completion("abc", (1, 2, 3), "length"), 3, (True, True)),
        # the delimiter on the last allowed token: still the cap, truncated
        (Completion("a\n\n", (1, 2), "stop", "\n\n"), 2, (True, True)),
        # EOS on the last allowed token: a complete solution
        (Completion("a", (1, 9), "stop", None), 2, (True, False)),
        # nothing generated (immediate EOS): finished
        (Completion("", (9,), "stop", None), 100, (True, False)),
    ],
)
def test_completion_flags(completion, remaining, expected):
    sample = _step_sample(completion, remaining)
    assert (sample.finished, sample.truncated) == expected
    assert sample.tokens == len(completion.token_ids) and sample.text == completion.text


def test_unit_rows():
    rows = _unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 0.0]])
    assert rows.dtype == np.float32
