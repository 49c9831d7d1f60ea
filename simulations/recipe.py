"""Recipes: TOML files that fix a bench's settings (search, FLOPs model, backend).

    [search]                    # all optional; command-line flags override them
    dataset = "math500"         # a name (math500, aime2024, aime2025) or a JSONL path
    methods = ["rebase", "dora"]          # names, or tables {method = "dora", ...}
    budgets = [16, 32, 64, 128, 256]
    seeds = 5                   # seeds 0..S-1
    limit = 100                 # first P problems
    max_rounds = 40
    batch_size = 500            # problems per engine batch

    [models]                    # parameter counts for the FLOPs ledger (dora_jax.ledger)
    policy = 1.24e9
    prm = 7.62e9
    embedder = 5.68e8

    [sim]                       # --backend sim: the synthetic world (a preset or a table of
                                # WorldConfig fields: dora_jax.world_spec)
    world = "paper-like"

    [vllm]                      # --backend vllm: backends.vllm_backend.VLLMSettings fields
    policy = "meta-llama/Llama-3.2-1B-Instruct"
    ...

Relative model paths in [vllm] are resolved against the recipe's folder. Every mistake is one
`RecipeError` line.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from dora_jax import ledger as ledger_lib
from dora_jax import world as world_lib
from dora_jax import world_spec

SECTIONS = {
    "search": {"dataset", "methods", "budgets", "seeds", "limit", "max_rounds", "batch_size"},
    "models": {"policy", "prm", "embedder"},
    "sim": {"world"},
    "vllm": None,  # checked against VLLMSettings when the vllm backend is built
}
RECIPES = Path(__file__).parent / "recipes"


class RecipeError(ValueError):
    """A bad recipe (one line)."""


@dataclasses.dataclass(frozen=True)
class Recipe:
    path: Path | None
    search: dict[str, Any]
    models: ledger_lib.ModelSizes
    world: world_lib.WorldConfig
    world_name: str
    vllm: dict[str, Any]


def find(name_or_path: str | Path) -> Path:
    """A recipe file: a path, or the name of a shipped recipe (simulations/recipes/NAME.toml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = RECIPES / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in RECIPES.glob("*.toml")))
    raise RecipeError(f"recipe not found: {name_or_path} (shipped recipes: {names})")


def _world(value: Any) -> tuple[world_lib.WorldConfig, str]:
    try:
        return world_spec.world_from(value)
    except world_spec.WorldSpecError as error:
        raise RecipeError(f"[sim] {error}") from None


def load(name_or_path: str | Path | None) -> Recipe:
    """A recipe by path or shipped name (None: the defaults)."""
    if name_or_path is None:
        return Recipe(None, {}, ledger_lib.ModelSizes(), world_lib.WorldConfig(), "paper-like", {})
    path = find(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise RecipeError(f"{path} is not valid TOML: {error}") from None
    for section, value in data.items():
        if section not in SECTIONS:
            raise RecipeError(
                f"{path}: unknown section [{section}]; sections: {', '.join(SECTIONS)}"
            )
        if not isinstance(value, dict):
            raise RecipeError(f"{path}: [{section}] must be a table")
        allowed = SECTIONS[section]
        if allowed is None:
            continue
        unknown = sorted(set(value) - allowed)
        if unknown:
            keys = ", ".join(sorted(allowed))
            raise RecipeError(f"{path}: unknown key {unknown[0]!r} in [{section}]; keys: {keys}")
    models = data.get("models", {})
    for key, value in models.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise RecipeError(f"{path}: [models] {key} must be a positive number, got {value!r}")
    world, world_name = _world(data.get("sim", {}).get("world", "paper-like"))
    vllm = dict(data.get("vllm", {}))
    for key in ("policy", "prm", "embedder"):
        value = vllm.get(key)
        if isinstance(value, str) and value.startswith(("./", "../")):
            vllm[key] = str((path.parent / value).resolve())
    return Recipe(
        path=path,
        search=dict(data.get("search", {})),
        models=dataclasses.replace(ledger_lib.ModelSizes(), **models),
        world=world,
        world_name=world_name,
        vllm=vllm,
    )


def check_model_paths(settings: dict[str, Any]) -> None:
    """A model given as a filesystem path (absolute, ./, ../ or ~) must exist; hub ids pass."""
    for key in ("policy", "prm", "embedder"):
        value = settings.get(key)
        if isinstance(value, str) and value.startswith(("/", "./", "../", "~")):
            if not Path(value).expanduser().exists():
                raise RecipeError(f"{key} model path not found: {value}")
