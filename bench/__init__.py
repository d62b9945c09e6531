"""Benchmarks: ``python -m bench [--quick] [--out DIR]`` runs every ``bench_*.py``."""
