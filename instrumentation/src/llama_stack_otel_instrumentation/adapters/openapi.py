"""The adapter for OpenAPI-generated clients: ogx-client 1.2 and later.

Such a client has no single request method to hook: each API class makes its own calls
(``<package>.api.<x>_api.<X>Api``, and from 1.3 an ``Async<X>Api`` subclass that overrides every
method as ``async def``; 1.2's ``AsyncOgxClient`` has none and fails every call), so the hooks sit
on the methods of the GenAI operations:

    ResponsesApi.create          POST /v1/responses                          RESPONSE
    ChatCompletionsApi.create    POST /v1/chat/completions                   CHAT
    EmbeddingsApi.create         POST /v1/embeddings                         EMBEDDINGS
    VectorStoresApi.search       POST /v1/vector_stores/{vector_store_id}/search  SEARCH
    VectorIoApi.query            POST /v1/vector-io/query                    SEARCH
    ConversationsApi.create      POST /v1/conversations                      CREATE_CONVERSATION

and the same on each ``Async<X>Api``. A method takes its request body as a model (``create(
create_response_request)``), a dict in its place, or keyword arguments (``create(model=...,
input=..., stream=True)``, with ``extra_body`` merged in as the client does); path parameters
come first. The server is the API client's ``configuration.host``.

``stream`` is a field of the body, not a parameter: the method answers with the client's
``Stream`` / ``AsyncStream`` when the server answered with ``text/event-stream``, and that is how
the shared layer tells a streamed answer (by the result's type, from this package).

Only the plain methods are hooked. ``*_with_http_info`` and ``*_without_preload_content`` hand
the app an ``ApiResponse`` or the unread HTTP response to read itself: they pass untraced (the
HTTP span of an httpx instrumentation still shows them).

The library's ``Agent`` / ``AsyncAgent`` (``lib/agents/agent.py``) are the Responses API's, the
same as llama-stack-client 0.7's: the Stainless adapter's Agent hooks serve them.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from llama_stack_otel_instrumentation.adapters import Hook, Wrapper
from llama_stack_otel_instrumentation.adapters.stainless import Hooks as StainlessHooks
from llama_stack_otel_instrumentation.calls import guarded
from llama_stack_otel_instrumentation.operations import (
    CHAT,
    CREATE_CONVERSATION,
    EMBEDDINGS,
    RESPONSE,
    SEARCH,
    Operations,
    Request,
    server_of,
)

Wrapped = Callable[..., Any]
NOT_BODY = frozenset({"extra_headers", "extra_query", "extra_body"})  # keyword arguments the body never holds


@dataclass(frozen=True)
class Endpoint:
    module: str  # under <package>.api
    api: str  # the sync class; its async subclass is "Async" + api
    method: str
    operation: str
    path_params: Mapping[str, str] = field(default_factory=dict)  # the method's path argument -> Request.params key
    body_params: Mapping[str, str] = field(default_factory=dict)  # a body field -> Request.params key


ENDPOINTS = (
    Endpoint("responses_api", "ResponsesApi", "create", RESPONSE),
    Endpoint("chat_completions_api", "ChatCompletionsApi", "create", CHAT),
    Endpoint("embeddings_api", "EmbeddingsApi", "create", EMBEDDINGS),
    Endpoint("vector_stores_api", "VectorStoresApi", "search", SEARCH, path_params={"vector_store_id": "vector_store"}),
    Endpoint("vector_io_api", "VectorIoApi", "query", SEARCH, body_params={"vector_store_id": "vector_store"}),
    Endpoint("conversations_api", "ConversationsApi", "create", CREATE_CONVERSATION),
)


def applies(package: str) -> bool:
    """An OpenAPI-generated client has ``api_client`` (and no Stainless ``_base_client``)."""
    try:
        return importlib.util.find_spec(f"{package}.api_client") is not None
    except (ImportError, ValueError):
        return False


def as_dict(body: Any) -> dict:
    """A request model (or a dict in its place) as the body it becomes, one level deep: the
    model's fields by their JSON names, their values as the model holds them (the readers read
    attributes and keys alike). Not through the model's serialiser: for some union fields that
    warns, and the app would see the warning twice."""
    if isinstance(body, Mapping):
        return dict(body)
    fields = getattr(type(body), "model_fields", None)
    if not isinstance(fields, Mapping):
        return {}
    found = {(info.alias or name): unwrapped(getattr(body, name, None)) for name, info in fields.items()
             if name != "additional_properties" and getattr(body, name, None) is not None}
    extra = getattr(body, "additional_properties", None)
    return {**extra, **found} if isinstance(extra, Mapping) else found


def unwrapped(value: Any) -> Any:
    """A generated oneOf/anyOf wrapper's value (``actual_instance``), in lists too."""
    if isinstance(value, list):
        return [unwrapped(item) for item in value]
    inner = getattr(value, "actual_instance", None)
    return value if inner is None else inner


def parameters(method: Wrapped) -> list[str]:
    """The named parameters of an API method, without self and the ``_request_timeout`` kind."""
    return [name for name, parameter in inspect.signature(method).parameters.items()
            if not name.startswith("_") and name != "self"
            and parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)]


class Calls:
    """Reads a call of an endpoint's method into a Request."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._names: dict[Any, list[str]] = {}  # per function: its named parameters

    def request(self, method: Wrapped, api: Any, args: tuple, kwargs: dict) -> Request:
        function = getattr(method, "__func__", method)
        names = self._names.get(function)
        if names is None:
            names = self._names[function] = parameters(method)
        given = dict(zip(names, args, strict=False))
        given.update((name, kwargs[name]) for name in names if name in kwargs)
        params = {key: str(given[name]) for name, key in self.endpoint.path_params.items() if given.get(name)}
        model = next((given.get(name) for name in names if name not in self.endpoint.path_params), None)
        body = as_dict(model) if model is not None else self.keyword_body(kwargs, names)
        params.update((key, str(body[name])) for name, key in self.endpoint.body_params.items() if body.get(name))
        host = api.api_client.configuration.host
        return Request(self.endpoint.operation, body, server_of(SimpleNamespace(base_url=host)), params)

    @staticmethod
    def keyword_body(kwargs: dict, names: list[str]) -> dict:
        """The body the method builds from keyword arguments (extra_body merged in, as it does)."""
        body = {key: value for key, value in kwargs.items()
                if key not in NOT_BODY and key not in names and not key.startswith("_")}
        extra = kwargs.get("extra_body")
        if isinstance(extra, dict):
            body.update(extra)
        return body


def is_stream_of(package: str) -> Callable[[Any], bool]:
    """Whether a method's result is the client's Stream or AsyncStream (a streamed answer)."""
    modules = (f"{package}.stream", f"{package}.async_stream")

    def streamed(result: Any) -> bool:
        kind = type(result)
        return kind.__name__ in ("Stream", "AsyncStream") and kind.__module__ in modules
    return streamed


class Hooks:
    """The wrappers for one endpoint, sync and async, bound to the shared layer."""

    def __init__(self, operations: Operations, endpoint: Endpoint, streamed: Callable[[Any], bool]) -> None:
        self.operations = operations
        self.calls = Calls(endpoint)
        self.streamed = streamed

    def call(self, wrapped: Wrapped, api: Any, args: tuple, kwargs: dict) -> Any:
        request = guarded("reading a call", self.calls.request, wrapped, api, args, kwargs)
        if request is None:
            return wrapped(*args, **kwargs)
        return self.operations.run(request, lambda: wrapped(*args, **kwargs), streamed=self.streamed)

    async def async_call(self, wrapped: Wrapped, api: Any, args: tuple, kwargs: dict) -> Any:
        request = guarded("reading a call", self.calls.request, wrapped, api, args, kwargs)
        if request is None:
            return await wrapped(*args, **kwargs)
        return await self.operations.run_async(request, lambda: wrapped(*args, **kwargs), streamed=self.streamed)


def wrapper_for(package: str, endpoint: Endpoint, api: str, wrappers: Hooks) -> Wrapper | None:
    """The wrapper for a class's method: the async one for a coroutine function, whichever class
    it is on. None for a class that only inherits the method: the hook on the class that defines
    it covers it, and a second would nest a span in it."""
    try:
        cls = getattr(importlib.import_module(f"{package}.api.{endpoint.module}"), api, None)
    except ImportError:
        cls = None
    own = vars(cls).get(endpoint.method) if cls is not None else None
    if own is None and cls is not None and hasattr(cls, endpoint.method):
        return None
    # Missing altogether: hooked all the same, and apply() says in one line that it is not there.
    return wrappers.async_call if inspect.iscoroutinefunction(own) else wrappers.call


def hooks(package: str, operations: Operations) -> list[Hook]:
    streamed = is_stream_of(package)
    found: list[Hook] = []
    for endpoint in ENDPOINTS:
        wrappers = Hooks(operations, endpoint, streamed)
        module = f"{package}.api.{endpoint.module}"
        for api in (endpoint.api, f"Async{endpoint.api}"):
            wrapper = guarded("looking at an API class", wrapper_for, package, endpoint, api, wrappers)
            if wrapper is not None:
                found.append(Hook(module, f"{api}.{endpoint.method}", wrapper))
    agent, agents = f"{package}.lib.agents.agent", StainlessHooks(operations)
    found += [Hook(agent, "Agent.create_turn", agents.agent_create_turn),
              Hook(agent, "AsyncAgent.create_turn", agents.async_agent_create_turn)]
    return found
