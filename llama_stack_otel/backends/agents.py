"""The RAG run on Llama Stack 0.2.x–0.3.x: a vector DB, the builtin::rag tool, an agent.

The documents go into a vector DB registered for this run (``rag_tool.insert`` chunks and
embeds them server-side); an agent whose only tool is ``builtin::rag/knowledge_search`` over
that DB answers each question in one session, as streamed turns. Clean-up deletes the agent
and unregisters the vector DB. The agent's spans — ``create_agent``, ``create_session``, and
per question ``invoke_agent`` with ``execute_tool knowledge_search`` — are the client
instrumentor's (llama_stack_otel_instrumentation); this module only prints the answer.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from llama_stack_otel import names, semconv
from llama_stack_otel.backends import Removal, reading, remove_all, stream_answer
from llama_stack_otel.config import API_AGENTS, DEFAULT_STALL_SECONDS, Settings
from llama_stack_otel.console import Console
from llama_stack_otel.documents import Document
from llama_stack_otel.errors import EXIT_SERVER, UserError, model_not_registered
from llama_stack_otel.signals import signals
from llama_stack_otel.telemetry import Telemetry
from llama_stack_otel_instrumentation.payloads import text_of

RAG_TOOL = "builtin::rag/knowledge_search"
AGENTS_CLIENT_VERSION = "0.2.12"  # the client this run is written for (requirements.txt)


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

        with self.telemetry.step(f"{semconv.CREATE_AGENT} {names.AGENT}"):
            self.agent = Agent(self.client, model=self.settings.model, instructions=self.settings.instructions,
                               tools=[{"name": RAG_TOOL, "args": {"vector_db_ids": [self.vector_db_id]}}],
                               tool_config={"tool_choice": self.settings.tool_choice})
            self.agent_ids.append(self.agent.agent_id)
        # The session is the conversation every question of this run goes into.
        with self.telemetry.step(f"{semconv.CREATE_SESSION} {names.AGENT}"):
            self.session_id = self.agent.create_session(self.session_name)

    def ask(self, question: str) -> str:
        signals.checkpoint()
        if self.agent is None:
            self._create_agent()
        with self.telemetry.step(f"{semconv.INVOKE_AGENT} {names.AGENT}"):
            return ask(self.agent, session_id=self.session_id, question=question, out=self.out,
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


def client_without_agents_api(server_version: str | None) -> UserError:
    """The installed client cannot make this run (llama-stack-client 0.7 and later have no
    Agents API): which one can."""
    from llama_stack_client import __version__ as installed

    if server_version:
        return UserError(f"Llama Stack {server_version} serves the Agents API, which llama-stack-client {installed} "
                         f"no longer has — pip install 'llama-stack-client=={server_version}' to talk to it, or use a "
                         "Llama Stack 0.4+ or OGX server")
    return UserError(f"the Agents API (--api agents, LLAMA_STACK_API=agents) is not in llama-stack-client {installed} — "
                     f"pip install 'llama-stack-client=={AGENTS_CLIENT_VERSION}' for it, or pass --api responses")


def check_model(client: Any, model: str) -> None:
    llms = sorted(m.identifier for m in client.models.list() if m.model_type == "llm")
    if model not in llms:
        raise model_not_registered(model, llms)


def ask(agent: Any, *, session_id: str, question: str, out: Console, show_rag_documents: bool = False) -> str:
    """One streamed turn, printed as it arrives; returns the answer."""

    def text(chunk: Any) -> str | None:
        error = getattr(chunk, "error", None)
        if error:
            message = error.get("message", error) if isinstance(error, dict) else error
            raise UserError(f"the agent turn failed on the server: {message}", exit_code=EXIT_SERVER,
                            trace_message="the agent turn failed on the server")
        payload = chunk.event.payload
        if payload.event_type == "step_progress" and payload.step_type == "inference":
            return payload.delta.text if getattr(payload.delta, "type", None) == "text" else None
        if payload.event_type == "step_complete" and payload.step_type == "tool_execution" and show_rag_documents:
            for response in payload.step_details.tool_responses:
                out.line(f"{chr(10) if out.streaming else ''}--- {response.tool_name} returned ---\n"
                         f"{text_of(response.content)}\n---")
        return None

    stream = agent.create_turn(messages=[{"role": "user", "content": question}], session_id=session_id, stream=True)
    with reading(stream):
        return stream_answer(out, question, (text(chunk) for chunk in stream))
