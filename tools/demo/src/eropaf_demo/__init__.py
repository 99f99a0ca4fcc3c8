"""Eropaf demo: a seeded generator of a region's month of partner messages (`simulate`) and
the runner behind `make demo` that replays it against the local stack."""
