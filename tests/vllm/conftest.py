"""Fixtures for the real-vLLM backend tests: tiny models, one engine set, call counters.

These tests need vLLM, which lives in its own environment (`scripts/vllm_env.sh` makes
`.venv-vllm`); run them with

    .venv-vllm/bin/python -m pytest tests/vllm

(this file sets VLLM_ENABLE_V1_MULTIPROCESSING=0 and TORCHDYNAMO_DISABLE=1 when unset). Without
vLLM every engine test is skipped with the reason; `test_settings.py` runs everywhere. The tiny
models are built once into $DORA_TEST_MODELS (default `.cache/tiny-models`, git-ignored). ONE
engine set (policy + PRM + embedder, each with a 64 MiB KV cache) serves the whole session:
variants with other settings share its engines (`VLLMBackend(..., engines=...)`), so no second
engine ever starts.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import pathlib
import sys
import warnings

import pytest

# Before vLLM is imported anywhere: in-process engine core (3–5 s start instead of 30–60 s) and
# no torch.compile.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")

KV_CACHE_BYTES = 64 * 2**20
STEP_TOKENS = 24
SOLUTION_TOKENS = 160
VLLM_MISSING = importlib.util.find_spec("vllm") is None
SKIP_REASON = "vLLM is not installed here: run with the .venv-vllm python (scripts/vllm_env.sh)"


def _load_builder():
    # tests/ is not a package (pytest runs with --import-mode=importlib): load by path.
    path = pathlib.Path(__file__).with_name("tiny_models.py")
    spec = importlib.util.spec_from_file_location("dora_jax_test_tiny_models", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tiny = _load_builder()


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, pathlib.Path]:
    if VLLM_MISSING:
        pytest.skip(SKIP_REASON)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch/transformers internals while building
        return tiny.build_tiny_models()


@pytest.fixture(scope="session")
def settings(tiny_models):
    from backends.vllm_backend import VLLMSettings

    return VLLMSettings(
        policy=str(tiny_models["policy"]),
        prm=str(tiny_models["prm"]),
        embedder=str(tiny_models["embedder"]),
        system_prompt=tiny.SYSTEM_PROMPT,
        step_tokens=STEP_TOKENS,
        solution_tokens=SOLUTION_TOKENS,
        kv_cache_memory_bytes=KV_CACHE_BYTES,
        enforce_eager=True,
        distributed_executor_backend="uni",
        dtype="float32",
    )


@pytest.fixture(scope="session")
def backend(settings, tmp_path_factory):
    """The session's one engine set (policy, PRM, embedder)."""
    from backends.vllm_backend import VLLMBackend

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VLLM_CACHE_ROOT", str(tmp_path_factory.mktemp("vllm-cache")))
        # vLLM's start-up warns about its own internals (deprecated torch aliases, missing
        # Triton on CPU); the suite's warnings-as-errors is about the calls under test.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            engines = VLLMBackend(settings)
        yield engines


@pytest.fixture
def variant(backend):
    """`variant(**changes)`: a backend with changed settings on the session's engines."""
    from backends.vllm_backend import VLLMBackend

    def make(**changes):
        return VLLMBackend(
            dataclasses.replace(backend.settings, **changes), engines=backend.engines
        )

    return make


class CallCounter:
    """Wraps an engine and counts calls of its batch methods (everything else passes through)."""

    COUNTED = ("generate", "encode", "embed", "classify", "chat")

    def __init__(self, engine):
        self._engine = engine
        self.counts = dict.fromkeys(self.COUNTED, 0)

    def __getattr__(self, name):
        attribute = getattr(self._engine, name)
        if name not in self.COUNTED:
            return attribute

        def counted(*args, **kwargs):
            self.counts[name] += 1
            return attribute(*args, **kwargs)

        return counted


@pytest.fixture
def spied(backend):
    """A backend on the session's engines wrapped in `CallCounter`s: (backend, counters)."""
    from backends.vllm_backend import VLLMBackend

    counters = {role: CallCounter(engine) for role, engine in backend.engines.items()}
    return VLLMBackend(backend.settings, engines=counters), counters
