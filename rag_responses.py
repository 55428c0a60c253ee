"""The RAG run on Llama Stack 0.4 and later, for llama_stack_agent_rag_otel.py.

Those servers no longer have the Agents API, vector DBs or the rag tool the script uses on
0.2.x. The same run there: each document is uploaded as a file and attached to a new vector
store (the server chunks and embeds it), each question is one call of the Responses API with
the file_search tool over that store (the questions chained by previous_response_id, as the
agent's session chains its turns), and the store, the files and the stored responses are
removed at the end, also when the run fails or is interrupted.

The 0.2.x client pinned in requirements.txt has these routes only under /v1/openai/v1, which
newer servers do not serve, so the calls go through its generic get/post/delete (``Calls``):
the same instrumented HTTP client, the same traceparent, the same exceptions and error
messages. They go without the header in which that client announces its version: newer
servers answer HTTP 426 to a client whose major.minor differs from theirs, and these calls
are written for the newer API.
The phase spans are the ones the script records on 0.2.x (check_server, ingest_documents,
one invoke_agent per question with execute_tool file_search under it, clean_up); there is
no agent to create.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import Span, SpanKind, StatusCode

import otel_genai as genai
from interrupts import signals
from rag_errors import EXIT_SERVER, UserError, model_not_registered

API_AGENTS = "agents"  # Llama Stack 0.2.x / 0.3.x: Agents API, vector DBs, builtin::rag
API_RESPONSES = "responses"  # 0.4 and later: files, vector stores, Responses API + file_search
FIRST_RESPONSES_VERSION = (0, 4)
TOOL = "file_search"
INGEST_POLL_S = 0.2
CHUNK_OVERLAP_SHARE = 0.2  # of the chunk size
MAX_SEARCH_RESULTS = 5  # chunks a search returns, as knowledge_search's default on 0.2.x
RUN_ID_METADATA = "rag_agent_run_id"


VERSION_HEADER = "X-LlamaStack-Client-Version"


class Calls:
    """The client's generic HTTP methods, JSON in and out, without its version header."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @staticmethod
    def _options(options: dict | None) -> dict:
        from llama_stack_client._types import Omit  # how the client drops one of its default headers

        options = dict(options or {})
        options["headers"] = {**options.get("headers", {}), VERSION_HEADER: Omit()}
        return options

    def get(self, path: str, *, options: dict | None = None) -> Any:
        return self.client.get(path, cast_to=object, options=self._options(options))

    def post(self, path: str, *, options: dict | None = None, **kwargs: Any) -> Any:
        return self.client.post(path, cast_to=object, options=self._options(options), **kwargs)

    def delete(self, path: str, *, options: dict | None = None) -> Any:
        return self.client.delete(path, cast_to=object, options=self._options(options))


def version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def server_api(client: Any) -> tuple[str, str]:
    """(which API the server has, its version) from GET /v1/version."""
    version = str(Calls(client).get("/v1/version").get("version", ""))
    if version_tuple(version) >= FIRST_RESPONSES_VERSION:
        return API_RESPONSES, version
    return API_AGENTS, version


def check_model(client: Any, model: str) -> str:
    """The server's id for the LLM the user named: newer servers prefix it with the provider
    (llama-cpp/gemma3-270m), so gemma3-270m finds it too."""
    listed = Calls(client).get("/v1/models").get("data", [])
    llms = sorted(str(m.get("id") or m.get("identifier")) for m in listed if model_type(m) == "llm")
    for candidate in llms:
        if candidate == model or candidate.endswith(f"/{model}"):
            return candidate
    raise model_not_registered(model, llms)


def model_type(model: dict) -> str:
    metadata = model.get("custom_metadata") or model.get("metadata") or {}
    return str(model.get("model_type") or metadata.get("model_type") or "")


@dataclass
class Created:
    """What the run made on the server, for the clean-up."""

    vector_store_name: str
    run_id: str
    vector_store_id: str | None = None  # "" once asked for, until the server has answered
    response_pending: bool = False  # a response was asked for and its id has not arrived yet
    file_ids: list[str] = field(default_factory=list)
    response_ids: list[str] = field(default_factory=list)


def run(client: Any, settings: Any, *, model: str, documents: list[Any], run_id: str, telemetry: genai.Telemetry,
        out: Any, clean_up_timeout: float) -> None:
    created = Created(vector_store_name=f"rag-vector-store-{run_id}", run_id=run_id)
    client = Calls(client)
    try:
        ingest(client, settings, documents=documents, telemetry=telemetry, out=out, created=created)
        signals.checkpoint()
        previous: str | None = None
        model_attributes = {genai.REQUEST_MODEL: model, genai.PROVIDER_NAME: genai.PROVIDER}
        for question in settings.questions:
            signals.checkpoint()
            with telemetry.phase(f"{genai.INVOKE_AGENT} rag-agent", kind=SpanKind.CLIENT, attributes={
                genai.OPERATION_NAME: genai.INVOKE_AGENT, genai.AGENT_NAME: "rag-agent",
                genai.DATA_SOURCE_ID: created.vector_store_id, **model_attributes,
            }) as span:
                telemetry.content(span, genai.SYSTEM_INSTRUCTIONS, genai.text_parts(settings.instructions))
                previous = ask(client, settings, model=model, question=question, previous=previous,
                               vector_store_id=str(created.vector_store_id), telemetry=telemetry, span=span, out=out,
                               created=created, metric_attributes={genai.OPERATION_NAME: genai.INVOKE_AGENT,
                                                                   **model_attributes})
    except BaseException as exc:
        signals.seen(exc)
        for problem in clean_up(client, created, settings=settings, telemetry=telemetry, timeout=clean_up_timeout):
            out.line(f"warning: {problem}", error=True)
        raise
    problems = clean_up(client, created, settings=settings, telemetry=telemetry, timeout=clean_up_timeout)
    if problems:
        raise UserError(problems[0], exit_code=EXIT_SERVER, trace_message=f"clean-up left {len(problems)} thing(s) behind")


def chunking(settings: Any) -> dict:
    size = settings.chunk_size_in_tokens
    return {"type": "static", "static": {"max_chunk_size_tokens": size,
                                         "chunk_overlap_tokens": int(size * CHUNK_OVERLAP_SHARE)}}


def ingest(client: Any, settings: Any, *, documents: list[Any], telemetry: genai.Telemetry, out: Any,
           created: Created) -> None:
    total_bytes = sum(d.size_bytes for d in documents)
    with telemetry.phase("ingest_documents", {
        genai.DOCUMENTS_COUNT: len(documents), genai.DOCUMENTS_BYTES: total_bytes,
        genai.CHUNK_SIZE_TOKENS: settings.chunk_size_in_tokens,
    }) as span:
        created.vector_store_id = ""  # asked for: an interrupt may come before the answer
        store = client.post("/v1/vector_stores", body={"name": created.vector_store_name})
        created.vector_store_id = store["id"]
        span.set_attribute(genai.DATA_SOURCE_ID, store["id"])
        embedding_model = (store.get("metadata") or {}).get("embedding_model")
        if embedding_model:
            span.set_attribute(genai.EMBEDDING_MODEL, str(embedding_model))
        out.line(f"Ingesting {len(documents)} documents ({total_bytes / 1024:.1f} KB) into vector store "
                 f"{store['id']} ...")
        started = time.monotonic()
        for document in documents:
            signals.checkpoint()
            name = document.document_id.replace("/", "__") + ".txt"
            uploaded = client.post("/v1/files", body={"purpose": "assistants"},
                                   files=[("file", (name, document.text.encode(), "text/plain"))],
                                   options={"headers": {"Content-Type": "multipart/form-data"}})
            created.file_ids.append(uploaded["id"])
            attached = client.post(f"/v1/vector_stores/{store['id']}/files",
                                   body={"file_id": uploaded["id"], "chunking_strategy": chunking(settings)})
            wait_until_processed(client, store["id"], attached, document_id=document.document_id)
    out.line(f"Ingested {len(documents)} documents in {time.monotonic() - started:.1f} s")


def wait_until_processed(client: Any, vector_store_id: str, attached: dict, *, document_id: str) -> None:
    """Newer servers embed a small file before they answer; a large one may still be in progress."""
    while attached.get("status") == "in_progress":
        signals.checkpoint()
        time.sleep(INGEST_POLL_S)
        attached = client.get(f"/v1/vector_stores/{vector_store_id}/files/{attached['id']}")
    if attached.get("status") != "completed":
        error = attached.get("last_error") or {}
        detail = " ".join(str(error.get("message", attached.get("status"))).split())[:200]
        raise UserError(f"Llama Stack could not ingest {document_id}: {detail}", exit_code=EXIT_SERVER,
                        trace_message=f"a document could not be ingested ({attached.get('status')})")


def tool_choice(settings: Any) -> Any:
    """The agent's --tool-choice in the Responses API's terms: a tool name means that tool."""
    choice = settings.tool_choice
    if choice in ("auto", "required", "none"):
        return choice
    return {"type": TOOL}  # knowledge_search (0.2.x's name for the search) or file_search


def ask(client: Any, settings: Any, *, model: str, question: str, previous: str | None, vector_store_id: str,
        telemetry: genai.Telemetry, span: Span, out: Any, created: Created, metric_attributes: dict) -> str:
    """One streamed response, printed as it arrives; returns its id for the next question."""
    from llama_stack_client import Stream  # the client's SSE reader, imported after the instrumentation

    out.line(f"QUESTION: {question}")
    observer = ResponseObserver(telemetry, span, question=question, vector_store_id=vector_store_id,
                                metric_attributes=metric_attributes)
    parts: list[str] = []
    try:
        out.begin_answer()
        body = {"model": model, "input": question, "instructions": settings.instructions, "stream": True,
                "tools": [{"type": TOOL, "vector_store_ids": [vector_store_id], "max_num_results": MAX_SEARCH_RESULTS}],
                "tool_choice": tool_choice(settings),
                "include": ["file_search_call.results"]}
        if previous:
            body["previous_response_id"] = previous
        # The server stores every response: tagged, so that one whose id an interrupted run
        # never saw can still be found and removed.
        body["metadata"] = {RUN_ID_METADATA: created.run_id}
        created.response_pending = True
        events: Iterator[dict] = client.post("/v1/responses", body=body, stream=True,
                                             stream_cls=Stream[object])
        for event in events:
            signals.checkpoint()
            observer.observe(event)
            if created.response_pending and observer.response_id:
                created.response_ids.append(observer.response_id)
                created.response_pending = False
            if event.get("type") == "response.output_text.delta":
                text = str(event.get("delta", ""))
                text = text if parts else text.lstrip()
                parts.append(text)
                out.answer_part(text)
            elif event.get("type") in ("response.failed", "error"):
                raise UserError(f"the model's response failed on the server: {server_error(event)}",
                                exit_code=EXIT_SERVER, trace_message="the model's response failed on the server")
    finally:
        out.end_answer("".join(parts).strip())
    answer = "".join(parts).strip()
    observer.finish(answer=answer)
    if not observer.response_id:
        raise UserError("the server's response stream ended without a response id", exit_code=EXIT_SERVER)
    return observer.response_id


def server_error(event: dict) -> str:
    error = (event.get("response") or {}).get("error") or event.get("error") or {}
    message = error.get("message", error) if isinstance(error, dict) else error
    return " ".join(str(message or "no reason given").split())[:200]


class ResponseObserver:
    """Reads one response's event stream inside its invoke_agent span: time to the first answer
    text, an execute_tool span per file_search call (from the server saying it started to the
    call's item being done), token usage, the finish reason."""

    def __init__(self, telemetry: genai.Telemetry, span: Span, *, question: str, vector_store_id: str,
                 metric_attributes: dict) -> None:
        self.telemetry = telemetry
        self.span = span
        self.vector_store_id = vector_store_id
        self.metric_attributes = metric_attributes
        span.set_attribute(genai.QUESTION_CHARS, len(question))
        telemetry.content(span, genai.INPUT_MESSAGES, [{"role": "user", "parts": genai.text_parts(question)}])
        self.started = time.perf_counter()
        self.first_chunk_s: float | None = None
        self.response_id: str | None = None
        self.tool_started_ns: dict[str, int] = {}
        self.usage: tuple[int, int] | None = None

    def observe(self, event: dict) -> None:
        kind = str(event.get("type", ""))
        response = event.get("response") or {}
        if response.get("id"):
            self.response_id = str(response["id"])
        if kind == "response.output_text.delta" and event.get("delta") and self.first_chunk_s is None:
            self.first_chunk_s = time.perf_counter() - self.started
            self.span.set_attribute(genai.TIME_TO_FIRST_CHUNK, self.first_chunk_s)
        elif kind == "response.file_search_call.in_progress":
            self.tool_started_ns.setdefault(str(event.get("item_id")), time.time_ns())
        elif kind == "response.output_item.done" and (event.get("item") or {}).get("type") == "file_search_call":
            self._tool_span(event["item"])
        elif kind in ("response.completed", "response.incomplete"):
            usage = response.get("usage") or {}
            if "input_tokens" in usage and "output_tokens" in usage:
                self.usage = (int(usage["input_tokens"]), int(usage["output_tokens"]))
            # incomplete: the answer hit the token limit ("length"), as a turn's out_of_tokens
            reason = (response.get("incomplete_details") or {}).get("reason") or response.get("status") or "completed"
            self.span.set_attribute(genai.FINISH_REASONS, [str(reason)])

    def _tool_span(self, item: dict) -> None:
        results = item.get("results") or []
        call_id = str(item.get("id"))
        attributes = {genai.OPERATION_NAME: genai.EXECUTE_TOOL, genai.TOOL_NAME: TOOL, genai.TOOL_CALL_ID: call_id,
                      genai.TOOL_TYPE: "datastore", genai.DATA_SOURCE_ID: self.vector_store_id,
                      genai.RETRIEVED_CHUNKS: len(results),
                      genai.RETRIEVED_CHARS: sum(len(str(r.get("text", ""))) for r in results)}
        span = self.telemetry.tracer.start_span(f"{genai.EXECUTE_TOOL} {TOOL}", kind=SpanKind.INTERNAL,
                                                attributes=attributes, start_time=self.tool_started_ns.pop(call_id, None))
        self.telemetry.content(span, genai.TOOL_CALL_ARGUMENTS, {"queries": item.get("queries") or []})
        self.telemetry.content(span, genai.TOOL_CALL_RESULT, [str(r.get("text", "")) for r in results])
        span.end()

    def finish(self, *, answer: str) -> None:
        self.span.set_attribute(genai.ANSWER_CHARS, len(answer))
        self.telemetry.content(self.span, genai.OUTPUT_MESSAGES, [{"role": "assistant", "parts": genai.text_parts(answer)}])
        instruments = self.telemetry.instruments
        if self.first_chunk_s is not None:
            instruments.time_to_first_chunk.record(self.first_chunk_s, self.metric_attributes)
        if self.usage is not None:
            self.span.set_attribute(genai.INPUT_TOKENS, self.usage[0])
            self.span.set_attribute(genai.OUTPUT_TOKENS, self.usage[1])
            for token_type, count in zip(("input", "output"), self.usage, strict=True):
                instruments.token_usage.record(count, {**self.metric_attributes, genai.TOKEN_TYPE: token_type})


def find_vector_store(client: Any, *, name: str) -> str | None:
    try:
        stores = client.get("/v1/vector_stores", options={"params": {"limit": 100}}).get("data", [])
    except Exception:  # noqa: BLE001 - the clean-up goes on; the caller reports what it could not remove
        return None
    return next((str(s["id"]) for s in stores if s.get("name") == name), None)


def find_responses(client: Any, *, run_id: str) -> list[str]:
    try:
        stored = client.get("/v1/responses", options={"params": {"limit": 100}}).get("data", [])
    except Exception:  # noqa: BLE001 - the clean-up goes on with the ids it has
        return []
    return [str(r["id"]) for r in stored if (r.get("metadata") or {}).get(RUN_ID_METADATA) == run_id]


def clean_up(client: Any, created: Created, *, settings: Any, telemetry: genai.Telemetry, timeout: float) -> list[str]:
    """Remove the stored responses, the vector store and the files; return what could not be removed."""
    problems = []
    attributes = {genai.DATA_SOURCE_ID: created.vector_store_id} if created.vector_store_id else {}
    url = settings.llama_stack_url
    with telemetry.phase("clean_up", {**attributes, "rag_agent.files.count": len(created.file_ids)}) as span:
        response_ids = list(created.response_ids)
        if created.response_pending:  # it may have been stored before its id came back
            response_ids += [r for r in find_responses(client, run_id=created.run_id) if r not in response_ids]
        targets = [f"/v1/responses/{r}" for r in response_ids]
        store_id = created.vector_store_id
        if store_id == "":  # asked for, answer never seen: it may exist all the same, under its name
            store_id = find_vector_store(client, name=created.vector_store_name)
        if store_id:
            targets.append(f"/v1/vector_stores/{store_id}")
        targets += [f"/v1/files/{f}" for f in created.file_ids]
        for path in targets:
            try:
                client.delete(path, options={"timeout": timeout})
            except Exception as exc:  # noqa: BLE001 - reported, not raised: the rest comes next
                problems.append(f"could not remove {path} ({type(exc).__name__}: {exc}) — remove it with "
                                f"curl -X DELETE {url}{path}")
        if problems:
            span.set_status(StatusCode.ERROR, f"{len(problems)} thing(s) left on the server")
            telemetry.failed_phase = telemetry.failed_phase or "clean_up"
    return problems
