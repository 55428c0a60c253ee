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
