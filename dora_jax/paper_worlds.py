"""World presets fitted to the paper's baseline curves: not generated yet (run papers.fit)."""

from typing import Any

PAPER_WORLDS: dict[str, dict[str, Any]] = {}
