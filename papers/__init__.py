"""papers: see README.md (architecture)."""
