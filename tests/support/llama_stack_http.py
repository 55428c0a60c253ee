"""Plain HTTP to a Llama Stack 0.7.3 server: the 0.2.12 client the script uses does not speak
0.7.3's APIs (vector stores, files, responses), so the tests that look at that server
directly call it with urllib."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

SERVICE_07 = "llama-stack"  # OTEL_SERVICE_NAME that local/stack.py gives the 0.7.3 server


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
