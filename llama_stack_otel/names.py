"""How a run names what it creates — one place, so that the trace check recognises every name.

Everything a run makes carries its run id (a uuid4): the top-level span, the 0.2.x vector DB
and agent session, the 0.4+ vector store, and (as metadata) its stored responses. A span in
one run's trace that names another run's id was filed under the wrong trace; verify.py looks
for exactly these names.
"""

from __future__ import annotations

import re

ROOT_SPAN_PREFIX = "Python LlamaStack request - "
AGENT = "rag-agent"  # gen_ai.agent.name on both generations
VECTOR_DB_PREFIX = "test-vector-db-"  # 0.2.x
SESSION_PREFIX = "rag-session-"  # 0.2.x
VECTOR_STORE_PREFIX = "rag-vector-store-"  # 0.4+
RUN_ID_METADATA = "rag_agent_run_id"  # 0.4+: on every stored response
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
RUN_ID_MARK = re.compile(
    "(?:" + "|".join(re.escape(p) for p in ("request - ", VECTOR_DB_PREFIX, SESSION_PREFIX, VECTOR_STORE_PREFIX))
    + f")({UUID})")


def root_span(run_id: str) -> str:
    return f"{ROOT_SPAN_PREFIX}{run_id}"


def vector_db(run_id: str) -> str:
    return f"{VECTOR_DB_PREFIX}{run_id}"


def session(run_id: str) -> str:
    return f"{SESSION_PREFIX}{run_id}"


def vector_store(run_id: str) -> str:
    return f"{VECTOR_STORE_PREFIX}{run_id}"
