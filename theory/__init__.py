"""theory: see README.md (architecture)."""
