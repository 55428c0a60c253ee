"""The command line: flags, their environment variables, and everything checked before a run.

A flag beats its environment variable, which beats the default; ``--help`` names both. Bad
input — a flag, a variable, an unusable docs folder — is one line on stderr and exit 2, before
the first span or request. Stdlib only until the documents are read: ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from llama_stack_otel import __version__
from llama_stack_otel.config import (
    APIS,
    DEFAULT_CHUNK_SIZE_IN_TOKENS,
    DEFAULT_CONCURRENCY,
    DEFAULT_DOCS_DIR,
    DEFAULT_EMBEDDING_DIMENSION,
    DEFAULT_EMBEDDING_MODEL,
    DEFAULT_EXPORT_TIMEOUT_MS,
    DEFAULT_INSTRUCTIONS,
    DEFAULT_LLAMA_STACK_URL,
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_MODEL,
    DEFAULT_OTLP_TRACES_ENDPOINT,
    DEFAULT_QUESTION,
    DEFAULT_STALL_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_TOOL_CHOICE,
    DEFAULT_TRACE_UI_URL,
    MAX_CONCURRENCY,
    TRACE_BACKENDS,
    TRUE_WORDS,
    ConfigError,
    Settings,
    TelemetrySettings,
    capture_content_setting,
    env_choice,
    env_flag,
)
from llama_stack_otel.documents import Document, load_documents
from llama_stack_otel.errors import EXIT_USAGE, UserError

DEFAULT_VERIFY_WAIT_SECONDS = 20.0
TIMEOUT_ENV = "OTEL_EXPORTER_OTLP_TIMEOUT"
# The samplers the SDK's TracerProvider understands from OTEL_TRACES_SAMPLER; anything else
# it would replace by the default with only a log line.
KNOWN_SAMPLERS = ("always_on", "always_off", "traceidratio", "parentbased_always_on",
                  "parentbased_always_off", "parentbased_traceidratio")
RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")
# Boolean variables, checked up front so that a typo is an error rather than a silent "no".
FLAG_VARIABLES = ("VERIFY_TRACE", "RAG_AGENT_DEBUG", "OTEL_SDK_DISABLED")
HEADER_CAPTURE_ENVS = ("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST",
                       "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE")

EPILOG = f"""\
examples:
  %(prog)s --question "Should I use npm to start a node.js application?"
  %(prog)s --llama-stack-url http://127.0.0.1:8321 --model gemma3-270m --verify
  OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 %(prog)s --concurrency 4
  make demo ARGS="--question 'How do I run node in a container?'"   # the local stack, no containers

a secured server or collector (docs/configuration.md):
  LLAMA_STACK_API_KEY      the server's API key, sent as a bearer token
  SSL_CERT_FILE            the CA file (PEM) that signed the server's certificate
  OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_CERTIFICATE   the collector's header(s) and CA file

exit status:
  0 done   1 unexpected error   {EXIT_USAGE} bad flag, variable or docs folder
  3 Llama Stack unreachable, refused or failed a call   4 --verify: the trace is not whole
  130 Ctrl-C   143 SIGTERM (both clean up first)
"""


@dataclass(frozen=True)
class Options:
    """Everything a run was asked for, checked."""

    settings: Settings
    telemetry: TelemetrySettings | None  # None: OTEL_SDK_DISABLED
    trace_ui: str
    trace_backend: str
    verify: bool
    verify_wait: float
    concurrency: int
    debug: bool
    documents: list[Document]


# --- Values --------------------------------------------------------------------------------------


def env_default(name: str, default: Any) -> Any:
    return os.environ.get(name) or default


def _number(text: str, *, what: str, ok: Any) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def seconds(text: str) -> float:
    return _number(text, what="a positive number of seconds", ok=lambda v: v > 0)


def seconds_or_zero(text: str) -> float:
    return _number(text, what="a number of seconds (0 or more)", ok=lambda v: v >= 0)


def milliseconds(text: str) -> float:
    return _number(text, what="a positive number of milliseconds", ok=lambda v: v > 0)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def concurrency(text: str) -> int:
    value = positive_int(text)
    if value > MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_CONCURRENCY}, got {text}")
    return value


def byte_size(text: str) -> int:
    """A number of bytes, optionally with a K, M or G suffix (powers of 1024): 500K, 2M."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    number, unit = (text[:-1], units[text[-1].upper()]) if text[-1:].upper() in units else (text, 1)
    try:
        value = int(float(number) * unit)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive size such as 1048576, 500K or 2M, got {text!r}")
    return value


def check_http_url(option: str, url: str) -> str:
    """The URL without a trailing slash, or a UserError saying it is not a usable http(s) URL."""
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        usable = False
    if not usable:
        raise UserError(f"{option} {url!r} is not an http(s) URL such as http://localhost:8321")
    return url.rstrip("/")


# --- The parser ----------------------------------------------------------------------------------


class OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser; reading the environment for defaults may raise ConfigError."""
    parser = OneLineErrorParser(
        prog="llama_stack_agent_rag_otel.py", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a RAG agent on Llama Stack inside one OpenTelemetry trace: this script's spans "
                    "and the server's, in one tree.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")

    server = parser.add_argument_group("Llama Stack and the model")
    server.add_argument("--llama-stack-url", default=env_default("LLAMA_STACK_URL", DEFAULT_LLAMA_STACK_URL),
                        metavar="URL", help="server base URL (env LLAMA_STACK_URL; default %(default)s)")
    server.add_argument("--model", default=env_default("INFERENCE_MODEL", DEFAULT_MODEL),
                        help="LLM the agent uses, as registered on the server; on 0.4+ the provider prefix "
                             "may be left out (env INFERENCE_MODEL; default %(default)s)")
    server.add_argument("--api", choices=APIS, default=env_choice("LLAMA_STACK_API", APIS, "auto"),
                        help="agents (0.2.x: Agents API, vector DB, builtin::rag), responses (0.4 and later: "
                             "files, vector store, Responses API with file_search), or auto: ask the server's "
                             "/v1/version (env LLAMA_STACK_API; default %(default)s)")
    server.add_argument("--tool-choice", default=env_default("TOOL_CHOICE", DEFAULT_TOOL_CHOICE),
                        help="auto (the model decides), required, none, or a tool name such as "
                             "knowledge_search to make the model search before it answers; small models need "
                             "that (env TOOL_CHOICE; default %(default)s)")
    server.add_argument("--instructions", default=env_default("AGENT_INSTRUCTIONS", DEFAULT_INSTRUCTIONS),
                        help="the agent's system instructions (env AGENT_INSTRUCTIONS; default %(default)r)")
    server.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT_SECONDS, metavar="SECONDS",
                        help="how long any one Llama Stack call may take (default %(default)s)")

    run = parser.add_argument_group("documents and questions")
    run.add_argument("--docs", type=Path, default=Path(env_default("RAG_DOCS_DIR", DEFAULT_DOCS_DIR)), metavar="DIR",
                     help="folder of markdown documents, read recursively (env RAG_DOCS_DIR; default %(default)s)")
    run.add_argument("--question", action="append", dest="questions", metavar="TEXT",
                     help=f"question to ask; repeat for several (default: {DEFAULT_QUESTION!r})")
    run.add_argument("--no-questions", action="store_true",
                     help="only ingest the documents (and clean up): no agent, no LLM needed")
    run.add_argument("--show-rag-documents", action="store_true",
                     help="also print what the search returned (knowledge_search on 0.2.x, file_search on 0.4+)")
    run.add_argument("--max-file-size", type=byte_size, default=env_default("RAG_MAX_FILE_SIZE", DEFAULT_MAX_FILE_SIZE),
                     metavar="BYTES", help="skip (with a warning) any .md file larger than this; K and M suffixes "
                                           "work (env RAG_MAX_FILE_SIZE; default %(default)s)")
    run.add_argument("--chunk-size", type=positive_int, default=DEFAULT_CHUNK_SIZE_IN_TOKENS, metavar="TOKENS",
                     help="chunk size for ingestion (default %(default)s)")
    run.add_argument("--embedding-model", default=DEFAULT_EMBEDDING_MODEL,
                     help="0.2.x: embedding model of the vector DB (default %(default)s; on 0.4+ the server's "
                          "default embedding model is used)")
    run.add_argument("--embedding-dimension", type=positive_int, default=DEFAULT_EMBEDDING_DIMENSION, metavar="N",
                     help="0.2.x: dimension of that embedding model (default %(default)s; unused on 0.4+)")
    run.add_argument("--stall-timeout", type=seconds, default=DEFAULT_STALL_SECONDS, metavar="SECONDS",
                     help="0.4+: fail the run (exit 3) when a file's ingestion is still in progress after this "
                          "long (default %(default)s; 0.2.x ingests in one call, bounded by --timeout)")
    run.add_argument("--concurrency", type=concurrency, default=DEFAULT_CONCURRENCY, metavar="N",
                     help="run N independent requests at once, each in its own trace, with its own vector "
                          f"DB/store; lines are prefixed [k] (default %(default)s, at most {MAX_CONCURRENCY})")

    tracing = parser.add_argument_group("tracing")
    tracing.add_argument("--otlp-endpoint", default=None, metavar="URL",
                         help="OTLP/HTTP traces endpoint (default: env OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else "
                              f"OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, else {DEFAULT_OTLP_TRACES_ENDPOINT}); "
                              "metrics go to the same base + /v1/metrics unless "
                              "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT says otherwise")
    tracing.add_argument("--no-metrics", action="store_true",
                         help="export no OTLP metrics (also: env OTEL_METRICS_EXPORTER=none)")
    tracing.add_argument("--export-timeout", type=milliseconds, default=None, metavar="MS",
                         help="milliseconds any one OTLP export may take, and the longest the run waits for its "
                              "telemetry at the end when the collector is down or slow (env "
                              f"{TIMEOUT_ENV}, in milliseconds as the OTLP spec says; default "
                              f"{DEFAULT_EXPORT_TIMEOUT_MS:g})")
    tracing.add_argument("--trace-ui", default=env_default("TRACE_UI_URL", DEFAULT_TRACE_UI_URL), metavar="URL",
                         help="trace viewer base URL for the printed link (env TRACE_UI_URL; default %(default)s)")
    tracing.add_argument("--trace-backend", choices=TRACE_BACKENDS,
                         default=env_choice("TRACE_BACKEND", TRACE_BACKENDS, "auto"),
                         help="which viewer --trace-ui is: jaeger, phoenix, or auto (tell by which API it "
                              "answers); sets the link's form and what --verify asks "
                              "(env TRACE_BACKEND; default %(default)s)")
    tracing.add_argument("--verify", action="store_true", default=env_flag("VERIFY_TRACE"),
                         help="after the run, fetch its trace from the trace UI, print it as a tree and check it "
                              "is whole (one root, no orphans, server spans under each call); exit 4 when it is "
                              "not (env VERIFY_TRACE=1)")
    tracing.add_argument("--verify-wait", type=seconds_or_zero, default=DEFAULT_VERIFY_WAIT_SECONDS,
                         metavar="SECONDS",
                         help="with --verify, how long to keep asking for a trace that is not whole yet: servers "
                              "send their spans in batches every few seconds (default %(default)s)")
    tracing.add_argument("--debug", action="store_true", default=env_flag("RAG_AGENT_DEBUG"),
                         help="show tracebacks instead of one-line errors, and the SDK's log (env "
                              "RAG_AGENT_DEBUG=1)")
    return parser


# --- From arguments to settings ------------------------------------------------------------------


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings(
        llama_stack_url=check_http_url("--llama-stack-url", args.llama_stack_url),
        model=args.model,
        docs_dir=args.docs,
        questions=() if args.no_questions else tuple(args.questions or [DEFAULT_QUESTION]),
        timeout=args.timeout,
        embedding_model=args.embedding_model,
        embedding_dimension=args.embedding_dimension,
        chunk_size_in_tokens=args.chunk_size,
        show_rag_documents=args.show_rag_documents,
        max_file_size=args.max_file_size,
        tool_choice=args.tool_choice,
        instructions=args.instructions,
        api=args.api,
        stall_timeout=args.stall_timeout,
    )


def tracing_disabled() -> bool:
    return env_flag("OTEL_SDK_DISABLED")


def resolve_traces_endpoint(flag: str | None) -> str:
    """--otlp-endpoint, else the signal-specific variable, else the base variable + /v1/traces."""
    if flag:
        return flag
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    return DEFAULT_OTLP_TRACES_ENDPOINT


def resolve_metrics_endpoint(traces_endpoint: str) -> str:
    """The signal variable, else the traces endpoint with /v1/metrics for /v1/traces (same base),
    else the base variable + /v1/metrics."""
    if os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]
    if traces_endpoint.rstrip("/").endswith("/v1/traces"):
        return traces_endpoint.rstrip("/")[: -len("/v1/traces")] + "/v1/metrics"
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/metrics"
    return "http://localhost:4318/v1/metrics"


def resolve_export_timeout_ms(flag: float | None) -> float:
    """--export-timeout, else OTEL_EXPORTER_OTLP_TIMEOUT (milliseconds, per the OTLP spec), else the default."""
    if flag is not None:
        return flag
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_EXPORT_TIMEOUT_MS
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{TIMEOUT_ENV}={raw!r} is not a positive number of milliseconds")
    return value


def check_sampler_env() -> None:
    """Refuse an OTEL_TRACES_SAMPLER (and its ratio argument) the SDK would silently replace."""
    name = os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if not name:
        return
    if name not in KNOWN_SAMPLERS:
        raise ConfigError(f"OTEL_TRACES_SAMPLER={name!r} is not a sampler this script knows — use one of "
                          f"{', '.join(KNOWN_SAMPLERS)}")
    raw = os.environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if name in RATIO_SAMPLERS and raw:
        try:
            ratio = float(raw)
        except ValueError:
            ratio = math.nan
        if not 0.0 <= ratio <= 1.0:
            raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG={raw!r} is not a ratio between 0 and 1")


def metrics_disabled() -> bool:
    return os.environ.get("OTEL_METRICS_EXPORTER", "").strip().lower() == "none"


def disable_header_capture() -> list[str]:
    """The HTTPX instrumentation records headers named in these variables; we never do.
    Returns the variables that were set, so the caller can say they are ignored."""
    return [name for name in HEADER_CAPTURE_ENVS if os.environ.pop(name, None)]


def telemetry_settings_from_args(args: argparse.Namespace) -> TelemetrySettings | None:
    """Where traces and metrics go and how long an export may take; None with OTEL_SDK_DISABLED."""
    if tracing_disabled():
        return None
    timeout_ms = resolve_export_timeout_ms(args.export_timeout)
    check_sampler_env()
    traces_endpoint = check_http_url("the OTLP traces endpoint", resolve_traces_endpoint(args.otlp_endpoint))
    metrics_endpoint = None
    if not (args.no_metrics or metrics_disabled()):
        metrics_endpoint = check_http_url("the OTLP metrics endpoint", resolve_metrics_endpoint(traces_endpoint))
    return TelemetrySettings(traces_endpoint, metrics_endpoint, timeout_ms)


def options_from_args(args: argparse.Namespace) -> Options:
    telemetry = telemetry_settings_from_args(args)
    if args.verify and telemetry is None:
        raise UserError("--verify checks the run's trace, and OTEL_SDK_DISABLED=true turns tracing off")
    for name in disable_header_capture():
        print(f"warning: ignoring {name}: this script does not record HTTP headers", file=sys.stderr)
    settings = settings_from_args(args)
    trace_ui = check_http_url("--trace-ui", args.trace_ui)
    return Options(settings=settings, telemetry=telemetry, trace_ui=trace_ui, trace_backend=args.trace_backend,
                   verify=args.verify, verify_wait=args.verify_wait, concurrency=args.concurrency, debug=args.debug,
                   documents=load_documents(settings.docs_dir, max_file_size=settings.max_file_size))


def parse(argv: Sequence[str] | None = None) -> Options:
    """The checked options and documents, or one line on stderr and exit 2 (SystemExit)."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        for name in FLAG_VARIABLES:
            env_flag(name)  # a value that is neither yes nor no is refused here, once
        capture_content_setting()  # OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: yes/no or a mode
        options = options_from_args(build_parser().parse_args(argv))
    except (UserError, ConfigError) as exc:
        # The variable is read by hand: env_flag would raise when the error is about its own value.
        if debug or os.environ.get("RAG_AGENT_DEBUG", "").strip().lower() in TRUE_WORDS:
            import traceback

            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(getattr(exc, "exit_code", EXIT_USAGE)) from None
    configure_logging(debug=options.debug)
    return options


def configure_logging(*, debug: bool) -> None:
    import logging

    # Claim the root logger first: llama_stack_client calls logging.basicConfig(INFO) on
    # import, which would print a line per HTTP request; ours makes that call a no-op.
    logging.basicConfig(level=logging.INFO if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not debug:
        # The SDK logs every failed export and dropped span; the run ends with one line
        # about what was not delivered instead (delivery.py).
        logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
