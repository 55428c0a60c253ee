"""The local stack with a Responses-API server (LLAMA_STACK_VERSION=1.5.0 for OGX 1.5.0, 0.7.3
for Llama Stack 0.7.3; the `responses_stack` fixture runs each): local/stack.py starts
llama-server with Gemma 3 270M, a second llama-server with all-MiniLM-L6-v2 for embeddings,
and the server under opentelemetry-instrument, its spans going to the suite's OTLP receiver
(TRACE_BACKEND=external).

The 0.2.12 client does not speak these servers' APIs (vector stores, files, responses), so these
tests talk plain HTTP. They check the server is the version asked for with the routes the agent will need,
that a caller's W3C traceparent makes the server's spans part of the caller's trace, and
that a file put in a vector store is chunked, embedded by the embedding llama-server and
found again by a search; whatever a test creates it deletes.
"""

from __future__ import annotations

import secrets
import time
import uuid

import pytest

from tests.support.llama_stack_http import call
from tests.support.trace_shape import CLIENT_KIND, SERVER_KIND, ancestors

pytestmark = pytest.mark.server

# MiniLM takes 512 tokens; the servers' default chunk (800) is more, and the embedding fails.
CHUNKING = {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 40}}
NEEDLE = "The lighthouse on Fennick Rock is painted ochre and green every April by the harbour guild."
PARAGRAPHS = [
    "Sourdough starters need regular feeding. A starter kept at room temperature is fed flour and water "
    "once or twice a day; one kept in the refrigerator can go a week between feedings. A healthy starter "
    "doubles in size within a few hours of being fed and smells pleasantly sour. Rye flour makes a livelier "
    "starter than white flour, and chlorinated tap water can slow it down, so some bakers leave the water "
    "to stand overnight before using it.",
    "Bicycle chains wear as they are ridden. A chain checker tool measures how far the links have "
    "stretched; once the wear passes half a percent the chain should be replaced before it wears the "
    "cassette and the chainrings. Cleaning and oiling the chain regularly slows the wear. Riders who "
    "commute through winter, when roads are salted, often replace their chains twice as often.",
    "Tomato plants grown in pots need deep watering. In hot weather a large pot may need water every day, "
    "and uneven watering leads to split fruit and blossom end rot. A layer of mulch keeps the soil moist. "
    "Side shoots growing between the main stem and the leaves are pinched out on cordon varieties.",
    f"Fennick Rock lies two miles off the coast. {NEEDLE} Boats visiting the rock must anchor on the "
    "sheltered eastern side, because the western approach is full of submerged ledges.",
    "The Python standard library includes a module for reading and writing CSV files. Its reader returns "
    "each row as a list of strings, and its DictReader maps each row onto the names in the header line. "
    "Files should be opened with newline set to the empty string, or quoted fields with line breaks break.",
    "Kettlebell swings train the hips rather than the arms. The bell is driven forward by a snap of the "
    "hips, the arms only guiding it, and the back stays flat throughout. Beginners usually start with a "
    "bell of eight to twelve kilograms and learn the hinge movement before adding weight.",
    "Sea kayaks are longer and narrower than river kayaks, which makes them faster and better at holding "
    "a straight line, but slower to turn. Most have watertight bulkheads fore and aft, so a capsized boat "
    "still floats, and a skeg or rudder to keep the bow from turning into the wind.",
]
DOCUMENT = "\n\n".join(PARAGRAPHS)


def upload(base: str, name: str, text: str) -> dict:
    """POST /v1/files as multipart/form-data (purpose assistants), as the OpenAI API takes it."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: text/plain\r\n\r\n".encode() + text.encode() + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return call(base, "POST", "/v1/files", data=b"".join(parts),
                content_type=f"multipart/form-data; boundary={boundary}")


def ids(listing: dict) -> set[str]:
    return {item["id"] for item in listing["data"]}


def test_it_is_the_version_asked_for_with_the_routes_the_agent_needs(responses_stack):
    assert call(responses_stack.llama_stack_url, "GET", "/v1/version") == {"version": responses_stack.profile.version}
    assert call(responses_stack.llama_stack_url, "GET", "/v1/health")["status"] == "OK"
    routes = call(responses_stack.llama_stack_url, "GET", "/v1/inspect/routes")["data"]
    paths = {route["route"] for route in routes}
    assert {"/v1/responses", "/v1/vector_stores", "/v1/files"} <= paths, sorted(paths)
    models = {m["id"]: m for m in call(responses_stack.llama_stack_url, "GET", "/v1/models")["data"]}
    assert {"llama-cpp/gemma3-270m", "llama-cpp-embeddings/all-MiniLM-L6-v2"} <= set(models), sorted(models)
    assert responses_stack.script_env()["INFERENCE_MODEL"] == "llama-cpp/gemma3-270m"


def test_server_spans_join_the_callers_trace(responses_stack, otlp_receiver):
    """A request with a traceparent: the server's spans for it are in that trace, and their
    parent chain leads to the caller's span (here a span id the test made up)."""
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    headers = {"traceparent": f"00-{trace_id}-{parent_id}-01"}
    store = call(responses_stack.llama_stack_url, "POST", "/v1/vector_stores", {"name": "traceparent-check"},
                 headers=headers)
    call(responses_stack.llama_stack_url, "DELETE", f"/v1/vector_stores/{store['id']}", headers=headers)

    def server_spans(spans):
        return [s for s in spans if s.service == responses_stack.profile.service_name and s.kind == SERVER_KIND]

    # The SDK exports in batches (about 5 s apart): wait on a deadline for both requests' spans.
    spans = otlp_receiver.wait_for(lambda ss: len(server_spans(ss)) >= 2, trace_id=trace_id, timeout=60)
    found = server_spans(spans)
    methods = sorted(str(s.attributes.get("http.request.method", s.attributes.get("http.method"))) for s in found)
    assert methods == ["DELETE", "POST"], [(s.name, s.attributes) for s in found]
    for span in spans:
        chain = [span, *ancestors(span, spans)]
        assert chain[-1].parent_span_id == parent_id, f"{span.name}'s chain ends at {chain[-1].name}"
    assert store["id"] not in ids(call(responses_stack.llama_stack_url, "GET", "/v1/vector_stores"))


def test_a_file_in_a_vector_store_is_embedded_and_found(responses_stack, otlp_receiver):
    """Upload, attach with 200-token chunks, wait for `completed` (OGX 1.5.0 and 0.7.3 answer it
    on the attach itself; a server may answer `in_progress` first), search: the chunk with the
    sentence comes first. The vectors come from the embedding llama-server (MiniLM)."""
    base = responses_stack.llama_stack_url
    file = upload(base, "notes.txt", DOCUMENT)
    store = call(base, "POST", "/v1/vector_stores", {"name": "search-check"})
    try:
        attached = call(base, "POST", f"/v1/vector_stores/{store['id']}/files",
                        {"file_id": file["id"], "chunking_strategy": CHUNKING})
        deadline = time.monotonic() + 120
        while attached["status"] == "in_progress" and time.monotonic() < deadline:
            time.sleep(0.5)
            attached = call(base, "GET", f"/v1/vector_stores/{store['id']}/files/{file['id']}")
        assert attached["status"] == "completed", attached
        trace_id = secrets.token_hex(16)
        results = call(base, "POST", f"/v1/vector_stores/{store['id']}/search",
                       {"query": "What colours is the lighthouse on Fennick Rock painted?", "max_num_results": 3},
                       headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
        texts = [" ".join(part["text"] for part in hit["content"]) for hit in results["data"]]
        assert len(texts) == 3, texts  # the document makes more than three 200-token chunks
        assert "painted ochre and green" in texts[0], texts
        assert "painted ochre" not in texts[-1], texts
        # The query's vector came from the embedding llama-server: the server's HTTPX span says so.
        embedding_server = next(c for c in responses_stack.components if c.name == "embedding-server")
        embedding_url = f"{embedding_server.url}/v1/embeddings"
        otlp_receiver.wait_for(lambda spans: any(s.kind == CLIENT_KIND and embedding_url in s.attributes.values()
                                                 for s in spans), trace_id=trace_id, timeout=60)
    finally:
        call(base, "DELETE", f"/v1/vector_stores/{store['id']}")
        call(base, "DELETE", f"/v1/files/{file['id']}")
    assert store["id"] not in ids(call(base, "GET", "/v1/vector_stores"))
    assert file["id"] not in ids(call(base, "GET", "/v1/files"))
