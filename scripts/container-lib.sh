# Functions shared by start-jaeger.sh and start-llamastack.sh; sourced, not run.
# shellcheck shell=bash

die() {
  echo "error: $*" >&2
  exit 1
}

info() {
  echo "$*" >&2
}

# Sets ENGINE: $CONTAINER_ENGINE if given, else podman, else docker — whichever answers.
# A docker client without a running daemon does not count.
detect_engine() {
  if [[ -n "${CONTAINER_ENGINE:-}" ]]; then
    command -v "${CONTAINER_ENGINE}" >/dev/null 2>&1 \
      || die "CONTAINER_ENGINE=${CONTAINER_ENGINE} is not a command on PATH"
    ENGINE="${CONTAINER_ENGINE}"
    return
  fi
  local candidate
  for candidate in podman docker; do
    if command -v "${candidate}" >/dev/null 2>&1 && "${candidate}" info >/dev/null 2>&1; then
      ENGINE="${candidate}"
      return
    fi
  done
  die "no working container engine (podman or docker) found — install and start one, set CONTAINER_ENGINE, or run the container-free local stack instead"
}

# Prints running, stopped or absent for the named container.
container_state() {
  local name="$1" running
  if ! running="$("${ENGINE}" inspect --format '{{.State.Running}}' "${name}" 2>/dev/null)"; then
    echo absent
  elif [[ "${running}" == "true" ]]; then
    echo running
  else
    echo stopped
  fi
}

# Removes the named container if it exists (running or not).
remove_container() {
  local name="$1"
  if [[ "$(container_state "${name}")" != absent ]]; then
    "${ENGINE}" rm -f "${name}" >/dev/null
  fi
}

# Polls url until it answers 2xx, for at most timeout seconds; on failure shows the
# container's last log lines and exits non-zero.
wait_for_http() {
  local url="$1" timeout="$2" name="$3"
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if curl --silent --fail --max-time 2 --output /dev/null "${url}"; then
      return 0
    fi
    if [[ "$(container_state "${name}")" != running ]]; then
      break
    fi
    sleep 1
  done
  info "--- last log lines of ${name} ---"
  "${ENGINE}" logs --tail 50 "${name}" >&2 || true
  die "${name} did not answer at ${url} within ${timeout} s"
}

# Both containers join one user-defined network, so Llama Stack reaches Jaeger by
# name (http://jaeger:4318) while the host sees only ports published on loopback.
ensure_network() {
  local network="$1"
  if ! "${ENGINE}" network inspect "${network}" >/dev/null 2>&1; then
    "${ENGINE}" network create "${network}" >/dev/null
  fi
}

# The scripts using this file define usage, start and service_url.

# Returns 1 (after saying so) when the container already runs; otherwise clears the
# way for a new one: removes a stopped one and makes sure the shared network exists.
needs_start() {
  local name="$1"
  if [[ "$(container_state "${name}")" == running ]]; then
    info "${name} is already running: $(service_url)"
    return 1
  fi
  remove_container "${name}"
  ensure_network "${CONTAINER_NETWORK}"
}

show_status() {
  local name="$1" state
  state="$(container_state "${name}")"
  if [[ "${state}" != running ]]; then
    echo "${name}: ${state}"
    return 1
  fi
  echo "${name}: running — $(service_url)"
}

# Carries out the start|stop|status|logs command line for the named container.
run_command() {
  local name="$1" command="${2:-}"
  case "${command}" in
    start | stop | status | logs) ;;
    -h | --help | help)
      usage
      return 0
      ;;
    *)
      usage >&2
      return 2
      ;;
  esac
  detect_engine
  case "${command}" in
    start) start ;;
    stop)
      remove_container "${name}"
      info "${name} stopped"
      ;;
    status) show_status "${name}" ;;
    logs) "${ENGINE}" logs "${name}" ;;
  esac
}
