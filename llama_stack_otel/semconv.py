"""Attribute and operation names the trace uses, in one place.

The GenAI names follow the OpenTelemetry GenAI semantic conventions (development status).
They are written out rather than imported: opentelemetry-semantic-conventions 0.66b2 still
ships them but marks each as moved to the GenAI conventions' own repository, which has no
Python package yet. What the conventions do not name is this project's own, under
``rag_agent.`` (and ``llama_stack.`` for what the instrumentor adds). The OpenInference span
kinds come from the ``openinference-semantic-conventions`` package.
"""

from __future__ import annotations

from openinference.semconv.trace import OpenInferenceSpanKindValues, SpanAttributes

from llama_stack_otel.config import CAPTURE_CONTENT_ENV  # noqa: F401 - named here with the rest

OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
AGENT_NAME = "gen_ai.agent.name"
AGENT_ID = "gen_ai.agent.id"
CONVERSATION_ID = "gen_ai.conversation.id"
DATA_SOURCE_ID = "gen_ai.data_source.id"
TOOL_NAME = "gen_ai.tool.name"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_CALL_ID = "gen_ai.tool.call.id"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
RESPONSE_ID = "gen_ai.response.id"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
TOKEN_TYPE = "gen_ai.token.type"
ERROR_TYPE = "error.type"
# Content: only with the opt-in below.
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"

CREATE_AGENT = "create_agent"
INVOKE_AGENT = "invoke_agent"
PROVIDER = "llama_stack"  # what the client talks to; the server picks the inference provider

# What the conventions do not name: this project's own attributes.
DOCUMENTS_COUNT = "rag_agent.documents.count"
DOCUMENTS_BYTES = "rag_agent.documents.bytes"
CHUNK_SIZE_TOKENS = "rag_agent.chunk_size_tokens"
EMBEDDING_MODEL = "rag_agent.embedding_model"
QUESTION_CHARS = "rag_agent.question.chars"
ANSWER_CHARS = "rag_agent.answer.chars"
AGENTS_COUNT = "rag_agent.agents.count"
RETRIEVED_CHUNKS = "rag_agent.retrieval.chunks"
RETRIEVED_CHARS = "rag_agent.retrieval.chars"
FAILED_PHASE = "rag_agent.failed_phase"
SERVER_VERSION = "rag_agent.server.version"
API = "rag_agent.api"
FILES_COUNT = "rag_agent.files.count"

# What the conventions do not name either: what the project's instrumentor adds.
CREATE_SESSION = "create_session"  # a Llama Stack 0.2.x agent session: the conversation turns go into
STREAM_ERROR = "llama_stack.stream_error"  # error.type of a turn or response the server failed mid-stream
OUTCOME = "rag_agent.run.outcome"  # ok, error, interrupted, terminated
RUN_ID = "rag_agent.run.id"
MODEL = "rag_agent.model"
QUESTIONS_COUNT = "rag_agent.questions.count"

# OpenInference's span kinds, which Phoenix shows (it calls a span without one "unknown").
OPENINFERENCE_SPAN_KIND = SpanAttributes.OPENINFERENCE_SPAN_KIND
KIND_AGENT = OpenInferenceSpanKindValues.AGENT.value
KIND_TOOL = OpenInferenceSpanKindValues.TOOL.value
KIND_RETRIEVER = OpenInferenceSpanKindValues.RETRIEVER.value
KIND_CHAIN = OpenInferenceSpanKindValues.CHAIN.value
# Phoenix's input and output panes; content, so only with the opt-in.
INPUT_VALUE = SpanAttributes.INPUT_VALUE
OUTPUT_VALUE = SpanAttributes.OUTPUT_VALUE
