"""`dora_jax.world_spec.world_from`: the one parser of a world (experiment files and recipes)."""

from __future__ import annotations

import math

import pytest

from dora_jax import world as world_lib
from dora_jax.world_spec import WorldSpecError, world_from


def test_a_preset_name_and_a_table_on_top_of_a_preset():
    assert world_from("redundant") == (world_lib.preset("redundant"), "redundant")
    config, name = world_from({"preset": "reliable-prm", "alpha": 0.5})
    assert name == "reliable-prm+custom" and config.alpha == 0.5
    assert config.prm_mode == world_lib.preset("reliable-prm").prm_mode
    assert world_from({"alpha": 0.5})[1] == "paper-like+custom"


def test_inf_words_stand_for_infinity():
    """TOML has no infinity literal: "inf" and "infinity" become math.inf (alpha = ∞: every copy
    opens a new child, the "independent" preset)."""
    for word in ("inf", "infinity"):
        config, _ = world_from({"alpha": word})
        assert math.isinf(config.alpha)
    with pytest.raises(WorldSpecError, match="difficulty_a"):  # a field that refuses infinity
        world_from({"difficulty_a": "inf"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("atlantis", "unknown world preset"),
        (3, "a preset name or a table"),
        ({"colour": 1}, "unknown world field 'colour'"),
        ({"preset": 1}, "world preset must be a name"),
        ({"alpha": -1.0}, "alpha"),
    ],
)
def test_mistakes_are_one_line(value, message):
    with pytest.raises(WorldSpecError, match=message) as info:
        world_from(value)
    assert "\n" not in str(info.value)
