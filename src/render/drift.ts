/**
 * Drift: what pulumi-matrix wrote on a host, and the check that compares it
 * with what is there now. Commands have no read, so `pulumi refresh` cannot
 * see a file edited on the VM; the host keeps its own record instead.
 *
 * Layout (all under STATE_DIR, written by the scripts' prelude, see
 * provision/shell.ts):
 *   written/            0700 root: nothing below is readable by other users
 *   written/records/<absolute path>   one line: KIND MODE OWNER GROUP SHA256 SET
 *   written/files/<absolute path>     an exact copy, for readable files only
 * KIND is `readable` or `secret`; a secret file is never copied, only its
 * SHA-256 is kept, so drift shows as "differs" without showing content.
 */

import { HOST_FILES } from "../model/host";
import { FIREWALL_TABLE } from "./firewall";

/** The firewall's unit, whose table the check looks for (see FIREWALL_CHECK). */
const FIREWALL_UNIT_NAME = HOST_FILES.firewallUnit.slice(HOST_FILES.firewallUnit.lastIndexOf("/") + 1);

/** Where scripts keep what they need between runs: file-set manifests, restarts owed, the apt lock, drift records. */
export const STATE_DIR = HOST_FILES.stateDir;

/** The record of every file pulumi-matrix wrote (see the layout above). */
export const WRITTEN_DIR = `${STATE_DIR}/written`;

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
 * files), a missing file, and a changed mode or owner. Exit status: 0 no
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
if [ "$(id -u)" != 0 ]; then echo "$me: run it as root (sudo $me)" >&2; exit 2; fi
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
        if [ "$(sha256sum <"$path" | cut -d' ' -f1)" != "$sum" ]; then echo "$path: differs (secret, content not shown)"; differs=1; fi
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
if [ "$drifted" -gt 0 ]; then
    echo
    echo "$me: $drifted of $checked files differ from what pulumi-matrix wrote."
    printf '%s\n' ${REAPPLY_HINT.map((l) => `'${l.replace(/'/g, `'\\''`)}'`).join(" ")}
elif [ "$failed" = 0 ]; then
    echo "$me: no drift: $checked files are as pulumi-matrix wrote them."
fi
if [ "$failed" != 0 ]; then exit 2; elif [ "$drifted" -gt 0 ]; then exit 1; fi
exit 0
`;
