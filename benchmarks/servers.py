"""Servers for the HTTP benchmark, each in its own process on 127.0.0.1.

    python -m benchmarks.servers upstream --port N
    python -m benchmarks.servers filter --port N --upstream http://127.0.0.1:M [--policy FILE]

`upstream` is the fake model (`EchoModel`); `filter` is what `safety-filter serve --upstream`
runs (the middleware in front of `UpstreamProxy`), with the policy's detectors that load (one
that fails to load is left out and reported, so the benchmark degrades instead of failing).
Each prints one line `READY {json}` on stdout once it accepts connections.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.servers")
    parser.add_argument("kind", choices=["upstream", "filter"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream")
    parser.add_argument("--policy")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import uvicorn

    info: dict[str, object] = {"pid": os.getpid()}
    if args.kind == "upstream":
        from benchmarks.fake_app import EchoModel

        app = EchoModel(completion_chars=2048)
    else:
        from benchmarks.common import bench_policy, engine_for, engine_label, load_detectors
        from safety_filter.asgi.middleware import SafetyFilterMiddleware
        from safety_filter.audit import AuditLog
        from safety_filter.serve.proxy import UpstreamProxy

        policy = bench_policy(args.policy)
        status = load_detectors(policy)
        engine = engine_for(policy, status)
        engine.load()
        app = SafetyFilterMiddleware(UpstreamProxy(args.upstream), engine=engine, audit=AuditLog(None))
        info["engine"] = engine_label(status)
        info["detectors"] = {name: s.to_dict() for name, s in status.items()}
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, lifespan="on", backlog=2048
    )
    server = uvicorn.Server(config)
    info["loop"] = config.loop
    info["http"] = config.http

    def announce() -> None:
        deadline = time.monotonic() + 120
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        print("READY " + json.dumps(info), flush=True)

    threading.Thread(target=announce, daemon=True).start()
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
