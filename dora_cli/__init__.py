"""The dora command line."""
