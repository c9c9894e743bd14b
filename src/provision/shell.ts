import { STATE_DIR, WRITTEN_DIR } from "../render/drift";
import { lines, Sh } from "./sh";

/**
 * The frame of every provisioning script. A script is sent on the command's
 * stdin to `bash -s` (so secrets never sit on a command line), runs inside a
 * function so nothing it starts can read the rest of the script from stdin,
 * and is idempotent: files are only rewritten, and services only restarted,
 * when their content changes (see apply.ts).
 */

/** The command a remote command runs: bash reading the script from stdin, as root. */
export function bashCommand(sudo: string): string {
    return `${sudo}bash -s`;
}

export { STATE_DIR, WRITTEN_DIR };

/**
 * Shell functions every script can use. File sets: `pm_write SET PATH MODE
 * OWNER GROUP KIND` (content on stdin; KIND `readable`, the default, or
 * `secret`) rewrites a file only when it differs and marks SET changed, and
 * records what it wrote for the drift check (a root-only copy of a readable
 * file, only the SHA-256 of a secret one; mode and owner of both, see
 * render/drift.ts); `pm_changed SET` tells whether it did; `pm_prune SET`
 * removes what SET wrote on an earlier run and no longer writes, with its
 * record. Restarts owed to a later script (the only hand-over between
 * scripts): `pm_owe UNIT` and `pm_take UNIT`.
 */
const PRELUDE = String.raw`set -euo pipefail
# The last command of a pipeline runs in this shell, so "... | pm_write" can record its change.
shopt -s lastpipe
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
umask 022
declare -A pm_dirty=() pm_files=()
mkdir -p ${STATE_DIR}/filesets ${STATE_DIR}/owed-restart ${WRITTEN_DIR}/records ${WRITTEN_DIR}/files
# The copies of what was written are root's alone, like many of the files they copy.
chmod 0700 ${WRITTEN_DIR}
pm_write() {
    local set=$1 path=$2 mode=$3 owner=$4 group=$5 kind=${"$"}{6:-readable} tmp
    # Create a missing parent only: an existing one keeps its mode (e.g. 0750 secrets/).
    [ -d "$(dirname "$path")" ] || install -d -m 0755 "$(dirname "$path")"
    tmp=$(mktemp "$path.pm-XXXXXX")
    cat >"$tmp"
    chmod "$mode" "$tmp"; chown "$owner:$group" "$tmp"
    pm_files[$set]+="$path"$'\n'
    if [ -f "$path" ] && cmp -s "$tmp" "$path" && [ "$(stat -c '%a %U %G' "$path")" = "$(stat -c '%a %U %G' "$tmp")" ]; then
        rm -f "$tmp"
    else
        mv -f "$tmp" "$path"; pm_dirty[$set]=1
        echo "updated $path"
    fi
    pm_record "$set" "$path" "$kind"
}
# pm_record SET PATH KIND: what PATH now holds is what pulumi-matrix wrote; kept even when the
# file was unchanged, so a host written before records existed gets them on its next run.
pm_record() {
    local set=$1 path=$2 kind=$3 rec=${WRITTEN_DIR}/records$2 copy=${WRITTEN_DIR}/files$2 line
    line="$kind $(stat -c '%a %U %G' -- "$path") $(sha256sum <"$path" | cut -d' ' -f1) $set"
    if [ "$kind" = secret ]; then
        # A secret is never copied: its hash is enough to tell that it changed.
        rm -f -- "$copy"
    elif ! cmp -s -- "$path" "$copy"; then
        mkdir -p -- "$(dirname -- "$copy")"; install -m 0600 -T -- "$path" "$copy.pm-tmp"; mv -f -- "$copy.pm-tmp" "$copy"
    fi
    if [ "$(cat -- "$rec" 2>/dev/null)" != "$line" ]; then
        mkdir -p -- "$(dirname -- "$rec")"; printf '%s\n' "$line" >"$rec.pm-tmp"; mv -f -- "$rec.pm-tmp" "$rec"
    fi
}
pm_changed() { [ -n "${"$"}{pm_dirty[$1]:-}" ]; }
pm_prune() {
    local set=$1 list=${STATE_DIR}/filesets/$1.list old
    if [ -f "$list" ]; then
        while IFS= read -r old; do
            [ -n "$old" ] || continue
            printf '%s' "${"$"}{pm_files[$set]:-}" | grep -qxF -- "$old" && continue
            if [ -e "$old" ]; then rm -f -- "$old"; pm_dirty[$set]=1; echo "removed $old"; fi
            rm -f -- "${WRITTEN_DIR}/records$old" "${WRITTEN_DIR}/files$old"
        done <"$list"
    fi
    printf '%s' "${"$"}{pm_files[$set]:-}" | sort -u >"$list.tmp"; mv -f "$list.tmp" "$list"
}
pm_owe() { touch "${STATE_DIR}/owed-restart/$1"; }
pm_take() { if [ -e "${STATE_DIR}/owed-restart/$1" ]; then rm -f "${STATE_DIR}/owed-restart/$1"; return 0; fi; return 1; }
# pm_apt ARGS...: apt-get, one at a time: scripts for several components may run at once on one host.
pm_apt() { flock -w 1800 ${STATE_DIR}/apt.lock apt-get -o DPkg::Lock::Timeout=600 "$@"; }
# pm_apt_install PKG...: installs the packages that are missing; updates the lists only then.
pm_apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${"$"}{Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${"$"}{#missing[@]} -eq 0 ] && return 0
    echo "installing ${"$"}{missing[*]}"
    pm_apt update -q >/dev/null
    pm_apt install -y -q --no-install-recommends "${"$"}{missing[@]}" >/dev/null
}
`;

/**
 * Wraps script steps into the text sent on stdin. `title` is the first line
 * so a diff or a failure names what this script is.
 */
export function script(title: string, body: (Sh | string)[]): string {
    return [`# ${title}`, "# Generated by pulumi-matrix; runs as root with bash.", "main() {", PRELUDE, lines(body).text, "}", "main </dev/null", ""].join(
        "\n",
    );
}
