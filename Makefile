# Entry points: `make demo` (the traced RAG agent on the local stack), `make test` (what
# CI runs) and `make help`. Heavy things (venvs, the llama-server build, the model) are
# cached outside the clone, under $LLAMA_STACK_OTEL_CACHE (default ~/.cache/llama-stack-otel),
# keyed by what they are built from.

SHELL := /bin/bash
.SHELLFLAGS := -Eeuo pipefail -c
PYTHON ?= python3
PYTEST_ARGS ?=
BENCH_ARGS ?=

CLIENT_REQS := requirements.txt requirements-dev.txt
SERVER_REQS := local/requirements-server.txt
client_venv = $$($(PYTHON) local/venvs.py client $(CLIENT_REQS))
server_venv = $$($(PYTHON) local/venvs.py server $(SERVER_REQS))

STACK := $(PYTHON) -m local.stack
ARGS ?=

.PHONY: help demo stack-up stack-down stack-status stack-logs venvs test test-unit test-instrumentation lint bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-21s %s\n", $$1, $$2}'

demo: ## start the local stack (if needed) and run the traced RAG agent on it; ARGS="..." adds script flags
	@$(STACK) demo $(ARGS)

stack-up: ## start the local stack: llama-server + trace backend + Llama Stack, on 127.0.0.1
	@$(STACK) up

stack-down: ## stop the local stack
	@$(STACK) down

stack-status: ## show what of the local stack runs, where, and its logs
	@$(STACK) status || true  # "not running" is an answer, not a failure

stack-logs: ## the last lines of each local stack log
	@$(STACK) logs

venvs: ## build (or reuse) the client and server venvs
	@echo "client venv: $(client_venv)"
	@echo "server venv: $(server_venv)"

test: lint test-instrumentation ## lint, the instrumentor per client release, then the whole suite: unit tests, the local stack end to end (Llama Stack 0.2.12 and 0.7.3, OGX 1.5.0, llama.cpp, Phoenix, Chromium)
	@$(STACK) prepare --with-browser --all-versions  # Chromium: a test opens the Phoenix link; every Llama Stack generation is tested
	@client="$(client_venv)"; server="$(server_venv)"; \
	LLAMA_STACK_PYTHON="$$server/bin/python" "$$client/bin/python" -m pytest $(PYTEST_ARGS)

test-unit: ## only the fast tests (no Llama Stack server)
	@client="$(client_venv)"; "$$client/bin/python" -m pytest -m "not server" $(PYTEST_ARGS)

test-instrumentation: ## the client instrumentor's tests, once per client release (0.2.12, 0.7.0, 0.7.5, OGX 1.0.0, 1.1.3, 1.2.0, 1.5.0), each in its venv
	@$(PYTHON) -m local.instrumentation_matrix

lint: ## ruff (lint and format check), mypy on the package and the script, shellcheck on every shell script
	@client="$(client_venv)"; \
	"$$client/bin/ruff" check . && \
	"$$client/bin/mypy" && \
	"$$client/bin/shellcheck" --external-sources start-jaeger.sh start-llamastack.sh scripts/container-lib.sh .ci/run && \
	echo "lint: ruff, mypy and shellcheck clean"

bench: ## what tracing costs, side by side on a local stack of its own (about 12 min); BENCH_ARGS="--reps 5 --only p1,p3"
	@client="$(client_venv)"; PYTHONPATH=instrumentation/tests "$$client/bin/python" -m bench.run $(BENCH_ARGS)  # the instrumentor's canned server
