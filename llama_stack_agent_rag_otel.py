#!/usr/bin/env python3
"""Run a RAG agent on Llama Stack and see the whole run as ONE OpenTelemetry trace.

The script ingests a folder of markdown documents into a Llama Stack vector DB,
creates an agent whose only tool is ``builtin::rag/knowledge_search``, asks it
questions and prints the answers. Every HTTP call the Llama Stack client makes
carries a W3C ``traceparent`` header, so the spans the server records while
handling it become children of this script's spans: a trace viewer shows the
run, its phases (``ingest_documents``, ``create_agent``, ``invoke_agent`` per
question, ``execute_tool``, ``clean_up``, named per the OpenTelemetry GenAI
conventions; see otel_genai.py), each API call, and what the server did inside
each call, in one tree. It also exports GenAI client metrics over OTLP.

When the collector is down the run still completes, waits at most the export timeout
for its telemetry and says in one line what was not delivered (otel_delivery.py);
SIGINT and SIGTERM clean up what the run created before exiting 130 / 143.

With --verify it then reads its trace back from the trace UI (Jaeger or Phoenix), prints it
as a tree and says whether it came out whole — one root, no orphans, the server's spans
under every call, nothing of another run (show_trace.py) — exiting 4 when it did not.
--concurrency N runs N requests at once, each in a trace of its own.

On Llama Stack 0.4 and later (no Agents API there) the same run goes through files, a vector
store and the Responses API with the file_search tool (rag_responses.py); the script asks the
server's /v1/version which it has, or takes --api agents|responses.

Private by default: the script's spans hold sizes, counts and ids, never the
questions, answers, instructions, documents or retrieved chunks;
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true opts in to recording them.

Run it against a Llama Stack server and an OTLP/HTTP collector (Jaeger):

    ./start-jaeger.sh start && ./start-llamastack.sh start
    python llama_stack_agent_rag_otel.py --question "Should I use npm to start a node.js application?"

or with no containers at all, against the project's local stack: `make demo`.

Environment (a flag beats its variable, which beats the default; see --help):
    LLAMA_STACK_URL, LLAMA_STACK_API, INFERENCE_MODEL, RAG_DOCS_DIR, RAG_MAX_FILE_SIZE, TOOL_CHOICE, TRACE_UI_URL,
    TRACE_BACKEND (auto | jaeger | phoenix), VERIFY_TRACE=1, AGENT_INSTRUCTIONS, OTEL_PROPAGATORS, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_TIMEOUT (milliseconds; bounds the wait for a collector that is down),
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, OTEL_METRICS_EXPORTER=none (no metrics),
    OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_SDK_DISABLED=true (no telemetry),
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true (record content in spans),
    RAG_AGENT_DEBUG=1 (tracebacks instead of one-line errors).
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.propagate import set_global_textmap
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import otel_delivery as delivery
import otel_genai as genai
import rag_responses
import show_trace
from interrupts import Terminated, signals
from rag_errors import (  # noqa: F401 - the exit statuses are this script's too
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_SERVER,
    EXIT_TERMINATED,
    EXIT_USAGE,
    UserError,
    model_not_registered,
)

DEFAULT_LLAMA_STACK_URL = "http://localhost:8321"
DEFAULT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
DEFAULT_DOCS_DIR = Path(__file__).resolve().parent / "sample-docs"
DEFAULT_QUESTION = "Should I use npm to start a node.js application?"
DEFAULT_TRACE_UI_URL = "http://localhost:16686"
DEFAULT_TRACE_BACKEND = "auto"  # ask the UI which it is (jaeger when it does not answer)
TRACE_BACKENDS = show_trace.BACKENDS  # the links' forms: Jaeger <ui>/trace/<id>, Phoenix <ui>/redirects/traces/<id>
DEFAULT_VERIFY_WAIT_SECONDS = show_trace.DEFAULT_WAIT_SECONDS
DEFAULT_CONCURRENCY = 1
MAX_CONCURRENCY = 64
DEFAULT_TOOL_CHOICE = "auto"
DEFAULT_API = "auto"
APIS = ("auto", rag_responses.API_AGENTS, rag_responses.API_RESPONSES)
DEFAULT_OTLP_TRACES_ENDPOINT = "http://localhost:4318/v1/traces"
DEFAULT_SERVICE_NAME = "PythonAgentRAG"
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
DEFAULT_EMBEDDING_DIMENSION = 384
DEFAULT_CHUNK_SIZE_IN_TOKENS = 125
DEFAULT_TIMEOUT_SECONDS = 300.0
DEFAULT_MAX_FILE_SIZE = 1024 * 1024  # bytes; a larger .md is skipped (embedding it would take long)
CLEANUP_TIMEOUT_SECONDS = 60.0

TRACER_NAME = "Python LlamaStack application"
ROOT_SPAN_PREFIX = "Python LlamaStack request - "
RAG_TOOL = "builtin::rag/knowledge_search"
AGENT_NAME = "rag-agent"
DEFAULT_INSTRUCTIONS = (
    "You are a helpful assistant, answer questions only based on information in the documents provided"
)

EXIT_TRACE_BROKEN = show_trace.EXIT_BROKEN  # --verify: the trace is not whole (4)


# --- Tracing -------------------------------------------------------------------------------------


def tracing_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def resolve_traces_endpoint(flag: str | None) -> str:
    """--otlp-endpoint, else the signal-specific variable, else the base variable + /v1/traces."""
    if flag:
        return flag
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    return DEFAULT_OTLP_TRACES_ENDPOINT


def build_resource() -> Resource:
    # Resource.create() already reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES;
    # only when neither names the service do we fall back to ours.
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def configure_tracing(*, endpoint: str, span_processor: SpanProcessor | None = None,
                      span_delivery: delivery.Delivery | None = None) -> TracerProvider:
    """Resource -> provider -> batch processor + OTLP/HTTP exporter -> HTTPX -> W3C propagator.
    The OTLP exporter comes from span_delivery, which bounds its timeout and counts its spans."""
    # main() shuts the provider down itself, within the export timeout: no atexit hook.
    provider = TracerProvider(resource=build_resource(), shutdown_on_exit=False)
    if span_processor is None:  # tests pass their own in-memory one
        span_delivery = span_delivery or delivery.Delivery(traces_endpoint=endpoint,
                                                           timeout_ms=delivery.DEFAULT_EXPORT_TIMEOUT_MS)
        provider.add_span_processor(span_delivery.spans)  # counts the spans that end
        span_processor = BatchSpanProcessor(span_delivery.span_exporter())
    provider.add_span_processor(span_processor)
    trace.set_tracer_provider(provider)
    # Header values can hold credentials: this script never records them.
    for name in genai.disable_header_capture():
        print(f"warning: ignoring {name}: this script does not record HTTP headers", file=sys.stderr)
    # Every httpx client created from here on (the Llama Stack client's included)
    # gets a client span per request and injects the current context into it;
    # the hook strips credentials and query values from the URL the span records.
    HTTPXClientInstrumentor().instrument(request_hook=genai.scrub_http_span)
    # W3C traceparent on every request, unless OTEL_PROPAGATORS names others (the SDK has
    # built those already); OTEL_PROPAGATORS=none sends none, and the trace comes out broken.
    if not os.environ.get("OTEL_PROPAGATORS", "").strip():
        set_global_textmap(TraceContextTextMapPropagator())
    return provider


# --- Documents -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    document_id: str
    text: str
    size_bytes: int


def find_markdown_files(docs_dir: Path) -> list[Path]:
    # os.walk without followlinks cannot loop on a symlinked directory cycle.
    found = []
    for folder, subdirs, files in os.walk(docs_dir):
        subdirs.sort()
        found.extend(Path(folder) / name for name in sorted(files) if name.lower().endswith(".md"))
    return found


def load_documents(docs_dir: Path, *, max_file_size: int = DEFAULT_MAX_FILE_SIZE) -> list[Document]:
    """Read every *.md under docs_dir (recursively) and strip it to plain text. A file that
    cannot be used (unreadable, not UTF-8, empty, over max_file_size bytes) is skipped with a
    warning naming it."""
    from strip_markdown import strip_markdown

    if not docs_dir.is_dir():
        raise UserError(f"docs folder {docs_dir} does not exist — pass --docs DIR or set RAG_DOCS_DIR")
    paths = find_markdown_files(docs_dir)
    if not paths:
        raise UserError(f"docs folder {docs_dir} holds no .md files — point --docs at a folder of markdown")
    documents = []
    for path in paths:
        try:
            # stat first: a huge file is never read. A symlink loop, a dangling link or a link
            # to a folder fails here (OSError) like an unreadable file.
            size = path.stat().st_size
            if size > max_file_size:
                print(f"warning: skipping {path}: {size} bytes is over the --max-file-size of {max_file_size}",
                      file=sys.stderr)
                continue
            raw = path.read_bytes()
        except OSError as exc:
            print(f"warning: skipping {path}: cannot read it ({exc.strerror or type(exc).__name__})", file=sys.stderr)
            continue
        try:
            markdown = raw.decode("utf-8")
        except UnicodeDecodeError:
            print(f"warning: skipping {path}: not UTF-8 text", file=sys.stderr)
            continue
        text = strip_markdown(markdown).strip()
        if not text:
            print(f"warning: skipping {path}: no text in it", file=sys.stderr)
            continue
        document_id = path.relative_to(docs_dir).as_posix()
        documents.append(Document(document_id=document_id, text=text, size_bytes=len(raw)))
    if not documents:
        raise UserError(f"no usable .md file in {docs_dir} — each was skipped (see the warnings above)")
    return documents


# --- Output --------------------------------------------------------------------------------------


class Console:
    """Where one run's lines go. A single run prints straight through and streams its answers;
    with --concurrency every line starts with the run's number and an answer prints whole once
    its turn ends (eight streams at once would interleave mid-word)."""

    _lock = threading.Lock()  # one line at a time, whichever run it comes from

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.streaming = not prefix
        self.answer_open = False  # "RESPONSE: " printed and its line not ended yet

    def line(self, text: str, *, error: bool = False) -> None:
        with self._lock:
            print(f"{self.prefix}{text}", file=sys.stderr if error else sys.stdout, flush=True)

    def begin_answer(self) -> None:
        if self.streaming:
            self.answer_open = True  # first: a signal landing in the print below still ends the line
            print("RESPONSE: ", end="", flush=True)

    def answer_part(self, text: str) -> None:
        if self.streaming:
            print(text, end="", flush=True)

    def end_answer(self, answer: str) -> None:
        if self.streaming:
            if self.answer_open:  # end the answer's line, also when the turn failed or was interrupted
                self.answer_open = False
                print(flush=True)
        else:
            self.line(f"RESPONSE: {answer}")


# --- The RAG agent -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    llama_stack_url: str
    model: str
    docs_dir: Path
    questions: tuple[str, ...]
    timeout: float
    embedding_model: str
    embedding_dimension: int
    chunk_size_in_tokens: int
    show_rag_documents: bool
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    tool_choice: str = DEFAULT_TOOL_CHOICE
    instructions: str = DEFAULT_INSTRUCTIONS
    api: str = DEFAULT_API  # auto: ask the server (rag_responses.server_api)


def pick_vector_io_provider(client: Any) -> str:
    providers = [p.provider_id for p in client.providers.list() if p.api == "vector_io"]
    if not providers:
        raise UserError(
            "the Llama Stack server has no vector_io provider — add one (e.g. inline::faiss) to its run config",
            exit_code=EXIT_SERVER,
        )
    return providers[0]


def check_model(client: Any, model: str) -> None:
    llms = sorted(m.identifier for m in client.models.list() if m.model_type == "llm")
    if model not in llms:
        raise model_not_registered(model, llms)


def ask(agent: Any, *, session_id: str, question: str, show_rag_documents: bool,
        observer: genai.TurnObserver, out: Console) -> str:
    """Run one streamed turn, printing the answer as it arrives; return the answer."""
    out.line(f"QUESTION: {question}")
    parts: list[str] = []
    try:
        out.begin_answer()  # inside the try: a signal right after "RESPONSE: " still ends its line
        stream = agent.create_turn(
            messages=[{"role": "user", "content": question}], session_id=session_id, stream=True
        )
        for chunk in stream:
            signals.checkpoint()
            error = getattr(chunk, "error", None)
            if error:
                message = error.get("message", error) if isinstance(error, dict) else error
                raise UserError(f"the agent turn failed on the server: {message}", exit_code=EXIT_SERVER,
                                trace_message="the agent turn failed on the server")
            observer.observe(chunk)
            payload = chunk.event.payload
            if payload.event_type == "step_progress" and payload.step_type == "inference":
                if getattr(payload.delta, "type", None) == "text":
                    text = payload.delta.text if parts else payload.delta.text.lstrip()
                    parts.append(text)
                    out.answer_part(text)
            elif payload.event_type == "step_complete" and payload.step_type == "tool_execution":
                if show_rag_documents:
                    for response in payload.step_details.tool_responses:
                        out.line(f"{chr(10) if out.streaming else ''}--- {response.tool_name} returned ---\n"
                                 f"{genai.flatten_content(response.content)}\n---")
    finally:
        out.end_answer("".join(parts).strip())
    answer = "".join(parts).strip()
    observer.finish(answer=answer)
    return answer


def run_rag(settings: Settings, *, documents: list[Document], run_id: str, telemetry: genai.Telemetry,
            out: Console) -> None:
    # Imported only now, after tracing is configured, as the instrumentation expects.
    from llama_stack_client import Agent, LlamaStackClient

    client = LlamaStackClient(base_url=settings.llama_stack_url, timeout=settings.timeout, max_retries=0)
    with telemetry.phase("check_server") as span:
        api = settings.api
        if api == "auto":
            api, version = rag_responses.server_api(client)
            span.set_attribute("rag_agent.server.version", version)
        span.set_attribute("rag_agent.api", api)
        if api == rag_responses.API_RESPONSES:
            model = rag_responses.check_model(client, settings.model) if settings.questions else settings.model
        else:
            provider_id = pick_vector_io_provider(client)
            if settings.questions:
                check_model(client, settings.model)
    if api == rag_responses.API_RESPONSES:  # Llama Stack 0.4 and later
        rag_responses.run(client, settings, model=model, documents=documents, run_id=run_id, telemetry=telemetry,
                          out=out, clean_up_timeout=max(settings.timeout, CLEANUP_TIMEOUT_SECONDS))
        return

    vector_db_id = f"test-vector-db-{run_id}"
    # None: not asked for; False: asked for, answer not seen (an interrupt or a lost connection
    # can come after the server registered it); True: registered.
    registered: bool | None = None
    agent_ids: list[str] = []
    # What every gen_ai span and metric point of this run shares.
    model_attributes = {genai.REQUEST_MODEL: settings.model, genai.PROVIDER_NAME: genai.PROVIDER}
    try:
        total_bytes = sum(d.size_bytes for d in documents)
        with telemetry.phase("ingest_documents", {
            genai.DATA_SOURCE_ID: vector_db_id, genai.DOCUMENTS_COUNT: len(documents),
            genai.DOCUMENTS_BYTES: total_bytes, genai.CHUNK_SIZE_TOKENS: settings.chunk_size_in_tokens,
            genai.EMBEDDING_MODEL: settings.embedding_model,
        }):
            registered = False
            client.vector_dbs.register(
                vector_db_id=vector_db_id,
                embedding_model=settings.embedding_model,
                embedding_dimension=settings.embedding_dimension,
                provider_id=provider_id,
            )
            registered = True
            # Embedding can take minutes: say what is going on (a test waits for this line, too).
            out.line(f"Ingesting {len(documents)} documents ({total_bytes / 1024:.1f} KB) into vector DB {vector_db_id} ...")
            insert_started = time.monotonic()
            client.tool_runtime.rag_tool.insert(
                documents=[
                    {"document_id": d.document_id, "content": d.text, "mime_type": "text/plain", "metadata": {}}
                    for d in documents
                ],
                vector_db_id=vector_db_id,
                chunk_size_in_tokens=settings.chunk_size_in_tokens,
            )
        out.line(f"Ingested {len(documents)} documents in {time.monotonic() - insert_started:.1f} s")
        signals.checkpoint()
        if settings.questions:  # (no early return here: the clean-up below must run)
            agent_attributes = {genai.AGENT_NAME: AGENT_NAME, genai.DATA_SOURCE_ID: vector_db_id, **model_attributes}
            with telemetry.phase(f"{genai.CREATE_AGENT} {AGENT_NAME}", kind=SpanKind.CLIENT, attributes={
                genai.OPERATION_NAME: genai.CREATE_AGENT, **agent_attributes,
            }) as span:
                telemetry.content(span, genai.SYSTEM_INSTRUCTIONS, genai.text_parts(settings.instructions))
                agent = Agent(
                    client,
                    model=settings.model,
                    instructions=settings.instructions,
                    tools=[{"name": RAG_TOOL, "args": {"vector_db_ids": [vector_db_id]}}],
                    tool_config={"tool_choice": settings.tool_choice},
                )
                agent_ids.append(agent.agent_id)
                span.set_attribute(genai.AGENT_ID, agent.agent_id)
                # The session is the conversation every question of this run goes into.
                session_id = agent.create_session(f"rag-session-{run_id}")
                span.set_attribute(genai.CONVERSATION_ID, session_id)
            agent_attributes.update({genai.AGENT_ID: agent.agent_id, genai.CONVERSATION_ID: session_id})
            for question in settings.questions:
                signals.checkpoint()
                with telemetry.phase(f"{genai.INVOKE_AGENT} {AGENT_NAME}", kind=SpanKind.CLIENT, attributes={
                    genai.OPERATION_NAME: genai.INVOKE_AGENT, **agent_attributes,
                }) as span:
                    observer = genai.TurnObserver(telemetry, span, question=question, data_source_id=vector_db_id,
                                                  metric_attributes={genai.OPERATION_NAME: genai.INVOKE_AGENT,
                                                                     **model_attributes})
                    ask(agent, session_id=session_id, question=question,
                        show_rag_documents=settings.show_rag_documents, observer=observer, out=out)
    except BaseException as exc:
        signals.seen(exc)
        # Clean up, but let the original failure be the one reported.
        for problem in clean_up(client, vector_db_id=vector_db_id if registered is not None else None,
                                vector_db_confirmed=bool(registered), agent_ids=agent_ids,
                                settings=settings, telemetry=telemetry):
            out.line(f"warning: {problem}", error=True)
        raise
    problems = clean_up(client, vector_db_id=vector_db_id, agent_ids=agent_ids, settings=settings, telemetry=telemetry)
    if problems:
        raise UserError(problems[0], exit_code=EXIT_SERVER, trace_message=f"clean-up left {len(problems)} thing(s) behind")


def clean_up(client: Any, *, vector_db_id: str | None, agent_ids: list[str], settings: Settings,
             telemetry: genai.Telemetry, vector_db_confirmed: bool = True) -> list[str]:
    """Remove what the run created on the server; return what could not be removed."""
    # A call that timed out may still be running server-side and hold the server up:
    # give the clean-up calls room even when --timeout is short.
    timeout = max(settings.timeout, CLEANUP_TIMEOUT_SECONDS)
    problems = []
    attributes = {genai.DATA_SOURCE_ID: vector_db_id} if vector_db_id else {}
    with telemetry.phase("clean_up", {**attributes, genai.AGENTS_COUNT: len(agent_ids)}) as span:
        for agent_id in agent_ids:
            try:
                client.agents.delete(agent_id, timeout=timeout)
            except Exception as exc:  # noqa: BLE001 - reported, not raised: the vector DB comes next
                problems.append(f"could not delete agent {agent_id}: {exc}")
        if vector_db_id is not None:
            try:
                client.vector_dbs.unregister(vector_db_id, timeout=timeout)
            except Exception as exc:  # noqa: BLE001
                # A registration whose answer we never saw may not have happened: then there is
                # nothing to remove, and the server says so with a 400 or 404.
                if vector_db_confirmed or getattr(exc, "status_code", None) not in (400, 404):
                    problems.append(
                        f"could not remove vector DB {vector_db_id} ({type(exc).__name__}: {exc}) — remove it "
                        f"with curl -X DELETE {settings.llama_stack_url}/v1/vector-dbs/{vector_db_id}"
                    )
        if problems:
            span.set_status(StatusCode.ERROR, f"{len(problems)} thing(s) left on the server")
            telemetry.failed_phase = telemetry.failed_phase or "clean_up"
    return problems


def translate_client_error(exc: Exception, url: str) -> UserError | None:
    """Turn the client's transport and HTTP errors into one-line, actionable messages."""
    try:
        from llama_stack_client import APIConnectionError, APIStatusError, APITimeoutError
    except ImportError:  # pragma: no cover - the client is a hard requirement
        return None
    if isinstance(exc, APITimeoutError):
        return UserError(f"Llama Stack at {url} did not answer in time — raise --timeout", exit_code=EXIT_SERVER)
    if isinstance(exc, APIConnectionError):
        return UserError(
            f"cannot reach Llama Stack at {url} — is it running? start it with ./start-llamastack.sh start "
            "or pass --llama-stack-url",
            exit_code=EXIT_SERVER,
        )
    if isinstance(exc, APIStatusError):
        request = exc.response.request
        detail = " ".join(str(exc.message).split())[:200]
        answered = f"Llama Stack at {url} answered HTTP {exc.status_code} to {request.method} {request.url.path}"
        # The server's detail may quote what was sent: the terminal gets it, the trace does not.
        return UserError(f"{answered}: {detail}", exit_code=EXIT_SERVER, trace_message=answered)
    return None


# --- Command line --------------------------------------------------------------------------------


def env_default(name: str, default: Any) -> Any:
    return os.environ.get(name) or default


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds (0 or more), got {text}")
    return value


def concurrency(text: str) -> int:
    value = positive_int(text)
    if value > MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_CONCURRENCY}, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
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


class OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        description="Run a RAG agent on Llama Stack inside one OpenTelemetry trace.",
    )
    add = parser.add_argument
    add("--llama-stack-url", default=env_default("LLAMA_STACK_URL", DEFAULT_LLAMA_STACK_URL),
        help="Llama Stack server base URL (env LLAMA_STACK_URL; default %(default)s)")
    add("--model", default=env_default("INFERENCE_MODEL", DEFAULT_MODEL),
        help="LLM the agent uses, as registered on the server (env INFERENCE_MODEL; default %(default)s)")
    add("--docs", type=Path, default=Path(env_default("RAG_DOCS_DIR", DEFAULT_DOCS_DIR)),
        help="folder of markdown documents, read recursively (env RAG_DOCS_DIR; default %(default)s)")
    add("--question", action="append", dest="questions", metavar="TEXT",
        help=f"question to ask; repeat for several (default: {DEFAULT_QUESTION!r})")
    add("--no-questions", action="store_true",
        help="only ingest the documents (and clean up): no agent, no LLM needed")
    add("--show-rag-documents", action="store_true", help="also print what knowledge_search returned")
    add("--tool-choice", default=env_default("TOOL_CHOICE", DEFAULT_TOOL_CHOICE),
        help="the agent's tool_choice: auto (the model decides), required, none, or a tool name such as "
             "knowledge_search to make the model search before it answers; small models need that "
             "(env TOOL_CHOICE; default %(default)s)")
    add("--api", choices=APIS, default=env_default("LLAMA_STACK_API", DEFAULT_API),
        help="which Llama Stack API runs the agent: agents (0.2.x: Agents API, vector DB, builtin::rag), "
             "responses (0.4 and later: files, vector store, Responses API with file_search), or auto "
             "(ask the server's /v1/version) (env LLAMA_STACK_API; default %(default)s)")
    add("--instructions", default=env_default("AGENT_INSTRUCTIONS", DEFAULT_INSTRUCTIONS),
        help="the agent's system instructions (env AGENT_INSTRUCTIONS; default %(default)r)")
    add("--trace-ui", default=env_default("TRACE_UI_URL", DEFAULT_TRACE_UI_URL),
        help="trace viewer base URL for the printed link (env TRACE_UI_URL; default %(default)s)")
    backend = os.environ.get("TRACE_BACKEND", "")  # "external" (the local stack's) means auto
    add("--trace-backend", choices=TRACE_BACKENDS,
        default=backend if backend in TRACE_BACKENDS else DEFAULT_TRACE_BACKEND,
        help="which viewer --trace-ui is: jaeger, phoenix, or auto (tell by which API it answers, "
             "jaeger when none does); sets the link's form and what --verify asks "
             "(env TRACE_BACKEND; default %(default)s)")
    add("--verify", action="store_true", default=env_flag("VERIFY_TRACE"),
        help="after the run, fetch its trace from the trace UI, print it as a tree and check it is "
             f"whole (one root, no orphans, server spans under each call); exit {EXIT_TRACE_BROKEN} "
             "when it is not (env VERIFY_TRACE=1)")
    add("--verify-wait", type=non_negative_float, default=DEFAULT_VERIFY_WAIT_SECONDS, metavar="SECONDS",
        help="with --verify, how long to keep asking for a trace that is not whole yet: servers send "
             "their spans in batches every few seconds (default %(default)s)")
    add("--concurrency", type=concurrency, default=DEFAULT_CONCURRENCY, metavar="N",
        help="run N independent requests at once, each with its own top-level span (its own trace), "
             f"vector DB and agent; lines are prefixed [k] (default %(default)s, at most {MAX_CONCURRENCY})")
    add("--otlp-endpoint", default=None,
        help="OTLP/HTTP traces endpoint (default: env OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else "
             f"OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, else {DEFAULT_OTLP_TRACES_ENDPOINT}); metrics go to "
             "the same base + /v1/metrics unless OTEL_EXPORTER_OTLP_METRICS_ENDPOINT says otherwise")
    add("--no-metrics", action="store_true",
        help="export no OTLP metrics (also: env OTEL_METRICS_EXPORTER=none)")
    add("--export-timeout", type=positive_float, default=None, metavar="MS",
        help=f"milliseconds any one OTLP export may take, and the longest the run waits for its traces and "
             f"metrics at the end when the collector is down or slow (env {delivery.TIMEOUT_ENV}, in "
             f"milliseconds as the OTLP spec says; default {delivery.DEFAULT_EXPORT_TIMEOUT_MS:g})")
    add("--timeout", type=positive_float, default=DEFAULT_TIMEOUT_SECONDS,
        help="seconds to wait for any one Llama Stack call (default %(default)s)")
    add("--embedding-model", default=DEFAULT_EMBEDDING_MODEL, help="embedding model of the vector DB (default %(default)s)")
    add("--embedding-dimension", type=positive_int, default=DEFAULT_EMBEDDING_DIMENSION,
        help="dimension of that embedding model (default %(default)s)")
    add("--chunk-size", type=positive_int, default=DEFAULT_CHUNK_SIZE_IN_TOKENS,
        help="chunk size in tokens for ingestion (default %(default)s)")
    add("--max-file-size", type=byte_size, default=env_default("RAG_MAX_FILE_SIZE", DEFAULT_MAX_FILE_SIZE),
        metavar="BYTES", help="skip (with a warning) any .md file larger than this; K and M suffixes work "
                              "(env RAG_MAX_FILE_SIZE; default %(default)s)")
    add("--debug", action="store_true", default=bool(os.environ.get("RAG_AGENT_DEBUG")),
        help="show tracebacks instead of one-line errors (env RAG_AGENT_DEBUG)")
    return parser


def check_http_url(option: str, url: str) -> str:
    """The URL without a trailing slash, or a UserError saying it is not a usable http(s) URL."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        usable = False
    if not usable:
        raise UserError(f"{option} {url!r} is not an http(s) URL such as http://localhost:8321")
    return url.rstrip("/")


def settings_from_args(args: argparse.Namespace) -> Settings:
    questions = () if args.no_questions else tuple(args.questions or [DEFAULT_QUESTION])
    if args.api not in APIS:  # argparse checks the flag's value, not the variable's
        raise UserError(f"LLAMA_STACK_API={args.api!r} is not one of {', '.join(APIS)}")
    return Settings(
        llama_stack_url=check_http_url("--llama-stack-url", args.llama_stack_url),
        model=args.model,
        docs_dir=args.docs,
        questions=questions,
        timeout=args.timeout,
        embedding_model=args.embedding_model,
        embedding_dimension=args.embedding_dimension,
        chunk_size_in_tokens=args.chunk_size,
        show_rag_documents=args.show_rag_documents,
        max_file_size=args.max_file_size,
        tool_choice=args.tool_choice,
        instructions=args.instructions,
        api=args.api,
    )


@dataclass(frozen=True)
class TelemetrySettings:
    traces_endpoint: str
    metrics_endpoint: str | None  # None: no metrics
    export_timeout_ms: float


def telemetry_settings_from_args(args: argparse.Namespace) -> TelemetrySettings | None:
    """Where traces and metrics go and how long an export may take; None with OTEL_SDK_DISABLED.
    Everything is checked here, before the first span or request."""
    if tracing_disabled():
        return None
    try:
        timeout_ms = delivery.resolve_export_timeout_ms(args.export_timeout)
        delivery.check_sampler_env()
    except delivery.ConfigError as exc:
        raise UserError(str(exc)) from exc
    traces_endpoint = check_http_url("the OTLP traces endpoint", resolve_traces_endpoint(args.otlp_endpoint))
    metrics_endpoint = None
    if not (args.no_metrics or genai.metrics_disabled()):
        metrics_endpoint = check_http_url("the OTLP metrics endpoint", genai.resolve_metrics_endpoint(traces_endpoint))
    return TelemetrySettings(traces_endpoint, metrics_endpoint, timeout_ms)


@dataclass
class Run:
    """One request of this process: its own top-level span, vector DB and agent."""

    run_id: str
    out: Console
    trace_id: int = 0
    exit_code: int = 0


def run_once(run: Run, *, settings: Settings, documents: list[Document], telemetry: genai.Telemetry,
             debug: bool) -> None:
    """One whole request inside its top-level span; sets run.trace_id and run.exit_code."""
    out = run.out
    run_error: str | None = None  # for the run-duration metric
    started = time.perf_counter()
    try:
        # Everything, from client creation to cleanup, happens inside this one span:
        # it is the root that the phases and the server's spans hang under.
        with telemetry.tracer.start_as_current_span(f"{ROOT_SPAN_PREFIX}{run.run_id}", record_exception=False,
                                                    set_status_on_exception=False) as root:
            run.trace_id = root.get_span_context().trace_id
            try:
                run_rag(settings, documents=documents, run_id=run.run_id, telemetry=telemetry, out=out)
                signals.checkpoint()  # a signal whose exception got lost in the last steps
            except BaseException as exc:
                translated = translate_client_error(exc, settings.llama_stack_url) if isinstance(exc, Exception) else None
                run_error = telemetry.record_run_failure(root, translated or exc)
                if translated is None:
                    raise
                raise translated from exc
    except UserError as exc:
        if debug:
            traceback.print_exc()
        out.line(f"error: {exc}", error=True)
        run.exit_code = exc.exit_code
    except Terminated:
        out.line("error: terminated (SIGTERM)", error=True)
        run.exit_code = EXIT_TERMINATED
    except KeyboardInterrupt:
        # The root span has recorded it, and run_rag has cleaned up; spans still go out.
        out.line("error: interrupted", error=True)
        run.exit_code = EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence prints one line, not a traceback
        if debug:
            traceback.print_exc()
        out.line(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", error=True)
        run.exit_code = EXIT_ERROR
    finally:
        telemetry.instruments.run_duration.record(time.perf_counter() - started,
                                                  {genai.ERROR_TYPE: run_error} if run_error else {})


def run_all(runs: list[Run], **kwargs: Any) -> None:
    """Every run: in this thread when there is one, else each in a thread of its own (each
    thread starts with an empty context, so each run's spans stay in its own trace)."""
    if len(runs) == 1:
        run_once(runs[0], **kwargs)
        return
    # Runs share nothing but the tracer and instruments: per-run telemetry (failed phase).
    shared = kwargs.pop("telemetry")
    with ThreadPoolExecutor(max_workers=len(runs), thread_name_prefix="rag-run") as pool:
        futures = [pool.submit(run_once, run, telemetry=genai.Telemetry(tracer=shared.tracer,
                                                                       instruments=shared.instruments), **kwargs)
                   for run in runs]
        pending = list(futures)
        while pending:
            try:
                pending[0].result()
                pending.pop(0)
            except KeyboardInterrupt as exc:
                # The signal lands in this thread; the runs stop at their next checkpoint and clean up.
                signals.seen(exc)
                signals.stop_all(exc)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Claim the root logger first: llama_stack_client calls logging.basicConfig(INFO) on
    # import, which would print a line per HTTP request; ours makes that call a no-op.
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.debug:
        # The SDK logs every failed export and dropped span; the run ends with one line
        # about what was not delivered instead (otel_delivery).
        logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
    try:
        settings = settings_from_args(args)
        telemetry_settings = telemetry_settings_from_args(args)
        trace_ui = check_http_url("--trace-ui", args.trace_ui)
        if args.verify and telemetry_settings is None:
            raise UserError("--verify checks the run's trace, and OTEL_SDK_DISABLED=true turns tracing off")
        documents = load_documents(settings.docs_dir, max_file_size=settings.max_file_size)
    except UserError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    signals.install()

    provider = meter_provider = span_delivery = None
    if telemetry_settings is not None:
        span_delivery = delivery.Delivery(traces_endpoint=telemetry_settings.traces_endpoint,
                                          timeout_ms=telemetry_settings.export_timeout_ms)
        provider = configure_tracing(endpoint=telemetry_settings.traces_endpoint, span_delivery=span_delivery)
        if telemetry_settings.metrics_endpoint is not None:
            metric_exporter = span_delivery.new_metric_exporter(telemetry_settings.metrics_endpoint)
            meter_provider = genai.configure_metrics(endpoint=telemetry_settings.metrics_endpoint,
                                                     resource=provider.resource,
                                                     metric_reader=PeriodicExportingMetricReader(metric_exporter))
    telemetry = genai.Telemetry(tracer=trace.get_tracer(TRACER_NAME))
    many = args.concurrency > 1
    runs = [Run(run_id=str(uuid.uuid4()), out=Console(f"[{k}] " if many else ""))
            for k in range(1, args.concurrency + 1)]
    try:
        run_all(runs, settings=settings, documents=documents, telemetry=telemetry, debug=args.debug)
    finally:
        signals.exit_at_once = "delivering telemetry (spans not sent yet are lost)"
        if span_delivery is not None:
            # Flushes every span and metric, waiting at most the export timeout in all.
            span_delivery.shut_down(traces=provider, metrics=meter_provider)
            problem = span_delivery.summary()
            if problem:
                print(f"warning: {problem}", file=sys.stderr)
    exit_code = next((run.exit_code for run in runs if run.exit_code), 0)
    if provider is None:
        return exit_code

    # Only now ask the UI which backend it is: a network call, after the telemetry is out.
    backend: show_trace.Backend | None
    if args.trace_backend == "auto":
        backend = show_trace.detect_backend(trace_ui)
    else:
        backend = show_trace.make_backend(args.trace_backend, trace_ui)
    link_form = backend or show_trace.Jaeger(trace_ui)
    for run in runs:
        trace_hex = trace.format_trace_id(run.trace_id)
        run.out.line(f"Trace ID: {trace_hex}")
        run.out.line(f"Trace link: {link_form.link(trace_hex)}")
    if args.verify:
        signals.exit_at_once = "checking the trace"
        client_service = str(provider.resource.attributes.get(SERVICE_NAME, DEFAULT_SERVICE_NAME))
        checks = [show_trace.RunTrace(trace.format_trace_id(run.trace_id), run.run_id, run.out.prefix) for run in runs]
        whole = show_trace.verify_runs(checks, backend=backend, trace_ui=trace_ui, wait_s=args.verify_wait,
                                       client_service=client_service)
        if not whole and exit_code == 0:
            exit_code = EXIT_TRACE_BROKEN
    return exit_code


def exit_now(exit_code: int) -> NoReturn:
    """Exit with everything flushed, minus the interpreter's last garbage collection: it walks
    every object the client libraries made and took 0.3-0.45 s here, after the telemetry was out
    (bench P2). Frozen objects are skipped; the OS takes the memory back anyway."""
    gc.freeze()
    sys.exit(exit_code)


if __name__ == "__main__":
    exit_now(main())
