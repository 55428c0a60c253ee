"""The names the instrumentor's spans and metrics use, in one place.

GenAI names come from opentelemetry-semantic-conventions (its incubating ``gen_ai`` attributes,
metrics and operation names); OpenInference's span kinds, which Phoenix shows, from
openinference-semantic-conventions. What neither names is the instrumentor's own: a few sizes
under ``rag_agent.`` (kept from the app it was written for; its trace checks read them) and
``llama_stack.`` for what only Llama Stack has.
"""

from __future__ import annotations

from openinference.semconv.trace import OpenInferenceSpanKindValues, SpanAttributes
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.semconv.attributes import error_attributes, server_attributes

OPERATION_NAME = gen_ai.GEN_AI_OPERATION_NAME
PROVIDER_NAME = gen_ai.GEN_AI_PROVIDER_NAME
REQUEST_MODEL = gen_ai.GEN_AI_REQUEST_MODEL
REQUEST_STREAM = gen_ai.GEN_AI_REQUEST_STREAM
RESPONSE_MODEL = gen_ai.GEN_AI_RESPONSE_MODEL
AGENT_NAME = gen_ai.GEN_AI_AGENT_NAME
AGENT_ID = gen_ai.GEN_AI_AGENT_ID
CONVERSATION_ID = gen_ai.GEN_AI_CONVERSATION_ID
DATA_SOURCE_ID = gen_ai.GEN_AI_DATA_SOURCE_ID
TOOL_NAME = gen_ai.GEN_AI_TOOL_NAME
TOOL_TYPE = gen_ai.GEN_AI_TOOL_TYPE
TOOL_CALL_ID = gen_ai.GEN_AI_TOOL_CALL_ID
FINISH_REASONS = gen_ai.GEN_AI_RESPONSE_FINISH_REASONS
TIME_TO_FIRST_CHUNK = gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
RESPONSE_ID = gen_ai.GEN_AI_RESPONSE_ID
INPUT_TOKENS = gen_ai.GEN_AI_USAGE_INPUT_TOKENS
OUTPUT_TOKENS = gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
TOKEN_TYPE = gen_ai.GEN_AI_TOKEN_TYPE
EMBEDDINGS_DIMENSION_COUNT = gen_ai.GEN_AI_EMBEDDINGS_DIMENSION_COUNT
ERROR_TYPE = error_attributes.ERROR_TYPE
SERVER_ADDRESS = server_attributes.SERVER_ADDRESS
SERVER_PORT = server_attributes.SERVER_PORT
# Content: only with the opt-in (content.py).
SYSTEM_INSTRUCTIONS = gen_ai.GEN_AI_SYSTEM_INSTRUCTIONS
INPUT_MESSAGES = gen_ai.GEN_AI_INPUT_MESSAGES
OUTPUT_MESSAGES = gen_ai.GEN_AI_OUTPUT_MESSAGES
TOOL_CALL_ARGUMENTS = gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS
TOOL_CALL_RESULT = gen_ai.GEN_AI_TOOL_CALL_RESULT
RETRIEVAL_QUERY_TEXT = gen_ai.GEN_AI_RETRIEVAL_QUERY_TEXT

# Operation names (the registry's gen_ai.operation.name values).
CHAT = gen_ai.GenAiOperationNameValues.CHAT.value
EMBEDDINGS = gen_ai.GenAiOperationNameValues.EMBEDDINGS.value
RETRIEVAL = gen_ai.GenAiOperationNameValues.RETRIEVAL.value
CREATE_AGENT = gen_ai.GenAiOperationNameValues.CREATE_AGENT.value
INVOKE_AGENT = gen_ai.GenAiOperationNameValues.INVOKE_AGENT.value
EXECUTE_TOOL = gen_ai.GenAiOperationNameValues.EXECUTE_TOOL.value
PROVIDER = "llama_stack"  # what the client talks to; the server picks the inference provider

# Metrics (the GenAI client metrics).
OPERATION_DURATION = gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION
TOKEN_USAGE = gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE
TIME_TO_FIRST_CHUNK_METRIC = gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK
# Bucket boundaries the GenAI metric conventions advise for durations, in seconds.
DURATION_BUCKETS_S = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)

# Not in the conventions: span names (no operation name) and sizes.
CREATE_SESSION = "create_session"  # a 0.2.x agent session: span name only, not an operation name
CREATE_CONVERSATION = "create_conversation"  # POST /v1/conversations (0.7, OGX): span name only
QUESTION_CHARS = "rag_agent.question.chars"
ANSWER_CHARS = "rag_agent.answer.chars"
RETRIEVED_CHUNKS = "rag_agent.retrieval.chunks"
RETRIEVED_CHARS = "rag_agent.retrieval.chars"
STREAM_ERROR = "llama_stack.stream_error"  # error.type of a call the server failed mid-stream

# OpenInference's span kinds, which Phoenix shows (it calls a span without one "unknown").
OPENINFERENCE_SPAN_KIND = SpanAttributes.OPENINFERENCE_SPAN_KIND
KIND_AGENT = OpenInferenceSpanKindValues.AGENT.value
KIND_TOOL = OpenInferenceSpanKindValues.TOOL.value
KIND_RETRIEVER = OpenInferenceSpanKindValues.RETRIEVER.value
KIND_CHAIN = OpenInferenceSpanKindValues.CHAIN.value
KIND_LLM = OpenInferenceSpanKindValues.LLM.value
KIND_EMBEDDING = OpenInferenceSpanKindValues.EMBEDDING.value
# Phoenix's input and output panes; content, so only with the opt-in.
INPUT_VALUE = SpanAttributes.INPUT_VALUE
OUTPUT_VALUE = SpanAttributes.OUTPUT_VALUE
