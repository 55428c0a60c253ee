"""`remote::llama-cpp` for Llama Stack 0.7.3 and OGX 1.x (its current name): the server's vLLM
adapter (any OpenAI-compatible server) plus what a 270M model on llama.cpp's server needs to be
a RAG agent through the Responses API. server_api.py imports the server's modules under
whichever name the venv has.

- A forced tool call. 0.7.3 and OGX forward the Responses API's tool_choice ("required", or
  {"type": "file_search"}) as an object, and the llama.cpp server vendored in
  llama-cpp-python 0.3.36 takes only a string there and ignores it: nothing would make the
  model search. When the request requires a tool and the current question has no tool result
  yet, the adapter has the model write that tool's arguments under a grammar that admits only
  that JSON object and returns them as the tool call; Llama Stack then runs file_search and
  asks again, and the model answers in text.
- Stop sequences from the config, added to requests that set none (the chat template's block
  headers, as on 0.2.12).

Loaded through the run config's `module: llama_cpp_openai` (local/run-local-0.7.yaml,
local/run-local-ogx.yaml), with local/providers_responses on the server's PYTHONPATH.
OGX 1.5.0's `ogx run --dry-run` cannot validate such a config: it builds the provider
registry without the config's `module:` providers and rejects remote::llama-cpp
(tests/test_stack_profiles.py validates it with OGX's loader and that registry).
"""

from __future__ import annotations

from .config import LlamaCppOpenAIConfig


async def get_adapter_impl(config: LlamaCppOpenAIConfig, _deps):
    from .adapter import LlamaCppOpenAIAdapter

    impl = LlamaCppOpenAIAdapter(config=config)
    await impl.initialize()
    return impl
