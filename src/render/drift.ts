/**
 * Drift: what pulumi-matrix wrote on a host, and the check that compares it
 * with what is there now. Commands have no read, so `pulumi refresh` cannot
 * see a file edited on the VM; the host keeps its own record instead.
 *
 * Layout (all under STATE_DIR, written by the scripts' prelude, see
 * provision/shell.ts):
 *   written/            0700 root: nothing below is readable by other users
 *   written/records/<absolute path>   one line: KIND MODE OWNER GROUP DIGEST SET
 *   written/files/<absolute path>     an exact copy, for readable files only
 *   pending/<set>       a set whose files changed and whose handlers have not all run
 * KIND is `readable` or `secret`; DIGEST the content's SHA-256, for a
 * secret keyed (`hmac:<HMAC-SHA256>` with DIGEST_KEY_FILE). A secret file is
 * never copied, so drift shows as "differs" without showing content.
 */

import { HOST_FILES } from "../model/host";
import { FIREWALL_TABLE } from "./firewall";

/** The firewall's unit, whose table the check looks for (see FIREWALL_CHECK). */
const FIREWALL_UNIT_NAME = HOST_FILES.firewallUnit.slice(HOST_FILES.firewallUnit.lastIndexOf("/") + 1);

/** Where scripts keep what they need between runs: file-set manifests, restarts owed, the apt lock, drift records. */
export const STATE_DIR = HOST_FILES.stateDir;

/** The record of every file pulumi-matrix wrote (see the layout above). */
export const WRITTEN_DIR = `${STATE_DIR}/written`;

/**
 * File sets whose handlers are owed: `<set>` exists from before a run
 * replaces the set's first file until its handlers all succeeded, so a run
 * that dies in between leaves it, and the next run (and the drift check)
 * sees it (provision/shell.ts).
 */
export const PENDING_DIR = `${STATE_DIR}/pending`;

/**
 * The host's own key for the digests the library keeps of secrets (root
 * only; 32 random bytes written as 64 hex characters): made once, never
 * replaced. A keyed digest (HMAC-SHA256) read from the records without the
 * key allows no offline guessing of the secret it stands for.
 */
export const DIGEST_KEY_FILE = `${STATE_DIR}/digest.key`;

/**
 * Shell functions for keyed digests, in bash and coreutils only (the host
 * bootstrap and the drift check run before any Python is there):
 * `pm_digest_key` makes DIGEST_KEY_FILE once (`mv -n`: a concurrent run's
 * key wins); `pm_digest` prints the HMAC-SHA256 of its standard input keyed
 * with the key file's 64 characters (one SHA-256 block, so no padding); the
 * key is read from the file, never put on a command line.
 */
export const DIGEST_FUNCTIONS = String.raw`pm_digest_key() {
    [ -s ${DIGEST_KEY_FILE} ] && return 0
    (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >${DIGEST_KEY_FILE}.$$; mv -n ${DIGEST_KEY_FILE}.$$ ${DIGEST_KEY_FILE}; rm -f ${DIGEST_KEY_FILE}.$$)
}
pm_digest() {
    local key= c i inner out=
    if [ -z "${"$"}{pm_digest_ipad:-}" ]; then
        IFS= read -r key <${DIGEST_KEY_FILE} || [ -n "$key" ] || { echo "${DIGEST_KEY_FILE}: missing or empty" >&2; return 1; }
        [[ $key =~ ^[0-9a-f]{64}$ ]] || { echo "${DIGEST_KEY_FILE}: not 64 hex characters" >&2; return 1; }
        pm_digest_ipad= pm_digest_opad=
        for ((i = 0; i < 64; i++)); do
            printf -v c '%d' "'${"$"}{key:i:1}"
            printf -v pm_digest_ipad '%s\\x%02x' "$pm_digest_ipad" $((c ^ 0x36))
            printf -v pm_digest_opad '%s\\x%02x' "$pm_digest_opad" $((c ^ 0x5c))
        done
    fi
    inner=$({ printf "$pm_digest_ipad"; cat; } | sha256sum)
    for ((i = 0; i < 64; i += 2)); do out+="\\x${"$"}{inner:i:2}"; done
    { printf "$pm_digest_opad"; printf "$out"; } | sha256sum | cut -d' ' -f1
}
`;

/** The drift check's command name, and where the Host bootstrap installs it (root-only). */
export const DRIFT_CHECK_PATH = HOST_FILES.driftCheck;
export const DRIFT_COMMAND = DRIFT_CHECK_PATH.slice(DRIFT_CHECK_PATH.lastIndexOf("/") + 1);

/** How to put back what pulumi-matrix wrote: re-run every script (the `reapply` setting). */
export const REAPPLY_HINT = [
    "To put back what pulumi-matrix wrote, and restart what those files affect, re-apply:",
    "  pulumi config set reapply <any new value> && pulumi up    (the pulumi-matrix stack project)",
    "  or give the Host component's `reapply` argument a new value, then pulumi up (your own stack).",
    "To keep an edit, make it in the settings instead: a re-apply replaces it.",
];

/**
 * The header of every readable file pulumi-matrix writes, without comment
 * markers. It promises only what holds: a file is rewritten when its script
 * runs (a change that affects it, or a re-apply), not on every `pulumi up`.
 */
export const MANAGED_HEADER = [
    `Managed by pulumi-matrix. Edits made here are reported by \`sudo ${DRIFT_COMMAND}\``,
    "and replaced when pulumi-matrix next writes this file (a change that affects it, or a re-apply).",
].join("\n");

/** MANAGED_HEADER as `#` comment lines (YAML, systemd, PostgreSQL, nftables, shell). */
export function hashComment(text: string): string {
    return text
        .split("\n")
        .map((l) => `# ${l}`.trimEnd())
        .join("\n");
}

/**
 * The drift check, a bash script run as root on the host:
 * `pulumi-matrix-drift [PATH...]` (only files at or under a PATH when given).
 * It changes nothing. For each file pulumi-matrix wrote it reports a unified
 * diff (readable files), "differs (secret, content not shown)" (secret
 * files), a missing file, a changed mode or owner, and (checking the whole
 * host) a file set whose reload or restart is still owed. Exit status: 0 no
 * drift, 1 drift, 2 the check could not be completed.
 *
 * The Host bootstrap installs it as DRIFT_CHECK_PATH; the same text can be
 * piped to a host that lacks it: `... | ssh HOST sudo bash -s`.
 */
export function driftCheckScript(): string {
    return `#!/bin/bash
${hashComment(`${DRIFT_COMMAND}: compares the files pulumi-matrix wrote on this host with what is there now.
Usage: ${DRIFT_COMMAND} [PATH...]   (only files at or under PATH). Changes nothing.
Exit status: 0 no drift, 1 drift, 2 the check could not be completed.
${MANAGED_HEADER}`)}
${DRIFT_BODY.replace("@FIREWALL_CHECK@", () => FIREWALL_CHECK)}`;
}

/**
 * The firewall's table, checked with the ruleset file (no PATH, or one that
 * covers it) while its unit is enabled: \`nft flush ruleset\` (Debian's
 * nftables.service runs it) removes the table while the unit reads active.
 */
const FIREWALL_CHECK = String.raw`if [ -f "$written/records${HOST_FILES.firewallRuleset}" ] && wanted ${HOST_FILES.firewallRuleset} && systemctl is-enabled -q ${FIREWALL_UNIT_NAME} 2>/dev/null; then
    checked=$((checked + 1))
    if ! nft list table inet ${FIREWALL_TABLE} >/dev/null 2>&1; then
        echo "firewall: the nftables table inet ${FIREWALL_TABLE} is missing, so nothing is filtered (a flushed ruleset?); load it with: systemctl reload ${FIREWALL_UNIT_NAME}"
        drifted=$((drifted + 1))
    fi
fi`;

const DRIFT_BODY = String.raw`set -uo pipefail
export LC_ALL=C
written=${WRITTEN_DIR}
me=${DRIFT_COMMAND}
${DIGEST_FUNCTIONS}if [ "$(id -u)" != 0 ]; then echo "$me: run it as root (sudo $me)" >&2; exit 2; fi
if [ ! -d "$written/records" ]; then
    echo "$me: $written/records does not exist: no script of a pulumi-matrix version that records drift has run on this host yet" >&2
    exit 2
fi
only=("$@")
# wanted PATH: no PATH arguments, or PATH is one of them or under one.
wanted() {
    local a
    [ ${"$"}{#only[@]} -eq 0 ] && return 0
    for a in "${"$"}{only[@]}"; do
        a=${"$"}{a%/}
        if [ "$1" = "$a" ] || [[ "$1" == "$a"/* ]]; then return 0; fi
    done
    return 1
}
checked=0 drifted=0 failed=0
while IFS= read -r -d '' rec; do
    path=${"$"}{rec#"$written/records"}
    wanted "$path" || continue
    checked=$((checked + 1))
    if ! read -r kind mode owner group sum set <"$rec" || [ -z "$set" ]; then
        echo "$path: cannot check: the record $rec is damaged" >&2; failed=1; continue
    fi
    if [ -L "$path" ]; then echo "$path: is now a symbolic link (pulumi-matrix wrote a file)"; drifted=$((drifted + 1)); continue; fi
    if [ ! -e "$path" ]; then echo "$path: missing"; drifted=$((drifted + 1)); continue; fi
    if [ ! -f "$path" ]; then echo "$path: is no longer a regular file"; drifted=$((drifted + 1)); continue; fi
    differs=0
    now=$(stat -c '%a %U %G' -- "$path")
    if [ "$now" != "$mode $owner $group" ]; then
        read -r nmode nowner ngroup <<<"$now"
        echo "$path: mode $nmode owner $nowner:$ngroup, pulumi-matrix wrote mode $mode owner $owner:$group"
        differs=1
    fi
    case $kind in
    secret)
        # Only a hash is kept: the content is never printed, on either side.
        # Keyed (hmac:...), or an earlier release's plain SHA-256 until the next run rewrites it.
        case $sum in
        hmac:*) if ! now_sum=hmac:$(pm_digest <"$path"); then echo "$path: cannot check: no digest key" >&2; failed=1; continue; fi ;;
        *) now_sum=$(sha256sum <"$path" | cut -d' ' -f1) ;;
        esac
        if [ "$now_sum" != "$sum" ]; then echo "$path: differs (secret, content not shown)"; differs=1; fi
        ;;
    readable)
        copy=$written/files$path
        if [ ! -f "$copy" ]; then echo "$path: cannot check: the copy $copy is missing" >&2; failed=1; continue; fi
        if ! cmp -s -- "$copy" "$path"; then
            diff -u --label "$path (as pulumi-matrix wrote it)" --label "$path (on this host)" -- "$copy" "$path"
            differs=1
        fi
        ;;
    *)
        echo "$path: cannot check: unknown kind '$kind' in $rec" >&2; failed=1; continue
        ;;
    esac
    drifted=$((drifted + differs))
done < <(find "$written/records" -type f -print0 | sort -z)
@FIREWALL_CHECK@
# A set whose files changed while its handlers (reload, restart) have not all run: the files are
# not in effect yet. Only for a whole-host check: a set is not a path.
pending=0
if [ ${"$"}{#only[@]} -eq 0 ]; then
    for mark in ${PENDING_DIR}/*; do
        [ -f "$mark" ] || continue
        echo "file set ${"$"}{mark##*/}: changed, but its reload or restart has not run yet (a run is under way, or one died before it); the next run of its step runs it"
        pending=$((pending + 1))
    done
fi
if [ "$drifted" -gt 0 ] || [ "$pending" -gt 0 ]; then
    echo
    if [ "$drifted" -gt 0 ]; then echo "$me: $drifted of $checked files differ from what pulumi-matrix wrote."; fi
    if [ "$pending" -gt 0 ]; then echo "$me: $pending file sets wait for their reload or restart."; fi
    printf '%s\n' ${REAPPLY_HINT.map((l) => `'${l.replace(/'/g, `'\\''`)}'`).join(" ")}
elif [ "$failed" = 0 ]; then
    echo "$me: no drift: $checked files are as pulumi-matrix wrote them."
fi
if [ "$failed" != 0 ]; then exit 2; elif [ "$drifted" -gt 0 ] || [ "$pending" -gt 0 ]; then exit 1; fi
exit 0
`;
