"""Collectors that misbehave, for the tests of what the script does when its trace backend
fails. Each is a real server (or a real closed port) on 127.0.0.1:

- ``refusing()``: a port nothing listens on, so every connection is refused;
- ``answering(503)``: an HTTP server that reads each export and answers with that status;
- ``hanging()``: a TCP server that accepts connections and never answers.

Run it to measure the script's exit delay by hand against each of them and a healthy one
(the suite's OTLP receiver), e.g. from the project root with a Llama Stack on :8321:

    python -m tests.support.collectors --runs 3 -- --no-questions --llama-stack-url http://127.0.0.1:8321

It prints, per collector, the median time from the script's "Ingested" line (the run's
work done) to its exit, and the whole run's wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from local.stack import PROJECT_ROOT, free_port
from tests.support.otlp_receiver import OTLPReceiver
from tests.support.script import SCRIPT


@contextlib.contextmanager
def refusing() -> Iterator[str]:
    """The base URL of a loopback port that was free a moment ago: connections are refused."""
    yield f"http://127.0.0.1:{free_port()}"


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler for loopback test servers: no access log, and a way to read a
    request's body and answer with an empty one."""

    def drain_and_answer(self, status: int) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port in a thread; yield the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def answering(status: int) -> Iterator[str]:
    """An OTLP/HTTP endpoint that reads every export and answers ``status`` (e.g. 503)."""

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            self.drain_and_answer(status)

    with serving(Handler) as url:
        yield url


@contextlib.contextmanager
def hanging() -> Iterator[str]:
    """A loopback server that accepts every connection and never sends a byte back."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(connection)  # kept open, never read from or answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in accepted:
            connection.close()
        listener.close()


@contextlib.contextmanager
def healthy() -> Iterator[str]:
    with OTLPReceiver() as receiver:
        yield receiver.base_url


COLLECTORS = {"healthy": healthy, "refusing": refusing, "503": lambda: answering(503), "hanging": hanging}


def timed_run(script_args: list[str], *, otlp_base: str, env: dict[str, str] | None = None,
              python: str = sys.executable) -> tuple[int, float, float, str, str]:
    """Run the script; return (exit status, seconds from the "Ingested" line to exit, whole
    run in seconds, stdout, stderr). The tail is what a broken collector can lengthen."""
    import os

    started = time.monotonic()
    process = subprocess.Popen(
        [python, str(SCRIPT), *script_args], cwd=PROJECT_ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        # No OTEL_* from the caller's shell: only what the run is told here.
        env={**{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}, **(env or {}),
             "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_base},
    )
    ingested_at = None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if ingested_at is None and line.startswith("Ingested "):
            ingested_at = time.monotonic()
    stderr = process.stderr.read()
    process.wait()
    ended = time.monotonic()
    tail = ended - ingested_at if ingested_at is not None else float("nan")
    return process.returncode, tail, ended - started, "".join(lines), stderr


def one_doc_run_args(llama_stack_url: str, folder: Path) -> list[str]:
    """The script's argv for a short run: it ingests one small document, written to ``folder``,
    and asks no questions — the run the collector tests send to a collector and time."""
    (folder / "start.md").write_text("# Starting\n\nRun `node server.js`, not `npm start`, in production.\n")
    return ["--no-questions", "--llama-stack-url", llama_stack_url, "--docs", str(folder)]


def one_warning(stderr: str, *, starting: str = "warning: ") -> str:
    """The run's stderr, asserted to be one line starting with ``starting`` and no traceback."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(starting) and "Traceback" not in stderr, stderr
    return lines[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per collector (default %(default)s)")
    parser.add_argument("--python", default=sys.executable, help="the python that runs the script")
    parser.add_argument("script_args", nargs="*", help="arguments for the script, after --")
    args = parser.parse_args()
    print(f"{'collector':<10} {'exit':>4} {'tail s (median)':>16} {'run s (median)':>15}  last stderr line")
    for name, collector in COLLECTORS.items():
        tails, totals, codes, last = [], [], set(), ""
        for _ in range(args.runs):
            with collector() as base:
                code, tail, total, _, stderr = timed_run(args.script_args, otlp_base=base, python=args.python)
            codes.add(code)
            tails.append(tail)
            totals.append(total)
            last = (stderr.strip().splitlines() or [""])[-1][:100]
        print(f"{name:<10} {','.join(map(str, sorted(codes))):>4} {statistics.median(tails):>16.2f} "
              f"{statistics.median(totals):>15.2f}  {last}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
