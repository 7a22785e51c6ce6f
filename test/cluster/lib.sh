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

# Runs a go command that talks to the module proxy; turns a refusal into a clear message.
go_proxy() {
  local out
  if ! out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    if grep -qE 'unknown revision|invalid version|not found|410 Gone|404 Not Found|no matching versions' <<<"$out"; then
      die "the Go module proxy ($(go env GOPROXY)) refused a pinned version (see above). Pick a served version in test/cluster/versions.env (check with: go list -m -versions MODULE) and run: bash test/cluster/gen-wrappers.sh"
    fi
    die "'$*' failed (see above)"
  fi
  [[ -z "$out" ]] || printf '%s\n' "$out" >&2
}
