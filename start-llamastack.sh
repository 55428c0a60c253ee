#!/usr/bin/env bash
# Run Llama Stack in a container, its telemetry sent to the Jaeger container that
# start-jaeger.sh runs. 0.2.x/0.3.x: the Ollama distribution with run-otel.yaml and its own
# telemetry provider. 0.4 to 0.7 (LLAMA_STACK_VERSION=0.7.3): the starter distribution
# with its built-in config (Ollama through OLLAMA_URL), run under opentelemetry-instrument,
# since those releases trace only through OpenTelemetry's auto-instrumentation. 1.x
# (LLAMA_STACK_VERSION=1.5.0): OGX, Llama Stack under its new name: its starter image, whose
# own entrypoint runs the server under opentelemetry-instrument once an OTEL_* variable is set.
set -Eeuo pipefail  # stop at the first failing command, unset variable or broken pipe

LLAMA_STACK_VERSION="${LLAMA_STACK_VERSION:-0.2.12}"
IFS=. read -r _major _minor _ <<<"${LLAMA_STACK_VERSION}.0.0"
if ((10#${_major:-0} >= 1)); then
  GENERATION=ogx  # as "instrumented", renamed; the image wraps itself in opentelemetry-instrument
  DEFAULT_IMAGE="docker.io/ogxai/distribution-starter:${LLAMA_STACK_VERSION}"
elif ((10#${_minor:-0} >= 4)); then
  GENERATION=instrumented  # no telemetry provider, no Agents API: Responses API + file_search
  DEFAULT_IMAGE="docker.io/llamastack/distribution-starter:${LLAMA_STACK_VERSION}"
else
  GENERATION=provider
  DEFAULT_IMAGE="docker.io/llamastack/distribution-ollama:${LLAMA_STACK_VERSION}"
fi
LLAMA_STACK_IMAGE="${LLAMA_STACK_IMAGE:-${DEFAULT_IMAGE}}"
LLAMA_STACK_CONTAINER="${LLAMA_STACK_CONTAINER:-llamastack}"
LLAMA_STACK_BIND="${LLAMA_STACK_BIND:-127.0.0.1}"
LLAMA_STACK_PORT="${LLAMA_STACK_PORT:-8321}"
INFERENCE_MODEL="${INFERENCE_MODEL:-meta-llama/Llama-3.1-8B-Instruct}"
OLLAMA_URL="${OLLAMA_URL:-}"
OTEL_SERVICE_NAME="${OTEL_SERVICE_NAME:-LlamaStack}"
TELEMETRY_SINKS="${TELEMETRY_SINKS:-otel_trace,otel_metric}"
OTEL_TRACE_ENDPOINT="${OTEL_TRACE_ENDPOINT:-http://jaeger:4318/v1/traces}"
OTEL_METRIC_ENDPOINT="${OTEL_METRIC_ENDPOINT:-http://jaeger:4318/v1/metrics}"
OTEL_EXPORTER_OTLP_ENDPOINT="${OTEL_EXPORTER_OTLP_ENDPOINT:-http://jaeger:4318}"
CONTAINER_NETWORK="${CONTAINER_NETWORK:-llama-otel}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-180}"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_CONFIG="${SCRIPT_DIR}/run-otel.yaml"
# shellcheck source=scripts/container-lib.sh
source "${SCRIPT_DIR}/scripts/container-lib.sh"

usage() {
  cat <<USAGE
usage: $(basename "$0") start|stop|status|logs

Runs ${LLAMA_STACK_IMAGE} ($(describe_generation)), serving the Llama Stack API on
http://${LLAMA_STACK_BIND}:${LLAMA_STACK_PORT} and sending its spans to Jaeger.

  start    start the container (replacing a stopped one) and wait for /v1/health
  stop     stop and remove the container
  status   say whether it runs, and where
  logs     print its logs

Settings (environment variable, current value):
  CONTAINER_ENGINE       ${CONTAINER_ENGINE:-(podman, else docker)}
  LLAMA_STACK_VERSION    ${LLAMA_STACK_VERSION}   (0.2.x/0.3.x, 0.4 to 0.7, or 1.x for OGX)
  LLAMA_STACK_IMAGE      ${LLAMA_STACK_IMAGE}
  LLAMA_STACK_CONTAINER  ${LLAMA_STACK_CONTAINER}
  LLAMA_STACK_BIND       ${LLAMA_STACK_BIND}   (0.0.0.0 publishes the API beyond this machine)
  LLAMA_STACK_PORT       ${LLAMA_STACK_PORT}
  INFERENCE_MODEL        ${INFERENCE_MODEL}   (pull it into Ollama first)
  OLLAMA_URL             ${OLLAMA_URL:-(Ollama on the host: host.containers.internal:11434 with podman, host.docker.internal:11434 with docker)}
  OTEL_SERVICE_NAME      ${OTEL_SERVICE_NAME}
  TELEMETRY_SINKS        ${TELEMETRY_SINKS}   (0.2.x/0.3.x)
  OTEL_TRACE_ENDPOINT    ${OTEL_TRACE_ENDPOINT}   (0.2.x/0.3.x; as seen from inside the container)
  OTEL_METRIC_ENDPOINT   ${OTEL_METRIC_ENDPOINT}   (0.2.x/0.3.x)
  OTEL_EXPORTER_OTLP_ENDPOINT ${OTEL_EXPORTER_OTLP_ENDPOINT}   (0.4 and later, OGX; OTLP/HTTP base URL)
  CONTAINER_NETWORK      ${CONTAINER_NETWORK}   (shared with start-jaeger.sh)
  HEALTH_TIMEOUT         ${HEALTH_TIMEOUT} s
USAGE
}

describe_generation() {
  case "${GENERATION}" in
    ogx) echo "OGX's starter config; the image's entrypoint adds opentelemetry-instrument" ;;
    instrumented) echo "its starter config, under opentelemetry-instrument" ;;
    *) echo "run-otel.yaml" ;;
  esac
}

service_url() {
  echo "http://${LLAMA_STACK_BIND/0.0.0.0/localhost}:${LLAMA_STACK_PORT}"
}

start() {
  [[ -f "${RUN_CONFIG}" ]] || die "missing ${RUN_CONFIG}"
  needs_start "${LLAMA_STACK_CONTAINER}" || return 0

  # The container reaches the host's Ollama through the engine's name for the host.
  local host_args=()
  local ollama_url="${OLLAMA_URL}"
  if [[ -z "${ollama_url}" ]]; then
    if [[ "$(basename "${ENGINE}")" == docker ]]; then
      ollama_url="http://host.docker.internal:11434"
      host_args=(--add-host "host.docker.internal:host-gateway")
    else
      ollama_url="http://host.containers.internal:11434"
    fi
  fi

  info "starting ${LLAMA_STACK_IMAGE} with ${ENGINE} (model ${INFERENCE_MODEL}, Ollama at ${ollama_url})"
  local common=(--detach --name "${LLAMA_STACK_CONTAINER}"
    --network "${CONTAINER_NETWORK}" "${host_args[@]}"
    --publish "${LLAMA_STACK_BIND}:${LLAMA_STACK_PORT}:${LLAMA_STACK_PORT}"
    --env "INFERENCE_MODEL=${INFERENCE_MODEL}"
    --env "OTEL_SERVICE_NAME=${OTEL_SERVICE_NAME}")
  local spans_to
  if [[ "${GENERATION}" != provider ]]; then
    # The starter config enables Ollama when OLLAMA_URL is set (the OpenAI-style /v1 path);
    # the server's spans go over OTLP/HTTP protobuf, metrics and logs off.
    common+=(--env "OLLAMA_URL=${ollama_url}/v1"
      --env "OTEL_EXPORTER_OTLP_ENDPOINT=${OTEL_EXPORTER_OTLP_ENDPOINT}"
      --env "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
      --env "OTEL_TRACES_EXPORTER=otlp"
      --env "OTEL_METRICS_EXPORTER=none"
      --env "OTEL_LOGS_EXPORTER=none")
    spans_to="${OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces"
  fi
  if [[ "${GENERATION}" == ogx ]]; then
    # Its entrypoint runs `ogx stack run starter` with these arguments, under
    # opentelemetry-instrument since OTEL_* variables are set. --insecure: OGX refuses plain
    # HTTP without it; the port is published on LLAMA_STACK_BIND (loopback) only.
    "${ENGINE}" run "${common[@]}" \
      "${LLAMA_STACK_IMAGE}" --port "${LLAMA_STACK_PORT}" --insecure >/dev/null
  elif [[ "${GENERATION}" == instrumented ]]; then
    "${ENGINE}" run "${common[@]}" \
      --entrypoint opentelemetry-instrument \
      "${LLAMA_STACK_IMAGE}" llama stack run starter --port "${LLAMA_STACK_PORT}" >/dev/null
  else
    "${ENGINE}" run "${common[@]}" \
      --volume "${RUN_CONFIG}:/root/run-otel.yaml:ro,Z" \
      --env "OLLAMA_URL=${ollama_url}" \
      --env "TELEMETRY_SINKS=${TELEMETRY_SINKS}" \
      --env "OTEL_TRACE_ENDPOINT=${OTEL_TRACE_ENDPOINT}" \
      --env "OTEL_METRIC_ENDPOINT=${OTEL_METRIC_ENDPOINT}" \
      "${LLAMA_STACK_IMAGE}" --config /root/run-otel.yaml --port "${LLAMA_STACK_PORT}" >/dev/null
    spans_to="${OTEL_TRACE_ENDPOINT}"
  fi
  wait_for_http "$(service_url)/v1/health" "${HEALTH_TIMEOUT}" "${LLAMA_STACK_CONTAINER}"
  info "Llama Stack: $(service_url)   spans to ${spans_to}"
}

main() {
  run_command "${LLAMA_STACK_CONTAINER}" "$@"
}

main "$@"
