"""Where the instrumentor hooks into a client: one small adapter per shape of client.

    stainless   Stainless-generated clients: llama-stack-client 0.2.x–0.7.x and ogx-client 1.0–1.1.x
                (``<package>._base_client``: ``SyncAPIClient.request`` / ``AsyncAPIClient.request``),
                and their library ``Agent`` / ``AsyncAgent``
    openapi     OpenAPI-generated clients: ogx-client 1.2+ (``<package>.api.<x>_api``: each GenAI
                method of ``<X>Api`` / ``Async<X>Api``), and their ``Agent`` / ``AsyncAgent``

What an adapter provides (a module here):

- ``applies(package: str) -> bool`` — whether the installed client ``package`` (the import name,
  ``llama_stack_client`` or ``ogx_client``) has this adapter's shape; checked once, at
  ``instrument()``: the first adapter that applies is used (``_adapters()`` in the package's
  ``__init__`` lists them in order: add a new one there);
- ``hooks(package: str, operations: Operations) -> list[Hook]`` — the client's functions to wrap
  and their wrappers (wrapt's ``wrapper(wrapped, instance, args, kwargs)``).

A wrapper only recognises the call — an operation name and a ``Request`` (request body as a
dict, path parameters, server) — and hands it with the call to the shared layer
(``operations.Operations.run`` / ``run_async``, ``streamed=`` saying how to recognise a stream in
the result); everything else — spans, metrics, stream wrapping, content, failures — is shared.
A call it does not recognise it makes unchanged. A wrapper raises nothing of its own:
recognising is done through ``guarded``.

openapi.py is the shape of a per-method adapter: a wrapper on each ``<X>Api`` method that makes a
GenAI call, and on its ``Async<X>Api`` override, and the Agent's ``create_turn`` through the
Stainless adapter's hooks.

``apply`` puts hooks in place all or nothing: a hook whose module, class or function this
client version lacks is skipped with one log line; if wrapping fails midway, the hooks already
applied are taken off again and nothing stays half-applied.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

_log = logging.getLogger(__name__)

Wrapper = Callable[[Callable[..., Any], Any, tuple, dict], Any]


@dataclass(frozen=True)
class Hook:
    module: str  # e.g. "llama_stack_client._base_client"
    path: str  # "Class.method" in it
    wrapper: Wrapper


@dataclass(frozen=True)
class Applied:
    owner: Any  # the class the method was wrapped on
    name: str


def resolve(hook: Hook) -> tuple[Any, str] | None:
    """The class (or module) and attribute a hook wraps, if this client version has them."""
    try:
        owner: Any = importlib.import_module(hook.module)
    except Exception:  # noqa: BLE001 - not importable here, whatever the reason: not hooked
        return None
    *classes, name = hook.path.split(".")
    for part in classes:
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    return (owner, name) if callable(getattr(owner, name, None)) else None


def apply(hooks: list[Hook], *, client: str) -> list[Applied]:
    """Wrap what the hooks name, all or nothing; what is not there is skipped with one line."""
    applied: list[Applied] = []
    for hook in hooks:
        target = resolve(hook)
        if target is None:
            _log.info("%s instrumentation: %s.%s is not in this version of the client; not traced",
                      client, hook.module, hook.path)
            continue
        owner, name = target
        try:
            wrap_function_wrapper(owner, name, hook.wrapper)
        except Exception:  # noqa: BLE001 - instrument() must not raise into the app
            _log.warning("%s instrumentation: could not hook %s.%s; the client is left as it was", client,
                         hook.module, hook.path, exc_info=True)
            remove(applied)
            return []
        applied.append(Applied(owner, name))
    return applied


def remove(applied: list[Applied]) -> None:
    """Take the hooks off again, last first."""
    for hook in reversed(applied):
        try:
            unwrap(hook.owner, hook.name)
        except Exception:  # noqa: BLE001 - uninstrument() must not raise either
            _log.debug("could not unwrap %s.%s", hook.owner, hook.name, exc_info=True)
