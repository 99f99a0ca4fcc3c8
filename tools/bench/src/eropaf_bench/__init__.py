"""Eropaf benchmarks: `python -m eropaf_bench` (what `make bench` runs)."""
