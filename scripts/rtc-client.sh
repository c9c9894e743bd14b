#!/usr/bin/env bash
# Usage: scripts/rtc-client.sh
#
# Builds the integration suite's LiveKit test client
# (test/support/integration/rtc-client: Go, github.com/livekit/server-sdk-go/v2
# from the Go module proxy, pinned by its go.sum) and prints the binary's path
# as the last line of stdout. Progress goes to stderr.
#
# Cache: ${PULUMI_MATRIX_CACHE_DIR:-$HOME/.cache/pulumi-matrix}/rtc-client/
#   <first 16 hex of sha256(go.mod, go.sum, *.go, go version)>/rtc-client
# The binary is built beside its final name and renamed into place, so a
# path that exists is a complete build. A flock serialises concurrent callers.
#
# Needs Go (/usr/local/go/bin is searched too, where the Go tarball installs;
# ../shared/matrixrtc/build.sh finds it the same way). The first build
# downloads the SDK's modules (GOPROXY as configured) and takes a few minutes.
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../test/support/integration/rtc-client" && pwd)"
log() { echo "rtc-client: $*" >&2; }

export PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null; then
  log "go not found (install Go, e.g. the golang-go Debian package or the Go tarball in /usr/local/go)"
  exit 1
fi
# The module's own toolchain line decides nothing here: the installed Go builds it or says why not.
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0

key="$( (cd "$src" && cat go.mod go.sum ./*.go && go version) | sha256sum | cut -c1-16)"
dir="${PULUMI_MATRIX_CACHE_DIR:-$HOME/.cache/pulumi-matrix}/rtc-client/$key"
bin="$dir/rtc-client"
mkdir -p "$dir"

exec 9>"$dir.lock"
flock 9
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

log "building $key (downloads github.com/livekit/server-sdk-go/v2 the first time)"
start=$SECONDS
tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(cd "$src" && go build -mod=readonly -trimpath -ldflags "-s -w" -o "$tmp" .)
mv -f "$tmp" "$bin"
log "built in $((SECONDS - start)) s"
echo "$bin"
