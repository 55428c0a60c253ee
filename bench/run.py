"""What tracing costs the traced RAG agent, measured side by side on the local stack.

    make bench                      # = python -m bench.run, in the client venv
    python -m bench.run --reps 2 --only p2,p3 --out /tmp/bench.json   # from the project root

It starts the local stack on free loopback ports (llama-server with Gemma 3 270M, Llama Stack
0.2.12) with its spans going to an in-process OTLP/HTTP receiver, then runs the script as a
user does, alternating the two sides of every comparison (A B A B ...) so that whatever else
the machine is doing falls on both. Absolute seconds on a shared 2-core machine are noise;
the table quotes medians, their spread (min-max) and the ratios. Raw figures go to a JSON file.

I1/I2 (``--only instr``, no stack needed): the client instrumentor's own cost per call and per
streamed chunk, in-process against a loopback server, side by side with the client
uninstrumented (bench/instrumentor_cost.py), once per client line in make test-instrumentation's
venvs: llama-stack-client 0.2.12 and 0.7.5, ogx-client 1.1.3 and 1.5.0.

Baselines: bench/seed_style.py (the same ingest-only request traced as the original example
does, SDK defaults, atexit flush) for exit delay and delivery; bench/bare_request.py (import
the client, send the first request, no telemetry) for startup; OTEL_SDK_DISABLED=true for the
overhead of the traced run itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.span_log import read_span_log
from local import stack
from local.stack import PROJECT_ROOT, free_port
from tests.support.collectors import answering, hanging, refusing
from tests.support.llama_stack_server import StackServer
from tests.support.loopback_proxy import LoopbackProxy
from tests.support.otlp_receiver import OTLPReceiver, ReceivedSpan
from tests.support.script import SCRIPT, clean_env

BENCH_DIR = Path(__file__).resolve().parent
SEED_STYLE = BENCH_DIR / "seed_style.py"
BARE_REQUEST = BENCH_DIR / "bare_request.py"
SPAN_LOG = BENCH_DIR / "span_log.py"
SAMPLE_DOCS = PROJECT_ROOT / "sample-docs"
QUESTION = "How do I start a Node.js process?"
# The seed-style script's exit delays with the SDK's defaults, measured on these machines on
# 2026-11-23 (shared/FINDINGS.md); this run measures them again beside ours.
SDK_DEFAULT_EXIT_S = {"refusing": 6.5, "503": 7.2, "hanging": 10.4}
P6_ALLOWANCE_S = 0.1  # seconds tracing may add to the start (process start to first request)
FIGURES = ("p1", "p2", "p3", "p4", "p5", "p6", "p7", "ingest", "instr")
IN_PROCESS = {"instr"}  # figures measured without the local stack
# I1/I2 once per client line (the latest release of each): make test-instrumentation's venvs.
INSTRUMENTOR_CLIENTS = ("llama-stack-client-0.2.12", "llama-stack-client-0.7.5", "ogx-client-1.1.3", "ogx-client-1.5.0")


# ------------------------------------------------------------------ running a process, measured

@dataclass
class Finished:
    code: int
    started: float  # time.monotonic() just before the process was started
    wall_s: float
    cpu_s: float  # user + system of the process (its children have none)
    max_rss_mb: float
    ended_wall: float  # time.time() once it had exited
    lines: list[tuple[float, str]]  # stdout lines with the monotonic time each arrived
    stderr: str
    line_cpu: list[float] = field(default_factory=list)  # the process's CPU seconds as each line arrived

    def cpu_share_after(self, prefix: str) -> float:
        """CPU / wall from the first line starting with prefix to the exit: the run without its
        start-up (imports, set-up), which costs the same however long the run is."""
        index = next(i for i, (_, line) in enumerate(self.lines) if line.startswith(prefix))
        at, cpu_then = self.lines[index][0], self.line_cpu[index]
        return (self.cpu_s - cpu_then) / (self.started + self.wall_s - at)

    def line_time(self, prefix: str, *, last: bool = False) -> float | None:
        times = [t for t, line in self.lines if line.startswith(prefix)]
        return (times[-1] if last else times[0]) if times else None

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def run(command: list[str], *, env: dict[str, str], signal_on: tuple[str, int] | None = None,
        timeout_s: float = 600) -> Finished:
    """Run a command to its end; with signal_on=(prefix, signum), send signum half a second
    after the first stdout line that starts with prefix."""
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.append(process.stderr.read()), daemon=True)
    reader.start()
    killer = threading.Timer(timeout_s, lambda: os.killpg(process.pid, signal.SIGKILL))
    killer.start()
    lines: list[tuple[float, str]] = []
    line_cpu: list[float] = []
    try:
        for line in process.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))
            line_cpu.append(cpu_seconds(process.pid))
            if signal_on and line.startswith(signal_on[0]):
                time.sleep(0.5)  # the call it announced is under way on the server
                process.send_signal(signal_on[1])
                signal_on = None
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        killer.cancel()
    ended, ended_wall = time.monotonic(), time.time()
    process.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=10)
    return Finished(code=process.returncode, started=started, wall_s=ended - started,
                    cpu_s=usage.ru_utime + usage.ru_stime, max_rss_mb=usage.ru_maxrss / 1024,
                    ended_wall=ended_wall, lines=lines, stderr="".join(stderr), line_cpu=line_cpu)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process so far, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def check(finished: Finished, *, expect: int = 0, what: str) -> Finished:
    if finished.code != expect:
        tail = "\n".join((finished.text() + "\n" + finished.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"bench: {what} exited {finished.code}, expected {expect}:\n{tail}")
    return finished


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float], form: str = "{:.3g}") -> str:
    return f"{form.format(min(values))}-{form.format(max(values))}" if values else "-"


def alternate(reps: int, sides: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run each side once per repetition, in turn (A B, then B A, ...), and collect the figures."""
    names = list(sides)
    results: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        for name in names if rep % 2 == 0 else reversed(names):
            results[name].append(sides[name]())
    return results


# ------------------------------------------------------------------ the bench itself

@dataclass
class Row:
    figure: str
    what: str
    ours: str
    baseline: str = "-"
    ratio: str = "-"
    goal: str = "-"
    met: str = "-"


@dataclass
class Bench:
    python: str
    receiver: OTLPReceiver
    local: stack.Stack
    work: Path
    reps: int
    rows: list[Row] = field(default_factory=list)
    raw: dict = field(default_factory=dict)

    # --- environments and corpora

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env({**self.local.script_env(), "TRACE_BACKEND": "jaeger",
                          "TRACE_UI_URL": self.receiver.base_url, **extra})

    def corpus(self, name: str, copies: int = 1, files: list[str] | None = None) -> Path:
        """sample-docs copied `copies` times (or only the named files), in a folder of its own."""
        folder = self.work / "docs" / name
        if not folder.exists():
            for k in range(copies):
                target = folder / f"copy-{k}"
                if files is None:
                    shutil.copytree(SAMPLE_DOCS, target)
                else:
                    for relative in files:
                        (target / relative).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy(SAMPLE_DOCS / relative, target / relative)
        return folder

    def slow_corpus(self) -> Path:
        """Enough text that ingesting it takes seconds, for a signal to land during ingestion."""
        folder = self.work / "docs" / "slow"
        if not folder.exists():
            folder.mkdir(parents=True)
            for i in range(10):
                (folder / f"part{i}.md").write_text(f"# Part {i}\n\n" + "Drain connections before exit. " * 200)
        return folder

    def tiny(self) -> Path:
        return self.corpus("tiny", files=["runtime/starting-the-process.md"])

    def script(self, *args: str) -> list[str]:
        return [self.python, str(SCRIPT), *args]

    def seed_style(self, docs: Path) -> list[str]:
        return [self.python, str(SEED_STYLE), "--llama-stack-url", self.local.llama_stack_url, "--docs", str(docs)]

    def logged(self, command: list[str]) -> list[str]:
        return [command[0], str(SPAN_LOG), *command[1:]]

    def spans_of(self, service: str) -> list[ReceivedSpan]:
        return [s for s in self.receiver.spans() if s.service == service]

    def settled_count(self, select: Callable[[], int], *, quiet_s: float = 6.0, limit_s: float = 30.0) -> int:
        """A span count once it has not grown for quiet_s: the server sends its spans every ~5 s."""
        deadline = time.monotonic() + limit_s
        count, since = select(), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
            time.sleep(0.5)
            now = select()
            if now != count:
                count, since = now, time.monotonic()
        return count

    def remove_leftovers(self) -> None:
        """A seed-style run killed by SIGTERM leaves its vector DB behind: remove it. The server
        may still be embedding for it and answers 500 meanwhile, so retry for a while."""
        server = StackServer(self.local.llama_stack_url)
        deadline = time.monotonic() + 120
        while left := [db for db in server.vector_db_ids() if db.startswith("seed-style-")]:
            try:
                for db in left:
                    server.call("DELETE", f"/v1/vector-dbs/{db}")
            except urllib.error.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"bench: could not remove {', '.join(left)} from {server.url}") from None
                time.sleep(1)

    # --- one run with its span log

    def logged_run(self, command: list[str], *, otlp_base: str, expect: int = 0,
                   signal_on: tuple[str, int] | None = None, what: str) -> dict:
        service = f"bench-{uuid.uuid4().hex[:12]}"
        log = self.work / f"{service}.spans"
        env = self.env(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_base, OTEL_SERVICE_NAME=service, BENCH_SPAN_LOG=str(log))
        # span_log.py runs the script in its own process: the script's folder goes on its path,
        # as `python SCRIPT` would put it, for the script's own modules.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(command[1]).parent), env.get("PYTHONPATH")]))
        finished = check(run(self.logged(command), env=env, signal_on=signal_on), expect=expect, what=what)
        created, work_done = read_span_log(log)
        ingested = finished.line_time("Ingested ")
        return {"service": service, "created": created, "wall_s": finished.wall_s,
                # The run's work ended with its last root span; what follows is telemetry and exit.
                "exit_after_work_s": finished.ended_wall - work_done if work_done else float("nan"),
                # What the user sees: from the line saying the documents are in, to the prompt.
                "exit_after_ingested_s": finished.started + finished.wall_s - ingested if ingested else float("nan"),
                "stderr": finished.stderr.strip()}

    # --- the figures

    def p1_p5_overhead(self) -> None:
        docs = self.corpus("sample")
        args = ("--docs", str(docs), "--question", QUESTION)
        runs: dict[str, list[Finished]] = {"traced": [], "untraced": []}

        def side(name: str, extra: dict[str, str]) -> Callable[[], float]:
            def once() -> float:
                finished = check(run(self.script(*args), env=self.env(**extra)), what=f"the {name} run")
                runs[name].append(finished)
                return finished.wall_s
            return once

        # One run first, not counted: the server's first turn loads what later ones find ready.
        check(run(self.script(*args), env=self.env()), what="the warm-up run")
        walls = alternate(self.reps, {"traced": side("traced", {}),
                                      "untraced": side("untraced", {"OTEL_SDK_DISABLED": "true"})})
        cpus = {name: [f.cpu_s for f in finished] for name, finished in runs.items()}
        ratio = median(walls["traced"]) / median(walls["untraced"])
        self.raw["p1"] = {"wall_s": walls, "cpu_s": cpus, "ratio_of_medians": ratio,
                          "pairwise_ratios": [a / b for a, b in zip(walls["traced"], walls["untraced"], strict=True)]}
        self.rows.append(Row("P1", f"wall time, {len(list(docs.rglob('*.md')))} docs + 1 question, traced "
                             "vs OTEL_SDK_DISABLED (s)",
                             f"{median(walls['traced']):.2f} ({spread(walls['traced'])})",
                             f"{median(walls['untraced']):.2f} ({spread(walls['untraced'])})",
                             f"{ratio:.3f}", "<= 1.01", yes(ratio <= 1.01)))
        shares = {name: [f.cpu_s / f.wall_s for f in finished] for name, finished in runs.items()}
        after_start = {name: [f.cpu_share_after("Ingesting ") for f in finished] for name, finished in runs.items()}
        self.raw["p5"] = {"cpu_share": shares, "cpu_share_after_start_up": after_start}
        self.rows.append(Row("P5", "client CPU / wall of the run, traced vs OTEL_SDK_DISABLED",
                             f"{median(shares['traced']):.1%} ({spread(shares['traced'], '{:.1%}')})",
                             f"{median(shares['untraced']):.1%}", "-", "<= 5%", yes(median(shares["traced"]) <= 0.05)))
        self.rows.append(Row("P5'", "the same after start-up (from the 'Ingesting' line to exit)",
                             f"{median(after_start['traced']):.1%} ({spread(after_start['traced'], '{:.1%}')})",
                             f"{median(after_start['untraced']):.1%}", "-", "<= 5%",
                             yes(median(after_start["traced"]) <= 0.05)))

    def p2_exit_healthy(self) -> None:
        docs = self.tiny()
        ours_args = ("--no-questions", "--docs", str(docs))
        results = {"ours": [], "seed_style": []}

        def side(name: str, command: list[str]) -> Callable[[], float]:
            def once() -> float:
                result = self.logged_run(command, otlp_base=self.receiver.base_url, what=f"{name} (healthy collector)")
                results[name].append(result)
                return result["exit_after_work_s"]
            return once

        delays = alternate(max(self.reps, 3), {"ours": side("ours", self.script(*ours_args)),
                                               "seed_style": side("seed_style", self.seed_style(docs))})
        self.raw["p2"] = results
        ours, seed = median(delays["ours"]), median(delays["seed_style"])
        self.rows.append(Row("P2", "exit delay after the run's work, collector healthy (s)",
                             f"{ours:.3f} ({spread(delays['ours'])})", f"{seed:.3f} ({spread(delays['seed_style'])})",
                             f"{ours / seed:.2f}", "<= 0.2 s", yes(ours <= 0.2)))
        last = {name: median([r["exit_after_ingested_s"] for r in rs]) for name, rs in results.items()}
        self.rows.append(Row("P2'", "the same, from the 'Ingested' line, clean-up included (s)",
                             f"{last['ours']:.3f}", f"{last['seed_style']:.3f}", f"{last['ours'] / last['seed_style']:.2f}"))

    def p3_exit_broken(self) -> None:
        docs = self.tiny()
        collectors: dict[str, Callable[[], AbstractContextManager[str]]] = {
            "refusing": refusing, "503": lambda: answering(503), "hanging": hanging}
        self.raw["p3"] = {}
        for name, collector in collectors.items():
            results = {"ours": [], "seed_style": []}

            def side(who: str, command: list[str], collector=collector, results=results, name=name) -> Callable[[], float]:
                def once() -> float:
                    with collector() as base:
                        result = self.logged_run(command, otlp_base=base, what=f"{who} ({name} collector)")
                    results[who].append(result)
                    return result["exit_after_work_s"]
                return once

            delays = alternate(self.reps, {"ours": side("ours", self.script("--no-questions", "--docs", str(docs))),
                                           "seed_style": side("seed_style", self.seed_style(docs))})
            self.raw["p3"][name] = results
            ours, seed = median(delays["ours"]), median(delays["seed_style"])
            self.rows.append(Row("P3", f"exit delay, collector {name} (s) [SDK default measured "
                                 f"2026-11-23: {SDK_DEFAULT_EXIT_S[name]}]",
                                 f"{ours:.2f} ({spread(delays['ours'])})",
                                 f"{seed:.2f} ({spread(delays['seed_style'])})",
                                 f"{ours / seed:.2f}", "<= 2 s", yes(ours <= 2.0)))

    def p4_delivery(self) -> None:
        # exit statuses, ours and the seed-style script's: an uncaught KeyboardInterrupt ends
        # Python by SIGINT, and SIGTERM's default action kills it where it stands.
        modes = {"normal exit": (None, 0, 0), "Ctrl-C": (signal.SIGINT, 130, -signal.SIGINT),
                 "SIGTERM": (signal.SIGTERM, 143, -signal.SIGTERM)}
        self.raw["p4"] = {}
        for mode, (signum, ours_code, seed_code) in modes.items():
            docs = self.tiny() if signum is None else self.slow_corpus()
            signal_on = ("Ingesting ", signum) if signum is not None else None
            figures = {}
            for who, command, code in (("ours", self.script("--no-questions", "--docs", str(docs)), ours_code),
                                       ("seed_style", self.seed_style(docs), seed_code)):
                result = self.logged_run(command, otlp_base=self.receiver.base_url, expect=code,
                                         signal_on=signal_on, what=f"{who} ({mode})")
                result["delivered"] = self.settled_count(lambda service=result["service"]: len(self.spans_of(service)),
                                                         quiet_s=1.0, limit_s=5.0)
                figures[who] = result
            self.raw["p4"][mode] = figures
            self.remove_leftovers()
            ours, seed = (figures[w]["delivered"] / max(figures[w]["created"], 1) for w in ("ours", "seed_style"))
            self.rows.append(Row("P4", f"spans delivered / created, {mode}",
                                 f"{figures['ours']['delivered']}/{figures['ours']['created']} = {ours:.0%}",
                                 f"{figures['seed_style']['delivered']}/{figures['seed_style']['created']} = {seed:.0%}",
                                 "-", "100%", yes(ours == 1.0)))

    def p6_startup(self) -> None:
        docs = self.tiny()
        port = int(self.local.llama_stack_url.rsplit(":", 1)[1])

        def side(command: Callable[[str], list[str]], env: dict[str, str]) -> Callable[[], float]:
            def once() -> float:
                proxy = LoopbackProxy(port)
                try:
                    finished = check(run(command(proxy.url), env=env), what="the startup run")
                finally:
                    proxy.cut()
                assert proxy.first_request_at is not None, "no request reached the server"
                return proxy.first_request_at - finished.started
            return once

        times = alternate(max(self.reps, 5), {
            "ours": side(lambda url: self.script("--no-questions", "--docs", str(docs), "--llama-stack-url", url),
                         self.env()),
            "bare": side(lambda url: [self.python, str(BARE_REQUEST), url], self.env()),
        })
        self.raw["p6"] = times
        ours, bare = median(times["ours"]), median(times["bare"])
        # The goal is absolute: what tracing may add before the first request, on top of the client's own start.
        self.rows.append(Row("P6", "process start to first request sent (s)", f"{ours:.3f} ({spread(times['ours'])})",
                             f"{bare:.3f} ({spread(times['bare'])})", f"{ours / bare:.2f} ({ours - bare:+.2f} s)",
                             f"<= bare + {P6_ALLOWANCE_S} s", yes(ours - bare <= P6_ALLOWANCE_S)))

    def p7_scale(self) -> None:
        docs = self.corpus("two", files=["runtime/starting-the-process.md", "runtime/signals-and-shutdown.md"])
        self.raw["p7"] = {}
        for n in (1, 2, 4, 8):
            service = f"bench-{uuid.uuid4().hex[:12]}"
            finished = check(run(self.script("--docs", str(docs), "--question", QUESTION, "--concurrency", str(n)),
                                 env=self.env(OTEL_SERVICE_NAME=service)), what=f"--concurrency {n}")
            turns = [s for s in self.spans_of(service) if s.name.startswith("invoke_agent")]
            assert len(turns) == n, f"{len(turns)} turns recorded for {n} runs"
            latencies = sorted((s.end_ns - s.start_ns) / 1e9 for s in turns)
            window_s = (max(s.end_ns for s in turns) - min(s.start_ns for s in turns)) / 1e9
            figures = {"wall_s": finished.wall_s, "cpu_s": finished.cpu_s, "max_rss_mb": finished.max_rss_mb,
                       "turn_latencies_s": latencies, "questions_per_min": 60 * n / window_s,
                       "p50_s": percentile(latencies, 50), "p95_s": percentile(latencies, 95)}
            self.raw["p7"][n] = figures
            self.rows.append(Row("P7", f"concurrency {n}: questions/min, turn p50/p95 (s), client CPU s "
                                 "per run, peak RSS MB",
                                 f"{figures['questions_per_min']:.1f} q/min, {figures['p50_s']:.1f}/{figures['p95_s']:.1f} s, "
                                 f"{finished.cpu_s / n:.2f} s, {finished.max_rss_mb:.0f} MB", goal="report"))

    def ingestion(self) -> None:
        self.raw["ingest"] = {}
        traces = {}
        for copies in (1, 4, 16):
            docs = self.corpus(f"x{copies}", copies=copies)
            files = list(docs.rglob("*.md"))
            kb = sum(f.stat().st_size for f in files) / 1024
            finished = check(run(self.script("--no-questions", "--docs", str(docs)), env=self.env()),
                             what=f"ingesting {copies}x the sample docs")
            line = next(line for _, line in finished.lines if line.startswith("Ingested "))
            seconds = float(line.split(" in ")[1].split()[0])
            trace_id = next(line.split()[-1] for _, line in finished.lines if line.startswith("Trace ID: "))
            traces[copies] = trace_id
            self.raw["ingest"][copies] = {"docs": len(files), "kb": kb, "insert_s": seconds,
                                          "docs_per_s": len(files) / seconds, "kb_per_s": kb / seconds}
        for copies, trace_id in traces.items():
            self.raw["ingest"][copies]["spans"] = self.settled_count(lambda t=trace_id: len(self.receiver.spans(t)))
        base = self.raw["ingest"][1]
        for copies, figures in self.raw["ingest"].items():
            growth = figures["spans"] / base["spans"]
            self.rows.append(Row("Ingest", f"{copies}x sample docs ({figures['docs']} docs, {figures['kb']:.0f} KB): "
                                 "docs/s, KB/s, spans in the trace",
                                 f"{figures['docs_per_s']:.1f} docs/s, {figures['kb_per_s']:.1f} KB/s, {figures['spans']} spans",
                                 ratio=f"spans x{growth:.2f} for data x{copies}", goal="spans grow <= linearly",
                                 met=yes(growth <= copies)))


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, round(pct / 100 * len(sorted_values) + 0.4999))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def print_table(rows: list[Row]) -> None:
    headers = Row("figure", "what", "ours", "baseline", "ratio", "goal", "met")
    table = [headers, *rows]
    widths = {name: max(len(getattr(r, name)) for r in table) for name in ("figure", "ours", "baseline", "ratio", "goal", "met")}
    for row in table:
        print(f"{row.figure:<{widths['figure']}}  {row.ours:<{widths['ours']}}  {row.baseline:<{widths['baseline']}}  "
              f"{row.ratio:<{widths['ratio']}}  {row.goal:<{widths['goal']}}  {row.met:<{widths['met']}}  {row.what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5,
                        help="repetitions of each side of a comparison (P2 and P6 take at least 3 and 5; default %(default)s)")
    parser.add_argument("--only", default=",".join(FIGURES),
                        help="comma-separated figures to measure (default: all of %(default)s)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results.json",
                        help="where the raw figures go, as JSON (default %(default)s)")
    args = parser.parse_args()
    wanted = [name.strip().lower() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(FIGURES))
    if unknown or args.reps < 1:
        parser.error(f"unknown figure(s) {', '.join(unknown)} (have {', '.join(FIGURES)})" if unknown
                     else "--reps must be at least 1")

    started = time.monotonic()
    rows: list[Row] = []
    raw: dict = {}
    if "instr" in wanted:
        from bench import instrumentor_cost

        raw["instr"] = {}
        for env in INSTRUMENTOR_CLIENTS:
            print(f"[bench] instr on {env} (in-process, its own venv) ...", file=sys.stderr, flush=True)
            figures = instrumentor_cost_in(env, reps=max(args.reps, 30))
            rows += [Row(**row) for row in instrumentor_cost.rows(figures)]
            raw["instr"][env] = figures
    if set(wanted) - IN_PROCESS:
        stack_rows, stack_raw = bench_on_stack(args, wanted)
        rows[:0], raw = stack_rows, {**stack_raw, **raw}
    took = time.monotonic() - started
    print()
    print_table(rows)
    print(f"\n{os.cpu_count()} cores, Python {platform.python_version()}, --reps {args.reps}, "
          f"{took / 60:.1f} min in all; raw figures in {args.out}")
    args.out.write_text(json.dumps({
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cores": os.cpu_count(),
        "python": platform.python_version(), "reps": args.reps, "seconds": took,
        "table": [asdict(row) for row in rows], "raw": raw,
    }, indent=2, default=str) + "\n")
    return 0


def instrumentor_cost_in(env_name: str, *, reps: int) -> dict:
    """bench/instrumentor_cost.py run in the venv make test-instrumentation keeps for one client
    release: the instrumentor and the canned server from the clone's sources."""
    from local.instrumentation_matrix import ENVS, venv_of

    [env] = [env for env in ENVS if env.name == env_name]
    venv = venv_of(env)
    path = os.pathsep.join(str(PROJECT_ROOT / part) for part in (".", "instrumentation/src", "instrumentation/tests"))
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "bench.instrumentor_cost", "--reps", str(reps), "--json"],
                          cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"[bench] instr on {env_name} failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def bench_on_stack(args: argparse.Namespace, wanted: list[str]) -> tuple[list[Row], dict]:
    """The figures measured on a local stack of the bench's own: (table rows, raw figures)."""
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    state_dir = work / "stack"
    with OTLPReceiver() as receiver:
        print(f"[bench] starting the local stack on free ports (state in {state_dir}) ...", file=sys.stderr, flush=True)
        local = stack.up(state_dir=state_dir, trace_backend="external", otlp_endpoint=receiver.base_url,
                         llama_stack_port=free_port(), llama_server_port=free_port())
        bench = Bench(python=sys.executable, receiver=receiver, local=local, work=work, reps=args.reps)
        try:
            steps = [("p6", bench.p6_startup), ("p2", bench.p2_exit_healthy), ("p3", bench.p3_exit_broken),
                     ("p4", bench.p4_delivery), ("p1", bench.p1_p5_overhead), ("p7", bench.p7_scale),
                     ("ingest", bench.ingestion)]
            for name, step in steps:
                if name in wanted or (name == "p1" and "p5" in wanted):
                    step_started = time.monotonic()
                    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
                    step()
                    print(f"[bench] {name} took {time.monotonic() - step_started:.0f} s", file=sys.stderr, flush=True)
        finally:
            stack.down(state_dir=state_dir, quiet=True)
            shutil.rmtree(work, ignore_errors=True)
    return bench.rows, bench.raw


if __name__ == "__main__":
    sys.exit(main())
