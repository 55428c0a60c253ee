"""Every GenAI operation the client exposes, as OpenTelemetry's GenAI conventions name it:
chat completions (streamed or not, sync and async), embeddings, vector store search,
conversations — and on 0.2.x inference.chat_completion / embeddings, vector_io and the RAG
tool's query, tool_runtime.invoke_tool and agent sessions — with their metrics, OpenInference
kinds, and content only on opt-in."""

from __future__ import annotations

import asyncio
import json

import pytest
from client_under_test import AGENTS_API, only_agents_api, only_responses_agent
from conftest import ANSWER, CHUNK_TEXT, QUESTION
from in_memory import recorded
from opentelemetry.trace import SpanKind, StatusCode

from canned_llama_stack import CHAT_ID, EMBEDDING, MODEL
from llama_stack_otel_instrumentation import semconv as genai

MESSAGES = [{"role": "user", "content": QUESTION}]
CANARIES = ("QCANARY-20b1", "DCANARY-4c7d", "ACANARY-9e02")


# --- Chat completions


def test_a_chat_completion_is_chat_model(traced):
    t = traced()
    t.instrument()
    completion = t.client().chat.completions.create(model=MODEL, messages=MESSAGES)
    assert completion.choices[0].message.content == "".join(ANSWER)
    [chat] = t.span_list()
    assert chat.name == f"chat {MODEL}" and chat.kind == SpanKind.CLIENT
    assert {key: chat.attributes[key] for key in (
        genai.OPERATION_NAME, genai.PROVIDER_NAME, genai.REQUEST_MODEL, genai.RESPONSE_MODEL, genai.RESPONSE_ID,
        genai.FINISH_REASONS, genai.INPUT_TOKENS, genai.OUTPUT_TOKENS, genai.ANSWER_CHARS,
        genai.OPENINFERENCE_SPAN_KIND)} == {
        genai.OPERATION_NAME: "chat", genai.PROVIDER_NAME: "llama_stack", genai.REQUEST_MODEL: MODEL,
        genai.RESPONSE_MODEL: MODEL, genai.RESPONSE_ID: CHAT_ID, genai.FINISH_REASONS: ("stop",),
        genai.INPUT_TOKENS: 11, genai.OUTPUT_TOKENS: 4, genai.ANSWER_CHARS: len("".join(ANSWER)),
        genai.OPENINFERENCE_SPAN_KIND: "LLM"}
    assert genai.TIME_TO_FIRST_CHUNK not in chat.attributes
    [(attrs, duration)] = t.metric(genai.OPERATION_DURATION, "chat")
    assert duration.count == 1 and attrs[genai.REQUEST_MODEL] == MODEL
    tokens = {attrs[genai.TOKEN_TYPE]: p.sum for attrs, p in t.metric(genai.TOKEN_USAGE, "chat")}
    assert tokens == {"input": 11, "output": 4}


def test_a_streamed_chat_completion_times_its_first_chunk(traced):
    t = traced()
    t.instrument()
    chunks = list(t.client().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "".join(ANSWER)
    [chat] = t.span_list()
    assert chat.attributes[genai.FINISH_REASONS] == ("stop",)
    assert (chat.attributes[genai.INPUT_TOKENS], chat.attributes[genai.OUTPUT_TOKENS]) == (11, 4)
    assert 0 < chat.attributes[genai.TIME_TO_FIRST_CHUNK] < (chat.end_time - chat.start_time) / 1e9
    assert chat.attributes[genai.REQUEST_STREAM] is True
    [(_, first_chunk)] = t.metric(genai.TIME_TO_FIRST_CHUNK_METRIC, "chat")
    assert first_chunk.count == 1


def test_an_async_streamed_chat_completion(traced):
    t = traced()
    t.instrument()

    async def chat() -> list:
        async with t.async_client() as client:
            stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
            return [chunk async for chunk in stream]

    chunks = asyncio.run(chat())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "".join(ANSWER)
    [span] = t.span_list()
    assert span.name == f"chat {MODEL}" and span.attributes[genai.FINISH_REASONS] == ("stop",)
    assert span.attributes[genai.TIME_TO_FIRST_CHUNK] > 0


def test_an_async_whole_chat_completion(traced):
    t = traced()
    t.instrument()

    async def chat():
        async with t.async_client() as client:
            return await client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert asyncio.run(chat()).id == CHAT_ID
    [span] = t.span_list()
    assert span.attributes[genai.OUTPUT_TOKENS] == 4


def test_a_refused_chat_completion_fails_its_span_without_the_servers_text(traced):
    t = traced()
    t.canned.refuse_with = 400
    t.instrument()
    with pytest.raises(Exception, match="QCANARY-20b1") as raised:
        t.client().chat.completions.create(model=MODEL, messages=MESSAGES)
    [chat] = t.span_list()
    assert chat.status.status_code == StatusCode.ERROR
    assert chat.attributes[genai.ERROR_TYPE] == type(raised.value).__qualname__
    assert "QCANARY-20b1" not in recorded([chat])


def test_chat_content_only_on_opt_in(traced, monkeypatch):
    t = traced()
    t.instrument()
    list(t.client().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    assert not any(canary in recorded(t.span_list()) for canary in CANARIES)
    t.instrumentor.uninstrument()
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    t.exporter.clear()
    t.instrument()
    list(t.client().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    [chat] = t.span_list()
    assert json.loads(chat.attributes[genai.INPUT_MESSAGES]) == MESSAGES
    assert json.loads(chat.attributes[genai.OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "".join(ANSWER)}]}]


# --- Embeddings and search


def test_embeddings(traced):
    t = traced()
    t.instrument()
    result = t.client().embeddings.create(model="all-MiniLM-L6-v2", input=[QUESTION, "another"])
    assert [d.embedding for d in result.data] == [EMBEDDING, EMBEDDING]
    [span] = t.span_list()
    assert span.name == "embeddings all-MiniLM-L6-v2" and span.kind == SpanKind.CLIENT
    assert {key: span.attributes[key] for key in (
        genai.OPERATION_NAME, genai.EMBEDDINGS_DIMENSION_COUNT, genai.INPUT_TOKENS, genai.OPENINFERENCE_SPAN_KIND)} == {
        genai.OPERATION_NAME: "embeddings", genai.EMBEDDINGS_DIMENSION_COUNT: len(EMBEDDING), genai.INPUT_TOKENS: 10,
        genai.OPENINFERENCE_SPAN_KIND: "EMBEDDING"}
    assert t.metric(genai.OPERATION_DURATION, "embeddings")
    assert "QCANARY-20b1" not in recorded([span])


def test_a_vector_store_search_is_retrieval(traced):
    t = traced()
    t.instrument()
    page = t.client().vector_stores.search(vector_store_id="vs_1", query=QUESTION)
    assert page.data[0].content[0].text == CHUNK_TEXT
    [span] = t.span_list()
    assert span.name == "retrieval vs_1"
    assert {key: span.attributes[key] for key in (
        genai.OPERATION_NAME, genai.DATA_SOURCE_ID, genai.RETRIEVED_CHUNKS, genai.RETRIEVED_CHARS,
        genai.OPENINFERENCE_SPAN_KIND)} == {
        genai.OPERATION_NAME: "retrieval", genai.DATA_SOURCE_ID: "vs_1", genai.RETRIEVED_CHUNKS: 2,
        genai.RETRIEVED_CHARS: len(CHUNK_TEXT) + len("use a process manager"), genai.OPENINFERENCE_SPAN_KIND: "RETRIEVER"}
    assert not any(canary in recorded([span]) for canary in CANARIES)


@only_responses_agent
def test_a_conversation_is_a_span_with_its_id_and_no_operation_name(traced):
    t = traced()
    t.instrument()
    conversation = t.client().conversations.create(metadata={"name": "s"})
    assert conversation.id == "conv_1"
    [span] = t.span_list()
    assert span.name == "create_conversation" and genai.OPERATION_NAME not in span.attributes
    assert span.attributes[genai.CONVERSATION_ID] == "conv_1"
    assert span.attributes[genai.OPENINFERENCE_SPAN_KIND] == "CHAIN"


def test_a_raw_response_is_spanned_but_not_read(traced):
    """with_raw_response: the app reads the body when it wants; the span ends with the call."""
    t = traced()
    t.instrument()
    raw = t.client().chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    [span] = t.span_list()
    assert span.name == f"chat {MODEL}" and genai.OUTPUT_TOKENS not in span.attributes
    assert raw.parse().id == CHAT_ID  # still the app's to read
    with t.client().chat.completions.with_streaming_response.create(model=MODEL, messages=MESSAGES,
                                                                    stream=True) as streaming:
        assert len(t.span_list()) == 2  # ended at the call's return: the body is not read by us
        assert "chat.completion.chunk" in streaming.read().decode()


# --- 0.2.x's own APIs


@only_agents_api
def test_inference_chat_completion_streamed_and_whole(traced):
    t = traced()
    t.instrument()
    client = t.client()
    chunks = list(client.inference.chat_completion(model_id=MODEL, messages=MESSAGES, stream=True))
    assert "".join(c.event.delta.text for c in chunks) == "".join(ANSWER)
    whole = client.inference.chat_completion(model_id=MODEL, messages=MESSAGES)
    assert whole.completion_message.content == "".join(ANSWER)
    streamed, answered = t.span_list()
    assert streamed.name == answered.name == f"chat {MODEL}"
    assert streamed.attributes[genai.FINISH_REASONS] == answered.attributes[genai.FINISH_REASONS] == ("end_of_turn",)
    assert (streamed.attributes[genai.INPUT_TOKENS], streamed.attributes[genai.OUTPUT_TOKENS]) == (11, 4)
    assert streamed.attributes[genai.TIME_TO_FIRST_CHUNK] > 0 and genai.TIME_TO_FIRST_CHUNK not in answered.attributes


@only_agents_api
def test_inference_embeddings_vector_io_and_the_rag_tool(traced):
    t = traced()
    t.instrument()
    client = t.client()
    client.inference.embeddings(model_id="all-MiniLM-L6-v2", contents=[QUESTION])
    client.vector_io.query(vector_db_id="db_1", query=QUESTION)
    client.tool_runtime.rag_tool.query(content=QUESTION, vector_db_ids=["db_2"])
    embeddings, vector_io, rag = t.span_list()
    assert embeddings.name == "embeddings all-MiniLM-L6-v2"
    assert embeddings.attributes[genai.EMBEDDINGS_DIMENSION_COUNT] == len(EMBEDDING)
    assert (vector_io.name, vector_io.attributes[genai.RETRIEVED_CHUNKS]) == ("retrieval db_1", 2)
    assert (rag.name, rag.attributes[genai.DATA_SOURCE_ID], rag.attributes[genai.RETRIEVED_CHUNKS]) == (
        "retrieval db_2", "db_2", 2)
    assert not any(canary in recorded(t.span_list()) for canary in CANARIES)


@only_agents_api
def test_tool_runtime_invoke_tool_is_execute_tool(traced):
    t = traced()
    t.instrument()
    result = t.client().tool_runtime.invoke_tool(tool_name="web_search", kwargs={"query": QUESTION})
    assert result.content == "web_search ran"
    [span] = t.span_list()
    assert span.name == "execute_tool web_search"
    assert (span.attributes[genai.OPERATION_NAME], span.attributes[genai.TOOL_NAME]) == ("execute_tool", "web_search")
    assert span.attributes[genai.OPENINFERENCE_SPAN_KIND] == "TOOL" and "QCANARY-20b1" not in recorded([span])


@only_agents_api
def test_an_agent_session_has_no_operation_name(traced):
    t = traced()
    t.instrument()
    t.client().agents.session.create(agent_id="agent-1", session_name="s")
    [span] = t.span_list()
    assert span.name == "create_session" and genai.OPERATION_NAME not in span.attributes
    assert span.attributes[genai.CONVERSATION_ID] == "session-1"


def test_every_operation_name_is_in_the_registry(traced):
    from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GenAiOperationNameValues

    t = traced()
    t.instrument()
    client = t.client()
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    client.embeddings.create(model="m", input=[QUESTION])
    client.vector_stores.search(vector_store_id="vs_1", query=QUESTION)
    list(client.post("/v1/responses", cast_to=object, body={"model": "m", "input": QUESTION, "stream": True},
                     stream=True, stream_cls=__import__("client_under_test").Stream[object]))
    if AGENTS_API:
        client.agents.session.create(agent_id="agent-1", session_name="s")
    else:
        client.conversations.create(metadata={"name": "s"})
    registry = {value.value for value in GenAiOperationNameValues}
    names = [s.attributes.get(genai.OPERATION_NAME) for s in t.span_list()]
    assert all(name in registry for name in names if name is not None) and names.count(None) == 1
