"""Benchmarks of safety-filter, run from a checkout: `python -m benchmarks [--quick] [--out DIR]`.

The implementation is `safety_filter.benchmarking` (so `safety-filter bench` works without a
checkout); this package adds the data (`benchmarks/data/`) and the committed report
(`benchmarks/results/`). See benchmarks/README.md.
"""
