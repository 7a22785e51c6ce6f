# Shared helpers for test/cluster/*.sh (sourced, not run).
set -euo pipefail

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$CLUSTER_DIR/versions.env"

log() { printf '[cluster-build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[cluster-build] error: %s\n' "$*" >&2; exit 1; }

require_go() {
  command -v go >/dev/null 2>&1 || die "go is not on PATH (need go >= $GO_VERSION)"
}

PROXY_REFUSAL='unknown revision|invalid version|not found|not available|403 Forbidden|410 Gone|404 Not Found|no matching versions'

proxy_refused() {
  die "the Go module proxy ($(go env GOPROXY)) refused a pinned version (see above). Pick a served version in test/cluster/versions.env (check with: go list -m -versions MODULE) and run: bash test/cluster/gen-wrappers.sh"
}

# Runs a go command that talks to the module proxy; turns a refusal into a clear message.
go_proxy() {
  local out
  if ! out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    if grep -qE "$PROXY_REFUSAL" <<<"$out"; then proxy_refused; fi
    die "'$*' failed (see above)"
  fi
  [[ -z "$out" ]] || printf '%s\n' "$out" >&2
}

# Runs a command in the background with its output in LOGFILE, printing every 30 s how long it
# has run and how many lines of LOGFILE match COUNT_RE (packages compiled, modules fetched).
#   with_heartbeat LABEL LOGFILE COUNT_RE WHAT_IS_COUNTED cmd...
with_heartbeat() {
  local label="$1" logfile="$2" count_re="$3" counted="$4"; shift 4
  local start=$SECONDS last=$SECONDS pid n status=0
  "$@" >"$logfile" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    if ((SECONDS - last >= 30)); then
      last=$SECONDS
      n="$(grep -cE "$count_re" "$logfile" || true)"
      log "$label: $n $counted, $((SECONDS - start))s"
    fi
  done
  wait "$pid" || status=$?
  return "$status"
}
