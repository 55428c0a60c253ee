"""With the instrumentor or without, an app on ogx-client 1.2+ gets the same: the same sequence of
calls — every hooked method, sync and async, streamed and not, streams read whole, in part, closed
early and read again, calls the server refuses, the Agent's turn — run once on the bare client and
once instrumented gives the same dumps of what came back and the same exceptions.

On 1.2.0 every async call fails (its AsyncOgxClient has no async API classes): the same failure
either way is what is compared there.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from ogx_client.async_stream import AsyncStream
from ogx_client.exceptions import ApiException
from ogx_client.stream import Stream
from shared_checks import with_and_without

from canned_llama_stack import MODEL, function_call_response
from openapi_clients.support import FILE_SEARCH, INSTRUCTIONS, MESSAGES, QUESTION, agent_module

RESPONSE_BODY = {"model": MODEL, "input": QUESTION, "instructions": INSTRUCTIONS, "tools": [FILE_SEARCH]}


def dump(value: Any) -> Any:
    """What the app got, as plain data: a model's fields, a stream's kind and events, an exception."""
    if isinstance(value, ApiException):
        return ["raised", type(value).__name__, value.status, value.reason, value.body]
    if isinstance(value, BaseException):
        # A date in a message would differ between the runs for no fault of the instrumentor.
        return ["raised", type(value).__name__, re.sub(r"'date': '[^']*'", "", str(value))]
    if isinstance(value, list):
        return [dump(item) for item in value]
    if hasattr(value, "to_dict"):
        return [type(value).__name__, value.to_dict()]
    return [type(value).__name__, value]


def attempt(call) -> Any:
    try:
        return dump(call())
    except Exception as exc:  # noqa: BLE001 - the exception is what is compared
        return dump(exc)


async def attempt_async(call) -> Any:
    try:
        return dump(await call())
    except Exception as exc:  # noqa: BLE001 - the exception is what is compared
        return dump(exc)


def read_stream(stream: Any) -> list:
    return [stream.__class__.__name__, isinstance(stream, Stream), dump(list(stream))]


def sync_session(client: Any, canned: Any) -> list:
    """Every hooked sync method, the ways an app uses what it returns."""
    seen: list = []
    seen.append(attempt(lambda: client.responses.create(**RESPONSE_BODY)))
    seen.append(attempt(lambda: read_stream(client.responses.create(**RESPONSE_BODY, stream=True))))
    seen.append(attempt(lambda: client.chat.completions.create(model=MODEL, messages=MESSAGES)))
    seen.append(attempt(lambda: read_stream(client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                                           stream=True))))
    seen.append(attempt(lambda: client.embeddings.create(model=MODEL, input=["a", "b"])))
    seen.append(attempt(lambda: client.vector_stores.search("vs_1", query=QUESTION)))
    seen.append(attempt(lambda: client.vector_io.query(vector_store_id="vs_1", query=QUESTION)))
    seen.append(attempt(lambda: client.conversations.create(metadata={"name": "s"})))

    # A stream read in part, its iteration resumed, then read by next() and closed.
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    for first in stream:
        seen.append(dump(first))
        break
    seen.append(attempt(lambda: list(stream)))
    seen.append(attempt(stream.close))
    seen.append(attempt(lambda: list(stream)))
    stream = client.responses.create(**RESPONSE_BODY, stream=True)
    seen.append(attempt(lambda: next(stream)))
    with stream:
        seen.append(attempt(lambda: [stream.status_code, dict(stream.headers).get("content-type")]))
    seen.append(attempt(lambda: client.responses.create(**RESPONSE_BODY, stream=True).until_done()))

    canned.refuse_with = 400
    try:
        seen.append(attempt(lambda: client.responses.create(**RESPONSE_BODY)))
        seen.append(attempt(lambda: client.responses.create(**RESPONSE_BODY, stream=True)))
        seen.append(attempt(lambda: client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)))
        seen.append(attempt(lambda: client.vector_stores.search("vs_1", query=QUESTION)))
    finally:
        canned.refuse_with = None
    seen.append(attempt(lambda: client.responses.create(not_a_field=1)))  # the client's own failures
    seen.append(attempt(lambda: client.vector_stores.search(None)))
    return seen


async def async_session(client: Any, canned: Any) -> list:
    """The same with the async client; on 1.2.0 every call fails, the same way each time."""
    async def read(call) -> list:
        stream = await call()
        return [stream.__class__.__name__, isinstance(stream, AsyncStream), dump([e async for e in stream])]

    async def read_part_then_again() -> list:
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        first = await anext(aiter(stream))
        again = await attempt_async(lambda: read(lambda: _same(stream)))
        await stream.close()
        return [dump(first), again]

    seen = [
        await attempt_async(lambda: client.responses.create(**RESPONSE_BODY)),
        await attempt_async(lambda: read(lambda: client.responses.create(**RESPONSE_BODY, stream=True))),
        await attempt_async(lambda: client.chat.completions.create(model=MODEL, messages=MESSAGES)),
        await attempt_async(lambda: read(lambda: client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                                                stream=True))),
        await attempt_async(lambda: client.embeddings.create(model=MODEL, input="a")),
        await attempt_async(lambda: client.vector_stores.search("vs_1", query=QUESTION)),
        await attempt_async(lambda: client.vector_io.query(vector_store_id="vs_1", query=QUESTION)),
        await attempt_async(lambda: client.conversations.create(metadata={"name": "s"})),
        await attempt_async(read_part_then_again),
        await attempt_async(lambda: _until_done(client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                                               stream=True))),
    ]
    canned.refuse_with = 400
    try:
        seen.append(await attempt_async(lambda: client.responses.create(**RESPONSE_BODY, stream=True)))
        seen.append(await attempt_async(lambda: client.embeddings.create(model=MODEL, input="a")))
    finally:
        canned.refuse_with = None
    return seen


async def _same(value: Any) -> Any:
    return value


async def _until_done(call: Any) -> Any:
    return await (await call).until_done()


def agent_session(client: Any, canned: Any) -> list:
    """An Agent's turn with a client tool round trip, streamed, then a whole one; the events
    without the turn and step ids the Agent makes up afresh."""
    from ogx_client.lib.agents.client_tool import client_tool

    @client_tool
    def lookup_pid(name: str) -> str:
        """Find the id of a running process.

        :param name: the process name
        """
        return "4242"

    canned.responses_first = [function_call_response(name="lookup_pid", arguments='{"name": "node"}')]
    agent = agent_module.Agent(client, model=MODEL, instructions=INSTRUCTIONS, tools=[FILE_SEARCH, lookup_pid])
    session = agent.create_session("s")
    chunks = agent.create_turn(messages=MESSAGES, session_id=session)
    seen = [chunks.__class__.__name__, [[type(c.event).__name__, getattr(c.event, "step_type", None),
                                         dump(c.response) if c.response else None] for c in chunks]]
    seen.append(attempt(lambda: agent.create_turn(messages=MESSAGES, session_id=session, stream=False)))
    return seen


def test_the_sync_calls_give_the_app_the_same_with_and_without_the_instrumentor(traced):
    t = traced()
    without, with_it = with_and_without(t, lambda: sync_session(t.client(), t.canned))
    assert with_it == without
    assert len(t.span_list()) >= 10  # and it did trace them


def test_the_async_calls_give_the_app_the_same_with_and_without_the_instrumentor(traced):
    t = traced()
    without, with_it = with_and_without(t, lambda: asyncio.run(async_session(t.async_client(), t.canned)))
    assert with_it == without


def test_the_agents_turns_are_the_same_with_and_without_the_instrumentor(traced):
    t = traced()
    without, with_it = with_and_without(t, lambda: agent_session(t.client(), t.canned))
    assert with_it == without
    assert [s.name for s in t.span_list()].count("invoke_agent") == 2


def test_the_async_agents_turn_is_the_same_with_and_without_the_instrumentor(traced):
    """On 1.5.0 the AsyncAgent's turn fails on its own (it calls an initialize() it does not have):
    the same failure either way."""
    async def turn(client: Any) -> Any:
        agent = agent_module.AsyncAgent(client, model=MODEL, instructions=INSTRUCTIONS, tools=[FILE_SEARCH])
        session = await attempt_async(lambda: agent.create_session("s"))

        async def chunks() -> list:
            return [type(c.event).__name__ async for c in await agent.create_turn(messages=MESSAGES,
                                                                                   session_id=session[1])]
        return [session, await attempt_async(chunks)]

    t = traced()
    without, with_it = with_and_without(t, lambda: asyncio.run(turn(t.async_client())))
    assert with_it == without
