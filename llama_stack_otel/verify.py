"""Fetch one trace from Jaeger or Phoenix, print it as a tree, and say whether it came out whole.

A distributed trace breaks quietly: when the ``traceparent`` header does not reach the server,
or the server's telemetry is off, the trace viewer shows the client's spans alone, or "invalid
span" placeholders for parents that never arrived, and nobody looks until the trace is needed.
This module asks the trace backend for a trace and checks it:

- one root span, no orphans (spans whose parent never arrived),
- spans from a service other than the root's (the server's), and
- under every HTTP call the root's service made, at least one span of the server that answered it.

llama_stack_agent_rag_otel.py uses it for ``--verify``; show_trace.py checks any trace id:

    python show_trace.py 4bf92f3577b34da6a3ce929d0e0e4736 --trace-ui http://localhost:16686
    python show_trace.py <trace-id> --trace-ui http://127.0.0.1:6006 --trace-backend phoenix

Backends: Jaeger's query API v3 (``GET <ui>/api/v3/traces/<id>``, OTLP-JSON) and Phoenix's REST
API (``GET <ui>/v1/projects/<project>/spans?trace_id=<id>``). With ``auto`` the backend is told
by which of the two APIs the UI answers. Servers send their spans in batches (every ~5 s), so
the check polls on a deadline until the trace is whole or the time is up.

Exit status: 0 the trace is whole, 4 it is broken, not found, or the backend could not be asked,
2 bad input. Stdlib only (no OpenTelemetry): it must record no spans of its own.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from llama_stack_otel import names
from llama_stack_otel.config import TRACE_BACKENDS, ConfigError, env_choice
from llama_stack_otel.traces import (  # noqa: F401 - the command's callers and tests use them from here
    SERVICE_NAME,
    Backend,
    BackendError,
    Jaeger,
    Phoenix,
    Span,
    detect_backend,
    fill_in_services,
    make_backend,
    span_from_phoenix,
    spans_from_otlp_json,
)

DEFAULT_TRACE_UI_URL = "http://localhost:16686"
DEFAULT_WAIT_SECONDS = 20.0
DEFAULT_WIDTH = 100
POLL_INTERVAL_SECONDS = 1.0
COLLAPSE_AT = 3  # this many same-named leaf siblings or more print as one line with a count
TINY_NS = 1_000_000  # leaf spans shorter than this (1 ms) fold into one line per parent
BACKENDS = TRACE_BACKENDS

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_BROKEN = 4  # broken, not found, or the backend could not be asked

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


# --- The verdict --------------------------------------------------------------------------------


def other_runs_named(span: Span, run_id: str) -> set[str]:
    """The ids of runs other than run_id that span's name or attribute values mention."""
    texts = [span.name, *(v for v in span.attributes.values() if isinstance(v, str))]
    return {found for text in texts for found in names.RUN_ID_MARK.findall(text)} - {run_id}


@dataclass
class Verdict:
    spans: list[Span]
    roots: list[Span]
    orphans: list[Span]
    services: Counter
    calls_without_server: list[Span]
    http_calls: int
    problems: list[str]
    foreign: list[Span] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def covered_ns(self) -> int:
        if not self.spans:
            return 0
        return max(s.end_ns for s in self.spans) - min(s.start_ns for s in self.spans)


def judge(spans: Sequence[Span], *, client_service: str | None = None,
          expect_server: bool = True, run_id: str | None = None) -> Verdict:
    """Whether spans make one whole trace.

    client_service is the service that made the calls (the script's); if not given, that of the
    root. A trace is broken when it has no spans, not exactly one root, orphans, (with
    expect_server) no span of another service or HTTP calls with no span of the server under
    them, or (given the script's run_id) spans that name another run: work of a concurrent
    request that a server filed under this one.
    """
    spans = fill_in_services(spans, client_service=client_service)
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if not s.parent_id]
    orphans = [s for s in spans if s.parent_id and s.parent_id not in ids]
    services = Counter(s.service or "?" for s in spans)
    if client_service is None and len(roots) == 1:
        client_service = roots[0].service
    has_children = {s.parent_id for s in spans}
    http_calls = [s for s in spans if s.is_http_call and s.called_url
                  and (client_service is None or s.service == client_service)]
    calls_without_server = [s for s in http_calls if s.span_id not in has_children]

    foreign = [s for s in spans if other_runs_named(s, run_id)] if run_id else []

    problems = []
    if not spans:
        problems.append("no spans found for this trace")
    else:
        if not roots:
            problems.append("no root span: the top of the trace never arrived")
        elif len(roots) > 1:
            listed = ", ".join(repr(_short(r.name, 40)) for r in roots[:3])
            problems.append(f"{len(roots)} root spans ({listed}{', ...' if len(roots) > 3 else ''}): "
                            f"part of the work started a trace of its own")
        if orphans:
            first = orphans[0]
            problems.append(f"{len(orphans)} orphan span(s) whose parent never arrived "
                            f"(first: {first.service or '?'} {_short(first.name, 40)!r})")
        if expect_server:
            servers = [name for name in services if name not in (client_service, "?")]
            if client_service and not servers:
                problems.append(f"no server spans: only {client_service}'s spans arrived — is the server's "
                                f"telemetry on (Llama Stack 0.4 and later: start it under opentelemetry-instrument "
                                f"with OTEL_EXPORTER_OTLP_ENDPOINT set), and does its request carry the traceparent "
                                f"header?")
            elif calls_without_server:
                first = calls_without_server[0]
                problems.append(f"{len(calls_without_server)} of {len(http_calls)} HTTP calls have no server span "
                                f"under them (first: {_short(first.name, 50)!r})")
        if foreign:
            others = sorted({other for s in foreign for other in other_runs_named(s, run_id or "")})
            problems.append(f"{len(foreign)} span(s) belong to {len(others)} other run(s) (first: "
                            f"{foreign[0].service or '?'} {_short(foreign[0].name, 40)!r} names run {others[0][:8]}…): "
                            f"the server filed concurrent requests' work under this trace")
    return Verdict(spans=spans, roots=roots, orphans=orphans, services=services,
                   calls_without_server=calls_without_server, http_calls=len(http_calls), problems=problems,
                   foreign=foreign)


def wait_for_verdict(backend: Backend, trace_id: str, *, wait_s: float = DEFAULT_WAIT_SECONDS,
                     client_service: str | None = None, expect_server: bool = True, run_id: str | None = None,
                     poll_s: float = POLL_INTERVAL_SECONDS,
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> Verdict:
    """Poll the backend until the trace is whole or wait_s has passed; the last verdict."""
    deadline = clock() + wait_s
    whole_with = None  # the span count of the last whole answer
    while True:
        verdict = judge(backend.fetch(trace_id), client_service=client_service, expect_server=expect_server,
                        run_id=run_id)
        # Once whole, ask once more: the server's last spans can straddle two of its batches.
        settled = verdict.ok and whole_with == len(verdict.spans)
        # Spans of another run do not leave again: no use waiting for those to go away.
        if settled or verdict.foreign or clock() >= deadline:
            if not verdict.spans:
                verdict.problems = [f"no spans of trace {trace_id} in {backend.label} at {backend.ui} "
                                    f"after {wait_s:g} s — were they sent there?"]
            return verdict
        whole_with = len(verdict.spans) if verdict.ok else None
        sleep(min(poll_s, max(0.0, deadline - clock())))


# --- Printing --------------------------------------------------------------------------------------


def format_duration(ns: int) -> str:
    seconds = ns / 1e9
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.001:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


@dataclass
class _Line:
    name: str
    service: str
    duration_ns: int
    error: bool
    count: int = 1
    children: list[_Line] = field(default_factory=list)


def _lines_for(span: Span, children_of: Mapping[str, list[Span]]) -> _Line:
    line = _Line(span.name, span.service, span.duration_ns, span.error)
    kids = sorted(children_of.get(span.span_id, []), key=lambda s: (s.start_ns, s.name))
    # Leaves under a millisecond (a framework's dependency and serialization steps, a table
    # lookup) say little one by one: one line per parent names them and counts them.
    tiny = [s for s in kids if s.duration_ns < TINY_NS and not s.error and not children_of.get(s.span_id)]
    if len(tiny) >= 2:
        kids = [s for s in kids if s not in tiny]
        names = list(dict.fromkeys(s.name for s in tiny))
        services = {s.service for s in tiny}
        tiny_line = _Line(f"{len(tiny)} spans under 1 ms: {', '.join(names)}",
                          services.pop() if len(services) == 1 else "?", sum(s.duration_ns for s in tiny), False)
    else:
        tiny_line = None
    index = 0
    while index < len(kids):
        kid = kids[index]
        run_end = index
        # A run of same-named leaves (an embedding call per chunk, say) becomes one line.
        while (run_end + 1 < len(kids) and not children_of.get(kids[run_end + 1].span_id)
               and not children_of.get(kid.span_id)
               and (kids[run_end + 1].name, kids[run_end + 1].service) == (kid.name, kid.service)):
            run_end += 1
        run = kids[index:run_end + 1]
        if len(run) >= COLLAPSE_AT:
            line.children.append(_Line(kid.name, kid.service, sum(s.duration_ns for s in run),
                                       any(s.error for s in run), count=len(run)))
        else:
            line.children.extend(_lines_for(s, children_of) for s in run)
        index = run_end + 1
    if tiny_line is not None:
        line.children.append(tiny_line)
    return line


def render_tree(spans: Sequence[Span], *, width: int = DEFAULT_WIDTH, ascii_only: bool = False) -> list[str]:
    """The trace as indented lines: tree and name, service, duration, ERROR; at most width columns.
    Orphans print as extra tops, marked; runs of same-named leaf siblings print once with a count,
    and leaves under a millisecond print as one line per parent."""
    spans = fill_in_services(spans)
    ids = {s.span_id for s in spans}
    children_of: dict[str, list[Span]] = {}
    for span in spans:
        if span.parent_id in ids:
            children_of.setdefault(span.parent_id, []).append(span)
    tops = sorted((s for s in spans if s.parent_id not in ids), key=lambda s: (bool(s.parent_id), s.start_ns))
    branch, last, pipe, blank = ("|- ", "`- ", "|  ", "   ") if ascii_only else ("├─ ", "└─ ", "│  ", "   ")
    service_width = min(18, max((len(s.service or "?") for s in spans), default=1))
    out: list[str] = []

    def emit(line: _Line, prefix: str, connector: str, note: str = "") -> None:
        name = line.name + (f" ×{line.count}" if line.count > 1 and not ascii_only else
                            f" x{line.count}" if line.count > 1 else "") + note
        service = _short(line.service or "?", service_width)
        right = f"  {service:<{service_width}}  {format_duration(line.duration_ns):>8}"
        right += "  ERROR" if line.error else ""
        room = max(10, width - len(right))
        out.append(f"{_short(prefix + connector + name, room):<{room}}{right}".rstrip())

    def walk(line: _Line, prefix: str) -> None:
        for position, child in enumerate(line.children):
            is_last = position == len(line.children) - 1
            emit(child, prefix, last if is_last else branch)
            # Deep server call chains would push names off the line: stop indenting past 12 levels.
            walk(child, prefix + (blank if is_last else pipe) if len(prefix) < 36 else prefix)

    for top in tops:
        note = f"  (parent {top.parent_id[:8]}… never arrived)" if top.parent_id else ""
        root_line = _lines_for(top, children_of)
        emit(root_line, "", "", note)
        walk(root_line, "")
    return out


def render_verdict(verdict: Verdict, *, trace_id: str) -> list[str]:
    services = ", ".join(f"{name} ({count})" for name, count in verdict.services.most_common())
    lines = [f"services: {services or 'none'}",
             f"trace {trace_id}: {len(verdict.spans)} spans · {len(verdict.roots)} root(s) · "
             f"{len(verdict.orphans)} orphan(s) · {format_duration(verdict.covered_ns)} covered"]
    if verdict.ok:
        lines.append("trace OK")
    else:
        lines.append(f"trace BROKEN: {'; '.join(verdict.problems)}")
    return lines


def report(verdict: Verdict, *, trace_id: str, width: int = DEFAULT_WIDTH, out: Any = None) -> None:
    out = out or sys.stdout
    ascii_only = not _can_encode(out, "├─│×…µ")
    for line in render_tree(verdict.spans, width=width, ascii_only=ascii_only):
        print(line if not ascii_only else line.encode("ascii", "replace").decode(), file=out)
    for line in render_verdict(verdict, trace_id=trace_id):
        print(line if not ascii_only else line.replace("·", "-").encode("ascii", "replace").decode(), file=out)


def _can_encode(stream: Any, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


# --- Checking a script run's traces (--verify) --------------------------------------------------


@dataclass(frozen=True)
class RunTrace:
    trace_id: str  # 32 hex digits
    run_id: str  # the uuid in the run's root span name
    prefix: str = ""  # "[k] " when several runs share the output


def verify_runs(runs: Sequence[RunTrace], *, backend: Backend | None, trace_ui: str, wait_s: float,
                client_service: str) -> bool:
    """Print each run's trace as a tree with its verdict, all within wait_s in total; True when
    every one is whole. One line on stderr for a backend that could not be asked."""
    if backend is None:
        print(f"trace NOT CHECKED: no Jaeger or Phoenix answers at {trace_ui} — pass --trace-ui "
              "(and --trace-backend) for the trace UI the spans went to", file=sys.stderr)
        return False
    whole = 0
    deadline = time.monotonic() + wait_s
    for run in runs:
        try:
            verdict = wait_for_verdict(backend, run.trace_id, client_service=client_service, run_id=run.run_id,
                                       wait_s=max(0.0, deadline - time.monotonic()))
        except BackendError as exc:
            print(f"{run.prefix}trace NOT CHECKED: {exc}", file=sys.stderr)
            continue
        if run.prefix:
            print(f"{run.prefix}trace {run.trace_id}:")
        report(verdict, trace_id=run.trace_id)
        whole += verdict.ok
    if len(runs) > 1:
        print(f"{whole} of {len(runs)} traces whole")
    return whole == len(runs)


# --- The command ------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see --help)\n")


def _trace_id(text: str) -> str:
    value = text.strip().lower()
    if not TRACE_ID.match(value):
        raise argparse.ArgumentTypeError(f"a trace id is 32 hex digits, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds (0 or more), got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(description="Print a trace from Jaeger or Phoenix as a tree and say whether it is whole.",
                     epilog="exit status: 0 the trace is whole; 4 broken, not found, or the backend could not be "
                            "asked; 2 bad input")
    parser.add_argument("trace_id", type=_trace_id, help="the trace id: 32 hex digits, as the script prints it")
    parser.add_argument("--trace-ui", default=os.environ.get("TRACE_UI_URL") or DEFAULT_TRACE_UI_URL,
                        help="the trace backend's base URL (env TRACE_UI_URL; default %(default)s)")
    parser.add_argument("--trace-backend", choices=BACKENDS, default=env_choice("TRACE_BACKEND", BACKENDS, "auto"),
                        help="jaeger, phoenix, or auto: tell by which API the UI answers "
                             "(env TRACE_BACKEND; default %(default)s)")
    parser.add_argument("--verify-wait", type=_seconds, default=DEFAULT_WAIT_SECONDS, metavar="SECONDS",
                        help="keep asking this long for a trace that is not whole yet, as the script's "
                             "--verify-wait does (default %(default)s)")
    parser.add_argument("--client-service", default=None,
                        help="the service whose HTTP calls need server spans under them (default: the root's)")
    parser.add_argument("--run-id", default=None, metavar="UUID",
                        help="the script's run id (in its root span's name): flag spans that name another "
                             "run, i.e. a concurrent request the server filed under this trace")
    parser.add_argument("--width", type=int, default=DEFAULT_WIDTH, help="columns to fit (default %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not re.match(r"^https?://[^/]", args.trace_ui):
        print(f"error: --trace-ui {args.trace_ui!r} is not an http(s) URL such as {DEFAULT_TRACE_UI_URL}",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        backend = make_backend(args.trace_backend, args.trace_ui)
        verdict = wait_for_verdict(backend, args.trace_id, wait_s=args.verify_wait, client_service=args.client_service,
                                   run_id=args.run_id)
    except BackendError as exc:
        print(f"trace NOT CHECKED: {exc}", file=sys.stderr)
        return EXIT_BROKEN
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    report(verdict, trace_id=args.trace_id, width=args.width)
    print(f"Trace link: {backend.link(args.trace_id)}")
    return EXIT_OK if verdict.ok else EXIT_BROKEN

