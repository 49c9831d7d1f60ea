"""One parser for a world specification: a preset name, or a table of `WorldConfig` fields.

Experiment files (`dora simulate --config`) and bench recipes (`[sim] world = ...`) both name the
synthetic world this way::

    world = "redundant"            # a preset (dora_jax.world.PRESETS)
    [world]                        # or a table of WorldConfig fields,
    preset = "paper-like"          # optionally on top of a preset (default paper-like)
    alpha = 0.5
    max_depth = "inf"              # "inf" / "infinity" stand for math.inf (TOML has no inf literal)

Pure: values in, a frozen config out; every mistake is one `WorldSpecError` line.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from dora_jax import world as world_lib

DEFAULT_PRESET = "paper-like"
_INFINITY_WORDS = ("inf", "infinity")


class WorldSpecError(ValueError):
    """A bad world specification (one line)."""


def world_from(value: Any) -> tuple[world_lib.WorldConfig, str]:
    """The world named by `value` and its display name.

    Args:
      value: a preset name, or a mapping of WorldConfig fields with an optional `preset` key.

    Returns:
      (config, name): `name` is the preset's, or `"<preset>+custom"` for a table.

    Raises:
      WorldSpecError: an unknown preset or field, or a field value WorldConfig refuses.
    """
    if isinstance(value, str):
        try:
            return world_lib.preset(value), value
        except ValueError as error:
            raise WorldSpecError(str(error).splitlines()[0]) from None
    if not isinstance(value, dict):
        raise WorldSpecError(f"world must be a preset name or a table, got {value!r}")
    fields = dict(value)
    name = fields.pop("preset", DEFAULT_PRESET)
    if not isinstance(name, str):
        raise WorldSpecError(f"world preset must be a name, got {name!r}")
    base, _ = world_from(name)
    known = {f.name for f in dataclasses.fields(world_lib.WorldConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise WorldSpecError(
            f"unknown world field {unknown[0]!r}; fields: preset, {', '.join(sorted(known))}"
        )
    fields = {k: (math.inf if v in _INFINITY_WORDS else v) for k, v in fields.items()}
    try:
        return dataclasses.replace(base, **fields), f"{name}+custom"
    except (TypeError, ValueError) as error:
        raise WorldSpecError(str(error).splitlines()[0]) from None
