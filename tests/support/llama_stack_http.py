"""Plain HTTP to a Responses-API server (Llama Stack 0.4 and later, OGX): the 0.2.12 client the
script uses does not speak their APIs (vector stores, files, responses), so the tests that look
at such a server directly call it with urllib. And what the server keeps that no route lists:
its conversations, counted in its SQL store."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

from local import stack


def call(base: str, method: str, path: str, body: dict | None = None, *, headers: dict | None = None,
         data: bytes | None = None, content_type: str = "application/json", timeout: float = 60):
    """One request; the decoded JSON answer (None for an empty one). Errors carry the server's body."""
    if body is not None:
        data = json.dumps(body).encode()
    request = urllib.request.Request(f"{base}{path}", data=data, method=method,
                                     headers={**({"Content-Type": content_type} if data is not None else {}),
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{method} {path}: HTTP {error.code}: {error.read().decode(errors='replace')}") from None
    return json.loads(raw) if raw.strip() else None


def listed(base: str, path: str) -> set[str]:
    """The ids a list route answers (vector stores, files, stored responses)."""
    return {item["id"] for item in call(base, "GET", path, timeout=30)["data"]}


# The list routes of what a run creates, and the table of what it might create unlisted: the
# Responses API lists no conversations (as OpenAI's), so the run configs' SQL store is read.
LISTED = ("/v1/vector_stores", "/v1/files", "/v1/responses")
CONVERSATIONS_TABLE = "openai_conversations"  # storage.stores.conversations in both run configs


def stored_rows(running: stack.Stack, table: str) -> int:
    """Rows in one table of the server's SQL store (sql_store.db under the stack's state dir;
    0 when the server never made the table)."""
    database = Path(running.state_dir) / "llama-stack" / "sql_store.db"
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)) as connection:
        exists = connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                                    (table,)).fetchone()[0]
        return connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] if exists else 0


def server_state(running: stack.Stack) -> dict[str, object]:
    """What the server holds that a run may create: listed ids, and the conversations count."""
    base = running.llama_stack_url
    return {**{path: listed(base, path) for path in LISTED}, "conversations": stored_rows(running, CONVERSATIONS_TABLE)}
