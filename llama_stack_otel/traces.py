"""Traces as Jaeger and Phoenix give them back: one Span type, and a client for each backend.

Jaeger's query API v3 (``GET <ui>/api/v3/traces/<id>``) answers OTLP-JSON; Phoenix's REST API
(``GET <ui>/v1/projects/<project>/spans?trace_id=<id>``) answers its own span records, without
``service.name``. Both become ``Span``. ``detect_backend`` tells which one a UI is by which API
answers. Stdlib only: checking a trace records no spans of its own.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DEFAULT_PHOENIX_PROJECT = "default"
REQUEST_TIMEOUT_SECONDS = 5.0
DETECT_TIMEOUT_SECONDS = 1.0
PAGE_LIMIT = 1000  # spans per Phoenix page
SERVICE_NAME = "service.name"
HTTP_METHOD_KEYS = ("http.request.method", "http.method")


class BackendError(Exception):
    """The trace backend could not be asked (down, wrong URL, unexpected answer); one line."""


# --- Spans, as every backend gives them --------------------------------------------------------


@dataclass(frozen=True)
class Span:
    span_id: str
    parent_id: str  # "" for a root
    name: str
    service: str  # "" when the backend does not say
    start_ns: int
    end_ns: int
    error: bool = False
    status_message: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)

    @property
    def is_http_call(self) -> bool:
        return any(key in self.attributes for key in HTTP_METHOD_KEYS)

    @property
    def called_url(self) -> str:
        """The URL an HTTP client span called ("" for any other span)."""
        return str(self.attributes.get("url.full") or self.attributes.get("http.url") or "")


def _otlp_id(value: Any) -> str:
    """An OTLP-JSON id as lower-case hex: the spec writes hex; protobuf's generic JSON writes base64."""
    text = str(value or "")
    if re.fullmatch(r"[0-9a-fA-F]*", text) and len(text) in (0, 16, 32):
        return text.lower()
    try:
        return base64.b64decode(text, validate=True).hex()
    except (binascii.Error, ValueError):
        return text


def _otlp_value(value: Mapping[str, Any]) -> Any:
    """The Python value of an OTLP-JSON AnyValue ({"stringValue": "x"}, {"intValue": "3"}, ...)."""
    if not isinstance(value, Mapping) or not value:
        return None
    kind, inner = next(iter(value.items()))
    if kind == "intValue":
        return int(inner)
    if kind == "arrayValue":
        return [_otlp_value(v) for v in inner.get("values", [])]
    if kind == "kvlistValue":
        return _otlp_attributes(inner.get("values", []))
    return inner


def _otlp_attributes(key_values: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {kv.get("key", ""): _otlp_value(kv.get("value", {})) for kv in key_values or []}


def _is_error_status(code: Any) -> bool:
    return code in (2, "2", "STATUS_CODE_ERROR", "ERROR")


def spans_from_otlp_json(document: Mapping[str, Any]) -> list[Span]:
    """Spans of an OTLP-JSON TracesData (what Jaeger's API v3 returns, under "result")."""
    spans = []
    for resource_spans in document.get("resourceSpans", []) or []:
        resource = _otlp_attributes((resource_spans.get("resource") or {}).get("attributes", []))
        service = str(resource.get(SERVICE_NAME, ""))
        for scope_spans in resource_spans.get("scopeSpans", []) or []:
            for raw in scope_spans.get("spans", []) or []:
                status = raw.get("status") or {}
                spans.append(Span(
                    span_id=_otlp_id(raw.get("spanId")),
                    parent_id=_otlp_id(raw.get("parentSpanId")),
                    name=str(raw.get("name", "")),
                    service=service,
                    start_ns=int(raw.get("startTimeUnixNano") or 0),
                    end_ns=int(raw.get("endTimeUnixNano") or 0),
                    error=_is_error_status(status.get("code")),
                    status_message=str(status.get("message", "")),
                    attributes=_otlp_attributes(raw.get("attributes", [])),
                ))
    return spans


def _iso_to_ns(text: str) -> int:
    """Phoenix's ISO 8601 timestamps ("2026-11-24T18:03:01.123456+00:00") to Unix nanoseconds."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000) * 1000


def span_from_phoenix(raw: Mapping[str, Any]) -> Span:
    attributes = dict(raw.get("attributes") or {})
    context = raw.get("context") or {}
    return Span(
        span_id=str(context.get("span_id", "")),
        parent_id=str(raw.get("parent_id") or ""),
        name=str(raw.get("name", "")),
        # Phoenix keeps resource attributes only when the exporter sends them as span attributes.
        service=str(attributes.get(SERVICE_NAME, "")),
        start_ns=_iso_to_ns(raw["start_time"]) if raw.get("start_time") else 0,
        end_ns=_iso_to_ns(raw["end_time"]) if raw.get("end_time") else 0,
        error=_is_error_status(raw.get("status_code")),
        status_message=str(raw.get("status_message") or ""),
        attributes=attributes,
    )


def fill_in_services(spans: Sequence[Span], *, client_service: str | None = None) -> list[Span]:
    """Spans with a service each, for backends that keep none (Phoenix). A span belongs to the
    side of the HTTP call it is on: from a top down to an HTTP client span, the client
    (client_service, else "client"); under one, the server it called, named by its host:port."""
    if not spans or any(s.service for s in spans):
        return list(spans)
    ids = {s.span_id for s in spans}
    children_of: dict[str, list[Span]] = {}
    for span in spans:
        children_of.setdefault(span.parent_id, []).append(span)
    named: list[Span] = []
    tops = [s for s in spans if s.parent_id not in ids]
    stack = [(top, "?" if top.parent_id else (client_service or "client")) for top in tops]
    while stack:
        span, service = stack.pop()
        named.append(Span(**{**span.__dict__, "service": service}))
        below = service
        if span.called_url:
            netloc = urllib.parse.urlsplit(span.called_url).netloc.rsplit("@", 1)[-1]
            below = netloc or "server"
        stack.extend((child, below) for child in children_of.get(span.span_id, []))
    return named


# --- Backends --------------------------------------------------------------------------------------


def _get_json(url: str, *, timeout: float, what: str) -> Any | None:
    """GET url and decode its JSON; None on 404 (not there yet); BackendError otherwise."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise BackendError(f"{what} answered HTTP {exc.code} for {url}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
            reason = f"no answer within {timeout:g} s"
        raise BackendError(f"cannot reach {what} at {url} ({reason})") from exc
    try:
        return json.loads(body)
    except ValueError as exc:
        raise BackendError(f"{what} at {url} did not answer JSON — is this the right --trace-ui URL?") from exc


class Jaeger:
    name = "jaeger"
    label = "Jaeger"

    def __init__(self, ui: str) -> None:
        self.ui = ui.rstrip("/")

    def link(self, trace_id: str) -> str:
        return f"{self.ui}/trace/{trace_id}"

    def fetch(self, trace_id: str) -> list[Span]:
        document = _get_json(f"{self.ui}/api/v3/traces/{trace_id}", timeout=REQUEST_TIMEOUT_SECONDS, what=self.label)
        if document is None:
            return []
        if not isinstance(document, Mapping):
            raise BackendError(f"{self.label} answered something that is not a trace "
                               f"(a JSON {type(document).__name__})")
        return spans_from_otlp_json(document.get("result", document))


class Phoenix:
    name = "phoenix"
    label = "Phoenix"

    def __init__(self, ui: str, *, project: str = DEFAULT_PHOENIX_PROJECT) -> None:
        self.ui = ui.rstrip("/")
        self.project = project

    def link(self, trace_id: str) -> str:
        return f"{self.ui}/redirects/traces/{trace_id}"

    def fetch(self, trace_id: str) -> list[Span]:
        spans: list[Span] = []
        cursor = None
        project = urllib.parse.quote(self.project, safe="")
        while True:
            query = {"trace_id": trace_id, "limit": PAGE_LIMIT, **({"cursor": cursor} if cursor else {})}
            url = f"{self.ui}/v1/projects/{project}/spans?{urllib.parse.urlencode(query)}"
            page = _get_json(url, timeout=REQUEST_TIMEOUT_SECONDS, what=self.label)
            if page is None:  # no such project (yet): nothing has arrived
                return spans
            spans.extend(span_from_phoenix(raw) for raw in page.get("data", []))
            cursor = page.get("next_cursor")
            if not cursor:
                return spans


Backend = Jaeger | Phoenix


def detect_backend(ui: str, *, timeout: float = DETECT_TIMEOUT_SECONDS) -> Backend | None:
    """Which backend the UI at ui is, by which API answers; None when neither does."""
    ui = ui.rstrip("/")
    probes: list[tuple[str, Callable[[Any], bool], Callable[[], Backend]]] = [
        (f"{ui}/api/v3/services", lambda body: isinstance(body, Mapping) and "services" in body, lambda: Jaeger(ui)),
        (f"{ui}/v1/projects", lambda body: isinstance(body, Mapping) and "data" in body, lambda: Phoenix(ui)),
    ]
    for url, answers, backend in probes:
        try:
            if answers(_get_json(url, timeout=timeout, what="the trace UI")):
                return backend()
        except BackendError:
            continue
    return None


def make_backend(kind: str, ui: str) -> Backend:
    """The backend named kind; for "auto", the one the UI answers as, else BackendError."""
    if kind == "jaeger":
        return Jaeger(ui)
    if kind == "phoenix":
        return Phoenix(ui)
    found = detect_backend(ui)
    if found is None:
        raise BackendError(f"no Jaeger or Phoenix answers at {ui} — start one, or pass --trace-ui "
                           f"(and --trace-backend) for the one you use")
    return found
