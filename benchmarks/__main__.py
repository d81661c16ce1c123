"""`python -m benchmarks ...` from a checkout: the same entry as `safety-filter bench`."""

from safety_filter.bench import main

raise SystemExit(main())
