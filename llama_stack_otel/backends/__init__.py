"""One RAG run on Llama Stack, whichever generation the server is.

Two generations serve the same run in different APIs:

- ``agents`` (Llama Stack 0.2.x–0.3.x): a vector DB, the ``builtin::rag`` tool, an agent and a
  session whose turns stream events (agents.py);
- ``responses`` (0.4 and later, and OGX): files in a vector store, the Responses API with the
  ``file_search`` tool, streamed response events (responses.py), through the installed
  client's typed calls or its generic ones (calls.py).

The installed client matters too: llama-stack-client 0.7 and later have no Agents API, so
against a 0.2.x–0.3.x server the run stops in check_server with one line naming the client to
install, before it makes anything.

Each implements ``Generation``: ``check`` the model and providers, ``ingest`` the documents,
``ask`` a question (streaming the answer), ``clean_up`` what the run made. ``connect`` picks
one once, asking the server's ``/v1/version`` unless told, and owns what both share: the
``check_server`` phase, the agent's name for the client instrumentor's spans, and clean-up on
every way out — a failure, Ctrl-C or SIGTERM included — with the original failure being the
one reported. ``stream_answer`` prints an answer as it streams, the same way for both, and
``reading`` hands a failure met while reading a stream back to the stream, so that the
instrumentor's ``invoke_agent`` span records it.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry.trace import StatusCode

from llama_stack_otel import names, semconv
from llama_stack_otel.backends.calls import has_agents_api
from llama_stack_otel.config import API_AGENTS, API_AUTO, API_RESPONSES, Settings
from llama_stack_otel.console import Console
from llama_stack_otel.documents import Document
from llama_stack_otel.errors import EXIT_SERVER, UserError
from llama_stack_otel.signals import signals
from llama_stack_otel.telemetry import Telemetry
from llama_stack_otel_instrumentation.scope import agent_name


class Generation(Protocol):
    """What one Llama Stack generation does for one run."""

    api: str

    def check(self) -> None:
        """Inside the check_server phase: the model and providers the run needs are there."""

    def ingest(self, documents: list[Document]) -> None:
        """Put the documents where the search tool finds them (the ingest_documents phase)."""

    def ask(self, question: str) -> str:
        """One question as one invoke_agent phase; the answer streams to the console."""

    def clean_up(self) -> list[str]:
        """Remove what the run made, in a clean_up phase; safe at any point of the run. Returns
        one line per thing that could not be removed, saying how to remove it by hand."""


@contextmanager
def connect(settings: Settings, *, run_id: str, telemetry: Telemetry, out: Console) -> Iterator[Generation]:
    """The server's generation, checked; on the way out, whatever happened, its clean-up."""
    # Imported only now, after tracing is set up: its httpx client gets instrumented.
    from llama_stack_client import LlamaStackClient

    from llama_stack_otel.backends import agents, responses

    client = LlamaStackClient(base_url=settings.llama_stack_url, timeout=settings.timeout, max_retries=0)
    # The script starts with the collector off: what the imports made lives as long as the
    # process, so freeze it out of every later collection and turn collecting back on.
    gc.freeze()
    gc.enable()
    with telemetry.phase("check_server") as span:
        api = settings.api
        described = {}
        if api == API_AUTO:
            api, version = responses.server_api(client)
            described[semconv.SERVER_VERSION] = version
        described[semconv.API] = api
        span.set_attributes(described)
        telemetry.describe_run(described)
        if api == API_AGENTS and not has_agents_api(client):  # llama-stack-client 0.7 and later
            raise agents.client_without_agents_api(described.get(semconv.SERVER_VERSION))
        kinds: dict[str, Callable[..., Generation]] = {API_AGENTS: agents.Agents, API_RESPONSES: responses.Responses}
        generation = kinds[api](client, settings=settings, run_id=run_id, telemetry=telemetry, out=out)
        generation.check()
    try:
        with agent_name(names.AGENT):  # the instrumentor's create_agent rag-agent, invoke_agent rag-agent
            yield generation
        signals.checkpoint()  # a signal whose exception got lost in the last steps
    except BaseException as exc:
        signals.seen(exc)
        # Clean up, but let the original failure be the one reported.
        for problem in generation.clean_up():
            out.line(f"warning: {problem}", error=True)
        raise
    problems = generation.clean_up()
    if problems:
        raise UserError(problems[0], exit_code=EXIT_SERVER,
                        trace_message=f"clean-up left {len(problems)} thing(s) behind")


# --- What both generations share -----------------------------------------------------------------


def stream_answer(out: Console, question: str, pieces: Iterable[str | None]) -> str:
    """Print the question, then the answer as its pieces arrive (None: an event with no text);
    return the whole answer. The answer's line is ended on every way out."""
    out.line(f"QUESTION: {question}")
    parts: list[str] = []
    try:
        out.begin_answer()  # inside the try: a signal right after "RESPONSE: " still ends its line
        for piece in pieces:
            signals.checkpoint()
            if piece:
                text = piece if parts else piece.lstrip()
                parts.append(text)
                out.answer_part(text)
    finally:
        out.end_answer("".join(parts).strip())
    return "".join(parts).strip()


@contextmanager
def reading(stream: Any) -> Iterator[Any]:
    """Read a stream inside the block; it is closed on every way out, and a failure met while
    reading it — the server's, a signal, or the app's own — is handed to it first through
    ``__exit__`` (a Stream has one; so does the client instrumentor's traced stream, which
    records the failure on its invoke_agent span; a bare generator has none)."""
    try:
        yield stream
    except BaseException as exc:
        hand_back = getattr(stream, "__exit__", None)
        if hand_back is not None:
            hand_back(type(exc), exc, exc.__traceback__)
        raise
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


@dataclass(frozen=True)
class Removal:
    """One thing the run made: how to remove it, and what to tell the user when that fails."""

    what: str  # "vector store vs_123"
    path: str  # the DELETE route, for the curl hint
    remove: Callable[[], Any]
    maybe_absent: bool = False  # made by a call whose answer never came: 400/404 means it is not there


def remove_all(removals: Iterable[Removal], *, telemetry: Telemetry, url: str,
               attributes: dict[str, Any]) -> list[str]:
    """The clean_up phase: try every removal, the rest after a failed one; return the problems."""
    problems = []
    with telemetry.phase("clean_up", attributes) as span:
        for removal in removals:
            try:
                removal.remove()
            except Exception as exc:  # noqa: BLE001 - reported, not raised: the rest comes next
                if removal.maybe_absent and getattr(exc, "status_code", None) in (400, 404):
                    continue
                problems.append(f"could not remove {removal.what} ({type(exc).__name__}: {exc}) — remove it "
                                f"with curl -X DELETE {url}{removal.path}")
        if problems:
            span.set_status(StatusCode.ERROR, f"{len(problems)} thing(s) left on the server")
            telemetry.failed_phase = telemetry.failed_phase or "clean_up"
    return problems
