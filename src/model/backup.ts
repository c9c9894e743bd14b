import { Described } from "./errors";
import { PostgresLocalSettings } from "./postgres";
import { SynapsePaths } from "./synapse";
import { Checker, isAbsolutePath, isHostname, isIpAddress, isPort, isServerName } from "./validate";

/**
 * Backups of a homeserver as Synapse's backup guide describes them: one
 * archive per run (the database dumped with `pg_dump -Fc` without the rows
 * of `e2e_one_time_keys_json`, the signing key and replaced keys, the
 * configuration and every secret file, the local media and thumbnails, a
 * manifest with checksums), sent to an off-host restic repository (SFTP or
 * S3-compatible), kept per day, week and month, checked weekly; and the
 * restore of such an archive, on a fresh host before Synapse first starts
 * (`restoreFrom`) or on a running one (`pulumi-matrix-restore`).
 */

const BACKUP_CONFIG_DIR = "/etc/pulumi-matrix/backup";
const BACKUP_STATE_DIR = "/var/lib/pulumi-matrix/backup";

/** Where the backup's files live on the host. */
export const BACKUP_FILES = {
    /** root:root 0700: the repository password, the target's credentials, the SSH key and known_hosts. */
    configDir: BACKUP_CONFIG_DIR,
    /** restic's `--password-file` (RESTIC_PASSWORD_FILE), root only. */
    passwordFile: `${BACKUP_CONFIG_DIR}/restic-password`,
    /** The units' EnvironmentFile= (the repository, the password file's path, S3 keys), root only. */
    envFile: `${BACKUP_CONFIG_DIR}/restic.env`,
    /** The SFTP target's private key, root only. */
    sshKey: `${BACKUP_CONFIG_DIR}/sftp-key`,
    /** The SFTP target's pinned host keys. */
    knownHosts: `${BACKUP_CONFIG_DIR}/known_hosts`,
    /** `pulumi-matrix-backup run|check|failed|status|snapshots`: what the units run, and the status command. */
    backupCommand: "/usr/local/sbin/pulumi-matrix-backup",
    /** `pulumi-matrix-restore`: restores an archive (deploy and by hand). */
    restoreCommand: "/usr/local/sbin/pulumi-matrix-restore",
    service: "/etc/systemd/system/pulumi-matrix-backup.service",
    timer: "/etc/systemd/system/pulumi-matrix-backup.timer",
    checkService: "/etc/systemd/system/pulumi-matrix-backup-check.service",
    checkTimer: "/etc/systemd/system/pulumi-matrix-backup-check.timer",
    failedService: "/etc/systemd/system/pulumi-matrix-backup-failed@.service",
    /** last-success, last-failure, last-check (seconds since the epoch) and the restore marker. */
    stateDir: BACKUP_STATE_DIR,
    /**
     * Written once a restore finished (the snapshot's id, and `standby=1`
     * for a standby's copy): a later run of the restore step does nothing,
     * except refresh a standby's copy from a newer snapshot.
     */
    restoredMarker: `${BACKUP_STATE_DIR}/restored`,
    /** The move's final backup (`pulumi-matrix-backup final`): its snapshot id and time, once per standby. */
    finalBackupMarker: `${BACKUP_STATE_DIR}/final-backup`,
    /** restic's cache (the service has no HOME). */
    cacheDir: "/var/cache/pulumi-matrix-restic",
    /** node_exporter's textfile collector reads it (Debian's prometheus-node-exporter: --collector.textfile.directory). */
    metricsFile: "/var/lib/prometheus/node-exporter/matrix_backup.prom",
} as const;

/** The layout the scripts use: BACKUP_FILES on a host (a test points it at a directory of its own). */
export type BackupFiles = { readonly [K in keyof typeof BACKUP_FILES]: string };

/** The gauge of the last good backup's time (the monitoring's alert reads exactly this name). */
export const BACKUP_METRIC = "matrix_backup_last_success_timestamp_seconds";

/** The restic tag of every snapshot the library makes (forget and restore look only at these). */
export const BACKUP_TAG = "pulumi-matrix";

/** The archive's name inside a snapshot (restic's --stdin-filename): the same path in every snapshot. */
export const ARCHIVE_NAME = "matrix-backup.tar";

/** Where a restic repository is. */
export type BackupTarget =
    /** An SSH server's SFTP subsystem, reached with a key of the stack's and a pinned host key. */
    | { kind: "sftp"; user: string; host: string; port: number; path: string }
    /** An S3-compatible service (AWS, MinIO, versitygw, ...): endpoint URL and bucket (and a prefix in it). */
    | { kind: "s3"; endpoint: string; bucket: string };

/** The backup settings a user writes. */
export interface BackupOptions {
    /**
     * The restic repository off the host, as restic writes it:
     * `sftp:user@host:/path`, `sftp://user@host:port//absolute/path` (or
     * `/relative/to/home`), or `s3:https://endpoint/bucket[/prefix]`
     * (`s3:http://` only for a server on a private network). Required.
     * SFTP needs `sftpPrivateKey` and `sftpKnownHosts`; S3 needs
     * `s3AccessKeyId` and `s3SecretAccessKey` (component inputs, secret).
     */
    repository: string;
    /**
     * The SFTP server's host keys, as lines of an OpenSSH known_hosts file
     * (`[host]:port ssh-ed25519 AAAA...`); ssh checks the server against
     * them and nothing else (StrictHostKeyChecking=yes). Required for SFTP.
     */
    sftpKnownHosts?: string;
    /** When the backup runs, a systemd OnCalendar expression; missed runs happen at the next boot (Persistent=true). Default `*-*-* 04:00:00`. */
    schedule?: string;
    /** When `restic check` verifies the repository, an OnCalendar expression. Default `Sun *-*-* 05:30:00` (weekly). */
    checkSchedule?: string;
    /**
     * Snapshots kept by `restic forget --prune` after each backup: the last
     * one of each of this many days, weeks and months. `daily` at least 1.
     * Default 7 daily, 4 weekly, 12 monthly.
     */
    retention?: { daily?: number; weekly?: number; monthly?: number };
    /**
     * Where each run builds its archive (root only). Not inside Synapse's
     * data directory (it would back itself up). Default
     * `/var/backups/pulumi-matrix/synapse`.
     */
    directory?: string;
    /** Keep the latest archive in `directory` after it was sent (`matrix-backup.tar`), for a restore without the network. Default false. */
    keepLocalCopy?: boolean;
    /**
     * Restore this snapshot (its restic id, or `latest`) on this host before
     * Synapse first starts: into an empty database only, and only an
     * archive of the same server_name and signing key id. Done once: the
     * host keeps a marker. Default: none (a new, empty server).
     */
    restoreFrom?: string;
}

/** The backup settings with every default filled in. */
export interface BackupSettings {
    repository: string;
    target: BackupTarget;
    sftpKnownHosts?: string;
    schedule: string;
    checkSchedule: string;
    retention: { daily: number; weekly: number; monthly: number };
    directory: string;
    keepLocalCopy: boolean;
    restoreFrom?: string;
    /** What the scripts read of Synapse and its database; `standby`: Synapse is held, not run (a move to a new VM). */
    synapse: { serverName: string; paths: SynapsePaths; standby: boolean };
    database: { name: string; user: string; port: number };
}

export const BACKUP_DEFAULTS = {
    schedule: "*-*-* 04:00:00",
    checkSchedule: "Sun *-*-* 05:30:00",
    retention: { daily: 7, weekly: 4, monthly: 12 },
    directory: "/var/backups/pulumi-matrix/synapse",
    keepLocalCopy: false,
} as const;

/** Which secret inputs the component was given (their values are never looked at here). */
export interface BackupCredentials {
    password: boolean;
    sftpPrivateKey: boolean;
    s3AccessKeyId: boolean;
    s3SecretAccessKey: boolean;
}

/** A restic repository URL as the library supports it, or undefined. */
export function parseRepository(url: string): BackupTarget | undefined {
    let m = /^sftp:\/\/([a-z_][a-z0-9_.-]{0,31})@([^/:@\s]+|\[[0-9a-fA-F:]+\])(?::(\d+))?(\/[^\s'"\\]*)$/.exec(url);
    if (m) {
        const port = m[3] === undefined ? 22 : Number(m[3]);
        const host = m[2].replace(/^\[|\]$/g, "");
        return isPort(port) && (isHostname(host) || isIpAddress(host)) ? { kind: "sftp", user: m[1], host, port, path: m[4] } : undefined;
    }
    m = /^sftp:([a-z_][a-z0-9_.-]{0,31})@([^/:@\s]+):(\/?[^\s'"\\]+)$/.exec(url);
    if (m) return isHostname(m[2]) || isIpAddress(m[2]) ? { kind: "sftp", user: m[1], host: m[2], port: 22, path: m[3] } : undefined;
    m = /^s3:(https?:\/\/[A-Za-z0-9.-]+(?::\d+)?)\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(\/[A-Za-z0-9._\-/]*)?$/.exec(url);
    if (m) return { kind: "s3", endpoint: m[1], bucket: m[2] };
    return undefined;
}

const SCHEMES = "sftp:user@host:/path, sftp://user@host:port//path or s3:https://endpoint/bucket[/prefix]";

function isOnCalendar(v: unknown): boolean {
    return typeof v === "string" && /^[0-9A-Za-z*:,./ ~-]+$/.test(v) && v.trim() !== "";
}

/** A known_hosts text: lines of `<host patterns> <key type> <base64 key>`, comments and blanks allowed. */
export function isKnownHosts(v: unknown): boolean {
    if (typeof v !== "string") return false;
    const lines = v.split("\n").filter((l) => l.trim() !== "" && !l.trim().startsWith("#"));
    return lines.length > 0 && lines.every((l) => /^\S+ (ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/]+=*( .*)?$/.test(l.trim()));
}

/** A restic snapshot id (8 to 64 hex digits) or `latest`. */
export function isSnapshotRef(v: unknown): boolean {
    return typeof v === "string" && (v === "latest" || /^[0-9a-f]{8,64}$/.test(v));
}

/** Whether `inner` is `outer` or below it. */
function within(inner: string, outer: string): boolean {
    const o = outer.replace(/\/+$/, "");
    return inner === o || inner.startsWith(`${o}/`);
}

/**
 * Fills in the defaults and validates: the repository's scheme, the
 * credentials its target needs, retention (a day at least), the schedules,
 * and a directory outside Synapse's data directory. `synapse` and
 * `database` are the settings of the Synapse and local PostgreSQL backed up.
 */
export function resolveBackupSettings(
    component: string,
    o: BackupOptions,
    ctx: { synapse: { serverName: string; paths: SynapsePaths; standby?: boolean }; database: PostgresLocalSettings; credentials: BackupCredentials },
): BackupSettings {
    const d = BACKUP_DEFAULTS;
    const c = new Checker(component);
    const repository = o.repository;
    const target = typeof repository === "string" ? parseRepository(repository) : undefined;
    c.check(
        "repository",
        repository,
        target !== undefined,
        `expected a restic repository off this host: ${SCHEMES} (only SFTP and S3-compatible targets are supported)`,
    );
    const cred = ctx.credentials;
    c.check("password", new Described("not set"), cred.password, "expected the restic repository's password (a secret input)");
    if (target?.kind === "sftp") {
        c.check("sftpPrivateKey", new Described("not set"), cred.sftpPrivateKey, "an SFTP repository needs the private key of its SSH user (a secret input)");
        c.check(
            "sftpKnownHosts",
            o.sftpKnownHosts === undefined ? new Described("not set") : o.sftpKnownHosts,
            isKnownHosts(o.sftpKnownHosts),
            "an SFTP repository needs the server's host keys as known_hosts lines, such as [backup.example.com]:22 ssh-ed25519 AAAA... (ssh-keyscan prints them)",
        );
    } else if (target?.kind === "s3") {
        c.check("s3AccessKeyId", new Described("not set"), cred.s3AccessKeyId, "an S3 repository needs its access key id (a secret input)");
        c.check("s3SecretAccessKey", new Described("not set"), cred.s3SecretAccessKey, "an S3 repository needs its secret access key (a secret input)");
        c.check(
            "sftpKnownHosts",
            new Described("set"),
            o.sftpKnownHosts === undefined,
            "it is only used with an SFTP repository: remove it, or use an sftp: repository",
        );
    }
    const retention = {
        daily: o.retention?.daily ?? d.retention.daily,
        weekly: o.retention?.weekly ?? d.retention.weekly,
        monthly: o.retention?.monthly ?? d.retention.monthly,
    };
    c.check(
        "retention.daily",
        retention.daily,
        Number.isInteger(retention.daily) && retention.daily >= 1 && retention.daily <= 3660,
        "expected at least one day kept (a whole number from 1 to 3660): with none, forget would drop the backup just made",
    );
    for (const k of ["weekly", "monthly"] as const)
        c.check(
            `retention.${k}`,
            retention[k],
            Number.isInteger(retention[k]) && retention[k] >= 0 && retention[k] <= 1200,
            "expected a whole number from 0 to 1200",
        );
    const schedule = o.schedule ?? d.schedule;
    const checkSchedule = o.checkSchedule ?? d.checkSchedule;
    c.check("schedule", schedule, isOnCalendar(schedule), 'expected a systemd OnCalendar expression such as "*-*-* 04:00:00" or "daily"');
    c.check("checkSchedule", checkSchedule, isOnCalendar(checkSchedule), 'expected a systemd OnCalendar expression such as "Sun *-*-* 05:30:00" or "weekly"');
    const directory = o.directory ?? d.directory;
    const paths = ctx.synapse.paths;
    c.check("directory", directory, isAbsolutePath(directory) && directory !== "/", "expected an absolute path such as /var/backups/pulumi-matrix/synapse");
    for (const [what, dir] of [
        ["data directory", paths.dataDir],
        ["media store", paths.mediaStorePath],
        ["config directory", paths.configDir],
    ] as const)
        c.check(
            "directory",
            directory,
            !within(directory, dir) && !within(dir, directory),
            `expected a directory outside Synapse's ${what} ${dir} (each archive would contain the ones before it), such as ${d.directory}`,
        );
    c.check(
        "restoreFrom",
        o.restoreFrom,
        o.restoreFrom === undefined || isSnapshotRef(o.restoreFrom),
        'expected a restic snapshot id (8 to 64 hex digits, as restic snapshots prints it) or "latest"',
    );
    c.check("synapse.serverName", ctx.synapse.serverName, isServerName(ctx.synapse.serverName), "expected Synapse's server_name");
    c.done();
    return {
        repository,
        target: target!,
        ...(target!.kind === "sftp" ? { sftpKnownHosts: o.sftpKnownHosts } : {}),
        schedule,
        checkSchedule,
        retention,
        directory,
        keepLocalCopy: o.keepLocalCopy ?? d.keepLocalCopy,
        ...(o.restoreFrom !== undefined ? { restoreFrom: o.restoreFrom } : {}),
        synapse: { serverName: ctx.synapse.serverName, paths: ctx.synapse.paths, standby: ctx.synapse.standby ?? false },
        database: { name: ctx.database.database, user: ctx.database.user, port: ctx.database.port },
    };
}
