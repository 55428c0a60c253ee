"""The baseline for the startup benchmark: import the Llama Stack client and send the first
request the traced script sends (GET /v1/providers), with no telemetry at all.

    python bench/bare_request.py http://127.0.0.1:8321
"""

from __future__ import annotations

import sys

from llama_stack_client import LlamaStackClient

LlamaStackClient(base_url=sys.argv[1], max_retries=0).providers.list()
