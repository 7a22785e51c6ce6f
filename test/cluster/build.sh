#!/usr/bin/env bash
# Builds the dev-cluster binaries from source (Go module proxy only) into a cache outside the repo:
#   ${SEEDCAST_CACHE:-$HOME/.cache/seedcast}/bin/<name>-<version>   (+ a <name> symlink)
# Versioned names make a version bump in versions.env rebuild; an existing binary is reused.
#   bash test/cluster/build.sh [--force] [--list] [names...]
# names: etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm metrics-server
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CACHE="${SEEDCAST_CACHE:-$HOME/.cache/seedcast}"
BIN="$CACHE/bin"
LOGS="$CACHE/build-logs"
FORCE=0
LIST=0
WANT=()
for a in "$@"; do
  case "$a" in
    --force) FORCE=1 ;;
    --list) LIST=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    -*) die "unknown option $a" ;;
    *) WANT+=("$a") ;;
  esac
done

K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
ALL=(etcd "${K8S_BINS[@]}" kwok helm metrics-server)
[[ ${#WANT[@]} -gt 0 ]] || WANT=("${ALL[@]}")

version_of() {
  case "$1" in
    etcd) echo "$ETCD_VERSION" ;;
    kube-*|kubectl) echo "$KUBERNETES_VERSION" ;;
    kwok) echo "$KWOK_VERSION" ;;
    helm) echo "$HELM_VERSION" ;;
    metrics-server) echo "$METRICS_SERVER_VERSION" ;;
    *) die "unknown binary '$1' (one of: ${ALL[*]})" ;;
  esac
}
target_of() { echo "$BIN/$1-$(version_of "$1")"; }

if [[ $LIST -eq 1 ]]; then
  for b in "${WANT[@]}"; do printf '%s\t%s\n' "$b" "$(target_of "$b")"; done
  exit 0
fi

missing=()
for b in "${WANT[@]}"; do
  t="$(target_of "$b")"
  if [[ $FORCE -eq 1 || ! -x "$t" ]]; then missing+=("$b"); fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  log "all binaries present in $BIN"
  exit 0
fi

require_go
mkdir -p "$BIN" "$LOGS"
log "building ${missing[*]} into $BIN (go $(go env GOVERSION), $(nproc) cores)"

# The wrapper's go.mod must pin what versions.env says (else: run gen-wrappers.sh).
check_wrapper() {
  local dir="$1" module="$2" version="$3"
  grep -qE "^\s*(require\s+)?$module $version( |$)" "$CLUSTER_DIR/$dir/go.mod" ||
    die "test/cluster/$dir/go.mod does not require $module $version (versions.env); run: bash test/cluster/gen-wrappers.sh $dir"
}

# Downloads the wrapper's modules, then builds PKG... into OUT_DIR, with heartbeats.
# Usage: go_build WRAPPER_DIR OUT_DIR LDFLAGS PKG...
go_build() {
  local dir="$1" out="$2" ldflags="$3"; shift 3
  local name start
  name="$(basename "$dir")"
  start=$SECONDS
  log "$name: downloading modules (log: $LOGS/$name-download.log)"
  if ! (cd "$CLUSTER_DIR/$dir" && with_heartbeat "$name" "$LOGS/$name-download.log" '^# get .*\.zip$' \
    'module zips fetched' go mod download -x); then
    grep -vE '^(# get|mkdir|cd |unzip|rm )' "$LOGS/$name-download.log" | tail -n 20 >&2
    if grep -qE "$PROXY_REFUSAL" "$LOGS/$name-download.log"; then proxy_refused; fi
    die "$name: go mod download failed; full log: $LOGS/$name-download.log"
  fi
  log "$name: compiling $* (log: $LOGS/$name.log)"
  if ! (cd "$CLUSTER_DIR/$dir" && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath -mod=readonly -buildvcs=false" \
    with_heartbeat "$name" "$LOGS/$name.log" . 'packages compiled' \
    go build -p "${SEEDCAST_BUILD_JOBS:-$(nproc)}" -v -ldflags "-s -w $ldflags" -o "$out/" "$@"); then
    tail -n 40 "$LOGS/$name.log" >&2
    die "$name: go build failed; full log: $LOGS/$name.log"
  fi
  log "$name: built in $((SECONDS - start))s"
}

# Moves freshly built binaries to their versioned names and points the plain name at them.
install_bins() {
  local tmp="$1" b; shift
  for b in "$@"; do
    mv -f "$tmp/$b" "$(target_of "$b")"
    ln -sfn "$(basename "$(target_of "$b")")" "$BIN/$b"
  done
}

contains() { local x="$1"; shift; for y in "$@"; do [[ "$x" == "$y" ]] && return 0; done; return 1; }

TMP="$(mktemp -d "$CACHE/build.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
TOTAL_START=$SECONDS

if contains etcd "${missing[@]}"; then
  check_wrapper etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  go_build etcd "$TMP/etcd-out" "" go.etcd.io/etcd/server/v3
  mv "$TMP/etcd-out/v3" "$TMP/etcd-out/etcd" 2>/dev/null || mv "$TMP/etcd-out/server" "$TMP/etcd-out/etcd"
  install_bins "$TMP/etcd-out" etcd
fi

k8s=()
for b in "${K8S_BINS[@]}"; do contains "$b" "${missing[@]}" && k8s+=("$b"); done
if [[ ${#k8s[@]} -gt 0 ]]; then
  check_wrapper kubernetes k8s.io/kubernetes "$KUBERNETES_VERSION"
  minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  # gitVersion keeps kubectl and the API server from reporting v0.0.0-master (version skew noise).
  ld="-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
  ld+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ld+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ld+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION"
  pkgs=()
  for b in "${k8s[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  go_build kubernetes "$TMP/k8s-out" "$ld" "${pkgs[@]}"
  install_bins "$TMP/k8s-out" "${k8s[@]}"
fi

if contains kwok "${missing[@]}"; then
  check_wrapper kwok sigs.k8s.io/kwok "$KWOK_VERSION"
  go_build kwok "$TMP/kwok-out" "-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" sigs.k8s.io/kwok/cmd/kwok
  install_bins "$TMP/kwok-out" kwok
fi

if contains helm "${missing[@]}"; then
  check_wrapper helm helm.sh/helm/v3 "$HELM_VERSION"
  go_build helm "$TMP/helm-out" "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" helm.sh/helm/v3/cmd/helm
  install_bins "$TMP/helm-out" helm
fi

if contains metrics-server "${missing[@]}"; then
  check_wrapper metrics-server sigs.k8s.io/metrics-server "$METRICS_SERVER_VERSION"
  go_build metrics-server "$TMP/ms-out" "" sigs.k8s.io/metrics-server/cmd/metrics-server
  install_bins "$TMP/ms-out" metrics-server
fi

log "done in $((SECONDS - TOTAL_START))s: ${missing[*]}"
