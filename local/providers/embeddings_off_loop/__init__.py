"""`inline::sentence-transformers-off-loop`: Llama Stack 0.2.12's sentence-transformers
embeddings, computed in a worker thread instead of on the server's event loop.

The stock provider calls the model's ``encode()`` inside its ``async`` method, so while one
request's documents are embedded (seconds on two cores) the whole server stands still.
That is worse than slow: faiss's SQLite store writes a row, and commits only when the loop
runs again; other requests' writes wait on that lock and fail after SQLite's 5 s timeout
("database is locked", HTTP 500 on POST /v1/vector-dbs). Several runs at once
(``--concurrency``) hit it every time. In a thread the loop keeps serving and commits
at once; torch releases the GIL while it computes.
"""

from __future__ import annotations

from typing import Any

import llama_stack_fixes  # noqa: F401 - fixes concurrent requests' traces (see there)

from llama_stack.providers.inline.inference.sentence_transformers.config import (
    SentenceTransformersInferenceConfig,
)


async def get_provider_impl(config: SentenceTransformersInferenceConfig, _deps: dict[str, Any]):
    from .impl import OffLoopSentenceTransformers

    impl = OffLoopSentenceTransformers(config)
    await impl.initialize()
    return impl
