import { ARCHIVE_NAME, BACKUP_FILES, BACKUP_METRIC, BACKUP_TAG, BackupFiles, BackupSettings } from "../model/backup";
import { synapseFiles } from "../model/synapse";
import { WRITTEN_DIR } from "./drift";
import { PG_DUMP_OPTIONS, renderCreateDatabaseIfMissing } from "./postgres";
import { renderTimerUnit, UNIT_HEADER as HEADER } from "./systemd";

/**
 * The backup's files on the host: the restic environment (secret), the
 * `pulumi-matrix-backup` and `pulumi-matrix-restore` commands, and the
 * units and timers that run them. Every value in a script is validated by
 * the model and single-quoted here.
 */

/** One shell word: the value in single quotes. */
function q(value: string | number): string {
    return `'${String(value).replace(/'/g, `'\\''`)}'`;
}

/** The secret values the host's restic needs (never in a unit, a command line or a readable file). */
export interface BackupSecrets {
    /** The restic repository's password. */
    password: string;
    /** The SFTP user's private key (OpenSSH format), for an SFTP repository. */
    sftpPrivateKey?: string;
    /** S3 credentials, for an S3 repository. */
    s3AccessKeyId?: string;
    s3SecretAccessKey?: string;
}

/** A value systemd's EnvironmentFile= and the shell read alike: one line, no quote or backslash. */
function envValue(name: string, value: string): string {
    if (!/^[\x21-\x7e]+$/.test(value) || /['"\\$`]/.test(value))
        throw new Error(`${name}: expected printable characters without spaces, quotes, backslashes, $ or \``);
    return `${name}='${value}'`;
}

/**
 * The EnvironmentFile= of the units (root, 0600), which the commands also
 * read when run by hand: where the repository is, the password file, the
 * cache, and an S3 target's keys (secret).
 */
export function renderResticEnv(s: BackupSettings, secrets: Pick<BackupSecrets, "s3AccessKeyId" | "s3SecretAccessKey">, f: BackupFiles = BACKUP_FILES): string {
    const lines = [
        "# Managed by pulumi-matrix: restic's environment (root only).",
        envValue("RESTIC_REPOSITORY", s.repository),
        envValue("RESTIC_PASSWORD_FILE", f.passwordFile),
        envValue("RESTIC_CACHE_DIR", f.cacheDir),
    ];
    if (s.target.kind === "s3") {
        if (!secrets.s3AccessKeyId || !secrets.s3SecretAccessKey)
            throw new Error("renderResticEnv: an S3 repository needs its access key id and secret access key");
        lines.push(envValue("AWS_ACCESS_KEY_ID", secrets.s3AccessKeyId), envValue("AWS_SECRET_ACCESS_KEY", secrets.s3SecretAccessKey));
    }
    return lines.join("\n") + "\n";
}

/** The part both commands share: strict bash, restic's environment, and `pm_restic` with the SFTP transport pinned. */
function commonHead(s: BackupSettings, f: BackupFiles, what: string): string {
    const t = s.target;
    // ssh with the stack's key and only the pinned host keys; restic runs it as its SFTP transport.
    const sftp =
        t.kind === "sftp"
            ? `-o sftp.command=${q(
                  `ssh -i ${f.sshKey} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${f.knownHosts} -o GlobalKnownHostsFile=/dev/null -p ${t.port} ${t.user}@${t.host} -s sftp`,
              )}`
            : "";
    return `#!/bin/bash
# Managed by pulumi-matrix: ${what}
set -euo pipefail
umask 077
export LC_ALL=C.UTF-8
# restic's environment (repository, password file, S3 keys): root only, also read when run by hand.
set -a
. ${q(f.envFile)}
set +a
pm_restic() { restic${sftp ? ` ${sftp}` : ""} "$@"; }
# The full id of the newest of this server's snapshots that restic lists with these arguments (empty: none).
pm_snapshot_id() { pm_restic snapshots --json --tag ${BACKUP_TAG} --host "$server_name" "$@" | grep -o '"id":"[0-9a-f]*"' | tail -n 1 | cut -d'"' -f4; }
server_name=${q(s.synapse.serverName)}
state=${q(f.stateDir)}
metrics=${q(f.metricsFile)}
`;
}

/** Rewrites the metric file from the state files, atomically (node_exporter never reads half a file). */
const WRITE_METRICS = `write_metrics() {
    local dir tmp
    dir=$(dirname -- "$metrics")
    install -d -m 0755 -- "$dir"
    tmp=$(mktemp "$dir/.matrix_backup.prom.XXXXXX")
    {
        if [ -s "$state/last-success" ]; then
            echo "# HELP ${BACKUP_METRIC} When the last backup of the homeserver reached the off-host repository."
            echo "# TYPE ${BACKUP_METRIC} gauge"
            echo "${BACKUP_METRIC} $(cat "$state/last-success")"
        fi
        if [ -s "$state/last-failure" ]; then
            echo "# HELP matrix_backup_last_failure_timestamp_seconds When a backup or repository check of the homeserver last failed."
            echo "# TYPE matrix_backup_last_failure_timestamp_seconds gauge"
            echo "matrix_backup_last_failure_timestamp_seconds $(cat "$state/last-failure")"
        fi
        if [ -s "$state/last-check" ]; then
            echo "# HELP matrix_backup_last_check_success_timestamp_seconds When restic check last passed on the repository."
            echo "# TYPE matrix_backup_last_check_success_timestamp_seconds gauge"
            echo "matrix_backup_last_check_success_timestamp_seconds $(cat "$state/last-check")"
        fi
    } >"$tmp"
    chmod 0644 -- "$tmp"
    mv -f -- "$tmp" "$metrics"
}
`;

/**
 * `pulumi-matrix-backup run|check|failed UNIT|status|snapshots`, run as root.
 *
 * `run` builds one archive in `directory` (the database dump, Synapse's
 * config directory: homeserver.yaml, conf.d, workers, secrets, the signing
 * key and replaced keys; local_content and local_thumbnails; a manifest and
 * SHA256SUMS), sends it to the repository (initialised only when it has no
 * config yet: restic itself refuses to initialise an existing one), forgets
 * and prunes by the retention, then records the time for the metric.
 * `check` runs `restic check`; `failed` is OnFailure='s: it logs at error
 * priority and records the failure in the metric file; `status` prints the
 * last good backup's time; `snapshots` lists the repository's snapshots.
 */
export function renderBackupCommand(s: BackupSettings, f: BackupFiles = BACKUP_FILES): string {
    const p = s.synapse.paths;
    const sf = synapseFiles(p);
    const media = p.mediaStorePath;
    return `${commonHead(s, f, "the homeserver's backup (pulumi-matrix-backup run|final|check|failed UNIT|status|snapshots).")}
${WRITE_METRICS}
backup() {
    # Globals: the EXIT trap reads them after this function returned.
    local dir=${q(s.directory)} stamp key_id
    work="$dir/work"
    archive="$dir/${ARCHIVE_NAME}"
    install -d -m 0700 -- "$dir" "$state"
    # What an interrupted run left: never a usable archive, only space taken.
    rm -rf -- "$work" "$archive.partial"
    mkdir -m 0700 -- "$work"
    trap 'rm -rf -- "$work" "$archive.partial"' EXIT
    stamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)

    # The database, as Synapse's backup guide says (the one-time keys' rows left out).
    (cd / && runuser -u postgres -- pg_dump --port=${s.database.port} ${PG_DUMP_OPTIONS} ${q(s.database.name)}) >"$work/database.dump"

    # Synapse's config directory: homeserver.yaml, conf.d, the workers' files, every secret, the signing key and replaced keys.
    mkdir -m 0700 -- "$work/config"
    cp -a -- ${q(p.configDir)}/. "$work/config/"
    key_id=$(awk 'NR == 1 { print $2 }' "$work/config/${sf.signingKey.slice(p.configDir.length + 1)}")
    if [ -z "$key_id" ]; then echo "no signing key in "${q(sf.signingKey)} >&2; exit 1; fi

    # The config files the stack writes itself (they have a drift record): a restore leaves those to the stack.
    (cd "$work/config" && find . -type f -print0 | sort -z) | while IFS= read -r -d '' rel; do
        rel=\${rel#./}
        if [ -e ${q(`${WRITTEN_DIR}/records${p.configDir}`)}/"$rel" ]; then printf '%s\\n' "$rel"; fi
    done >"$work/managed"

    # Checksums of every file in the archive; local media (remote media and URL caches can be fetched again).
    (cd "$work" && find database.dump managed config -type f -print0 | sort -z | xargs -0r sha256sum) >"$work/SHA256SUMS"
    local m
    for m in local_content local_thumbnails; do
        if [ -d ${q(media)}/"$m" ]; then
            (cd ${q(media)} && find "$m" -type f -print0 | sort -z | xargs -0r sha256sum) | sed 's#^\\([0-9a-f]*\\)  #\\1  media/#' >>"$work/SHA256SUMS"
        fi
    done
    {
        echo "format=1"
        echo "created=$stamp"
        echo "server_name=$server_name"
        echo "key_id=$key_id"
        echo "database=${s.database.name}"
        echo "synapse_version=$(${q(`${p.venvDir}/bin/python`)} -c 'import synapse; print(synapse.__version__)' 2>/dev/null || echo unknown)"
        echo "pg_dump_version=$(pg_dump --version | awk '{ print $NF }')"
        echo "restic_version=$(restic version | awk '{ print $2 }')"
    } >"$work/manifest"

    local media_dirs=()
    for m in local_content local_thumbnails; do
        if [ -d ${q(media)}/"$m" ]; then media_dirs+=(-C ${q(media)} --transform="s,^$m,media/$m,S" "$m"); fi
    done
    tar -cf "$archive.partial" -C "$work" manifest SHA256SUMS database.dump managed config "\${media_dirs[@]}"
    mv -f -- "$archive.partial" "$archive"

    # Off the host. restic refuses to initialise a repository that exists, so this never starts one afresh.
    if ! pm_restic cat config >/dev/null 2>&1; then
        echo "initialising the restic repository"
        pm_restic init
    fi
    pm_restic backup --quiet --tag ${BACKUP_TAG} \${extra_tag:+--tag "$extra_tag"} --host "$server_name" --stdin --stdin-filename ${ARCHIVE_NAME} <"$archive"
    # The snapshot an upgrade restores (run --tag) or the move's final one: its id, on a line of its own.
    if [ -n "$extra_tag" ]; then
        snapshot_id=$(pm_snapshot_id --latest 1 --tag "$extra_tag")
        echo "snapshot $snapshot_id tagged $extra_tag"
    fi
    pm_restic forget --quiet --tag ${BACKUP_TAG} --host "$server_name" --keep-daily ${s.retention.daily} --keep-weekly ${s.retention.weekly} --keep-monthly ${s.retention.monthly} --prune
${s.keepLocalCopy ? `    echo "the latest archive stays in $archive"` : `    rm -f -- "$archive"`}
    date +%s >"$state/last-success"
    write_metrics
    echo "backup of $server_name (key $key_id) sent at $stamp"
}

check() {
    install -d -m 0700 -- "$state"
    pm_restic check
    date +%s >"$state/last-check"
    write_metrics
}

failed() {
    local unit=\${1:-pulumi-matrix-backup.service}
    install -d -m 0700 -- "$state"
    date +%s >"$state/last-failure"
    write_metrics
    logger -p daemon.err -t pulumi-matrix-backup "$unit failed: the homeserver's backup is not up to date; see journalctl -u $unit" || true
    echo "$unit failed: the homeserver's backup is not up to date; see journalctl -u $unit" >&2
}

# The move's final backup: once Synapse stopped for good here (standby), so the new VM restores all it ever wrote.
final() {
    local marker=${q(f.finalBackupMarker)} restored=${q(f.restoredMarker)} unit
    if [ -e "$restored" ] && grep -qx 'standby=1' "$restored"; then
        echo "this host holds a standby copy restored from the repository: it takes no final backup"
        return 0
    fi
    if [ -s "$marker" ]; then
        echo "the final backup was taken: $(tr '\\n' ' ' <"$marker")"
        return 0
    fi
    for unit in matrix-synapse.service $(systemctl list-units --plain --no-legend --state=active 'matrix-synapse-worker@*' 2>/dev/null | awk '{ print $1 }'); do
        if systemctl is-active -q "$unit"; then echo "$unit still runs: the final backup is taken once every Synapse process stopped" >&2; exit 1; fi
    done
    extra_tag=final
    backup
    printf 'snapshot_id=%s\\ntaken_at=%s\\n' "$snapshot_id" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$marker"
    echo "final backup of $server_name: snapshot $snapshot_id (a standby restored from this repository takes it when its standby ends)"
}

status() {
    if [ -s "$state/last-success" ]; then
        local t
        t=$(cat "$state/last-success")
        echo "last good backup: $(date -u -d "@$t" +%Y-%m-%dT%H:%M:%SZ) ($(( ($(date +%s) - t) / 3600 )) hours ago)"
    else
        echo "last good backup: never"
    fi
    if [ -s "$state/last-failure" ]; then echo "last failure: $(date -u -d "@$(cat "$state/last-failure")" +%Y-%m-%dT%H:%M:%SZ)"; fi
}

case "\${1:-}" in
    run)
        # run --tag TAG: one more tag on this snapshot (an upgrade tags its backup with the old release).
        extra_tag=
        if [ "\${2:-}" = --tag ]; then
            extra_tag=\${3:?}
            if ! [[ "$extra_tag" =~ ^[A-Za-z0-9._-]+$ ]]; then echo "pulumi-matrix-backup: --tag: letters, digits, . _ - only, not '$extra_tag'" >&2; exit 2; fi
        fi
        backup ;;
    check) check ;;
    final) final ;;
    failed) failed "\${2:-}" ;;
    status) status ;;
    snapshots) pm_restic snapshots --tag ${BACKUP_TAG} ;;
    *) echo "usage: $0 run [--tag TAG]|final|check|failed UNIT|status|snapshots" >&2; exit 2 ;;
esac
`;
}

/**
 * `pulumi-matrix-restore [--snapshot ID|latest] [--key-id ID] [--once] [--no-start]`, as root.
 *
 * Everything is checked before anything changes: the database has no
 * tables (it is never overwritten; a missing one is created UTF8/C from
 * template0), the archive comes whole from the repository and matches its
 * checksums, and its server_name and signing key id are this server's
 * (`--key-id`, default the key on the host). Then Synapse is stopped if it
 * runs, the dump is restored, `e2e_one_time_keys_json` emptied, the media
 * put back, and the secret files and keys the host lacks put back (those
 * the stack writes itself are never touched); Synapse starts again unless
 * `--no-start`. `--once`: nothing when this host already had a restore.
 */
export function renderRestoreCommand(s: BackupSettings, f: BackupFiles = BACKUP_FILES): string {
    const p = s.synapse.paths;
    const sf = synapseFiles(p);
    const db = s.database;
    const createSql = ["\\set ON_ERROR_STOP on", ...renderCreateDatabaseIfMissing({ database: db.name, user: db.user })].join("\n");
    return `${commonHead(s, f, "restores a backup of the homeserver (pulumi-matrix-restore --help).")}
usage() {
    cat <<'PM_USAGE'
usage: pulumi-matrix-restore [--snapshot ID|latest] [--key-id ID] [--once] [--standby] [--no-start] [--replace-database]
Restores a backup of this homeserver from its restic repository into an empty
database (drop a broken one first: it is never overwritten), with its media and
the secret files the host lacks, after checking the archive's checksums, its
server_name and signing key id. --key-id: the id the stack's key has (default:
the key on this host). --once: nothing if this host already had a restore,
unless that one is a standby's copy and the snapshot is another: then the copy
is replaced (if Synapse never wrote to it). --standby: this restore is a
standby's copy (a move to a new VM). --no-start: leave Synapse stopped
afterwards. --replace-database: a database with tables is renamed aside
(<name>_replaced_<time>, kept) instead of refused.
PM_USAGE
}
snapshot=latest
key_id=
once=0
standby=0
start=1
replace_db=0
while [ $# -gt 0 ]; do
    case "$1" in
        --snapshot) snapshot=\${2:?}; shift 2 ;;
        --key-id) key_id=\${2:?}; shift 2 ;;
        --once) once=1; shift ;;
        --standby) standby=1; shift ;;
        --no-start) start=0; shift ;;
        --replace-database) replace_db=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
if ! [[ "$snapshot" =~ ^(latest|[0-9a-f]{8,64})$ ]]; then echo "pulumi-matrix-restore: --snapshot: expected a snapshot id or latest, not '$snapshot'" >&2; exit 2; fi
marker=${q(f.restoredMarker)}
copy_id=
if [ "$once" = 1 ] && [ -e "$marker" ]; then
    if ! grep -qx 'standby=1' "$marker"; then
        echo "this host already had a restore ($(tr '\\n' ' ' <"$marker")); nothing to do"
        exit 0
    fi
    # A standby's copy: refreshed from another snapshot (the move's final one), or kept.
    copy_id=$(sed -n 's/^snapshot_id=//p' "$marker")
fi
if [ -z "$key_id" ]; then
    key_id=$(awk 'NR == 1 { print $2 }' ${q(sf.signingKey)} 2>/dev/null || true)
    if [ -z "$key_id" ]; then echo "pulumi-matrix-restore: no signing key in "${q(sf.signingKey)}"; give --key-id" >&2; exit 2; fi
fi
pm_psql() { (cd / && runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 --port=${db.port} "$@"); }
refuse() { echo "pulumi-matrix-restore: refused, nothing was changed: $*" >&2; exit 3; }

# Which snapshot: its full id (latest: the newest of this server's).
if [ "$snapshot" = latest ]; then snapshot_id=$(pm_snapshot_id --latest 1); else snapshot_id=$(pm_snapshot_id "$snapshot"); fi
[ -n "$snapshot_id" ] || refuse "the repository has no snapshot $snapshot of $server_name"
if [ -n "$copy_id" ]; then
    if [ "$copy_id" = "$snapshot_id" ]; then
        sed -i "s/^standby=.*/standby=$standby/" "$marker"
        echo "this host holds the standby copy of snapshot $snapshot_id ($snapshot); $([ "$standby" = 1 ] && echo "still a standby" || echo "it is the server now")"
        exit 0
    fi
    # Only a copy nothing wrote to since its restore is replaced; Synapse's events tell.
    now_events=$(pm_psql -d ${q(db.name)} -c "SELECT coalesce(max(stream_ordering), 0) FROM events")
    [ "$now_events" = "$(sed -n 's/^events=//p' "$marker")" ] || refuse "the standby copy of snapshot $copy_id was written to since its restore (Synapse ran on it): replace it by hand, pulumi-matrix-restore --snapshot $snapshot --replace-database (and --standby while this host stays a standby)"
    echo "replacing the standby copy of snapshot $copy_id with snapshot $snapshot_id"
fi

# 1. Never over existing tables (but a standby's untouched copy).
db_exists=$(pm_psql -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '${db.name}'")
if [ "$db_exists" = 1 ]; then
    tables=$(pm_psql -d ${q(db.name)} -c "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
    if [ "$tables" != 0 ] && [ -n "$copy_id" ]; then
        drop_copy=1
    elif [ "$tables" != 0 ] && [ "$replace_db" = 1 ]; then
        # An upgrade's rollback: the database the new release migrated is kept, renamed (step 5), never dropped.
        aside="${db.name}_replaced_$(date -u +%Y%m%d%H%M%S)"
    elif [ "$tables" != 0 ]; then
        refuse "the database ${db.name} already has $tables tables; a restore goes only into an empty database. If it is broken: stop Synapse, keep a copy (pg_dump), DROP DATABASE ${db.name}, then run this again"
    fi
fi

# 2. The archive, whole and matching its checksums.
work=$(mktemp -d /var/tmp/pulumi-matrix-restore.XXXXXX)
trap 'rm -rf -- "$work"' EXIT
echo "fetching snapshot $snapshot_id of $server_name from the repository"
pm_restic dump "$snapshot_id" /${ARCHIVE_NAME} >"$work/archive.tar"
mkdir -m 0700 -- "$work/x"
tar -xpf "$work/archive.tar" -C "$work/x"
rm -f -- "$work/archive.tar"
[ -f "$work/x/manifest" ] && [ -f "$work/x/SHA256SUMS" ] || refuse "snapshot $snapshot holds no archive of pulumi-matrix (no manifest)"
(cd "$work/x" && sha256sum --quiet --strict -c SHA256SUMS) || refuse "the archive of snapshot $snapshot does not match its checksums"

# 3. The same server: server_name and signing key id.
got_name=$(sed -n 's/^server_name=//p' "$work/x/manifest")
got_key=$(sed -n 's/^key_id=//p' "$work/x/manifest")
[ "$got_name" = "$server_name" ] || refuse "the archive is of server_name '$got_name', this server is '$server_name' (server_name can never change)"
[ "$got_key" = "$key_id" ] || refuse "the archive's signing key id is '$got_key', this server's is '$key_id': give the stack the archive's key (signingKey), or restore another archive"
echo "archive of $got_name, key $got_key, made $(sed -n 's/^created=//p' "$work/x/manifest") by Synapse $(sed -n 's/^synapse_version=//p' "$work/x/manifest")"

# 4. Synapse stays down while its data comes back.
was_running=0
if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q matrix-synapse.service 2>/dev/null; then
    was_running=1
    echo "stopping Synapse"
    systemctl stop matrix-synapse.target matrix-synapse.service
fi

# 5. The database: a standby's copy dropped (its snapshot stays in the repository) or one put aside first
# (--replace-database), created as Synapse needs it when missing, then the dump.
if [ -n "\${drop_copy:-}" ]; then
    pm_psql -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db.name}' AND pid <> pg_backend_pid()" >/dev/null
    pm_psql -d postgres -c "DROP DATABASE \\"${db.name}\\""
    echo "the standby copy of snapshot $copy_id was dropped"
fi
if [ -n "\${aside:-}" ]; then
    pm_psql -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db.name}' AND pid <> pg_backend_pid()" >/dev/null
    pm_psql -d postgres -c "ALTER DATABASE \\"${db.name}\\" RENAME TO \\"$aside\\""
    echo "the database ${db.name} was renamed $aside (kept: drop it once the restore is good)"
fi
pm_psql -d postgres <<'PM_SQL'
${createSql}
PM_SQL
(cd / && runuser -u postgres -- pg_restore --port=${db.port} --dbname=${q(db.name)} --exit-on-error --single-transaction) <"$work/x/database.dump"
pm_psql -d ${q(db.name)} -c "TRUNCATE e2e_one_time_keys_json"
echo "database ${db.name} restored"

# 6. Media: local_content and local_thumbnails, Synapse's own.
install -d -m 0750 -o ${q(p.user)} -g ${q(p.user)} ${q(p.mediaStorePath)}
if [ -d "$work/x/media" ]; then
    cp -a -- "$work/x/media/." ${q(p.mediaStorePath)}/
    for m in local_content local_thumbnails; do
        if [ -d ${q(p.mediaStorePath)}/"$m" ]; then chown -R ${q(`${p.user}:${p.user}`)} ${q(p.mediaStorePath)}/"$m"; fi
    done
    echo "media restored: $(find "$work/x/media" -type f | wc -l) files"
fi

# 7. The signing key, replaced keys, secret files and conf.d fragments this host lacks, except those the
# stack wrote (listed in "managed"): the stack writes its own again, and one it no longer has must not return.
put_back=0
touch "$work/x/managed"
while IFS= read -r -d '' rel; do
    rel=\${rel#./}
    if grep -Fxq -- "$rel" "$work/x/managed"; then continue; fi
    if [ ! -e ${q(p.configDir)}/"$rel" ] && [ ! -L ${q(p.configDir)}/"$rel" ]; then
        install -d -m 0750 -o root -g ${q(p.user)} "$(dirname -- ${q(p.configDir)}/"$rel")"
        cp -a -- "$work/x/config/$rel" ${q(p.configDir)}/"$rel"
        echo "put back ${p.configDir}/$rel"
        put_back=$((put_back + 1))
    fi
done < <(cd "$work/x/config" && find ./${sf.signingKey.slice(p.configDir.length + 1)} ./secrets ./conf.d -type f -print0 2>/dev/null)
echo "$put_back files put back"

install -d -m 0700 -- "$state"
events=$(pm_psql -d ${q(db.name)} -c "SELECT coalesce(max(stream_ordering), 0) FROM events")
printf 'snapshot=%s\\nsnapshot_id=%s\\nserver_name=%s\\nkey_id=%s\\nrestored_at=%s\\nstandby=%s\\nevents=%s\\n' "$snapshot" "$snapshot_id" "$got_name" "$got_key" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$standby" "$events" >"$marker"
if [ "$start" = 1 ] && [ "$was_running" = 1 ]; then
    echo "starting Synapse"
    systemctl start matrix-synapse.target matrix-synapse.service
fi
echo "restore of snapshot $snapshot_id done"
`;
}

/** The backup's units: the nightly run and its timer, the weekly check and its timer, and the OnFailure= unit. */
export function renderMatrixBackupUnits(
    s: BackupSettings,
    f: BackupFiles = BACKUP_FILES,
): { service: string; timer: string; checkService: string; checkTimer: string; failedService: string } {
    const common = (what: string, arg: string, timeout: string) => `${HEADER}
[Unit]
Description=${what}
After=network-online.target postgresql.service
Wants=network-online.target
OnFailure=pulumi-matrix-backup-failed@%n.service

[Service]
Type=oneshot
EnvironmentFile=${f.envFile}
ExecStart=${f.backupCommand} ${arg}
Nice=10
IOSchedulingClass=idle
TimeoutStartSec=${timeout}
PrivateTmp=true
`;
    const timer = (what: string, calendar: string) => renderTimerUnit(what, calendar, "15min");
    return {
        service: common(`Backup of the homeserver ${s.synapse.serverName} to its restic repository`, "run", "6h"),
        timer: timer(`Nightly backup of the homeserver ${s.synapse.serverName}`, s.schedule),
        checkService: common(`restic check of the homeserver's backup repository`, "check", "6h"),
        checkTimer: timer(`Weekly restic check of the homeserver's backup repository`, s.checkSchedule),
        failedService: `${HEADER}
[Unit]
Description=Report the failure of %i (the homeserver's backup)

[Service]
Type=oneshot
ExecStart=${f.backupCommand} failed %i
`,
    };
}
