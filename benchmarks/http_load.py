"""3. Over HTTP: the filtering proxy under uvicorn in front of a fake upstream, under closed-loop load.

Three processes on 127.0.0.1: the fake model (uvicorn), the filter (`safety-filter serve
--upstream` equivalent: middleware + UpstreamProxy, uvicorn, one worker), and this process, the
load generator: `concurrency` workers, each with one keep-alive connection, sending the next
request as soon as the previous answer is complete (closed loop), until a fixed number of
requests were sent or the time cap passed (no new request after it; every request has a
timeout). The same load against the upstream directly is the baseline. Every request is a new
chat turn (1 KB prompt, 2 KB completion, first-seen text: no cache hits).

The load generator is a minimal keep-alive HTTP/1.1 client on asyncio streams, not httpx:
httpx caps the figure. Measured on 2 cores (2026-12-03, load average ~4), closed loop at c=32
against the fake upstream, 1,500 requests of a 1 KB chat turn, twice: this client 900 and 790
req/s, `httpx.AsyncClient(limits=Limits(max_connections=32))` 112 and 115 req/s. The direct
baseline and the issue-13 target (>= 300 req/s through `serve`) are above what httpx can send.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.common import Sizes, benign_chars, median_of_runs, summarize_ms
from benchmarks.fake_app import CHAT_PATH, chat_body

REQUEST_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A benchmark server in a child process; stopped (terminate, then kill) on exit."""

    def __init__(self, kind: str, *args: str, start_timeout: float = 120.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.kind = kind
        self.args = args
        self.start_timeout = start_timeout
        self.info: dict[str, Any] = {}
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServerProcess:
        if self.proc is None:
            self.start()
        return self.wait()

    def start(self) -> ServerProcess:
        """Launch the process (returns at once; `wait` for it to accept connections)."""
        import safety_filter

        env = dict(os.environ)
        # this checkout (for `benchmarks`) and wherever safety_filter was imported from, first
        roots = dict.fromkeys(
            str(Path(m.__file__).resolve().parents[1]) for m in (sys.modules[__name__], safety_filter)
        )
        env["PYTHONPATH"] = os.pathsep.join([*roots, *filter(None, [env.get("PYTHONPATH")])])
        env.setdefault("HF_HUB_OFFLINE", "1")
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.servers",
            self.kind,
            "--port",
            str(self.port),
            *self.args,
        ]
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in __exit__)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env)
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            try:
                for line in self.proc.stdout:
                    lines.put(line)
            except (ValueError, OSError):  # closed by __exit__
                pass

        threading.Thread(target=pump, daemon=True).start()
        self._lines = lines
        return self

    def wait(self) -> ServerProcess:
        assert self.proc is not None
        if self.info:
            return self
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    self._stderr.seek(0)
                    raise RuntimeError(
                        f"{self.kind} server exited with {self.proc.returncode}: {self._stderr.read()[-2000:]}"
                    ) from None
                continue
            if line.startswith("READY "):
                self.info = json.loads(line[6:])
                return self
        self.__exit__()
        raise RuntimeError(f"{self.kind} server did not start within {self.start_timeout:.0f} s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self._stderr.close()


# -- a minimal keep-alive HTTP/1.1 client (httpx sends 8x fewer requests: see the docstring) ----


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            data = b"".join(parts)
        else:
            data = await self.reader.read()
            await self.close()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, data


async def closed_loop(port: int, concurrency: int, total: int, time_cap: float, make_body) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """`concurrency` workers share `total` requests; no new request after `time_cap` seconds."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    statuses: dict[int, int] = {}
    issued = 0
    t_start = time.perf_counter()
    deadline = t_start + time_cap
    last_done = t_start

    async def worker() -> None:
        nonlocal issued, last_done
        conn = Connection("127.0.0.1", port)
        try:
            while issued < total and time.perf_counter() < deadline:
                issued += 1
                body = make_body()
                t0 = time.perf_counter()
                try:
                    status, _ = await asyncio.wait_for(conn.post(CHAT_PATH, body), REQUEST_TIMEOUT)
                except Exception as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    await conn.close()
                    continue
                now = time.perf_counter()
                latencies.append(now - t0)
                statuses[status] = statuses.get(status, 0) + 1
                last_done = max(last_done, now)
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = max(last_done - t_start, 1e-9)
    summary = summarize_ms(latencies)
    return {
        "throughput_rps": len(latencies) / wall,
        "ok_throughput_rps": statuses.get(200, 0) / wall,  # answers with status 200 only
        "completed": len(latencies),
        "wall_seconds": wall,
        "p50_ms": summary["p50_ms"],
        "p95_ms": summary["p95_ms"],
        "p99_ms": summary["p99_ms"],
        "mean_ms": summary["mean_ms"],
        "errors": errors,
        "statuses": statuses,
        "capped": issued < total,
    }


def steps(sizes: Sizes) -> int:
    return 2 * len(sizes.http_concurrency) * (sizes.http_repeats or sizes.repeats) + 2


def start_servers(policy_path: str | None) -> tuple[ServerProcess, ServerProcess]:
    """Launch the fake upstream and the filter now (they load while other sections run)."""
    upstream = ServerProcess("upstream").start()
    filter_args = ["--upstream", upstream.url] + (["--policy", str(policy_path)] if policy_path else [])
    try:
        filtering = ServerProcess("filter", *filter_args).start()
    except BaseException:
        upstream.__exit__()
        raise
    return upstream, filtering


def run(
    policy_path: str | None,
    sizes: Sizes,
    progress: tqdm,
    seed: int = 3,
    servers: tuple[ServerProcess, ServerProcess] | None = None,
) -> dict[str, Any]:
    rng = random.Random(seed)
    serial = iter(range(10**9))

    def make_body() -> bytes:
        return chat_body([{"role": "user", "content": benign_chars(rng, 1024, f"h{next(serial)}")}])

    progress.set_description("http: starting servers")
    out: dict[str, Any] = {
        "targets": {},
        "request": "1 KB prompt, 2 KB completion, JSON, first-seen text",
        "request_timeout_s": REQUEST_TIMEOUT,
        "time_cap_s": sizes.http_time_cap,
        "repeats": sizes.http_repeats or sizes.repeats,
        "requests_per_run": {str(c): sizes.http_requests.get(c, 8 * c) for c in sizes.http_concurrency},
    }
    upstream_server, filter_server = servers if servers is not None else start_servers(policy_path)
    with upstream_server as upstream:
        progress.update()
        with filter_server as filtering:
            progress.update()
            out["server"] = {
                "uvicorn_loop": filtering.info.get("loop"),
                "uvicorn_http": filtering.info.get("http"),
                "workers": 1,
                "engine": filtering.info.get("engine"),
                "detectors": filtering.info.get("detectors"),
            }
            for name, server in (("direct", upstream), ("filter", filtering)):
                # warm-up: connections, imports, first detection
                asyncio.run(closed_loop(server.port, min(4, sizes.http_warmup), sizes.http_warmup, 10.0, make_body))
                levels = {}
                for concurrency in sizes.http_concurrency:
                    runs = []
                    for _ in range(sizes.http_repeats or sizes.repeats):
                        progress.set_description(f"http {name} c={concurrency}")
                        total = sizes.http_requests.get(concurrency, 8 * concurrency)
                        runs.append(
                            asyncio.run(closed_loop(server.port, concurrency, total, sizes.http_time_cap, make_body))
                        )
                        progress.update()
                    merged = median_of_runs(runs)
                    merged["errors"] = [r["errors"] for r in runs]
                    merged["statuses"] = [r["statuses"] for r in runs]
                    merged["capped_runs"] = sum(1 for r in runs if r["capped"])
                    levels[str(concurrency)] = merged
                out["targets"][name] = levels
    for c in map(str, sizes.http_concurrency):
        d, f = out["targets"]["direct"][c], out["targets"]["filter"][c]
        out.setdefault("comparison", {})[c] = {
            "throughput_ratio": f["throughput_rps"] / d["throughput_rps"] if d["throughput_rps"] else None,
            "added_p50_ms": f["p50_ms"] - d["p50_ms"],
        }
    return out
