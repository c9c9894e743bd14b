#!/usr/bin/env bash
# Usage: scripts/synapse-venv.sh VERSION [EXTRAS]
#
# Ensures a Python virtualenv with matrix-synapse[EXTRAS]==VERSION (EXTRAS as
# the library installs them, SYNAPSE_PIP_EXTRAS in src/model/synapse/index.ts, passed by the TS wrapper)
# from PyPI, built with Debian's system Python (/usr/bin/python3, the one a
# Debian VM has; never pyenv), and prints its directory as the last line of
# stdout. Progress goes to stderr.
#
# Cache: ${PULUMI_MATRIX_CACHE_DIR:-$HOME/.cache/pulumi-matrix}/
#   synapse-venv/<VERSION>-py<major.minor>-<first 12 hex of sha256(this script)>/
#   pip/   pip's download and wheel cache (the psycopg2 wheel built from
#          source is kept there, so rebuilds skip the compile)
#
# A venv embeds its absolute path (bin/ scripts, pyvenv.cfg), so it cannot
# be built elsewhere and renamed. It is built in place and the marker file
# `.complete` is written last, only after the checks passed; a directory
# without the marker is a broken build and is deleted and rebuilt. A flock
# on a sibling lock file serialises concurrent callers.
#
# Needs: python3-venv, python3-dev, libpq-dev, build-essential (psycopg2 is
# compiled against libpq): scripts/integration-deps.sh installs them.
set -euo pipefail

VERSION="${1:-}"
EXTRAS="${2:-postgres,redis,url-preview}"
if [ -z "$VERSION" ] || [ "$#" -gt 2 ] || ! [[ "$EXTRAS" =~ ^[a-z0-9,-]+$ ]]; then
  echo "usage: $0 VERSION [EXTRAS]  (e.g. 1.163.2 postgres,redis,url-preview)" >&2
  exit 2
fi
if ! [[ "$VERSION" =~ ^[0-9]+(\.[0-9]+)*((a|b|rc)[0-9]+)?(\.post[0-9]+)?$ ]]; then
  echo "synapse-venv: '$VERSION' is not a release version" >&2
  exit 2
fi

PY=/usr/bin/python3
if [ ! -x "$PY" ]; then
  echo "synapse-venv: $PY not found (apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "synapse-venv: $PY has no venv/ensurepip (apt-get install python3-venv)" >&2
  exit 1
fi

log() { echo "synapse-venv: $*" >&2; }

script_path="$(readlink -f "${BASH_SOURCE[0]}")"
script_hash="$( (cat "$script_path"; echo "$EXTRAS") | sha256sum | cut -c1-12)"
py_ver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

cache_root="${PULUMI_MATRIX_CACHE_DIR:-$HOME/.cache/pulumi-matrix}"
venv_root="$cache_root/synapse-venv"
pip_cache="$cache_root/pip"
key="$VERSION-py$py_ver-$script_hash"
dir="$venv_root/$key"
marker="$dir/.complete"

mkdir -p "$venv_root" "$pip_cache"

exec 9>"$venv_root/$key.lock"
flock 9

if [ -f "$marker" ]; then
  log "cached: $dir"
  echo "$dir"
  exit 0
fi

if [ -e "$dir" ]; then
  log "removing incomplete build $dir"
  rm -rf "$dir"
fi

start=$(date +%s)
log "building $key (python $("$PY" -V 2>&1 | cut -d' ' -f2))"
# The environment's own settings (index, certificates) stay in force; only the
# interpreter and the caches are fixed here.
export PIP_CACHE_DIR="$pip_cache"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
"$PY" -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --no-warn-script-location \
  "matrix-synapse[$EXTRAS]==$VERSION" >&2

# Checks: the C extension builds (psycopg2 against libpq), the Rust extension
# of Synapse, the redis client, and the homeserver entry point itself.
"$dir/bin/python" - <<'EOF' >&2
import importlib.metadata as md
import psycopg2, txredisapi, hiredis, bs4  # noqa: F401  (postgres, redis, url-preview extras)
import synapse, synapse.synapse_rust  # noqa: F401
print("synapse", synapse.__version__, "psycopg2", psycopg2.__version__,
      "libpq", psycopg2.extensions.libpq_version())
EOF
installed="$("$dir/bin/python" -c 'import synapse; print(synapse.__version__)')"
if [ "$installed" != "$VERSION" ]; then
  log "installed synapse $installed, expected $VERSION"
  exit 1
fi
"$dir/bin/python" -m synapse.app.homeserver --help >/dev/null

# What was resolved, for the record (dependencies are not pinned).
"$dir/bin/python" -m pip freeze --all >"$dir/pip-freeze.txt"
printf 'matrix-synapse==%s\npython=%s\nscript=%s\nbuilt_seconds=%s\n' \
  "$VERSION" "$py_ver" "$script_hash" "$(( $(date +%s) - start ))" >"$dir/.complete.tmp"
mv "$dir/.complete.tmp" "$marker"
log "built $dir in $(( $(date +%s) - start ))s"
echo "$dir"
