"""Attribute and operation names the trace uses, in one place.

The GenAI names (OpenTelemetry's GenAI semantic conventions, development status) and the
OpenInference span kinds that Phoenix reads are the client instrumentor's
(llama_stack_otel_instrumentation.semconv, which takes them from the maintained packages): the
app's spans and the instrumentor's say the same thing the same way. What the conventions do not
name is this project's own, under ``rag_agent.``.
"""

from __future__ import annotations

from llama_stack_otel.config import CAPTURE_CONTENT_ENV  # noqa: F401 - named here with the rest

# The GenAI names and OpenInference kinds the instrumentor's spans use too: one place for both.
from llama_stack_otel_instrumentation.semconv import (  # noqa: F401 - named here with the rest
    AGENT_ID,
    AGENT_NAME,
    ANSWER_CHARS,
    CONVERSATION_ID,
    CREATE_AGENT,
    CREATE_SESSION,
    DATA_SOURCE_ID,
    ERROR_TYPE,
    FINISH_REASONS,
    INPUT_MESSAGES,
    INPUT_TOKENS,
    INPUT_VALUE,
    INVOKE_AGENT,
    KIND_AGENT,
    KIND_CHAIN,
    KIND_RETRIEVER,
    KIND_TOOL,
    OPENINFERENCE_SPAN_KIND,
    OPERATION_NAME,
    OUTPUT_MESSAGES,
    OUTPUT_TOKENS,
    OUTPUT_VALUE,
    PROVIDER,
    PROVIDER_NAME,
    QUESTION_CHARS,
    REQUEST_MODEL,
    RESPONSE_ID,
    RETRIEVED_CHARS,
    RETRIEVED_CHUNKS,
    STREAM_ERROR,
    SYSTEM_INSTRUCTIONS,
    TIME_TO_FIRST_CHUNK,
    TOKEN_TYPE,
    TOOL_CALL_ARGUMENTS,
    TOOL_CALL_ID,
    TOOL_CALL_RESULT,
    TOOL_NAME,
    TOOL_TYPE,
)

# What the conventions do not name: this project's own attributes.
DOCUMENTS_COUNT = "rag_agent.documents.count"
DOCUMENTS_BYTES = "rag_agent.documents.bytes"
CHUNK_SIZE_TOKENS = "rag_agent.chunk_size_tokens"
EMBEDDING_MODEL = "rag_agent.embedding_model"
AGENTS_COUNT = "rag_agent.agents.count"
FAILED_PHASE = "rag_agent.failed_phase"
SERVER_VERSION = "rag_agent.server.version"
API = "rag_agent.api"
FILES_COUNT = "rag_agent.files.count"

# The run's own.
OUTCOME = "rag_agent.run.outcome"  # ok, error, interrupted, terminated
RUN_ID = "rag_agent.run.id"
MODEL = "rag_agent.model"
QUESTIONS_COUNT = "rag_agent.questions.count"
