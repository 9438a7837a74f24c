"""Benchmarks users can run: ``python -m bench.bench_generation --help``."""
