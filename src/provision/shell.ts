import { DIGEST_FUNCTIONS, PENDING_DIR, STATE_DIR, WRITTEN_DIR } from "../render/drift";
import { lines, Sh, shQuote } from "./sh";

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
 * file, only a keyed digest (HMAC-SHA256) of a secret one; mode and owner of both, see
 * render/drift.ts); `pm_changed SET` tells whether it did, or whether an
 * earlier run changed SET and died before its handlers succeeded;
 * `pm_done SET` says they did; `pm_prune SET` removes what SET wrote on an
 * earlier run and no longer writes, with its record; `pm_refuse SET` puts
 * back every file SET replaced or removed in this run and fails the step
 * (a failing `FileSet.check`). Restarts owed to a later script (the only
 * hand-over between scripts): `pm_owe UNIT` and `pm_take UNIT`.
 *
 * Writes are safe in a directory another user can write (PostgreSQL's
 * config directories, /etc/redis): a file is staged, given its mode and
 * owner in this run's root-only (0700) staging directory on the target's
 * filesystem (STATE_DIR/staging, or `.pulumi-matrix-staging` at the root of
 * another filesystem), and renamed over the target (`mv -T`: a rename
 * replaces the name, it never follows a link). A target that is a symbolic
 * link, or a parent that is a symbolic link not owned by root, is refused.
 * (What a shell cannot close: a user who owns a directory above the target's
 * could swap it between that check and the rename; the file then lands, with
 * its content, mode and owner, where the swap points, but no chmod or chown
 * ever acts on another file.)
 * Each run holds a lock on its staging directory; the next run removes what
 * a run that died left there, and the `<path>.pm-XXXXXX` temp files older
 * versions made beside their targets.
 */
const PRELUDE = String.raw`set -euo pipefail
# The last command of a pipeline runs in this shell, so "... | pm_write" can record its change.
shopt -s lastpipe
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
umask 022
declare -A pm_dirty=() pm_files=() pm_stages=() pm_marked=() pm_kept=() pm_undo=() pm_lists=()
declare -a pm_keep_path=() pm_keep_file=()
mkdir -p ${STATE_DIR}/filesets ${STATE_DIR}/owed-restart ${PENDING_DIR} ${STATE_DIR}/staging ${WRITTEN_DIR}/records ${WRITTEN_DIR}/files
# The copies of what was written are root's alone, like many of the files they copy; so is what is staged.
chmod 0700 ${WRITTEN_DIR} ${STATE_DIR}/staging
# This run's staging directory, locked while the run lives. Under the guard, so a run that
# starts now cannot take another's fresh directory for a dead one.
exec {pm_guard}>${STATE_DIR}/staging/.guard
flock -w 120 "$pm_guard"
pm_run=$(mktemp -d ${STATE_DIR}/staging/run-XXXXXX)
exec {pm_lock}>"$pm_run/.lock"
flock -n "$pm_lock"
# What runs that died left (staged files, kept copies): their lock is free, or gone.
for pm_old in $([ ! -f ${STATE_DIR}/staging/bases ] || sed 's|$|/run-*|' ${STATE_DIR}/staging/bases) ${STATE_DIR}/staging/run-*; do
    [ -d "$pm_old" ] && [ "${"$"}{pm_old##*/}" != "${"$"}{pm_run##*/}" ] || continue
    if flock -n "${STATE_DIR}/staging/${"$"}{pm_old##*/}/.lock" true 2>/dev/null || [ ! -d "${STATE_DIR}/staging/${"$"}{pm_old##*/}" ]; then rm -rf -- "$pm_old"; fi
done
exec {pm_guard}>&-
# Temp files older versions made beside their targets: a stale one in a hook or a conf.d directory is run or parsed.
for pm_old in ${STATE_DIR}/filesets/*.list; do
    [ -f "$pm_old" ] || continue
    while IFS= read -r pm_old; do
        for pm_t in "$pm_old".pm-??????; do if [ -f "$pm_t" ] && [ ! -L "$pm_t" ]; then rm -f -- "$pm_t"; fi; done
    done <"$pm_old"
done
# pm_stage_for DIR: sets pm_stage to this run's root-only staging directory on DIR's filesystem,
# from where a rename into DIR is atomic.
pm_stage_for() {
    local mnt base
    # No mount table to read (a chroot whose root is no mount point): the state directory's staging,
    # which the device check below accepts only on DIR's filesystem.
    mnt=$(findmnt -n -o TARGET --target "$1" 2>/dev/null || true)
    if [ -n "$mnt" ] && [ -n "${"$"}{pm_stages[$mnt]:-}" ]; then pm_stage=${"$"}{pm_stages[$mnt]}; return 0; fi
    if [ -z "$mnt" ] || [ "$mnt" = "$(findmnt -n -o TARGET --target ${STATE_DIR}/staging 2>/dev/null || true)" ]; then
        base=${STATE_DIR}/staging
    else
        base=${"$"}{mnt%/}/.pulumi-matrix-staging
        if [ "$(stat -c %u -- "$mnt")" != 0 ] || [ -L "$base" ] || { [ -e "$base" ] && [ "$(stat -c %u -- "$base")" != 0 ]; }; then
            pm_tell "refusing to write under $1: the root of its filesystem, $mnt, or $base is not root's own"
            return 1
        fi
        install -d -m 0700 -- "$base"; chmod 0700 -- "$base"
        grep -qxF -- "$base" ${STATE_DIR}/staging/bases 2>/dev/null || printf '%s\n' "$base" >>${STATE_DIR}/staging/bases
    fi
    pm_stage=$base/${"$"}{pm_run##*/}
    [ -d "$pm_stage" ] || mkdir -m 0700 -- "$pm_stage"
    if [ "$(stat -c %d -- "$pm_stage")" != "$(stat -c %d -- "$1")" ]; then
        pm_tell "refusing to write under $1: no staging directory on its filesystem (found $pm_stage)"
        return 1
    fi
    if [ -n "$mnt" ]; then pm_stages[$mnt]=$pm_stage; fi
}
# pm_safe_path PATH: refuses a target that is a symbolic link, or a parent that is one not owned by root
# (another user could point it anywhere).
pm_safe_path() {
    local p
    if [ -L "$1" ]; then
        pm_tell "refusing to write $1: it is a symbolic link (pulumi-matrix writes regular files; remove the link and run again)"
        return 1
    fi
    p=${"$"}{1%/*}
    while [ -n "$p" ]; do
        if [ -L "$p" ] && [ "$(stat -c %u -- "$p")" != 0 ]; then
            pm_tell "refusing to write $1: its parent $p is a symbolic link owned by $(stat -c %U -- "$p"), not root"
            return 1
        fi
        p=${"$"}{p%/*}
    done
}
pm_write() {
    local set=$1 path=$2 mode=$3 owner=$4 group=$5 kind=${"$"}{6:-readable} dir tmp
    dir=$(dirname -- "$path")
    # Create a missing parent only: an existing one keeps its mode (e.g. 0750 secrets/).
    [ -d "$dir" ] || install -d -m 0755 -- "$dir"
    pm_safe_path "$path"
    pm_stage_for "$dir"
    tmp=$(mktemp -- "$pm_stage/write-XXXXXX")
    cat >"$tmp"
    # No one else can enter the staging directory: these act on the staged file, whatever happens in $dir.
    chmod -- "$mode" "$tmp"; chown -- "$owner:$group" "$tmp"
    pm_files[$set]+="$path"$'\n'
    if [ -f "$path" ] && [ ! -L "$path" ] && cmp -s -- "$tmp" "$path" && [ "$(stat -c '%a %U %G' -- "$path")" = "$(stat -c '%a %U %G' -- "$tmp")" ]; then
        pm_record "$set" "$path" "$kind" "$tmp"
        rm -f -- "$tmp"
    else
        pm_keep "$set" "$path"
        pm_record "$set" "$path" "$kind" "$tmp"
        mv -fT -- "$tmp" "$path"; pm_dirty[$set]=1
        echo "updated $path"
    fi
}
# pm_keep SET PATH: before PATH is replaced or removed. SET is pending until its handlers all ran
# (pm_done), across runs; and what PATH was is kept (a hard link beside the staged files, its
# drift record) so a failing check can put it back (pm_refuse).
pm_keep() {
    local set=$1 path=$2 n
    if [ -z "${"$"}{pm_marked[$set]:-}" ]; then
        if [ -e ${PENDING_DIR}/"$set" ]; then pm_marked[$set]=before; else pm_marked[$set]=now; fi
        : >${PENDING_DIR}/"$set"; sync -- ${PENDING_DIR}/"$set" ${PENDING_DIR}
    fi
    [ -z "${"$"}{pm_kept[$set$path]:-}" ] || return 0
    n=${"$"}{#pm_keep_path[@]}; pm_kept[$set$path]=1; pm_undo[$set]+="$n "
    pm_keep_path[n]=$path pm_keep_file[n]=
    if [ -e "$path" ] || [ -L "$path" ]; then
        pm_stage_for "$(dirname -- "$path")"
        ln -P -- "$path" "$pm_stage/keep-$n"; pm_keep_file[n]=$pm_stage/keep-$n
    fi
    if [ -e ${WRITTEN_DIR}/records"$path" ]; then cp -p -- ${WRITTEN_DIR}/records"$path" "$pm_run/record-$n"; fi
    if [ -e ${WRITTEN_DIR}/files"$path" ]; then cp -p -- ${WRITTEN_DIR}/files"$path" "$pm_run/copy-$n"; fi
}
# pm_refuse SET: the set's new files failed their check: puts back what this run replaced or removed
# (and their records and manifest), then fails the step.
pm_refuse() {
    local set=$1 n path
    for n in ${"$"}{pm_undo[$set]:-}; do
        path=${"$"}{pm_keep_path[n]}
        if [ -n "${"$"}{pm_keep_file[n]}" ]; then mv -fT -- "${"$"}{pm_keep_file[n]}" "$path"; else rm -f -- "$path"; fi
        if [ -e "$pm_run/record-$n" ]; then mv -f -- "$pm_run/record-$n" ${WRITTEN_DIR}/records"$path"; else rm -f -- ${WRITTEN_DIR}/records"$path"; fi
        if [ -e "$pm_run/copy-$n" ]; then mv -f -- "$pm_run/copy-$n" ${WRITTEN_DIR}/files"$path"; else rm -f -- ${WRITTEN_DIR}/files"$path"; fi
        echo "put back $path" >&2
    done
    if [ -n "${"$"}{pm_lists[$set]:-}" ]; then
        if [ -e "$pm_run/list-$set" ]; then mv -f -- "$pm_run/list-$set" ${STATE_DIR}/filesets/"$set".list; else rm -f -- ${STATE_DIR}/filesets/"$set".list; fi
    fi
    # Back as before this run: pending only if an earlier run left it so.
    if [ "${"$"}{pm_marked[$set]:-}" = now ]; then rm -f -- ${PENDING_DIR}/"$set"; fi
    pm_tell "$set: the new files fail their check (its output is above): the files are as they were before this run, and nothing was reloaded or restarted"
    exit 1
}
# pm_tell TEXT...: a message for the operator, which must hold no secret: on stderr, and in a secret
# step (whose output stays on the host) also on the command's own stderr, so Pulumi shows it.
pm_tell() {
    printf '%s\n' "$*" >&2
    if [ -n "${"$"}{pm_tell_fd:-}" ]; then printf '%s\n' "$*" >&"$pm_tell_fd"; fi
}
${DIGEST_FUNCTIONS}# pm_record SET PATH KIND FILE: FILE (the staged file, or PATH itself) is what PATH now holds; kept even
# when unchanged, so a host written before records existed gets them on its next run.
pm_record() {
    local set=$1 path=$2 kind=$3 src=${"$"}{4:-$2} rec=${WRITTEN_DIR}/records$2 copy=${WRITTEN_DIR}/files$2 line
    if [ "$kind" = secret ]; then
        # A secret is never copied, and its digest is keyed: enough to tell that it changed, no use for guessing it.
        pm_digest_key
        line="$kind $(stat -c '%a %U %G' -- "$src") hmac:$(pm_digest <"$src") $set"
        rm -f -- "$copy"
    else
        line="$kind $(stat -c '%a %U %G' -- "$src") $(sha256sum <"$src" | cut -d' ' -f1) $set"
    fi
    if [ "$kind" != secret ] && ! cmp -s -- "$src" "$copy"; then
        mkdir -p -- "$(dirname -- "$copy")"; install -m 0600 -T -- "$src" "$copy.pm-tmp"; mv -f -- "$copy.pm-tmp" "$copy"
    fi
    if [ "$(cat -- "$rec" 2>/dev/null)" != "$line" ]; then
        mkdir -p -- "$(dirname -- "$rec")"; printf '%s\n' "$line" >"$rec.pm-tmp"; mv -f -- "$rec.pm-tmp" "$rec"
    fi
}
pm_changed() { [ -n "${"$"}{pm_dirty[$1]:-}" ] || [ -e ${PENDING_DIR}/"$1" ]; }
# pm_done SET: its handlers all ran: no longer pending, and what was kept for pm_refuse is dropped.
pm_done() {
    local n
    rm -f -- ${PENDING_DIR}/"$1"
    for n in ${"$"}{pm_undo[$1]:-}; do rm -f -- "${"$"}{pm_keep_file[n]}" "$pm_run/record-$n" "$pm_run/copy-$n"; done
    pm_undo[$1]=
}
pm_prune() {
    local set=$1 list=${STATE_DIR}/filesets/$1.list old
    pm_lists[$set]=1
    if [ -f "$list" ]; then
        cp -p -- "$list" "$pm_run/list-$set"
        while IFS= read -r old; do
            [ -n "$old" ] || continue
            printf '%s' "${"$"}{pm_files[$set]:-}" | grep -qxF -- "$old" && continue
            if [ -e "$old" ] || [ -L "$old" ]; then pm_keep "$set" "$old"; rm -f -- "$old"; pm_dirty[$set]=1; echo "removed $old"; fi
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

/** Where a secret step keeps what it printed, on the host (0700, root): it may hold secrets, so it never leaves the host. */
export const SECRET_LOG_DIR = `${STATE_DIR}/logs`;

const RUN_LINE = "main </dev/null\n";

/**
 * A script of a secret step as it is sent. @pulumi/command puts everything
 * a failing command printed, stdout and stderr, into its error message in
 * clear text, whatever `logging` and the secret outputs say; and a failing
 * command (psql, a health check's journal) can print a secret it was given.
 * So a secret step prints nothing of its own: its output goes to a root-only
 * log on the host (`SECRET_LOG_DIR/<name>.log`, replaced by the next run),
 * and the command shows only the script's title, its exit status and where
 * the log is, plus what the script says with `pm_tell` (a refusal the
 * operator must read, written to hold no secret). `name` is the step's
 * resource name (unique in a stack).
 */
export function secretScript(text: string, name: string): string {
    if (!text.endsWith(RUN_LINE)) throw new Error(`secretScript(${name}): not a script built by script()`);
    const title = /^# (.*)\n/.exec(text)?.[1] ?? name;
    const log = `${SECRET_LOG_DIR}/${name.replace(/[^A-Za-z0-9._-]+/g, "_")}.log`;
    const run = [
        "# A secret step: what it prints stays on the host, root only (it may hold secrets).",
        "umask 077",
        `mkdir -p ${shQuote(SECRET_LOG_DIR)} && chmod 0700 ${shQuote(SECRET_LOG_DIR)}`,
        // fd 3 stays the command's stderr: pm_tell's messages (no secret in them) reach the operator.
        "exec 3>&2",
        "pm_tell_fd=3",
        // fd 4 is the command's own stdout, a secret output: a step whose result the stack keeps as a secret (an adopted signing key) prints it there.
        "exec 4>&1",
        `(main </dev/null) >${shQuote(log)} 2>&1`,
        "pm_rc=$?",
        'if [ "$pm_rc" != 0 ]; then',
        `    echo ${shQuote(`${title}: failed with exit status`)} "$pm_rc". ${shQuote(`Its output may hold secrets, so it stays on the host, root only: sudo cat ${log}`)} >&2`,
        '    exit "$pm_rc"',
        "fi",
        `echo ${shQuote(`${title}: done (its output is on the host, root only: ${log})`)}`,
        "",
    ].join("\n");
    return text.slice(0, -RUN_LINE.length) + run;
}
