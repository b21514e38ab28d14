"""gridkit benchmarks, each side by side with a peer tool; run ``python -m benchmarks``."""
