"""simulations: see README.md (architecture)."""
