"""backends: see README.md (architecture)."""
