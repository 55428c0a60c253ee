# Entry points: `make test` (what CI runs) and `make help`.
# Heavy things (venvs) are cached outside the clone, under $LLAMA_STACK_OTEL_CACHE
# (default ~/.cache/llama-stack-otel), keyed by the requirement files.

SHELL := /bin/bash
.SHELLFLAGS := -Eeuo pipefail -c
PYTHON ?= python3
PYTEST_ARGS ?=

CLIENT_REQS := requirements.txt requirements-dev.txt
SERVER_REQS := local/requirements-server.txt
client_venv = $$($(PYTHON) local/venvs.py client $(CLIENT_REQS))
server_venv = $$($(PYTHON) local/venvs.py server $(SERVER_REQS))

.PHONY: help venvs test test-unit lint

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

venvs: ## build (or reuse) the client and server venvs
	@echo "client venv: $(client_venv)"
	@echo "server venv: $(server_venv)"

test: ## the whole suite: unit tests, shellcheck, and a real Llama Stack server
	@client="$(client_venv)"; server="$(server_venv)"; \
	LLAMA_STACK_PYTHON="$$server/bin/python" "$$client/bin/python" -m pytest $(PYTEST_ARGS)

test-unit: ## only the fast tests (no Llama Stack server)
	@client="$(client_venv)"; "$$client/bin/python" -m pytest -m "not server" $(PYTEST_ARGS)

lint: ## shellcheck every shell script
	@client="$(client_venv)"; "$$client/bin/shellcheck" --external-sources start-jaeger.sh start-llamastack.sh scripts/container-lib.sh .ci/run && echo "shellcheck: clean"
