"""How the Responses-API run reaches the server, through whichever llama-stack-client is installed.

Llama Stack 0.4 and later (and OGX) serve files, vector stores and responses under ``/v1``.
Two client lines meet them:

- llama-stack-client 0.7.x (Python 3.12 and later; what ``pip install .`` picks there) has typed
  calls for exactly those routes — ``files``, ``vector_stores`` (with its ``files``),
  ``responses``, ``models``, ``inspect`` — and no Agents API any more: ``TypedCalls``;
- llama-stack-client 0.2.x (pinned for Python 3.11) has calls of the same names aimed at
  ``/v1/openai/v1``, which those servers do not serve, so the run goes through its generic
  ``get``/``post``/``delete`` instead: ``GenericCalls``.

``for_client`` picks one, once, by what the client has (``has_agents_api``); both answer plain
JSON (dicts, and ``as_json`` for a streamed event), so the run reads one shape either way: the
same instrumented HTTP client, the same traceparent, the same exceptions.

Neither sends the header in which the client announces its version: Llama Stack 0.4–0.7 answer
HTTP 426 to a client whose major.minor differs from theirs (0.2.12 against any of them, 0.7.5
against 0.4–0.6), and these calls are written for the server whose version the run asked
first. (0.7.5 against 0.7.3 would pass; OGX reads only its own ``X-OGX-Client-Version``.)
"""

from __future__ import annotations

from typing import Any, Protocol

VERSION_HEADER = "X-LlamaStack-Client-Version"
LISTED = 100  # entries a listing asks for: enough to find this run's leftovers among others'


def has_agents_api(client: Any) -> bool:
    """Whether the installed client still has the Agents API (0.2.x–0.3.x do; 0.7.x does not).
    The one capability the backends ask of the client: it decides whether the Agents run can
    be made at all, and which calls the Responses run makes."""
    return hasattr(client, "agents") and hasattr(client, "vector_dbs")


def without_version_header() -> dict[str, Any]:
    from llama_stack_client._types import Omit  # how the client drops one of its default headers

    return {VERSION_HEADER: Omit()}


def as_json(obj: Any) -> dict:
    """A typed answer (the client's pydantic model) as the JSON the server sent; a dict as it is."""
    if isinstance(obj, dict):
        return obj
    return dict(obj.to_dict())


class ServerCalls(Protocol):
    """What the Responses-API run asks of the server; every answer is JSON."""

    def models(self) -> list[dict]: ...

    def health(self, *, timeout: float) -> dict: ...

    def create_vector_store(self, *, name: str) -> dict: ...

    def upload(self, *, name: str, data: bytes) -> dict:
        """One file for a vector store (purpose assistants), sent as text/plain."""

    def attach(self, vector_store_id: str, file_id: str, *, chunking_strategy: dict, timeout: float) -> dict: ...

    def attached_file(self, vector_store_id: str, file_id: str) -> dict: ...

    def respond(self, body: dict) -> Any:
        """POST /v1/responses with stream=True: the client's stream of events (read each with as_json)."""

    def vector_stores(self) -> list[dict]: ...

    def responses(self) -> list[dict]: ...

    def delete_response(self, response_id: str, *, timeout: float) -> None: ...

    def delete_vector_store(self, vector_store_id: str, *, timeout: float) -> None: ...

    def delete_file(self, file_id: str, *, timeout: float) -> None: ...


def for_client(client: Any) -> ServerCalls:
    return GenericCalls(client) if has_agents_api(client) else TypedCalls(client)


class GenericCalls:
    """The 0.2.x client: its generic HTTP methods, JSON in and out. ``get`` also serves any
    client before the run knows which calls fit (the server's version)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @staticmethod
    def _options(timeout: float | None = None, **more: Any) -> dict:
        options: dict[str, Any] = {"headers": without_version_header(), **more}
        if timeout is not None:
            options["timeout"] = timeout
        return options

    def get(self, path: str, *, timeout: float | None = None, params: dict | None = None) -> dict:
        extra = {"params": params} if params else {}
        return self.client.get(path, cast_to=object, options=self._options(timeout, **extra))

    def _post(self, path: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        return self.client.post(path, cast_to=object, options=self._options(timeout), **kwargs)

    def _delete(self, path: str, *, timeout: float) -> None:
        self.client.delete(path, cast_to=object, options=self._options(timeout))

    def models(self) -> list[dict]:
        return list(self.get("/v1/models").get("data", []))

    def health(self, *, timeout: float) -> dict:
        return self.get("/v1/health", timeout=timeout)

    def create_vector_store(self, *, name: str) -> dict:
        return self._post("/v1/vector_stores", body={"name": name})

    def upload(self, *, name: str, data: bytes) -> dict:
        options = self._options()
        options["headers"]["Content-Type"] = "multipart/form-data"  # the client adds the boundary
        return self.client.post("/v1/files", cast_to=object, body={"purpose": "assistants"},
                                files=[("file", (name, data, "text/plain"))], options=options)

    def attach(self, vector_store_id: str, file_id: str, *, chunking_strategy: dict, timeout: float) -> dict:
        return self._post(f"/v1/vector_stores/{vector_store_id}/files", timeout=timeout,
                          body={"file_id": file_id, "chunking_strategy": chunking_strategy})

    def attached_file(self, vector_store_id: str, file_id: str) -> dict:
        return self.get(f"/v1/vector_stores/{vector_store_id}/files/{file_id}")

    def respond(self, body: dict) -> Any:
        from llama_stack_client import Stream  # the client's SSE reader, imported after the instrumentation

        return self._post("/v1/responses", body=body, stream=True, stream_cls=Stream[object])

    def vector_stores(self) -> list[dict]:
        return list(self.get("/v1/vector_stores", params={"limit": LISTED}).get("data", []))

    def responses(self) -> list[dict]:
        return list(self.get("/v1/responses", params={"limit": LISTED}).get("data", []))

    def delete_response(self, response_id: str, *, timeout: float) -> None:
        self._delete(f"/v1/responses/{response_id}", timeout=timeout)

    def delete_vector_store(self, vector_store_id: str, *, timeout: float) -> None:
        self._delete(f"/v1/vector_stores/{vector_store_id}", timeout=timeout)

    def delete_file(self, file_id: str, *, timeout: float) -> None:
        self._delete(f"/v1/files/{file_id}", timeout=timeout)


class TypedCalls:
    """The 0.7.x client: its typed resource methods; each answer's model turned back into JSON."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.headers = without_version_header()  # every call's extra_headers

    def models(self) -> list[dict]:
        return [as_json(model) for model in self.client.models.list(extra_headers=self.headers)]

    def health(self, *, timeout: float) -> dict:
        return as_json(self.client.inspect.health(extra_headers=self.headers, timeout=timeout))

    def create_vector_store(self, *, name: str) -> dict:
        return as_json(self.client.vector_stores.create(name=name, extra_headers=self.headers))

    def upload(self, *, name: str, data: bytes) -> dict:
        return as_json(self.client.files.create(file=(name, data, "text/plain"), purpose="assistants",
                                                extra_headers=self.headers))

    def attach(self, vector_store_id: str, file_id: str, *, chunking_strategy: dict, timeout: float) -> dict:
        return as_json(self.client.vector_stores.files.create(
            vector_store_id, file_id=file_id, chunking_strategy=chunking_strategy, extra_headers=self.headers,
            timeout=timeout))

    def attached_file(self, vector_store_id: str, file_id: str) -> dict:
        return as_json(self.client.vector_stores.files.retrieve(file_id, vector_store_id=vector_store_id,
                                                                extra_headers=self.headers))

    def respond(self, body: dict) -> Any:
        return self.client.responses.create(**body, extra_headers=self.headers)

    def vector_stores(self) -> list[dict]:
        return [as_json(s) for s in self.client.vector_stores.list(limit=LISTED, extra_headers=self.headers).data]

    def responses(self) -> list[dict]:
        return [as_json(r) for r in self.client.responses.list(limit=LISTED, extra_headers=self.headers).data]

    def delete_response(self, response_id: str, *, timeout: float) -> None:
        self.client.responses.delete(response_id, extra_headers=self.headers, timeout=timeout)

    def delete_vector_store(self, vector_store_id: str, *, timeout: float) -> None:
        self.client.vector_stores.delete(vector_store_id, extra_headers=self.headers, timeout=timeout)

    def delete_file(self, file_id: str, *, timeout: float) -> None:
        self.client.files.delete(file_id, extra_headers=self.headers, timeout=timeout)
