"""ogx-client 1.2+ (OpenAPI-generated): every GenAI method it has, sync and async, streamed and not,
as spans and metrics in the GenAI conventions — over the canned server, through the real client.

A method is called the ways the client takes a body: a request model or keyword arguments, and
path parameters positional or by name. Its answer comes back as the client's own object (a model, or its ``Stream``
/ ``AsyncStream`` behind a transparent proxy); the ``*_with_http_info`` and
``*_without_preload_content`` variants pass untraced and unread.
"""

from __future__ import annotations

import asyncio
import gc
import logging

import ogx_client
import pytest
from in_memory import recorded
from ogx_client.async_stream import AsyncStream
from ogx_client.exceptions import BadRequestException
from ogx_client.stream import Stream
from opentelemetry.trace import SpanKind, StatusCode
from shared_checks import a_streamed_turn_with_both_sides_tools, assert_the_http_call_nests_under_invoke_agent

from canned_llama_stack import CHAT_ID, MODEL
from llama_stack_otel_instrumentation import agent_name
from llama_stack_otel_instrumentation import semconv as genai
from llama_stack_otel_instrumentation.adapters import openapi, stainless
from openapi_clients.support import (
    ANSWER,
    CANARIES,
    CHUNK_TEXT,
    FILE_SEARCH,
    HAS_ASYNC_APIS,
    INSTRUCTIONS,
    MESSAGES,
    QUESTION,
    agent_module,
    answer_async,
    needs_async_apis,
)

EMBEDDING_MODEL = "sentence-transformers/all-minilm"
RESPONSE_BODY = {"model": MODEL, "input": QUESTION, "instructions": INSTRUCTIONS, "tools": [FILE_SEARCH]}


def create_response(client, form: str, **extra):
    """responses.create with the body as a request model or as keyword arguments."""
    from ogx_client.models.create_response_request import CreateResponseRequest

    body = {**RESPONSE_BODY, **extra}
    if form == "model":
        return client.responses.create(CreateResponseRequest.from_dict(body))
    return client.responses.create(**body)


def the_only(spans, prefix: str):
    [span] = [s for s in spans if s.name.startswith(prefix)]
    return span


# --- The adapter and the instrumentor


def test_the_ogx_client_instrumentor_takes_the_openapi_adapter(traced):
    from ogx_client.api.responses_api import ResponsesApi

    assert openapi.applies("ogx_client") and not stainless.applies("ogx_client")
    original = vars(ResponsesApi)["create"]
    t = traced()
    t.instrument()
    assert vars(ResponsesApi)["create"] is not original and vars(ResponsesApi)["create"].__wrapped__ is original
    t.instrumentor.uninstrument()
    assert vars(ResponsesApi)["create"] is original


def test_a_hook_this_release_lacks_is_one_log_line_and_the_rest_still_work(traced, monkeypatch, caplog):
    """instrument() on a client that lacks hooked methods raises nothing (1.2.0 has no Async<X>Api:
    one line each), and traces what it does have."""
    monkeypatch.setattr(openapi, "ENDPOINTS", (
        *openapi.ENDPOINTS, openapi.Endpoint("no_such_api", "NoSuchApi", "create", openapi.CHAT, {}),
        openapi.Endpoint("embeddings_api", "EmbeddingsApi", "no_such_method", openapi.EMBEDDINGS, {})))
    t = traced()
    with caplog.at_level(logging.INFO, logger="llama_stack_otel_instrumentation"):
        t.instrument()
    missing = [r.getMessage() for r in caplog.records if "is not in this version of the client" in r.getMessage()]
    assert sum("NoSuchApi.create" in line for line in missing) == 2  # the class and its async twin
    assert sum("EmbeddingsApi.no_such_method" in line for line in missing) == 2
    assert (sum("AsyncResponsesApi.create" in line for line in missing) == 1) is not HAS_ASYNC_APIS
    t.client().embeddings.create(model=EMBEDDING_MODEL, input="x")
    assert t.spans()[f"embeddings {EMBEDDING_MODEL}"]


# --- Responses


@pytest.mark.parametrize("form", ["model", "keywords"])
def test_a_whole_response_is_invoke_agent_with_its_file_search(traced, form):
    t = traced()
    t.instrument()
    with agent_name("rag-agent"):
        response = create_response(t.client(), form)
    assert response.id == "resp_1" and type(response).__name__ == "OpenAIResponseObject"
    spans = t.span_list()
    invoke, search = the_only(spans, "invoke_agent"), the_only(spans, "execute_tool")
    assert invoke.name == "invoke_agent rag-agent" and invoke.kind == SpanKind.CLIENT
    assert search.name == "execute_tool file_search" and search.parent.span_id == invoke.context.span_id
    port = int(t.canned.url.rsplit(":", 1)[1])
    assert {key: invoke.attributes[key] for key in (
        genai.OPERATION_NAME, genai.PROVIDER_NAME, genai.REQUEST_MODEL, genai.DATA_SOURCE_ID, genai.RESPONSE_ID,
        genai.FINISH_REASONS, genai.INPUT_TOKENS, genai.OUTPUT_TOKENS, genai.ANSWER_CHARS, genai.SERVER_ADDRESS,
        genai.SERVER_PORT, genai.OPENINFERENCE_SPAN_KIND)} == {
        genai.OPERATION_NAME: "invoke_agent", genai.PROVIDER_NAME: "llama_stack", genai.REQUEST_MODEL: MODEL,
        genai.DATA_SOURCE_ID: "vs_1", genai.RESPONSE_ID: "resp_1", genai.FINISH_REASONS: ("completed",),
        genai.INPUT_TOKENS: 120, genai.OUTPUT_TOKENS: 9, genai.ANSWER_CHARS: len("".join(ANSWER)),
        genai.SERVER_ADDRESS: "127.0.0.1", genai.SERVER_PORT: port, genai.OPENINFERENCE_SPAN_KIND: "AGENT"}
    assert genai.TIME_TO_FIRST_CHUNK not in invoke.attributes
    [(attrs, duration)] = t.metric(genai.OPERATION_DURATION, "invoke_agent")
    assert duration.count == 1 and attrs[genai.REQUEST_MODEL] == MODEL
    assert {a[genai.TOKEN_TYPE]: p.sum for a, p in t.metric(genai.TOKEN_USAGE, "invoke_agent")} == {
        "input": 120, "output": 9}
    assert not any(canary in recorded(spans) for canary in CANARIES)


def test_a_streamed_response_is_read_as_the_app_reads_it(traced):
    t = traced()
    t.instrument()
    stream = create_response(t.client(), "keywords", stream=True)
    assert isinstance(stream, Stream)  # what the app checks still holds
    assert t.span_list() == []  # the span stays open while the app reads
    events = list(stream)
    assert type(events[0]).__name__ == "OpenAIResponseObjectStreamResponseCreated"
    assert "".join(e.delta for e in events if getattr(e, "type", "") == "response.output_text.delta") == \
        "".join(ANSWER)
    invoke = the_only(t.span_list(), "invoke_agent")
    assert invoke.attributes[genai.RESPONSE_ID] == "resp_1" and invoke.attributes[genai.INPUT_TOKENS] == 120
    assert 0 < invoke.attributes[genai.TIME_TO_FIRST_CHUNK] < (invoke.end_time - invoke.start_time) / 1e9
    assert "execute_tool file_search" in t.spans()
    [(_, first_chunk)] = t.metric(genai.TIME_TO_FIRST_CHUNK_METRIC, "invoke_agent")
    assert first_chunk.count == 1


@needs_async_apis
@pytest.mark.parametrize("streamed", [True, False])
def test_an_async_response(traced, streamed):
    t = traced()
    t.instrument()
    answer = answer_async(t, lambda client: client.responses.create(**RESPONSE_BODY, stream=streamed),
                          streamed=streamed)
    assert (len(answer) == len(t.canned.response)) if streamed else answer.id == "resp_1"
    invoke = the_only(t.span_list(), "invoke_agent")
    assert invoke.attributes[genai.RESPONSE_ID] == "resp_1" and invoke.attributes[genai.OUTPUT_TOKENS] == 9
    assert (genai.TIME_TO_FIRST_CHUNK in invoke.attributes) is streamed
    assert t.spans()["execute_tool file_search"].parent.span_id == invoke.context.span_id


# --- Chat completions, embeddings, vector store search, conversations


@pytest.mark.parametrize("streamed", [False, True])
def test_a_chat_completion_is_chat_model(traced, streamed):
    t = traced()
    t.instrument()
    answer = t.client().chat.completions.create(model=MODEL, messages=MESSAGES, stream=streamed)
    if streamed:
        assert isinstance(answer, Stream)
        text = "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
    else:
        text = answer.choices[0].message.content
    assert text == "".join(ANSWER)
    [chat] = t.span_list()
    assert chat.name == f"chat {MODEL}" and chat.kind == SpanKind.CLIENT
    assert {key: chat.attributes[key] for key in (
        genai.OPERATION_NAME, genai.REQUEST_MODEL, genai.RESPONSE_MODEL, genai.RESPONSE_ID, genai.REQUEST_STREAM,
        genai.FINISH_REASONS, genai.INPUT_TOKENS, genai.OUTPUT_TOKENS, genai.OPENINFERENCE_SPAN_KIND)} == {
        genai.OPERATION_NAME: "chat", genai.REQUEST_MODEL: MODEL, genai.RESPONSE_MODEL: MODEL,
        genai.RESPONSE_ID: CHAT_ID, genai.REQUEST_STREAM: streamed, genai.FINISH_REASONS: ("stop",),
        genai.INPUT_TOKENS: 11, genai.OUTPUT_TOKENS: 4, genai.OPENINFERENCE_SPAN_KIND: "LLM"}
    assert (genai.TIME_TO_FIRST_CHUNK in chat.attributes) is streamed
    assert {a[genai.TOKEN_TYPE]: p.sum for a, p in t.metric(genai.TOKEN_USAGE, "chat")} == {"input": 11, "output": 4}
    assert len(t.metric(genai.TIME_TO_FIRST_CHUNK_METRIC, "chat")) == int(streamed)
    assert not any(canary in recorded([chat]) for canary in CANARIES)


@needs_async_apis
@pytest.mark.parametrize("streamed", [False, True])
def test_an_async_chat_completion(traced, streamed):
    t = traced()
    t.instrument()
    answer = answer_async(t, lambda client: client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                                           stream=streamed), streamed=streamed)
    text = "".join(c.choices[0].delta.content or "" for c in answer if c.choices) if streamed else \
        answer.choices[0].message.content
    assert text == "".join(ANSWER)
    [chat] = t.span_list()
    assert chat.attributes[genai.FINISH_REASONS] == ("stop",) and chat.attributes[genai.OUTPUT_TOKENS] == 4
    assert (genai.TIME_TO_FIRST_CHUNK in chat.attributes) is streamed


def test_embeddings_and_their_async_twin(traced):
    t = traced()
    t.instrument()
    assert len(t.client().embeddings.create(model=EMBEDDING_MODEL, input=["a", "b"]).data) == 2
    if HAS_ASYNC_APIS:
        assert len(asyncio.run(t.async_client().embeddings.create(model=EMBEDDING_MODEL, input="a")).data) == 1
    spans = t.span_list()
    assert [s.name for s in spans] == [f"embeddings {EMBEDDING_MODEL}"] * (1 + HAS_ASYNC_APIS)
    assert {key: spans[0].attributes[key] for key in (
        genai.OPERATION_NAME, genai.REQUEST_MODEL, genai.EMBEDDINGS_DIMENSION_COUNT, genai.INPUT_TOKENS,
        genai.OPENINFERENCE_SPAN_KIND)} == {
        genai.OPERATION_NAME: "embeddings", genai.REQUEST_MODEL: EMBEDDING_MODEL,
        genai.EMBEDDINGS_DIMENSION_COUNT: 4, genai.INPUT_TOKENS: 10, genai.OPENINFERENCE_SPAN_KIND: "EMBEDDING"}
    assert all(s.kind == SpanKind.CLIENT for s in spans)


def test_a_vector_store_search_is_retrieval_of_its_store(traced):
    from ogx_client.models.open_ai_search_vector_store_request import OpenAISearchVectorStoreRequest

    t = traced()
    t.instrument()
    client = t.client()
    assert client.vector_stores.search("vs_1", query=QUESTION).data[0].score == 0.9
    request = OpenAISearchVectorStoreRequest.from_dict({"query": QUESTION})
    assert client.vector_stores.search(vector_store_id="vs_2", open_ai_search_vector_store_request=request
                                       ).data[1].score == 0.5
    if HAS_ASYNC_APIS:
        asyncio.run(t.async_client().vector_stores.search("vs_3", query=QUESTION))
    spans = t.span_list()
    assert [s.name for s in spans] == ["retrieval vs_1", "retrieval vs_2", "retrieval vs_3"][:2 + HAS_ASYNC_APIS]
    assert [s.attributes[genai.DATA_SOURCE_ID] for s in spans] == ["vs_1", "vs_2", "vs_3"][:2 + HAS_ASYNC_APIS]
    assert spans[0].attributes[genai.OPERATION_NAME] == "retrieval"
    assert spans[0].attributes[genai.RETRIEVED_CHUNKS] == 2
    assert not any(canary in recorded(spans) for canary in CANARIES)


def test_a_vector_io_query_is_retrieval_of_its_store(traced):
    t = traced()
    t.instrument()
    assert len(t.client().vector_io.query(vector_store_id="vs_1", query=QUESTION).chunks) == 2
    if HAS_ASYNC_APIS:
        asyncio.run(t.async_client().vector_io.query(vector_store_id="vs_2", query=QUESTION))
    spans = t.span_list()
    assert [s.name for s in spans] == ["retrieval vs_1", "retrieval vs_2"][:1 + HAS_ASYNC_APIS]
    assert spans[0].attributes[genai.DATA_SOURCE_ID] == "vs_1"
    assert (spans[0].attributes[genai.RETRIEVED_CHUNKS], spans[0].attributes[genai.RETRIEVED_CHARS]) == (
        2, len(CHUNK_TEXT) + len("use a process manager"))
    assert not any(canary in recorded(spans) for canary in CANARIES)


def test_a_conversation_is_a_span_with_its_id_and_no_operation_name(traced):
    t = traced()
    t.instrument()
    assert t.client().conversations.create(metadata={"name": "s"}).id == "conv_1"
    if HAS_ASYNC_APIS:
        assert asyncio.run(t.async_client().conversations.create(metadata={"name": "s"})).id == "conv_1"
    spans = t.span_list()
    assert [s.name for s in spans] == ["create_conversation"] * (1 + HAS_ASYNC_APIS)
    assert spans[0].attributes[genai.CONVERSATION_ID] == "conv_1"
    assert genai.OPERATION_NAME not in spans[0].attributes


# --- Content, failures, the ends of a stream, what passes untraced


def test_content_only_on_opt_in(traced):
    t = traced()
    t.instrument(capture_content=True)
    client = t.client()
    create_response(client, "keywords")
    list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    invoke, chat = t.spans()["invoke_agent"], t.spans()[f"chat {MODEL}"]
    assert QUESTION in invoke.attributes[genai.INPUT_MESSAGES] and INSTRUCTIONS in recorded([invoke])
    assert "".join(ANSWER) in chat.attributes[genai.OUTPUT_MESSAGES] and QUESTION in chat.attributes[
        genai.INPUT_MESSAGES]
    assert CHUNK_TEXT in recorded(t.span_list())


@pytest.mark.parametrize("streamed", [False, True])
def test_a_server_error_reaches_the_app_as_before_and_fails_the_span(traced, streamed):
    t = traced()
    t.canned.refuse_with = 400  # the server quotes the request back
    t.instrument()
    with pytest.raises(BadRequestException) as raised:
        create_response(t.client(), "keywords", stream=streamed)
    assert QUESTION in str(raised.value)  # the app still learns what the server said
    invoke = the_only(t.span_list(), "invoke_agent")
    assert invoke.status.status_code == StatusCode.ERROR
    assert invoke.attributes[genai.ERROR_TYPE] == "BadRequestException"
    assert not any(canary in recorded(t.span_list()) for canary in CANARIES)
    [(attrs, _)] = t.metric(genai.OPERATION_DURATION, "invoke_agent")
    assert attrs[genai.ERROR_TYPE] == "BadRequestException"


def test_a_stream_closed_early_ends_its_span(traced):
    t = traced()
    t.instrument()
    stream = create_response(t.client(), "keywords", stream=True)
    with stream:
        for event in stream:
            assert type(event).__name__ == "OpenAIResponseObjectStreamResponseCreated"
            break
    invoke = the_only(t.span_list(), "invoke_agent")
    assert invoke.status.status_code == StatusCode.UNSET and invoke.attributes[genai.ANSWER_CHARS] == 0


def test_a_stream_read_to_its_end_by_until_done(traced):
    t = traced()
    t.instrument()
    assert create_response(t.client(), "keywords", stream=True).until_done() is None
    invoke = the_only(t.span_list(), "invoke_agent")
    assert invoke.status.status_code == StatusCode.UNSET and invoke.attributes[genai.RESPONSE_ID] == "resp_1"
    assert invoke.attributes[genai.ANSWER_CHARS] == len("".join(ANSWER))


def test_a_stream_given_up_without_a_word_ends_its_span_when_collected(traced):
    t = traced()
    t.instrument()
    stream = t.client().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    assert t.spans()[f"chat {MODEL}"].status.status_code == StatusCode.ERROR  # abandoned, says util-genai


def test_the_http_info_variants_pass_untraced_and_unread(traced):
    t = traced()
    t.instrument()
    client = t.client()
    raw = client.responses.create_without_preload_content(**RESPONSE_BODY, stream=True)
    assert not raw.is_stream_consumed and not raw.is_closed  # the app reads it when it wants
    assert b"response.created" in raw.read()
    info = client.chat.completions.create_with_http_info(model=MODEL, messages=MESSAGES)
    assert info.status_code == 200 and info.data.id == CHAT_ID
    assert t.span_list() == []


def test_the_http_call_and_its_traceparent_nest_under_the_genai_span(traced):
    assert_the_http_call_nests_under_invoke_agent(traced(), lambda client: list(create_response(client, "keywords",
                                                                                                stream=True)))


# --- The library's Agent


def test_an_agents_streamed_turn_is_one_invoke_agent_with_both_sides_tools(traced):
    turn = a_streamed_turn_with_both_sides_tools(traced(), agent_module, instructions=INSTRUCTIONS, messages=MESSAGES)
    invoke = turn.invoke
    assert (invoke.attributes[genai.CONVERSATION_ID], invoke.attributes[genai.DATA_SOURCE_ID]) == ("conv_1", "vs_1")
    assert invoke.attributes[genai.INPUT_TOKENS] == 120
    assert not any(canary in recorded(turn.spans) for canary in CANARIES)


def test_an_agents_whole_turn(traced):
    t = traced()
    t.instrument()
    agent = agent_module.Agent(t.client(), model=MODEL, instructions=INSTRUCTIONS, tools=[FILE_SEARCH])
    response = agent.create_turn(messages=MESSAGES, session_id=agent.create_session("s"), stream=False)
    assert response.id == "resp_1"
    invoke = the_only(t.span_list(), "invoke_agent")
    assert invoke.attributes[genai.ANSWER_CHARS] == len("".join(ANSWER))
    assert [s.name for s in t.span_list()].count("execute_tool file_search") == 1


@needs_async_apis
def test_the_async_agents_turn(traced):
    t = traced()
    t.instrument()

    async def turn():
        agent = agent_module.AsyncAgent(t.async_client(), model=MODEL, instructions=INSTRUCTIONS,
                                        tools=[FILE_SEARCH])
        session = await agent.create_session("s")
        try:
            return [chunk async for chunk in await agent.create_turn(messages=MESSAGES, session_id=session)]
        except Exception as exc:  # noqa: BLE001 - the parity test compares it with the uninstrumented run
            return exc

    outcome = asyncio.run(turn())
    invoke = the_only(t.span_list(), "invoke_agent")
    if isinstance(outcome, BaseException):
        assert invoke.attributes[genai.ERROR_TYPE] == type(outcome).__qualname__
    else:
        assert type(outcome[-1].event).__name__ == "TurnCompleted"
        assert invoke.attributes[genai.RESPONSE_ID] == "resp_1"


def test_ogx_client_module_names_the_stream_types_it_checks():
    assert openapi.is_stream_of("ogx_client")(object.__new__(Stream))
    assert openapi.is_stream_of("ogx_client")(object.__new__(AsyncStream))
    assert not openapi.is_stream_of("ogx_client")(ogx_client.Configuration(host="http://x"))


def test_each_class_gets_the_wrapper_its_method_needs(monkeypatch):
    """A coroutine function gets the async wrapper, a plain one the sync wrapper, whichever class
    it is on; a class that only inherits the method gets none (its parent's hook covers it)."""
    import sys
    import types

    class FakeApi:
        def create(self): ...

    class AsyncFakeApi(FakeApi):
        async def create(self): ...

    class InheritingApi(FakeApi):
        pass

    module = types.ModuleType("ogx_client.api.fake_api")
    module.FakeApi, module.AsyncFakeApi, module.InheritingApi = FakeApi, AsyncFakeApi, InheritingApi
    monkeypatch.setitem(sys.modules, "ogx_client.api.fake_api", module)
    endpoint = openapi.Endpoint("fake_api", "FakeApi", "create", openapi.CHAT, {})
    wrappers = openapi.Hooks(None, endpoint, openapi.is_stream_of("ogx_client"))  # type: ignore[arg-type]
    assert openapi.wrapper_for("ogx_client", endpoint, "FakeApi", wrappers) == wrappers.call
    assert openapi.wrapper_for("ogx_client", endpoint, "AsyncFakeApi", wrappers) == wrappers.async_call
    assert openapi.wrapper_for("ogx_client", endpoint, "InheritingApi", wrappers) is None
    assert openapi.wrapper_for("ogx_client", endpoint, "NoSuchApi", wrappers) == wrappers.call  # apply() logs it
