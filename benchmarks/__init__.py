"""The benchmark of safety-filter, run from a checkout: what the filter costs and what it catches.

    python -m benchmarks [--quick|--tiny] [--out DIR]      # or `safety-filter bench ...` in a checkout

    from benchmarks import run_bench
    results = run_bench("out-dir", size="quick")           # or "full", "tiny"

writes `summary.md`, `results.json` and PNG plots into the directory and returns the results.
Sections: `latency` (detectors and engine per text), `stages` (cost of each stage per chat turn,
escalation rate, fp32 comparison), `overhead` (in-process middleware cost per chat turn), `http`
(proxy under uvicorn, closed-loop load vs direct), `streaming` (TTFT added, block lag),
`quality` (against peers on held-out labelled data). It is not part of the wheel; the data it
reads (`benchmarks/data/`, `classifiers/data/splits/`) and the committed report
(`benchmarks/results/`) live next to it. See benchmarks/README.md.
"""

from benchmarks.run import SECTIONS, MissingDependency, run_bench

__all__ = ["SECTIONS", "MissingDependency", "run_bench"]
