"""Running the script's requests: one or many at once, each with its exit status, then the
telemetry's delivery, the trace links and, with --verify, the trace's verdict.

The request itself — the top-level span and the RAG steps inside it — is the script's; this
module runs it (in threads for --concurrency, each thread starting with an empty context so
that each request is a trace of its own), turns what ended it into an exit status and one
line, and records that on the request's top-level span.
"""

from __future__ import annotations

import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import Span

from llama_stack_otel import semconv
from llama_stack_otel.cli import Options
from llama_stack_otel.config import DEFAULT_SERVICE_NAME
from llama_stack_otel.console import Console
from llama_stack_otel.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_TRACE_BROKEN,
    UserError,
    translate_client_error,
)
from llama_stack_otel.semconv import ERROR_TYPE
from llama_stack_otel.signals import Terminated, signals
from llama_stack_otel.telemetry import Telemetry, outcome_of

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from llama_stack_otel.delivery import Delivery


@dataclass
class Run:
    """One request of this process: its own top-level span, vector DB or store, and agent."""

    run_id: str
    out: Console
    trace_id: int = 0
    exit_code: int = 0


Request = Callable[[Run, Telemetry], None]


@contextmanager
def outcome(root: Span, *, run: Run, telemetry: Telemetry, options: Options) -> Iterator[None]:
    """Inside the request's top-level span: it describes the run (the backends add the server's
    version and API generation) and ends with its outcome; a failure is recorded on it (naming
    the phase it happened in), the client's errors become one-line UserErrors, and the run's
    duration is recorded as a metric."""
    run.trace_id = root.get_span_context().trace_id
    telemetry.root = root
    settings = options.settings
    root.set_attributes({semconv.OPENINFERENCE_SPAN_KIND: semconv.KIND_CHAIN, semconv.RUN_ID: run.run_id,
                         semconv.MODEL: settings.model, semconv.DOCUMENTS_COUNT: len(options.documents),
                         semconv.QUESTIONS_COUNT: len(settings.questions)})
    started = time.perf_counter()
    error: str | None = None
    try:
        yield
    except BaseException as exc:
        root.set_attribute(semconv.OUTCOME, outcome_of(exc))
        translated = translate_client_error(exc, settings.llama_stack_url) if isinstance(exc, Exception) else None
        error = telemetry.record_run_failure(root, translated or exc)
        if translated is None:
            raise
        raise translated from exc
    else:
        root.set_attribute(semconv.OUTCOME, outcome_of(None))
    finally:
        telemetry.instruments.run_duration.record(time.perf_counter() - started, {ERROR_TYPE: error} if error else {})


def run_one(request: Request, run: Run, telemetry: Telemetry, *, debug: bool) -> None:
    """One request; what ended it becomes run.exit_code and, on failure, one line on stderr."""
    out = run.out
    try:
        request(run, telemetry)
    except UserError as exc:
        if debug:
            traceback.print_exc()
        out.line(f"error: {exc}", error=True)
        run.exit_code = exc.exit_code
    except Terminated:
        out.line("error: terminated (SIGTERM)", error=True)
        run.exit_code = EXIT_TERMINATED
    except KeyboardInterrupt:
        # The top-level span has recorded it and the run has cleaned up; spans still go out.
        out.line("error: interrupted", error=True)
        run.exit_code = EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence prints one line, not a traceback
        if debug:
            traceback.print_exc()
        out.line(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", error=True)
        run.exit_code = EXIT_ERROR


def run_requests(runs: list[Run], request: Request, telemetry: Telemetry, *, debug: bool) -> None:
    """Every run: in this thread when there is one, else each in a thread of its own."""
    if len(runs) == 1:
        run_one(request, runs[0], telemetry, debug=debug)
        return
    # Runs share the tracer and instruments only: per-run telemetry remembers its failed phase.
    with ThreadPoolExecutor(max_workers=len(runs), thread_name_prefix="rag-run") as pool:
        pending = [pool.submit(run_one, request, run, Telemetry(tracer=telemetry.tracer,
                                                                instruments=telemetry.instruments), debug=debug)
                   for run in runs]
        while pending:
            try:
                pending[0].result()
                pending.pop(0)
            except KeyboardInterrupt as exc:
                # The signal lands in this thread; the runs stop at their next checkpoint and clean up.
                signals.seen(exc)
                signals.stop_all(exc)


def run(options: Options, request: Request, *, tracer: trace.Tracer, provider: TracerProvider | None,
        span_delivery: Delivery | None) -> int:
    """Run the requests, deliver the telemetry, print the links, check the traces; the exit status."""
    signals.install()
    meter_provider = None
    if provider is not None and span_delivery is not None and options.telemetry is not None \
            and options.telemetry.metrics_endpoint is not None:
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        from llama_stack_otel.telemetry import configure_metrics

        endpoint = options.telemetry.metrics_endpoint
        meter_provider = configure_metrics(endpoint=endpoint, resource=provider.resource, metric_reader=(
            PeriodicExportingMetricReader(span_delivery.new_metric_exporter(endpoint))))
    telemetry = Telemetry(tracer=tracer)
    many = options.concurrency > 1
    runs = [Run(run_id=str(uuid.uuid4()), out=Console(f"[{k}] " if many else ""))
            for k in range(1, options.concurrency + 1)]
    try:
        run_requests(runs, request, telemetry, debug=options.debug)
    finally:
        signals.exit_at_once = "delivering telemetry (spans not sent yet are lost)"
        if span_delivery is not None:
            # Flushes every span and metric, waiting at most the export timeout in all.
            span_delivery.shut_down(traces=provider, metrics=meter_provider)
            problem = span_delivery.summary()
            if problem:
                print(f"warning: {problem}", file=sys.stderr)
    exit_code = next((r.exit_code for r in runs if r.exit_code), 0)
    if provider is None:
        return exit_code
    if not show_traces(runs, options=options, client_service=str(provider.resource.attributes.get(
            "service.name", DEFAULT_SERVICE_NAME))) and exit_code == 0:
        exit_code = EXIT_TRACE_BROKEN
    return exit_code


def show_traces(runs: list[Run], *, options: Options, client_service: str) -> bool:
    """Each run's trace id and link; with --verify, its tree and verdict. False: not whole."""
    from llama_stack_otel import verify  # only after the runs: its imports do not delay the first request

    # Only now ask the UI which backend it is: a network call, after the telemetry is out.
    backend: Any
    if options.trace_backend == "auto":
        backend = verify.detect_backend(options.trace_ui)
    else:
        backend = verify.make_backend(options.trace_backend, options.trace_ui)
    link_form = backend or verify.Jaeger(options.trace_ui)
    for r in runs:
        trace_hex = trace.format_trace_id(r.trace_id)
        r.out.line(f"Trace ID: {trace_hex}")
        r.out.line(f"Trace link: {link_form.link(trace_hex)}")
    if not options.verify:
        return True
    signals.exit_at_once = "checking the trace"
    checks = [verify.RunTrace(trace.format_trace_id(r.trace_id), r.run_id, r.out.prefix) for r in runs]
    return verify.verify_runs(checks, backend=backend, trace_ui=options.trace_ui, wait_s=options.verify_wait,
                              client_service=client_service)
