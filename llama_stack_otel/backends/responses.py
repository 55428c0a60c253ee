"""The RAG run on Llama Stack 0.4 and later (and OGX): files, a vector store, the Responses API.

Those servers no longer have the Agents API, vector DBs or the rag tool the script uses on
0.2.x. The same run there: each document is uploaded as a file and attached to a new vector
store (the server chunks and embeds it), each question is one call of the Responses API with
the file_search tool over that store (the questions chained by previous_response_id, as the
agent's session chains its turns), and the store, the files and the stored responses are
removed at the end, also when the run fails or is interrupted.

The calls go through the installed client's typed methods where it has them for these routes
(llama-stack-client 0.7.x), through its generic get/post/delete where it does not (0.2.x);
calls.py picks one once, and this module reads the same JSON either way.
The spans mean what they mean on 0.2.x (the phases check_server, ingest_documents and
clean_up; the client instrumentor's invoke_agent per question with execute_tool file_search
under it); there is no agent to create.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from llama_stack_otel import names, semconv
from llama_stack_otel.backends import Removal, reading, remove_all, stream_answer
from llama_stack_otel.backends.calls import GenericCalls, ServerCalls, as_json, for_client
from llama_stack_otel.config import (
    API_AGENTS,
    API_RESPONSES,
    DEFAULT_EMBEDDING_DIMENSION,
    DEFAULT_EMBEDDING_MODEL,
    Settings,
)
from llama_stack_otel.console import Console
from llama_stack_otel.documents import Document
from llama_stack_otel.errors import EXIT_SERVER, UserError, model_not_registered, one_line
from llama_stack_otel.signals import signals
from llama_stack_otel.telemetry import Telemetry
from llama_stack_otel_instrumentation.turns import error_message

FIRST_RESPONSES_VERSION = (0, 4)
TOOL = "file_search"
INGEST_POLL_S = 0.2
PROGRESS_EVERY_S = 5.0  # while files are still being processed
CHUNK_OVERLAP_SHARE = 0.2  # of the chunk size
MAX_SEARCH_RESULTS = 5  # chunks a search returns, as knowledge_search's default on 0.2.x
HEALTH_TIMEOUT_S = 5.0


def version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def server_api(client: Any) -> tuple[str, str]:
    """(which API the server has, its version) from GET /v1/version: the same route and the
    generic call on every server and client, asked before the run knows which calls fit."""
    version = str(GenericCalls(client).get("/v1/version").get("version", ""))
    if version_tuple(version) >= FIRST_RESPONSES_VERSION:
        return API_RESPONSES, version
    return API_AGENTS, version


def check_model(client: ServerCalls, model: str) -> str:
    """The server's id for the LLM the user named: newer servers prefix it with the provider
    (llama-cpp/gemma3-270m), so gemma3-270m finds it too."""
    llms = sorted(str(m.get("id") or m.get("identifier")) for m in client.models() if model_type(m) == "llm")
    for candidate in llms:
        if candidate == model or candidate.endswith(f"/{model}"):
            return candidate
    raise model_not_registered(model, llms)


def model_type(model: dict) -> str:
    metadata = model.get("custom_metadata") or model.get("metadata") or {}
    return str(model.get("model_type") or metadata.get("model_type") or "")


class Responses:
    api = API_RESPONSES

    def __init__(self, client: Any, *, settings: Settings, run_id: str, telemetry: Telemetry, out: Console) -> None:
        self.client = for_client(client)
        self.settings = settings
        self.run_id = run_id
        self.telemetry = telemetry
        self.out = out
        self.model = settings.model
        self.vector_store_name = names.vector_store(run_id)
        self.vector_store_id: str | None = None  # "" once asked for, until the server has answered
        self.response_pending = False  # a response was asked for and its id has not arrived yet
        self.file_ids: list[str] = []
        self.response_ids: list[str] = []
        self.finished: set[str] = set()  # responses whose stream said they completed (or hit a limit)
        self.previous: str | None = None  # each question follows on from the last answer

    def check(self) -> None:
        if (self.settings.embedding_model, self.settings.embedding_dimension) != (DEFAULT_EMBEDDING_MODEL,
                                                                                  DEFAULT_EMBEDDING_DIMENSION):
            self.out.line("warning: --embedding-model and --embedding-dimension apply to Llama Stack 0.2.x only; "
                          "this server's vector store embeds with its own default model", error=True)
        if self.settings.questions:
            self.model = check_model(self.client, self.settings.model)

    def ingest(self, documents: list[Document]) -> None:
        client, settings = self.client, self.settings
        total_bytes = sum(d.size_bytes for d in documents)
        with self.telemetry.phase("ingest_documents", {
            semconv.DOCUMENTS_COUNT: len(documents), semconv.DOCUMENTS_BYTES: total_bytes,
            semconv.CHUNK_SIZE_TOKENS: settings.chunk_size_in_tokens,
        }) as span:
            self.vector_store_id = ""  # asked for: an interrupt may come before the answer
            store = client.create_vector_store(name=self.vector_store_name)
            self.vector_store_id = store_id = str(store["id"])
            span.set_attribute(semconv.DATA_SOURCE_ID, store_id)
            embedding_model = (store.get("metadata") or {}).get("embedding_model")
            if embedding_model:
                span.set_attribute(semconv.EMBEDDING_MODEL, str(embedding_model))
            self.out.line(f"Ingesting {len(documents)} documents ({total_bytes / 1024:.1f} KB) into vector store "
                          f"{store_id} ...")
            started = time.monotonic()
            pending: dict[str, tuple[str, dict]] = {}  # vector-store file id -> (document id, status)
            progress = Progress(self.out, total=len(documents))
            for done, document in enumerate(documents):
                progress.update(done)
                signals.checkpoint()
                name = document.document_id.replace("/", "__") + ".txt"
                uploaded = client.upload(name=name, data=document.text.encode())
                self.file_ids.append(uploaded["id"])
                attached = attach(client, store_id, uploaded["id"], document_id=document.document_id,
                                  settings=settings)
                pending[str(attached["id"])] = (document.document_id, attached)
            wait_until_processed(client, store_id, pending, progress=progress, stall_timeout=settings.stall_timeout)
        self.out.line(f"Ingested {len(documents)} documents in {time.monotonic() - started:.1f} s")
        signals.checkpoint()

    def ask(self, question: str) -> str:
        """One streamed response: the instrumentor's invoke_agent span, the answer printed."""
        signals.checkpoint()
        body: dict[str, Any] = {
            "model": self.model, "input": question, "instructions": self.settings.instructions, "stream": True,
            "tools": [{"type": TOOL, "vector_store_ids": [self.vector_store_id],
                       "max_num_results": MAX_SEARCH_RESULTS}],
            "tool_choice": tool_choice(self.settings), "include": ["file_search_call.results"],
            # The server stores every response: tagged, so that one whose id an interrupted run
            # never saw can still be found and removed.
            "metadata": {names.RUN_ID_METADATA: self.run_id},
        }
        if self.previous:
            body["previous_response_id"] = self.previous
        response_id = None
        with self.telemetry.step(f"{semconv.INVOKE_AGENT} {names.AGENT}"):
            self.response_pending = True
            events = self.client.respond(body)
            with reading(events):
                answer = stream_answer(self.out, question, (self._text(as_json(event)) for event in events))
            response_id = self.response_ids[-1] if not self.response_pending and self.response_ids else None
        if not response_id:
            raise UserError("the server's response stream ended without a response id", exit_code=EXIT_SERVER)
        self.previous = response_id
        return answer

    def _text(self, event: dict) -> str | None:
        """The answer text an event carries (None for the others); a failure raises."""
        response_id = (event.get("response") or {}).get("id")
        if self.response_pending and response_id:
            self.response_ids.append(str(response_id))
            self.response_pending = False
        kind = event.get("type")
        if kind in ("response.completed", "response.incomplete") and response_id:
            self.finished.add(str(response_id))
        if kind in ("response.failed", "error"):
            raise UserError(f"the model's response failed on the server: {server_error(event)}",
                            exit_code=EXIT_SERVER, trace_message="the model's response failed on the server")
        if kind == "response.output_item.done" and self.settings.show_rag_documents:
            self._show_results(event.get("item") or {})
        return str(event.get("delta", "")) if kind == "response.output_text.delta" else None

    def _show_results(self, item: dict) -> None:
        if item.get("type") != "file_search_call":
            return
        texts = "\n".join(str(r.get("text", "")) for r in item.get("results") or [])
        self.out.line(f"{chr(10) if self.out.streaming else ''}--- {TOOL} returned ---\n{texts}\n---")

    def clean_up(self) -> list[str]:
        """Remove the stored responses, the vector store and the files."""
        client, timeout = self.client, self.settings.clean_up_timeout
        response_ids = list(self.response_ids)
        if self.response_pending:  # it may have been stored before its id came back
            response_ids += [r for r in find_responses(client, run_id=self.run_id) if r not in response_ids]
        # A response whose stream was cut (Ctrl-C closes it at once) may never have been stored.
        removals = [Removal(f"stored response {r}", f"/v1/responses/{r}",
                            partial(client.delete_response, r, timeout=timeout), maybe_absent=r not in self.finished)
                    for r in response_ids]
        store_id = self.vector_store_id
        if store_id == "":  # asked for, answer never seen: it may exist all the same, under its name
            store_id = find_vector_store(client, name=self.vector_store_name)
        if store_id:
            removals.append(Removal(f"vector store {store_id}", f"/v1/vector_stores/{store_id}",
                                    partial(client.delete_vector_store, store_id, timeout=timeout)))
        removals += [Removal(f"file {f}", f"/v1/files/{f}", partial(client.delete_file, f, timeout=timeout))
                     for f in self.file_ids]
        attributes = {semconv.DATA_SOURCE_ID: self.vector_store_id} if self.vector_store_id else {}
        problems = remove_all(removals, telemetry=self.telemetry, url=self.settings.llama_stack_url,
                              attributes={**attributes, semconv.FILES_COUNT: len(self.file_ids)})
        # Removed, or reported: never twice.
        self.response_ids, self.file_ids, self.vector_store_id, self.response_pending = [], [], None, False
        return problems


def chunking(settings: Settings) -> dict:
    size = settings.chunk_size_in_tokens
    return {"type": "static", "static": {"max_chunk_size_tokens": size,
                                         "chunk_overlap_tokens": int(size * CHUNK_OVERLAP_SHARE)}}


class Progress:
    """'k of N files processed ...' at most every PROGRESS_EVERY_S while an ingestion lasts: servers
    that embed inside each attach call (0.7.3, OGX 1.5) and those that do it in the background
    alike. A short ingestion prints none."""

    def __init__(self, out: Console, *, total: int) -> None:
        self.out = out
        self.total = total
        self.last = time.monotonic()

    def update(self, done: int) -> None:
        now = time.monotonic()
        if done < self.total and now - self.last >= PROGRESS_EVERY_S:
            self.out.line(f"  {done} of {self.total} files processed ...")
            self.last = now


def attach(client: ServerCalls, store_id: str, file_id: str, *, document_id: str, settings: Settings) -> dict:
    """Add one uploaded file to the vector store. 0.7.3 and OGX 1.5 process the file inside this
    call and answer its final status; with their file workers dead the call never returns,
    so it gets --stall-timeout, not --timeout."""
    from llama_stack_client import APITimeoutError

    try:
        return client.attach(store_id, file_id, chunking_strategy=chunking(settings), timeout=settings.stall_timeout)
    except APITimeoutError as exc:
        raise UserError(f"Llama Stack did not finish processing {document_id} within {settings.stall_timeout:g} s"
                        f"{server_health(client)} — see the server's log, or raise --stall-timeout",
                        exit_code=EXIT_SERVER, trace_message="a document's ingestion stalled") from exc


def server_health(client: ServerCalls) -> str:
    """A few words on what the server's /v1/health says, when it is not OK ("" when it is)."""
    try:
        status = str(client.health(timeout=HEALTH_TIMEOUT_S).get("status", "?"))
    except Exception:  # noqa: BLE001 - only a hint for the error line
        return " (nor does it answer /v1/health)"
    return "" if status.upper() == "OK" else f" (its /v1/health says {status})"


def wait_until_processed(client: ServerCalls, vector_store_id: str, pending: dict[str, tuple[str, dict]], *,
                         progress: Progress, stall_timeout: float) -> None:
    """Follow each attached file's status until all are completed. Servers that embed in the
    background answer in_progress; while files are, a line says how many of the total are done.
    A file the server failed stops the run with its reason; so does a wait in which no file
    finished for stall_timeout seconds — a server whose file worker died never says so."""
    done = progress.total - len(pending)
    last_progress = time.monotonic()
    while True:
        for file_id, (document_id, attached) in list(pending.items()):
            status = attached.get("status")
            if status == "in_progress":
                continue
            if status != "completed":
                error = attached.get("last_error") or {}
                detail = one_line(error.get("message") or status)
                raise UserError(f"Llama Stack could not ingest {document_id}: {detail}", exit_code=EXIT_SERVER,
                                trace_message=f"a document could not be ingested ({status})")
            del pending[file_id]
            done += 1
            last_progress = time.monotonic()
        if not pending:
            return
        now = time.monotonic()
        if now - last_progress > stall_timeout:
            document_id = next(iter(pending.values()))[0]
            raise UserError(f"Llama Stack made no progress ingesting {document_id} for {stall_timeout:g} s (still "
                            "in_progress; is its file worker running?) — see the server's log, or raise "
                            "--stall-timeout", exit_code=EXIT_SERVER,
                            trace_message="a document's ingestion stalled (in_progress)")
        progress.update(done)
        signals.checkpoint()
        time.sleep(INGEST_POLL_S)
        for file_id in pending:
            pending[file_id] = (pending[file_id][0], client.attached_file(vector_store_id, file_id))


def tool_choice(settings: Settings) -> Any:
    """The agent's --tool-choice in the Responses API's terms: a tool name means that tool."""
    choice = settings.tool_choice
    if choice in ("auto", "required", "none"):
        return choice
    return {"type": TOOL}  # knowledge_search (0.2.x's name for the search) or file_search


def server_error(event: dict) -> str:
    """The server's reason for a failed response, as the instrumentor reads it for its span."""
    return error_message((event.get("response") or {}).get("error") or event.get("error") or "no reason given")


def find_vector_store(client: ServerCalls, *, name: str) -> str | None:
    try:
        stores = client.vector_stores()
    except Exception:  # noqa: BLE001 - the clean-up goes on; the caller reports what it could not remove
        return None
    return next((str(s["id"]) for s in stores if s.get("name") == name), None)


def find_responses(client: ServerCalls, *, run_id: str) -> list[str]:
    try:
        stored = client.responses()
    except Exception:  # noqa: BLE001 - the clean-up goes on with the ids it has
        return []
    return [str(r["id"]) for r in stored if (r.get("metadata") or {}).get(names.RUN_ID_METADATA) == run_id]
