"""`python -m benchmarks ...`: the benchmark's command line (also `safety-filter bench` in a checkout)."""

from benchmarks.cli import main

raise SystemExit(main())
