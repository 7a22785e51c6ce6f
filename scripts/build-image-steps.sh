#!/usr/bin/env bash
# The image build, without Docker. The Dockerfile runs `assemble` inside its build stage; CI runs
# this script with no arguments to prove the same steps work on a fresh copy of the sources:
#
#   bash scripts/build-image-steps.sh [--reuse-node-modules] [--keep]
#       copies the tracked sources into a temp dir, runs `assemble` there, then smoke-tests
#       `node dist/cli/main.js --help` in the assembled image root (no src/, no dev deps).
#   bash scripts/build-image-steps.sh assemble OUT
#       in the current source tree: npm ci, the native addon, tsc -> dist/, then writes the image
#       root to OUT: package.json, bin/, dist/, the addon, production node_modules only.
#
# --reuse-node-modules copies the checkout's node_modules instead of `npm ci` (offline machines).
set -euo pipefail

log() { printf '[image-steps %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[image-steps] error: %s\n' "$*" >&2; exit 1; }

# Runs in a source tree with node_modules already installed (npm ci, or a copy).
assemble() {
  local out="$1"
  [[ -n "$out" ]] || die "assemble needs an output directory"
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  if [[ ! -d node_modules ]]; then
    log "npm ci"
    npm ci --no-audit --no-fund
  fi
  if grep -q '"build:native"' package.json; then
    log "native addon (npm run build:native)"
    npm run build:native
  else
    log "no build:native script in package.json yet: image has no native addon"
  fi
  log "tsc -> dist/ (npm run build)"
  rm -rf dist
  npm run build
  log "assembling the image root in $out"
  cp package.json package-lock.json "$out/"
  cp -R bin dist "$out/"
  if compgen -G 'native/build/Release/*.node' >/dev/null; then
    mkdir -p "$out/native/build/Release"
    cp native/build/Release/*.node "$out/native/build/Release/"
    cp native/package.json "$out/native/"
  fi
  log "production dependencies only (npm ci --omit=dev)"
  # Production dependencies install no scripts: nothing runs at image build time but npm itself.
  if [[ "${REUSE_NODE_MODULES:-0}" == 1 ]]; then
    cp -R node_modules "$out/"
    (cd "$out" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
  else
    (cd "$out" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
  fi
  rm -f "$out/package-lock.json"
  # Nothing from the sources or the dev toolchain ships.
  [[ ! -e "$out/src" ]] || die "src/ leaked into the image root"
  [[ ! -e "$out/node_modules/typescript" ]] || die "dev dependency typescript leaked into the image root"
}

smoke() {
  local root="$1" node="$2"
  log "smoke test: node dist/cli/main.js --help ($("$node" --version))"
  (cd "$root" && NODE_ENV=production "$node" dist/cli/main.js --help) | tee "$root/.help.txt" >&2
  grep -q '^usage: seedcast' "$root/.help.txt" || die "dist/cli/main.js --help printed no usage"
  (cd "$root" && "$node" bin/seedcast.js --help >/dev/null) || die "bin/seedcast.js --help failed"
  # As the image runs it: `seedcast` on PATH is a symlink to bin/seedcast.js (ENTRYPOINT, and the
  # command of injected agent containers), run from another directory.
  mkdir -p "$root/.path"
  ln -sfn "$root/bin/seedcast.js" "$root/.path/seedcast"
  (cd / && PATH="$root/.path:$(dirname "$node"):$PATH" seedcast --help >/dev/null) || die "seedcast on PATH failed"
  rm -rf "$root/.path"
  if [[ -e "$root/native/build/Release/seedcast_native.node" ]]; then
    # The addon loads from dist/ in the image layout (CUDA and NCCL are dlopen()ed later, on use).
    (cd "$root" && "$node" --input-type=module -e \
      "const { loadBinding } = await import('./dist/native/loader.js'); loadBinding({}); console.log('addon loads')" >&2) ||
      die "the native addon does not load from the image root"
  fi
  rm -f "$root/.help.txt"
  log "ok: $(du -sh "$root" | cut -f1) image root, $(find "$root/node_modules" -maxdepth 1 -mindepth 1 | wc -l) top-level packages"
}

case "${1:-}" in
  assemble)
    assemble "${2:-}"
    exit 0
    ;;
esac

REUSE=0
KEEP=0
for a in "$@"; do
  case "$a" in
    --reuse-node-modules) REUSE=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown argument $a" ;;
  esac
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# npm scripts (tsc, cmake-js) and npm itself on the checkout's pinned Node 24, as in the image.
[[ -x "$repo/node_modules/.bin/node" ]] && export PATH="$repo/node_modules/.bin:$PATH"
work="$(mktemp -d "${TMPDIR:-/tmp}/seedcast-image.XXXXXX")"
[[ $KEEP == 1 ]] && log "keeping $work" || trap 'rm -rf "$work"' EXIT
log "copying the sources (git ls-files, as the Docker build context after .dockerignore) to $work/src"
mkdir -p "$work/src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard |
  xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' |
  tar --null -T - -cf -) | (cd "$work/src" && tar -xf -)
if [[ $REUSE == 1 ]]; then
  cp -R "$repo/node_modules" "$work/src/"
fi
(cd "$work/src" && REUSE_NODE_MODULES=$REUSE assemble "$work/image")
# The runtime image runs the base image's Node 24; here, the pinned Node 24 from the checkout.
node="$repo/node_modules/.bin/node"
[[ -x "$node" ]] || node="$(command -v node)"
smoke "$work/image" "$node"
