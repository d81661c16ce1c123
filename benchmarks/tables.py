"""The report's tables, as data: the summary prints them and the headline quotes their cells.

Every figure of the headline is a cell of one of these tables (`Table.cell`), so the two cannot
disagree; `results.json` keeps, for each headline line, the cells it quotes, and the tests check
them against `summary.md`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


def num(x: Any, fmt: str = "{:.2f}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return fmt.format(x)


@dataclass
class Table:
    key: str  # named in summary.md as `<!-- table: key -->` above the table
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append([str(c) for c in cells])

    def cell(self, row: str, column: str) -> str:
        for cells in self.rows:
            if cells[0] == row:
                return cells[self.columns.index(column)]
        raise KeyError(f"table {self.key} has no row {row!r}")

    def markdown(self) -> list[str]:
        rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + "|"
        return [f"<!-- table: {self.key} -->", "| " + " | ".join(self.columns) + " |", rule] + [
            "| " + " | ".join(cells) + " |" for cells in self.rows
        ]


def stages_tables(st: dict[str, Any]) -> tuple[Table, Table]:
    cost = Table("stages", ["stage", "ms per turn p50", "p95", "p99", "turns", "share of engine p50"])
    engine = st["stages"].get("engine", {}).get("p50_ms")
    for name, s in st["stages"].items():
        label = "engine total" if name == "engine" else name
        if not s.get("available"):
            cost.add(label, "not available", "", "", "", "")
            continue
        share = s["p50_ms"] / engine if engine and name != "engine" else None
        turns = f"{s['turns']} of {s['planned_turns']} (cut by the time budget)" if s["cut"] else str(s["turns"])
        cost.add(label, num(s["p50_ms"]), num(s["p95_ms"]), num(s["p99_ms"]), turns, num(share, "{:.0%}"))
    escalation = Table("escalation", ["scenario", "windows", "escalated", "escalation rate", "note"])
    for scenario, e in st["escalation"].items():
        if e.get("reason"):
            escalation.add(scenario, "n/a", "n/a", "n/a", e["reason"])
        else:
            note = f"{e['texts']} texts" if "texts" in e else ""
            escalation.add(scenario, e["windows"], e["escalated"], num(e["rate"], "{:.1%}"), note)
    return cost, escalation


def overhead_table(ov: dict[str, Any]) -> Table:
    table = Table(
        "overhead",
        [
            "scenario",
            "without p50 (ms)",
            "with p50 (ms)",
            "added p50 (ms)",
            "added p95 (ms)",
            "added p99 (ms)",
            "ratio p50",
            "requests",
            "answered with",
        ],
    )
    for name, s in ov["scenarios"].items():
        requests = f"{s['requests']:.0f}" + (" (cut by the time budget)" if s.get("cut") else "")
        table.add(
            name,
            num(s["without_p50_ms"]),
            num(s["with_p50_ms"]),
            num(s["added_p50_ms"], "{:.1f}"),
            num(s["added_p95_ms"], "{:.1f}"),
            num(s["added_p99_ms"], "{:.1f}"),
            num(s["ratio_p50"], "x{:.1f}"),
            requests,
            " and ".join(map(str, s.get("statuses", []))) or "n/a",
        )
    return table


def _answers(level: dict[str, Any]) -> tuple[int, int, int]:
    """(answers, answered 503, answered neither 200 nor 503), summed over the level's runs."""
    answered = [(str(k), v) for run in level.get("statuses", []) for k, v in run.items()]
    total = sum(v for _, v in answered)
    unavailable = sum(v for k, v in answered if k == "503")
    other = sum(v for k, v in answered if k not in ("200", "503"))
    return total, unavailable, other


def http_table(http: dict[str, Any]) -> Table:
    table = Table(
        "http",
        [
            "concurrency",
            "direct req/s",
            "filter req/s",
            "filter 200 req/s",
            "ratio",
            "direct p50 (ms)",
            "filter p50 (ms)",
            "filter p99 (ms)",
            "filter answers",
            "answered 503",
            "other not 200",
            "client errors",
            "runs cut by the time cap",
        ],
    )
    for c, f in http["targets"]["filter"].items():
        d = http["targets"]["direct"][c]
        total, unavailable, other = _answers(f)
        errors = sum(sum(e.values()) for level in (d, f) for e in level.get("errors", []))
        table.add(
            c,
            num(d["throughput_rps"], "{:.0f}"),
            num(f["throughput_rps"], "{:.1f}"),
            num(f.get("ok_throughput_rps"), "{:.1f}"),
            num(http["comparison"][c]["throughput_ratio"], "{:.3f}"),
            num(d["p50_ms"], "{:.1f}"),
            num(f["p50_ms"], "{:.1f}"),
            num(f["p99_ms"], "{:.1f}"),
            total,
            unavailable,
            other,
            errors,
            f"{f.get('capped_runs', 0)} of {f.get('repeats', 1)}",
        )
    return table


def ttft_table(st: dict[str, Any]) -> Table:
    table = Table(
        "ttft", ["mode", "without p50 (ms)", "with p50 (ms)", "added p50 (ms)", "added p95 (ms)", "added p99 (ms)"]
    )
    for mode, t in st["ttft"].items():
        table.add(
            mode,
            num(t["without_p50_ms"]),
            num(t["with_p50_ms"]),
            num(t["added_p50_ms"], "{:.1f}"),
            num(t["added_p95_ms"], "{:.1f}"),
            num(t["added_p99_ms"], "{:.1f}"),
        )
    return table


def block_lag_table(bl: dict[str, Any]) -> Table:
    table = Table(
        "block_lag",
        ["event size (chars)", "streams", "blocked", "not blocked", "lag max", "lag median", "share with lag 0"],
    )
    for size, v in bl["by_event_chars"].items():
        table.add(
            size,
            v["streams"],
            v["blocked"],
            v["not_blocked"],
            num(v["lag_max"], "{:.0f}"),
            num(v["lag_median"], "{:.0f}"),
            num(v["lag_zero_share"], "{:.0%}"),
        )
    o, sizes = bl["overall"], bl["by_event_chars"].values()
    table.add(
        "all",
        sum(v["streams"] for v in sizes),
        o["blocked_streams"],
        sum(v["not_blocked"] for v in sizes),
        num(o["lag_max"], "{:.0f}"),
        num(o["lag_median"], "{:.0f}"),
        num(o["lag_zero_share"], "{:.0%}"),
    )
    return table


def quality_table(q: dict[str, Any]) -> Table:
    table = Table(
        "quality",
        [
            "system",
            "any: P",
            "R",
            "F1",
            "AUPRC",
            "false-block benign",
            "false-block hard neg.",
            "ms/text (batched)",
            "ms/text single p50",
            "single p99",
        ],
    )
    for name, s in q["systems"].items():
        if s.get("skipped"):
            table.add(name, f"skipped: {s['skipped'][:120]}", *[""] * 8)
            continue
        a = s["any"]
        table.add(
            name,
            num(a["precision"]),
            num(a["recall"]),
            num(a["f1"]),
            num(a["auprc"]),
            num(s["false_block_rate_benign"], "{:.1%}"),
            num(s["false_block_rate_hard_negatives"], "{:.1%}"),
            num(s["latency_per_text_ms"], "{:.3f}"),
            num(s["single_text"]["p50_ms"], "{:.3f}"),
            num(s["single_text"]["p99_ms"], "{:.3f}"),
        )
    return table


def all_tables(results: dict[str, Any]) -> dict[str, Table]:
    tables: dict[str, Table] = {}
    if results.get("stages"):
        tables["stages"], tables["escalation"] = stages_tables(results["stages"])
    if results.get("overhead"):
        tables["overhead"] = overhead_table(results["overhead"])
    if results.get("http", {}).get("targets"):
        tables["http"] = http_table(results["http"])
    if results.get("streaming"):
        tables["ttft"] = ttft_table(results["streaming"])
        tables["block_lag"] = block_lag_table(results["streaming"]["block_lag"])
    if results.get("quality", {}).get("systems"):
        tables["quality"] = quality_table(results["quality"])
    return tables
