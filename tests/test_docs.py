"""The documentation names only what exists: README.md and docs/*.md against the commands.

Every `--flag` the pages name must be one that the script's `--help`, show_trace.py's `--help`,
the Makefile, the start scripts' usage text or the local stack's docstrings know; a flag on a
command line that runs show_trace.py or the script must be that command's own. Every environment
variable they name must appear in one of those texts, or be one of the standard OpenTelemetry
variables (or another tool's) listed below. Every relative link must lead to a file, and every
anchor to a heading. And the README stays short enough to read.

Plain files and `--help` run as a user would run it: no server, no network.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = "llama_stack_agent_rag_otel.py"
SHOW_TRACE = "show_trace.py"
PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200

# Variables the pages may name although no text of this project defines them: OpenTelemetry's
# own (read by the SDK, its instrumentations or the OTLP exporters) ...
STANDARD_OTEL_VARIABLES = {
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
    "OTEL_PROPAGATORS",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE",
    "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS",
    "OTEL_PYTHON_DISTRO",
}
# ... and other tools' (named with the tool, so a typo in ours cannot hide here).
OTHER_TOOLS_VARIABLES = {
    "LLAMA_ARG_REPACK": "llama.cpp's llama-server",
    "OLLAMA_HOST": "Ollama",
    "PHOENIX_SQL_DATABASE_URL": "Arize Phoenix",
    "PHOENIX_ENABLE_AUTH": "Arize Phoenix",
    "PHOENIX_SECRET": "Arize Phoenix",
    "TIKTOKEN_CACHE_DIR": "tiktoken",
    "PIP_NO_CACHE_DIR": "pip",
    "REQUESTS_CA_BUNDLE": "requests",
    "CURL_CA_BUNDLE": "requests",
    "OGX_LOGGING": "OGX",
}
OTHER_TOOLS_FLAGS = {
    "--embeddings": "llama-server",
    "--pooling": "llama-server",
    "--no-install-recommends": "apt-get",
    "--insecure": "ogx run",
    "--dry-run": "ogx run",
    "--port": "ogx run",
}

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
VARIABLE = re.compile(r"(?<![\w.$-])\$?([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(_\*)?(?![\w.(-])")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)
NOT_SHELL = {"python", "yaml", "yml", "json"}  # blocks whose UPPER_SNAKE words are not variables


def run_help(*command: str) -> str:
    env = {**os.environ, "COLUMNS": "200"}  # argparse wraps to the terminal; keep names whole
    result = subprocess.run(
        [sys.executable, *command, "--help"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"{' '.join(command)} --help failed:\n{result.stderr}"
    return result.stdout


@functools.cache
def script_help() -> str:
    return run_help(SCRIPT)


@functools.cache
def show_trace_help() -> str:
    return run_help(SHOW_TRACE)


@functools.cache
def other_texts() -> str:
    """The Makefile, the start scripts' usage, and the local stack's module docstrings."""
    texts = [(PROJECT_ROOT / "Makefile").read_text()]
    for script in ("start-jaeger.sh", "start-llamastack.sh"):
        result = subprocess.run(
            ["bash", script, "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30
        )
        assert "usage:" in result.stdout + result.stderr, f"{script} --help printed no usage: {result.stderr}"
        texts.append(result.stdout + result.stderr)
    for module in ("local/stack.py", "local/venvs.py", "local/chromium.py"):
        texts.append(ast.get_docstring(ast.parse((PROJECT_ROOT / module).read_text())) or "")
    texts.append((PROJECT_ROOT / "run-otel.yaml").read_text())  # the container set-up's variables
    return "\n".join(texts)


def flags_in(text: str) -> set[str]:
    return set(FLAG.findall(text))


def variables_in(text: str) -> set[str]:
    """Every UPPER_SNAKE word of a source text (run-otel.yaml writes ${env.NAME:default})."""
    return set(re.findall(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+", text))


def blank_code_blocks(markdown: str) -> str:
    """Fenced blocks blanked out, keeping every other character where it was."""
    return FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), markdown)


def without_code(markdown: str) -> str:
    return INLINE_CODE.sub("", FENCE.sub("", markdown))


def code_texts(markdown: str) -> list[str]:
    """Inline code spans and shell-ish fenced blocks: where the pages name variables."""
    blocks = [body for language, body in FENCE.findall(markdown) if language not in NOT_SHELL]
    return blocks + INLINE_CODE.findall(FENCE.sub("", markdown))


def command_lines(markdown: str) -> list[str]:
    """Each shell line (continuations joined) and inline code span, to find whole commands."""
    lines = []
    for language, body in FENCE.findall(markdown):
        if language not in NOT_SHELL:
            lines += body.replace("\\\n", " ").splitlines()
    return lines + INLINE_CODE.findall(FENCE.sub("", markdown))


def sections(markdown: str) -> list[tuple[str, str]]:
    """(heading, body) for each section; the text before the first heading has heading ''."""
    matches = list(HEADING.finditer(blank_code_blocks(markdown)))
    bounds = [0, *(m.start() for m in matches), len(markdown)]
    headings = ["", *(m.group(2) for m in matches)]
    return [(headings[i], markdown[bounds[i] : bounds[i + 1]]) for i in range(len(headings))]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for match in HEADING.finditer(blank_code_blocks(markdown)):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def page_id(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT))


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_flag_named_exists(page):
    known = flags_in(script_help()) | flags_in(show_trace_help()) | flags_in(other_texts()) | set(OTHER_TOOLS_FLAGS)
    unknown = sorted(flags_in(page.read_text()) - known)
    assert not unknown, f"{page_id(page)} names flags no command has: {unknown}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_commands_use_their_own_flags(page):
    """A show_trace.py or script command line, or a section about show_trace.py, uses that
    command's own flags (the two share some names; this keeps them from being mixed up)."""
    own = {SHOW_TRACE: flags_in(show_trace_help()), SCRIPT: flags_in(script_help())}
    wrong = set()
    for line in command_lines(page.read_text()):
        for command, flags in own.items():
            if command in line:
                wrong |= {(command, flag) for flag in flags_in(line.split(command, 1)[1]) - flags}
    for heading, body in sections(page.read_text()):
        if SHOW_TRACE in heading:
            wrong |= {(SHOW_TRACE, flag) for flag in flags_in(body) - own[SHOW_TRACE]}
    assert not wrong, f"{page_id(page)} gives commands flags they do not have: {sorted(wrong)}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_environment_variable_named_exists(page):
    known = (
        variables_in(script_help())
        | variables_in(show_trace_help())
        | variables_in(other_texts())
        | STANDARD_OTEL_VARIABLES
        | set(OTHER_TOOLS_VARIABLES)
    )
    unknown = set()
    for text in code_texts(page.read_text()):
        for match in VARIABLE.finditer(text):
            name, wildcard = match.groups()
            if wildcard:  # OTEL_BSP_*: some known variable must start with it
                if not any(k.startswith(name + "_") for k in known):
                    unknown.add(name + "_*")
            elif name not in known:
                unknown.add(name)
    assert not unknown, f"{page_id(page)} names environment variables nothing reads: {sorted(unknown)}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_relative_link_resolves(page):
    markdown = page.read_text()
    broken = []
    for target in LINK.findall(without_code(markdown)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
            broken.append(f"{target} (no heading #{anchor} in {linked.name})")
    assert not broken, f"{page_id(page)} has broken links: {broken}"


def test_readme_fits_on_a_few_screens():
    lines = (PROJECT_ROOT / "README.md").read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; keep it at {README_MAX_LINES} or fewer"


def test_readme_shows_the_trace_and_links_every_page():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert "](docs/trace-phoenix.png)" in readme
    assert (PROJECT_ROOT / "docs" / "trace-phoenix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    unlinked = [page.name for page in PAGES[1:] if f"](docs/{page.name})" not in readme]
    assert not unlinked, f"README.md links no page for {unlinked}"


def test_the_checks_see_what_they_check():
    """Guard the regular expressions: a page's names must actually be found."""
    sample = "Run `VERIFY_TRACE=1 make demo` or `--verify-wait 5`; see `OTEL_BSP_*` and [x](docs/a.md#b)."
    assert flags_in(sample) == {"--verify-wait"}
    assert [m.groups() for m in VARIABLE.finditer(sample)] == [("VERIFY_TRACE", None), ("OTEL_BSP", "_*")]
    assert LINK.findall(sample) == ["docs/a.md#b"]
    assert (
        slug("The collector is down, answers 503, or never answers")
        == "the-collector-is-down-answers-503-or-never-answers"
    )
    assert slug("`show_trace.py`: any trace, any time") == "show_tracepy-any-trace-any-time"
    assert flags_in(script_help()) >= {"--help", "--llama-stack-url", "--verify"}
