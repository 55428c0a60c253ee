"""The RAG run on Llama Stack 0.2.x–0.3.x: a vector DB, the builtin::rag tool, an agent.

The documents go into a vector DB registered for this run (``rag_tool.insert`` chunks and
embeds them server-side); an agent whose only tool is ``builtin::rag/knowledge_search`` over
that DB answers each question in one session, as streamed turns. Clean-up deletes the agent
and unregisters the vector DB.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from opentelemetry.trace import SpanKind

from llama_stack_otel import names, semconv
from llama_stack_otel.backends import Removal, remove_all, stream_answer
from llama_stack_otel.config import API_AGENTS, DEFAULT_STALL_SECONDS, Settings
from llama_stack_otel.console import Console
from llama_stack_otel.documents import Document
from llama_stack_otel.errors import EXIT_SERVER, UserError, model_not_registered
from llama_stack_otel.signals import signals
from llama_stack_otel.telemetry import AnswerObserver, Telemetry, text_parts

RAG_TOOL = "builtin::rag/knowledge_search"


class Agents:
    api = API_AGENTS

    def __init__(self, client: Any, *, settings: Settings, run_id: str, telemetry: Telemetry, out: Console) -> None:
        self.client = client
        self.settings = settings
        self.telemetry = telemetry
        self.out = out
        self.vector_db_id = names.vector_db(run_id)
        self.session_name = names.session(run_id)
        # None: not asked for; False: asked for, answer not seen (an interrupt or a lost
        # connection can come after the server registered it); True: registered.
        self.registered: bool | None = None
        self.agent: Any = None
        self.agent_ids: list[str] = []
        self.session_id = ""
        self.provider_id = ""
        # What every gen_ai span and metric point of this run shares.
        self.model_attributes = {semconv.REQUEST_MODEL: settings.model, semconv.PROVIDER_NAME: semconv.PROVIDER}

    def check(self) -> None:
        if self.settings.stall_timeout != DEFAULT_STALL_SECONDS:
            self.out.line("warning: --stall-timeout applies to Llama Stack 0.4 and later only; on 0.2.x ingestion "
                          "is one call, bounded by --timeout", error=True)
        providers = [p.provider_id for p in self.client.providers.list() if p.api == "vector_io"]
        if not providers:
            raise UserError("the Llama Stack server has no vector_io provider — add one (e.g. inline::faiss) to "
                            "its run config", exit_code=EXIT_SERVER)
        self.provider_id = providers[0]
        if self.settings.questions:
            check_model(self.client, self.settings.model)

    def ingest(self, documents: list[Document]) -> None:
        settings = self.settings
        total_bytes = sum(d.size_bytes for d in documents)
        with self.telemetry.phase("ingest_documents", {
            semconv.DATA_SOURCE_ID: self.vector_db_id, semconv.DOCUMENTS_COUNT: len(documents),
            semconv.DOCUMENTS_BYTES: total_bytes, semconv.CHUNK_SIZE_TOKENS: settings.chunk_size_in_tokens,
            semconv.EMBEDDING_MODEL: settings.embedding_model,
        }):
            self.registered = False
            self.client.vector_dbs.register(vector_db_id=self.vector_db_id, embedding_model=settings.embedding_model,
                                            embedding_dimension=settings.embedding_dimension,
                                            provider_id=self.provider_id)
            self.registered = True
            # Embedding can take minutes: say what is going on (a test waits for this line, too).
            self.out.line(f"Ingesting {len(documents)} documents ({total_bytes / 1024:.1f} KB) into vector DB "
                          f"{self.vector_db_id} ...")
            started = time.monotonic()
            self.client.tool_runtime.rag_tool.insert(
                documents=[{"document_id": d.document_id, "content": d.text, "mime_type": "text/plain",
                            "metadata": {}} for d in documents],
                vector_db_id=self.vector_db_id, chunk_size_in_tokens=settings.chunk_size_in_tokens)
        self.out.line(f"Ingested {len(documents)} documents in {time.monotonic() - started:.1f} s")
        signals.checkpoint()

    def _create_agent(self) -> None:
        from llama_stack_client import Agent

        attributes = {semconv.AGENT_NAME: names.AGENT, semconv.DATA_SOURCE_ID: self.vector_db_id,
                      **self.model_attributes}
        with self.telemetry.phase(f"{semconv.CREATE_AGENT} {names.AGENT}", kind=SpanKind.CLIENT,
                                  attributes={semconv.OPERATION_NAME: semconv.CREATE_AGENT, **attributes}) as span:
            self.telemetry.content(span, semconv.SYSTEM_INSTRUCTIONS, text_parts(self.settings.instructions))
            self.agent = Agent(self.client, model=self.settings.model, instructions=self.settings.instructions,
                               tools=[{"name": RAG_TOOL, "args": {"vector_db_ids": [self.vector_db_id]}}],
                               tool_config={"tool_choice": self.settings.tool_choice})
            self.agent_ids.append(self.agent.agent_id)
            span.set_attribute(semconv.AGENT_ID, self.agent.agent_id)
            # The session is the conversation every question of this run goes into.
            self.session_id = self.agent.create_session(self.session_name)
            span.set_attribute(semconv.CONVERSATION_ID, self.session_id)

    def ask(self, question: str) -> str:
        signals.checkpoint()
        if self.agent is None:
            self._create_agent()
        with self.telemetry.phase(f"{semconv.INVOKE_AGENT} {names.AGENT}", kind=SpanKind.CLIENT, attributes={
            semconv.OPERATION_NAME: semconv.INVOKE_AGENT, semconv.AGENT_NAME: names.AGENT,
            semconv.DATA_SOURCE_ID: self.vector_db_id, **self.model_attributes,
            semconv.AGENT_ID: self.agent.agent_id, semconv.CONVERSATION_ID: self.session_id,
        }) as span:
            observer = TurnObserver(self.telemetry, span, question=question, data_source_id=self.vector_db_id,
                                    metric_attributes={semconv.OPERATION_NAME: semconv.INVOKE_AGENT,
                                                       **self.model_attributes})
            return ask(self.agent, session_id=self.session_id, question=question, observer=observer, out=self.out,
                       show_rag_documents=self.settings.show_rag_documents)

    def clean_up(self) -> list[str]:
        timeout = self.settings.clean_up_timeout
        removals = [Removal(f"agent {agent_id}", f"/v1/agents/{agent_id}",
                            partial(self.client.agents.delete, agent_id, timeout=timeout))
                    for agent_id in self.agent_ids]
        if self.registered is not None:
            removals.append(Removal(f"vector DB {self.vector_db_id}", f"/v1/vector-dbs/{self.vector_db_id}",
                                    partial(self.client.vector_dbs.unregister, self.vector_db_id, timeout=timeout),
                                    maybe_absent=not self.registered))
        attributes = {semconv.DATA_SOURCE_ID: self.vector_db_id} if self.registered is not None else {}
        problems = remove_all(removals, telemetry=self.telemetry, url=self.settings.llama_stack_url,
                              attributes={**attributes, semconv.AGENTS_COUNT: len(self.agent_ids)})
        self.agent_ids, self.registered = [], None  # removed, or reported: never twice
        return problems


def check_model(client: Any, model: str) -> None:
    llms = sorted(m.identifier for m in client.models.list() if m.model_type == "llm")
    if model not in llms:
        raise model_not_registered(model, llms)


def ask(agent: Any, *, session_id: str, question: str, observer: TurnObserver, out: Console,
        show_rag_documents: bool = False) -> str:
    """One streamed turn, printed as it arrives; returns the answer."""

    def pieces() -> Any:
        stream = agent.create_turn(messages=[{"role": "user", "content": question}], session_id=session_id,
                                   stream=True)
        for chunk in stream:
            error = getattr(chunk, "error", None)
            if error:
                message = error.get("message", error) if isinstance(error, dict) else error
                raise UserError(f"the agent turn failed on the server: {message}", exit_code=EXIT_SERVER,
                                trace_message="the agent turn failed on the server")
            observer.observe(chunk)
            payload = chunk.event.payload
            text = None
            if payload.event_type == "step_progress" and payload.step_type == "inference":
                text = payload.delta.text if getattr(payload.delta, "type", None) == "text" else None
            elif payload.event_type == "step_complete" and payload.step_type == "tool_execution" and show_rag_documents:
                for response in payload.step_details.tool_responses:
                    out.line(f"{chr(10) if out.streaming else ''}--- {response.tool_name} returned ---\n"
                             f"{flatten_content(response.content)}\n---")
            yield text

    answer = stream_answer(out, question, pieces())
    observer.finish(answer=answer)
    return answer


# --- What a turn's events tell the trace ---------------------------------------------------------


def flatten_content(content: Any) -> str:
    """Llama Stack's interleaved content (a string or a list of items) as text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(flatten_content(item) for item in content)
    return str(getattr(content, "text", "") or "")


def reported_usage(*sources: Any) -> tuple[int, int] | None:
    """Input and output tokens, if one of these objects carries the server's usage metrics
    (``metrics: [{metric: prompt_tokens | completion_tokens, value}]``, as Llama Stack's
    inference responses do). Llama Stack 0.2.12's agent turn events carry none."""
    for source in sources:
        found = {}
        for item in getattr(source, "metrics", None) or []:
            name = item.get("metric") if isinstance(item, dict) else getattr(item, "metric", None)
            value = item.get("value") if isinstance(item, dict) else getattr(item, "value", None)
            if name in ("prompt_tokens", "completion_tokens") and isinstance(value, (int, float)):
                found[name] = int(value)
        if found:
            return found.get("prompt_tokens", 0), found.get("completion_tokens", 0)
    return None


class TurnObserver(AnswerObserver):
    """Reads one agent turn's events: answer text, tool steps, per-step usage, the stop reason."""

    def observe(self, chunk: Any) -> None:
        payload = getattr(getattr(chunk, "event", None), "payload", None)
        if payload is None:  # an error chunk: the caller raises, the phase span records it
            return
        kind = (payload.event_type, getattr(payload, "step_type", None))
        if kind == ("step_progress", "inference") and getattr(payload.delta, "type", None) == "text":
            self.text_arrived(payload.delta.text)
        elif kind == ("step_start", "tool_execution"):
            self.tool_started(payload.step_id)
        elif kind == ("step_complete", "tool_execution"):
            self._tool_spans(payload.step_details, step_id=payload.step_id)
        elif kind == ("step_complete", "inference"):
            self._usage(reported_usage(payload.step_details, payload, chunk))
        elif payload.event_type == "turn_complete":
            turn = payload.turn
            if self.usage is None:  # a per-turn total, if the server gives one instead
                self._usage(reported_usage(turn, payload, chunk))
            self.finish_reason(str(turn.output_message.stop_reason))

    def _usage(self, usage: tuple[int, int] | None) -> None:
        if usage is not None:
            self.add_usage(*usage)

    def _tool_spans(self, step: Any, *, step_id: str) -> None:
        """One execute_tool span per call of the step, all from when the server announced the step."""
        calls = {call.call_id: call for call in step.tool_calls}
        started = self.tool_started_ns.pop(step_id, None)
        for response in step.tool_responses:
            tool = str(response.tool_name)
            call = calls.get(response.call_id)
            result = flatten_content(response.content)
            attributes: dict[str, Any] = {}
            if tool == "knowledge_search":
                metadata = response.metadata or {}
                attributes = {semconv.TOOL_TYPE: "datastore", semconv.DATA_SOURCE_ID: self.data_source_id,
                              semconv.RETRIEVED_CHUNKS: len(metadata.get("document_ids") or []),
                              semconv.RETRIEVED_CHARS: len(result)}
            if started is not None:
                self.tool_started_ns[response.call_id] = started
            self.tool_done(tool=tool, call_id=response.call_id, attributes=attributes,
                           arguments=call.arguments if call is not None else None, result=result)
