"""The `safety-filter` command: scan texts, serve the filtering proxy, evaluate, manage lists.

Every subcommand goes through the same `Engine` as the middleware. Exit codes: 0 on success
(whatever the verdicts), 2 on usage, input or policy errors.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from safety_filter import __version__
from safety_filter.engine import Engine
from safety_filter.errors import ConfigurationError, SafetyFilterError
from safety_filter.policy import ROLES

JSONL_BATCH = 32


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (SafetyFilterError, OSError) as exc:
        print(f"safety-filter: error: {_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


class UsageError(SafetyFilterError):
    """Bad input on the command line or in a file it names: printed without a traceback."""


def _message(exc: BaseException) -> str:
    """`file: reason` for an OSError on a user's file (not `[Errno 2] ...`), else the message."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror.lower()}"
    return str(exc)


class _Parser(argparse.ArgumentParser):
    """A subcommand parser that rejects unknown flags itself, so the error shows ITS usage.

    (Plain argparse hands a subcommand's leftovers back to the top level, whose usage says
    nothing about the subcommand's flags.)
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


class _Defaults(argparse.HelpFormatter):
    """Shows `(default: X)` after an option's help when it has a meaningful default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            action.default not in (None, False, [], argparse.SUPPRESS)
            and action.option_strings
            and "%(default)" not in text
        ):
            text += " (default: %(default)s)"
        return text


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def _count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{count}: at least 1")
    return count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="safety-filter", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    scan = sub.add_parser(
        "scan", help="print the verdict for a text (or for JSON lines with --jsonl)", formatter_class=_Defaults
    )
    _policy_options(scan)
    scan.add_argument("--role", choices=ROLES, default="prompt", help="check as a prompt or a completion")
    scan.add_argument(
        "--jsonl", action="store_true", help='read JSON lines {"text": ..., "role": ...} and write one verdict per line'
    )
    scan.add_argument(
        "input", nargs="?", metavar="TEXT|FILE", help="the text (or, with --jsonl, the file); stdin when absent"
    )
    scan.set_defaults(run=_scan)

    serve = sub.add_parser(
        "serve",
        help="run the filtering reverse proxy (in front of --upstream, or the demo model)",
        formatter_class=_Defaults,
    )
    _policy_options(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default=8000, help="port to listen on")
    serve.add_argument(
        "--upstream",
        metavar="URL",
        help="OpenAI-compatible server to protect; without it, a built-in demo model answers",
    )
    serve.add_argument(
        "--workers",
        type=_count,
        default=1,
        help="worker processes, each with its own engine and model (multi-core hosts)",
    )
    serve.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the upstream")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level",
    )
    serve.set_defaults(run=_serve)

    evaluate = sub.add_parser(
        "eval", help="precision, recall, F1, AUPRC per category on labelled JSON lines", formatter_class=_Defaults
    )
    _policy_options(evaluate)
    evaluate.add_argument("data", metavar="DATA.jsonl", help='lines {"text", "label" or "labels", "role"?, "lang"?}')
    evaluate.add_argument("--report", metavar="FILE", help="also write the report as JSON")
    evaluate.set_defaults(run=_eval)

    from safety_filter.blocklist_cli import add_blocklist_parser

    add_blocklist_parser(sub)

    bench = sub.add_parser(
        "bench",
        help="benchmark latency, throughput, streaming and quality (from a checkout; see benchmarks/README.md)",
        add_help=False,
        prefix_chars="\0",  # every argument, --help included, goes to the benchmark's own parser
    )
    bench.add_argument("bench_args", nargs="*")
    bench.set_defaults(run=_bench)
    return parser


def _bench(args: argparse.Namespace) -> int:
    """`safety-filter bench ARGS`: `python -m benchmarks ARGS`, which only a checkout (or an sdist) has."""
    try:
        from benchmarks.cli import main as bench_main
    except ImportError as exc:
        if (exc.name or "benchmarks").partition(".")[0] == "benchmarks":
            problem = "the benchmark is not part of the installed package; run it from a checkout"
        else:
            problem = f"the benchmark needs {exc.name}"
        hint = "pip install -e '.[bench]' && python -m benchmarks --quick"
        print(f"safety-filter bench: {problem}: {hint}", file=sys.stderr)
        return 2
    return bench_main(args.bench_args, prog="safety-filter bench")


def _policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", metavar="FILE", help="policy YAML (default: the shipped policy)")
    parser.add_argument(
        "--blocklist", metavar="FILE", action="append", default=[], help="an extra rule list to load (repeatable)"
    )


def configured_engine(args: argparse.Namespace) -> Engine:
    """The engine for `--policy` plus any `--blocklist` files: validated, no model loaded yet.

    The extra lists are added to every version of the policy, so the policy file is still
    reloaded when it changes.
    """
    missing = [path for path in args.blocklist if not Path(path).exists()]
    if missing:
        raise ConfigurationError(f"blocklist file not found: {missing[0]}")
    return Engine.from_policy_file(args.policy, extra_blocklists=args.blocklist)


def engine_from_args(args: argparse.Namespace) -> Engine:
    """The loaded engine for `--policy` plus any `--blocklist` files."""
    engine = configured_engine(args)
    engine.load()
    return engine


# -- scan ----------------------------------------------------------------------------------


def _scan(args: argparse.Namespace) -> int:
    engine = engine_from_args(args)
    if args.jsonl:
        source = sys.stdin if args.input in (None, "-") else open(args.input, encoding="utf-8")  # noqa: SIM115
        with source:
            scan_jsonl(engine, source, sys.stdout)
        return 0
    text = args.input if args.input is not None else sys.stdin.read()
    verdict = engine.check_sync([text], args.role)[0]
    print(json.dumps(verdict.to_dict(), ensure_ascii=False))
    return 0


def scan_jsonl(engine: Engine, lines: Iterable[str], out: TextIO, *, batch: int = JSONL_BATCH) -> None:
    """One verdict line per input line, in order; a bad line gets `{"error": ...}` in its place."""
    numbered = enumerate(lines, start=1)
    while chunk := list(islice(numbered, batch)):
        results: list[dict[str, Any] | None] = [None] * len(chunk)
        by_role: dict[str, list[tuple[int, str]]] = {}
        for slot, (number, line) in enumerate(chunk):
            parsed = _parse_line(line, number)
            if isinstance(parsed, dict):
                results[slot] = parsed
            else:
                by_role.setdefault(parsed[1], []).append((slot, parsed[0]))
        for role, items in by_role.items():
            verdicts = engine.check_sync([text for _, text in items], role)  # type: ignore[arg-type]
            for (slot, _), verdict in zip(items, verdicts, strict=True):
                results[slot] = verdict.to_dict()
        for result in results:
            out.write(json.dumps(result, ensure_ascii=False) + "\n")
        out.flush()


def _parse_line(line: str, number: int) -> tuple[str, str] | dict[str, Any]:
    """(text, role) from one JSON line, or the error verdict that takes its place."""
    try:
        item = json.loads(line)
    except ValueError as exc:
        return {"error": f"line {number}: not valid JSON ({exc})", "line": number}
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        return {"error": f'line {number}: expected an object with a string "text"', "line": number}
    role = item.get("role", "prompt")
    if role not in ROLES:
        return {"error": f"line {number}: role must be one of {', '.join(ROLES)}", "line": number}
    return item["text"], role


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSON-lines file; a bad line raises `UsageError` naming the file and line."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise UsageError(f"{path}:{number}: not valid JSON ({exc})") from None
            if not isinstance(row, dict):
                raise UsageError(f"{path}:{number}: expected a JSON object")
            yield row


# -- eval ----------------------------------------------------------------------------------


def _eval(args: argparse.Namespace) -> int:
    from safety_filter.evaluation import evaluate_verdicts, format_report

    rows = list(iter_jsonl(args.data))
    if not rows:
        raise UsageError(f"{args.data}: no rows to evaluate")
    engine = engine_from_args(args)
    verdicts: list[Any] = [None] * len(rows)
    for role in ROLES:
        positions = [i for i, row in enumerate(rows) if row.get("role", "prompt") == role]
        for start in range(0, len(positions), 256):
            batch = positions[start : start + 256]
            for i, verdict in zip(batch, engine.check_sync([str(rows[i]["text"]) for i in batch], role), strict=True):
                verdicts[i] = verdict
    unknown = [i for i, v in enumerate(verdicts) if v is None]
    if unknown:
        raise UsageError(f"{args.data}: line {unknown[0] + 1}: role must be one of {', '.join(ROLES)}")
    report = evaluate_verdicts(rows, verdicts)
    report["data"] = str(args.data)
    report["policy"] = engine.policy.label
    print(format_report(report))
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


# -- serve ---------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from safety_filter.serve.app import ServeOptions, run_server

    _check_port_free(args.host, args.port)
    configured_engine(args).policy  # noqa: B018 -- validate policy and lists once, before the banner
    base = f"http://{args.host}:{args.port}"
    target = args.upstream or "the built-in demo model"
    workers = f", {args.workers} worker processes" if args.workers > 1 else ""
    print(f"safety-filter: filtering {target} on {base}{workers} (loading detectors...)", file=sys.stderr)
    if not args.upstream:
        print(_DEMO_HINT.format(base=base), file=sys.stderr)
    options = ServeOptions(
        upstream=args.upstream, policy=args.policy, blocklists=tuple(args.blocklist), timeout=args.timeout
    )
    run_server(options, host=args.host, port=args.port, workers=args.workers, log_level=args.log_level)
    return 0


def _check_port_free(host: str, port: int) -> None:
    """Fail now, before loading models and printing the banner, if uvicorn could not bind."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            reason = "the port is already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
            raise UsageError(f"cannot listen on {host}:{port}: {reason}") from None


_DEMO_HINT = """
Try it from another terminal:
  curl -s {base}/v1/chat/completions -H 'content-type: application/json' \\
       -d '{{"model": "demo", "messages": [{{"role": "user", "content": "demo: blocked"}}]}}'
Ask for "demo: allowed", "demo: annotated" or "demo: blocked"; add "stream": true to stream;
start with "say:" to have the model repeat you. Or point any OpenAI client at {base}/v1.
"""


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
