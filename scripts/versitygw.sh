#!/usr/bin/env bash
# Usage: scripts/versitygw.sh [VERSION]
#
# Ensures a versitygw binary (an S3-compatible gateway over a directory, the
# S3 target of the backup integration test) built with `go install` from the
# Go module proxy, and prints its path as the last line of stdout. Progress
# goes to stderr.
#
# Cache: ${PULUMI_MATRIX_CACHE_DIR:-$HOME/.cache/pulumi-matrix}/versitygw/<VERSION>/
#   bin/versitygw  the binary; `.complete` is written last, after it ran
# Go's module and build caches are Go's own (GOMODCACHE, GOCACHE).
# A flock on a sibling lock file serialises concurrent callers.
set -euo pipefail

VERSION="${1:-v1.8.0}"
if ! [[ "$VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "usage: $0 [VERSION]  (a release tag such as v1.8.0)" >&2
  exit 2
fi
if ! command -v go >/dev/null 2>&1; then
  echo "versitygw: the go command is needed (Go from the machine's toolchain)" >&2
  exit 1
fi

log() { echo "versitygw: $*" >&2; }

cache="${PULUMI_MATRIX_CACHE_DIR:-$HOME/.cache/pulumi-matrix}/versitygw"
dir="$cache/$VERSION"
mkdir -p "$cache"
exec 9>"$cache/$VERSION.lock"
flock 9

if [ -f "$dir/.complete" ] && [ -x "$dir/bin/versitygw" ]; then
  echo "$dir/bin/versitygw"
  exit 0
fi
rm -rf "$dir"
mkdir -p "$dir/bin"
log "building github.com/versity/versitygw/cmd/versitygw@$VERSION (go install, once per version)"
GOBIN="$dir/bin" GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VERSION" >&2
"$dir/bin/versitygw" --version >/dev/null 2>&1 || "$dir/bin/versitygw" --help >/dev/null 2>&1 || {
  log "the built binary does not run"
  exit 1
}
touch "$dir/.complete"
echo "$dir/bin/versitygw"
