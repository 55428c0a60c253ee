"""`remote::llama-cpp`: Llama Stack inference against llama.cpp's llama-server.

Llama Stack 0.2.12's `remote::vllm` adapter talks to any OpenAI-compatible server, and
llama-server is one, but the adapter never forwards the agent's `tool_choice`. Small
local models rarely decide to call a tool on their own, so without it a RAG agent on
them never retrieves. This adapter is the vLLM one plus two things:

- when the agent asks for a tool call (`tool_choice` "required" or a tool's name) and
  the current question has no tool result yet, the model writes the tool's arguments
  under a grammar that admits only the tool's arguments as JSON, and the adapter
  returns them as that tool call. Llama Stack's agent loop then runs the tool and asks
  the model again, now with the result, and the model answers in text.
- the model gets stop sequences from the config (a pretrained model does not end its
  turn by itself).
"""

from __future__ import annotations

from .config import LlamaCppInferenceConfig

import llama_stack_fixes  # noqa: F401 - fixes concurrent requests' traces (see there)


async def get_adapter_impl(config: LlamaCppInferenceConfig, _deps):
    from .adapter import LlamaCppInferenceAdapter

    impl = LlamaCppInferenceAdapter(config)
    await impl.initialize()
    return impl
