#!/usr/bin/env bash
# Run Jaeger 2.x all-in-one in a container: OTLP/HTTP in on 4318, the trace UI on 16686.
set -Eeuo pipefail  # stop at the first failing command, unset variable or broken pipe

JAEGER_VERSION="${JAEGER_VERSION:-2.1.0}"
JAEGER_IMAGE="${JAEGER_IMAGE:-docker.io/jaegertracing/jaeger:${JAEGER_VERSION}}"
JAEGER_CONTAINER="${JAEGER_CONTAINER:-jaeger}"
JAEGER_BIND="${JAEGER_BIND:-127.0.0.1}"
JAEGER_UI_PORT="${JAEGER_UI_PORT:-16686}"
JAEGER_OTLP_HTTP_PORT="${JAEGER_OTLP_HTTP_PORT:-4318}"
JAEGER_OTLP_GRPC_PORT="${JAEGER_OTLP_GRPC_PORT:-4317}"
CONTAINER_NETWORK="${CONTAINER_NETWORK:-llama-otel}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-60}"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/container-lib.sh
source "${SCRIPT_DIR}/scripts/container-lib.sh"

usage() {
  cat <<USAGE
usage: $(basename "$0") start|stop|status|logs

Runs Jaeger ${JAEGER_VERSION} all-in-one with podman or docker.

  start    start the container (replacing a stopped one) and wait until the UI answers
  stop     stop and remove the container
  status   say whether it runs, and where
  logs     print its logs

Settings (environment variable, current value):
  CONTAINER_ENGINE       ${CONTAINER_ENGINE:-(podman, else docker)}
  JAEGER_VERSION         ${JAEGER_VERSION}
  JAEGER_IMAGE           ${JAEGER_IMAGE}
  JAEGER_CONTAINER       ${JAEGER_CONTAINER}
  JAEGER_BIND            ${JAEGER_BIND}   (0.0.0.0 publishes the ports beyond this machine)
  JAEGER_UI_PORT         ${JAEGER_UI_PORT}
  JAEGER_OTLP_HTTP_PORT  ${JAEGER_OTLP_HTTP_PORT}
  JAEGER_OTLP_GRPC_PORT  ${JAEGER_OTLP_GRPC_PORT}
  CONTAINER_NETWORK      ${CONTAINER_NETWORK}   (shared with start-llamastack.sh)
  HEALTH_TIMEOUT         ${HEALTH_TIMEOUT} s
USAGE
}

service_url() {
  echo "http://${JAEGER_BIND/0.0.0.0/localhost}:${JAEGER_UI_PORT}"
}

start() {
  needs_start "${JAEGER_CONTAINER}" || return 0
  info "starting ${JAEGER_IMAGE} with ${ENGINE}"
  "${ENGINE}" run --detach --name "${JAEGER_CONTAINER}" \
    --network "${CONTAINER_NETWORK}" --network-alias jaeger \
    --publish "${JAEGER_BIND}:${JAEGER_UI_PORT}:16686" \
    --publish "${JAEGER_BIND}:${JAEGER_OTLP_HTTP_PORT}:4318" \
    --publish "${JAEGER_BIND}:${JAEGER_OTLP_GRPC_PORT}:4317" \
    "${JAEGER_IMAGE}" >/dev/null
  wait_for_http "$(service_url)/" "${HEALTH_TIMEOUT}" "${JAEGER_CONTAINER}"
  info "Jaeger UI: $(service_url)   OTLP/HTTP: http://${JAEGER_BIND/0.0.0.0/localhost}:${JAEGER_OTLP_HTTP_PORT}/v1/traces"
}

main() {
  run_command "${JAEGER_CONTAINER}" "$@"
}

main "$@"
