"""What both local inference providers (remote::llama-cpp for Llama Stack 0.2.12 in
llama_cpp_inference, for 0.7.3 and OGX in ../providers_responses/llama_cpp_openai) share, with no Llama
Stack import: the llama.cpp grammar of a forced tool call's arguments, and the stop list
read from the run config."""

from __future__ import annotations

import json
from typing import Any

# GBNF for argument values. A flat JSON object with no optional whitespace: a JSON-schema
# grammar lets a small model spend its whole budget on blank lines.
VALUE_RULES = {
    "string": r'"\"" [^"\\\n]{1,300} "\""',
    "integer": r'"-"? [0-9]{1,12}',
    "number": r'"-"? [0-9]{1,12} ("." [0-9]{1,6})?',
    "boolean": r'"true" | "false"',
}


def object_grammar(arguments: list[tuple[str, str]]) -> str:
    """A grammar admitting exactly one JSON object with these (name, JSON type) members, in order."""
    pairs = ' ", " '.join(f'"\\"{name}\\": " {kind if kind in VALUE_RULES else "string"}' for name, kind in arguments)
    rules = [f'root ::= "{{" {pairs} "}}"'] + [f"{kind} ::= {rule}" for kind, rule in VALUE_RULES.items()]
    return "\n".join(rules) + "\n"


def stop_list(value: Any) -> Any:
    """The run config fills the stop list from an environment variable: a JSON list in a string."""
    if isinstance(value, str):
        return json.loads(value) if value.strip() else []
    return value
