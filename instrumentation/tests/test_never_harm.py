"""An instrumentor that breaks an app is worse than none: it never does.

- ``instrument()`` raises nothing and leaves nothing half-applied: a hook this client version
  lacks is skipped with one log line, a failure midway takes the applied hooks off again, a
  failure anywhere in it leaves the client as it was; the instrumentor of a client that is not
  installed does nothing, quietly.
- With it on, the app's calls give exactly what they give without it (parity): the same results
  and types, the same exceptions and messages, the same events, streamed or not, sync and
  async, a stream the app gives up early, raw responses, the library Agent's turn.
- The distribution: its entry points, what opentelemetry-instrument checks, and that it imports
  nothing of the app it was written for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import tomllib
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from client_under_test import (
    AGENTS_API,
    PACKAGE,
    AsyncStream,
    Instrumentor,
    Stream,
    Traced,
    agent_module,
    base_client,
    client_package,
)
from conftest import QUESTION

from canned_llama_stack import MODEL, function_call_response
from llama_stack_otel_instrumentation import LlamaStackClientInstrumentor, OgxClientInstrumentor, adapters, package
from llama_stack_otel_instrumentation.adapters import Hook, stainless

DISTRIBUTION_ROOT = Path(__file__).resolve().parents[1]
MESSAGES = [{"role": "user", "content": QUESTION}]


def wrapped_functions() -> list:
    """The client's functions the instrumentor may wrap, as they are now."""
    hooked = [(base_client.SyncAPIClient, "request"), (base_client.AsyncAPIClient, "request"),
              (agent_module.Agent, "create_turn"), (agent_module.AsyncAgent, "create_turn")]
    return [vars(owner)[name] for owner, name in hooked]


# --- instrument() itself


def test_a_hook_this_version_lacks_is_skipped_with_one_line(caplog):
    caplog.set_level(logging.INFO, logger=adapters.__name__)
    hooks = [Hook(f"{PACKAGE}._base_client", "SyncAPIClient.request", lambda w, i, a, k: w(*a, **k)),
             Hook(f"{PACKAGE}._base_client", "NoSuchClient.request", lambda w, i, a, k: w(*a, **k)),
             Hook(f"{PACKAGE}.no_such_module", "Agent.create_turn", lambda w, i, a, k: w(*a, **k))]
    before = vars(base_client.SyncAPIClient)["request"]
    applied = adapters.apply(hooks, client=PACKAGE)
    try:
        assert [(a.owner, a.name) for a in applied] == [(base_client.SyncAPIClient, "request")]
        skipped = [r for r in caplog.records if "not in this version" in r.getMessage()]
        assert len(skipped) == 2 and "NoSuchClient.request" in skipped[0].getMessage()
    finally:
        adapters.remove(applied)
    assert vars(base_client.SyncAPIClient)["request"] is before


def test_a_failure_midway_takes_the_applied_hooks_off_again(monkeypatch, caplog):
    originals = wrapped_functions()
    real = adapters.wrap_function_wrapper
    calls = []

    def failing_third(owner, name, wrapper):
        calls.append(name)
        if len(calls) == 3:
            raise RuntimeError("cannot wrap this one")
        return real(owner, name, wrapper)

    monkeypatch.setattr(adapters, "wrap_function_wrapper", failing_third)
    t = Traced(None)
    t.instrument()  # raises nothing
    try:
        assert len(calls) == 3
        assert all(now is before for now, before in zip(wrapped_functions(), originals, strict=True))
        assert any("could not hook" in r.getMessage() for r in caplog.records)
    finally:
        t.instrumentor.uninstrument()


def test_a_failure_anywhere_in_instrument_leaves_the_client_alone(monkeypatch):
    originals = wrapped_functions()

    def broken(package, operations):
        raise TypeError("the adapter broke")

    monkeypatch.setattr(stainless, "hooks", broken)
    t = Traced(None)
    t.instrument()  # raises nothing
    t.instrumentor.uninstrument()
    assert all(now is before for now, before in zip(wrapped_functions(), originals, strict=True))


def test_the_instrumentor_of_an_absent_client_does_nothing_quietly(caplog):
    caplog.set_level(logging.DEBUG)
    other = OgxClientInstrumentor if PACKAGE == "llama_stack_client" else LlamaStackClientInstrumentor
    originals = wrapped_functions()
    other().instrument()  # the manual way
    other().instrument(skip_dep_check=True)  # the way opentelemetry-instrument calls it
    assert all(now is before for now, before in zip(wrapped_functions(), originals, strict=True))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    other().uninstrument()


def test_the_manual_way_passes_its_dependency_check():
    """instrument() checks instrumentation_dependencies() as all required: each names its own client."""
    t = Traced(None)
    t.instrument()
    try:
        assert t.instrumentor.is_instrumented_by_opentelemetry
        assert any(now is not before for now, before in zip(wrapped_functions(), [
            getattr(f, "__wrapped__", f) for f in wrapped_functions()], strict=True))
    finally:
        t.instrumentor.uninstrument()


# --- The distribution


def test_its_entry_points_and_what_opentelemetry_instrument_checks():
    project = tomllib.loads((DISTRIBUTION_ROOT / "pyproject.toml").read_text())["project"]
    points = project["entry-points"]["opentelemetry_instrumentor"]
    for name, instrumentor in (("llama_stack_client", LlamaStackClientInstrumentor),
                               ("ogx_client", OgxClientInstrumentor)):
        module, _, attribute = points[name].partition(":")
        assert getattr(import_module(module), attribute) is instrumentor
    assert tuple(project["optional-dependencies"]["instruments-any"]) == package._instruments_any
    assert LlamaStackClientInstrumentor().instrumentation_dependencies() == ("llama-stack-client >= 0.2.8",)
    assert OgxClientInstrumentor().instrumentation_dependencies() == ("ogx-client >= 1.0",)
    needs = {re.split(r"[<>=~ ;\[]", requirement)[0] for requirement in project["dependencies"]}
    assert all(name.startswith(("opentelemetry-", "openinference-")) or name == "wrapt" for name in needs), needs


def test_it_imports_nothing_of_the_app():
    source = DISTRIBUTION_ROOT / "src" / "llama_stack_otel_instrumentation"
    for path in source.rglob("*.py"):
        assert not re.search(r"^\s*(from|import) llama_stack_otel(\.|\s)", path.read_text(), re.M), path


# --- Parity: the app gets the same with the instrumentor on


def plain(value: Any) -> Any:
    """What the app got, comparable across runs: models as dicts, the Agent's random ids out."""
    if hasattr(value, "model_dump"):
        return plain(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": type(value).__name__, **plain(dataclasses.asdict(value))}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k not in ("turn_id", "step_id", "created_at")}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return re.sub(r"turn_[0-9a-f]{12}(_step_\d+)?", "turn_*", value)
    return value


def outcome(action) -> tuple:
    """An action's result, or its exception's type and message."""
    try:
        return "ok", plain(action())
    except Exception as exc:  # noqa: BLE001 - compared as the app would see it
        return "raised", type(exc).__name__, str(exc)


def sync_calls(t: Traced) -> list[tuple]:
    client = t.client()
    body = {"model": MODEL, "input": QUESTION, "stream": True,
            "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}
    results = []

    def abandoned():  # the app reads one event and walks away; the next call still works
        stream = client.post("/v1/responses", cast_to=object, body=body, stream=True, stream_cls=Stream[object])
        first = next(iter(stream))
        stream.close()
        return first, isinstance(stream, Stream)

    def raw():
        response = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
        return response.http_response.status_code, response.parse()

    def refused():
        t.canned.refuse_with = 500
        try:
            return client.chat.completions.create(model=MODEL, messages=MESSAGES)
        finally:
            t.canned.refuse_with = None

    for action in (
        lambda: list(client.post("/v1/responses", cast_to=object, body=body, stream=True, stream_cls=Stream[object])),
        lambda: list(client.responses.create(model=MODEL, input=QUESTION, stream=True)),
        lambda: client.responses.create(model=MODEL, input=QUESTION),
        lambda: list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)),
        lambda: client.chat.completions.create(model=MODEL, messages=MESSAGES),
        lambda: client.embeddings.create(model="m", input=[QUESTION]),
        lambda: client.vector_stores.search(vector_store_id="vs_1", query=QUESTION),
        abandoned, raw, refused,
        lambda: isinstance(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True), Stream),
        lambda: agent_turn(t, client),
    ):
        results.append(outcome(action))
    return results


def agent_turn(t: Traced, client: Any) -> list:
    if AGENTS_API:
        agent = agent_module.Agent(client, model="m", instructions="i",
                                   tools=[{"name": "builtin::rag/knowledge_search", "args": {"vector_db_ids": ["db"]}}])
        session = agent.create_session("s")
        return [list(agent.create_turn(messages=MESSAGES, session_id=session)),
                agent.create_turn(messages=MESSAGES, session_id=session, stream=False)]
    t.canned.responses_first = [function_call_response(name="lookup_pid", arguments='{"name": "node"}')]
    client_tool = import_module(agent_module.__name__.rsplit(".", 1)[0] + ".client_tool").client_tool

    @client_tool
    def lookup_pid(name: str) -> str:
        """Find the id of a running process.

        :param name: the process name
        """
        return "4242"

    agent = agent_module.Agent(client, model=MODEL, instructions="i", tools=[lookup_pid])
    return list(agent.create_turn(messages=MESSAGES, session_id=agent.create_session("s")))


def async_calls(t: Traced) -> list[tuple]:
    async def run() -> list[tuple]:
        results = []
        async with t.async_client() as client:

            async def abandoned():  # one event read, then closed
                stream = await client.responses.create(model=MODEL, input=QUESTION, stream=True)
                first = await stream.__anext__()
                await stream.close()
                return [first, isinstance(stream, AsyncStream)]

            async def raw():
                response = await client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
                return [response.http_response.status_code, await response.parse()]

            async def refused():
                t.canned.refuse_with = 500
                try:
                    return await client.embeddings.create(model="m", input=[QUESTION])
                finally:
                    t.canned.refuse_with = None

            for make in (
                lambda: client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True),
                lambda: client.chat.completions.create(model=MODEL, messages=MESSAGES),
                lambda: client.responses.create(model=MODEL, input=QUESTION, stream=True),
                lambda: client.responses.create(model=MODEL, input=QUESTION),
                lambda: client.embeddings.create(model="m", input=[QUESTION]),
                lambda: client.vector_stores.search(vector_store_id="vs_1", query=QUESTION),
                abandoned, raw, refused,
            ):
                try:
                    result = await make()
                    if isinstance(result, AsyncStream):
                        result = ["stream", [chunk async for chunk in result]]
                    results.append(("ok", plain(result)))
                except Exception as exc:  # noqa: BLE001
                    results.append(("raised", type(exc).__name__, str(exc)))
        return results

    return asyncio.run(run())


@pytest.mark.parametrize("calls", [sync_calls, async_calls], ids=["sync", "async"])
def test_the_app_gets_the_same_with_and_without_it(traced, calls):
    t = traced()
    without = calls(t)
    t.canned.clear()
    t.instrument()
    with_it = calls(t)
    assert with_it == without
    assert t.span_list()  # it did trace them
    assert any(kind == "raised" for kind, *_ in without)  # the error case ran


def test_broken_telemetry_changes_nothing_either(traced, monkeypatch):
    """Every reader broken: the app's calls still come out the same."""
    from llama_stack_otel_instrumentation import agent_turns, chat, responses, results, turns

    t = traced()
    without = sync_calls(t)

    def broken(*args, **kwargs):
        raise ValueError("the reader broke")

    for reader in (responses.ResponseEvents, turns.TurnEvents, agent_turns.AgentTurnEvents, chat.ChatEvents,
                   results.EmbeddingResult, results.SearchResult):
        monkeypatch.setattr(reader, "__call__", broken)
        monkeypatch.setattr(reader, "whole", broken)
    t.instrument()
    assert sync_calls(t) == without


def test_instrumenting_twice_or_uninstrumenting_first_is_harmless(traced):
    t = traced()
    t.instrumentor.uninstrument()
    t.instrument()
    t.instrument()
    assert Instrumentor().is_instrumented_by_opentelemetry
    list(t.client().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    assert len(t.span_list()) == 1  # one span, not two: the hooks went on once
    assert client_package is not None


def test_on_this_client_what_it_skips_it_says_once(caplog):
    """0.7 and OGX have no Agent.initialize (0.2.x's agents API): one info line, the rest hooked."""
    caplog.set_level(logging.INFO, logger=adapters.__name__)
    originals = wrapped_functions()
    t = Traced(None)
    t.instrument()
    try:
        skipped = [r.getMessage() for r in caplog.records if "not in this version" in r.getMessage()]
        assert skipped == ([] if AGENTS_API else [
            f"{PACKAGE} instrumentation: {PACKAGE}.lib.agents.agent.Agent.initialize is not in this version of the "
            "client; not traced"])
        assert all(now is not before for now, before in zip(wrapped_functions(), originals, strict=True))
    finally:
        t.instrumentor.uninstrument()


def test_content_capture_keeps_an_answers_http_headers_out_of_the_span():
    """ogx-client 1.2+'s ApiException lists the answer's headers in its text (a Set-Cookie, a
    WWW-Authenticate): even with content capture on, the span gets status, reason and body only."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from llama_stack_otel_instrumentation.failures import record_failure

    class ApiException(Exception):  # the shape of ogx_client.exceptions.ApiException
        def __init__(self) -> None:
            self.status, self.reason, self.body = 401, "Unauthorized", '{"error": "Invalid or missing API key"}'
            self.headers = {"set-cookie": "session=HCANARY-5e1f"}
            super().__init__(f"({self.status})\nReason: {self.reason}\nHTTP response headers: {self.headers}\n"
                             f"HTTP response body: {self.body}")

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span("s")
    try:
        raise ApiException()
    except ApiException as error:
        record_failure(span, error, capture_content=True)
    span.end()
    [finished] = exporter.get_finished_spans()
    recorded = str(finished.status.description) + " ".join(str(dict(e.attributes or {})) for e in finished.events)
    assert "Invalid or missing API key" in recorded and "401" in recorded  # content capture: the body is there
    assert "HCANARY-5e1f" not in recorded
