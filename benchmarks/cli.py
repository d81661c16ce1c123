"""Run the benchmark and write its report (needs the `bench` extra).

    python -m benchmarks [--quick|--tiny] [--out DIR] [--policy FILE] [--data TEST.jsonl]

`safety-filter bench ARGS` hands its arguments to `main` when this package is importable (a
checkout or an unpacked sdist); the wheel does not ship it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

DEFAULT_OUT = "bench-report"


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a smaller run, under 2 minutes on 2 cores")
    size.add_argument(
        "--tiny", action="store_true", help="a few seconds of each section (tests; figures not meaningful)"
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=DEFAULT_OUT,
        help=f"report directory: summary.md, results.json, PNG plots (default: ./{DEFAULT_OUT})",
    )
    parser.add_argument("--policy", metavar="FILE", help="policy YAML (default: the shipped policy)")
    parser.add_argument(
        "--data",
        metavar="FILE",
        help="labelled JSON lines for the quality section (default: classifiers/data/splits/test.jsonl of a checkout)",
    )
    parser.add_argument(
        "--streams",
        metavar="FILE",
        help="blocked-stream set for the block lag (default: benchmarks/data/block_streams.jsonl of a checkout, "
        "else made from the shipped lists)",
    )
    parser.add_argument(
        "--sections",
        metavar="LIST",
        default=None,
        help="comma-separated subset of: latency,stages,overhead,http,streaming,quality (default: all)",
    )
    parser.add_argument(
        "--fp32-checkpoint",
        metavar="FILE",
        help="model_fp32.pt of `python -m classifiers.train`, for the fp32 comparison (default: its default --workdir)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_command)
    return parser


def run_command(args: argparse.Namespace) -> int:
    try:
        from benchmarks import SECTIONS, MissingDependency, run_bench
    except ImportError as exc:  # tqdm, or another package of the bench extra
        print(
            f"safety-filter bench: needs {exc.name}: install the bench extras with `pip install -e .[bench]`",
            file=sys.stderr,
        )
        return 2

    size = "tiny" if args.tiny else "quick" if args.quick else "full"
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip()) if args.sections else SECTIONS
    try:
        results = run_bench(
            args.out,
            size=size,
            policy=args.policy,
            data=args.data,
            streams=args.streams,
            sections=sections,
            progress=not args.no_progress,
            fp32_checkpoint=args.fp32_checkpoint,
        )
    except MissingDependency as exc:
        print(f"safety-filter bench: {exc}", file=sys.stderr)
        return 2
    print(
        f"\nsafety-filter bench ({results['meta']['size']}, {results['meta']['duration_seconds']:.0f} s) on "
        f"{results['machine']['cores']} cores, {results['machine']['cpu_model']}; engine: {results['engine']}"
    )
    for line in results["headline"]:
        print(line["text"].replace("**", ""))
    print(f"report: {args.out}/summary.md, results.json, {', '.join(results.get('plots', []))}")
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "python -m benchmarks") -> int:
    parser = configure(argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (OSError, ValueError) as exc:
        print(f"safety-filter bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
