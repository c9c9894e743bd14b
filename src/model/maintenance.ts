import { ConfigError, Described, throwIfAny } from "./errors";
import { synapseFiles, SynapseSettings } from "./synapse";
import { Checker } from "./validate";

/**
 * Maintenance timers for a Synapse homeserver: state compression
 * (`synapse_auto_compressor`), the remote media cache purge and the
 * deletion of rooms no local user is in any more. Each is a systemd timer
 * with a oneshot service of its own (`matrix-maintenance-*.service`): a
 * run that fails exits non-zero, so systemd marks the unit failed.
 */

/** The compressor's release on PyPI: 0.1.2 is the last wheel with the compressor in it (0.1.4 is an empty stub). */
export const COMPRESSOR_PYPI_VERSION = "0.1.2";

/**
 * The requirement pip installs the compressor from (`pip install
 * --require-hashes --no-deps -r`): the only file PyPI lists for 0.1.2 (a
 * cp36-abi3 manylinux x86_64 wheel, any CPython 3 on x86_64), its SHA-256
 * taken from PyPI's simple API when this was written.
 */
export const COMPRESSOR_REQUIREMENT =
    `synapse-auto-compressor==${COMPRESSOR_PYPI_VERSION} ` + "--hash=sha256:d2e9a8c5432c3140ba3c9ca5fd43531df2aa417f2feeb0fc2045eb8f00550b20";

/** Where the maintenance files live on the host. */
export const MAINTENANCE_FILES = {
    /** Scripts the units run (root's, 0755). */
    libDir: "/usr/local/lib/pulumi-matrix/maintenance",
    /** The compressor's own virtualenv (PyPI source). */
    venvDir: "/opt/pulumi-matrix/synapse-auto-compressor",
    /** The compressor binary a user gave by URL (its SHA-256 in the name). */
    binaryDir: "/opt/pulumi-matrix/synapse-auto-compressor-bin",
    /** Root-only (0700): the maintenance admin's password and access token. */
    stateDir: "/var/lib/pulumi-matrix/maintenance",
    unitDir: "/etc/systemd/system",
} as const;
export type MaintenancePaths = { [K in keyof typeof MAINTENANCE_FILES]: string };

/** The units, by timer (the service and timer share the name). */
export const MAINTENANCE_UNITS = {
    compressor: "matrix-maintenance-compress-state",
    mediaCache: "matrix-maintenance-purge-media-cache",
    emptyRooms: "matrix-maintenance-purge-empty-rooms",
} as const;
export type MaintenanceTimer = keyof typeof MAINTENANCE_UNITS;

/** The local admin account the purges use (made on the host through the shared-secret registration). */
export const MAINTENANCE_ADMIN = "pulumi-matrix-maintenance";

/** State compression with `synapse_auto_compressor` (PostgreSQL on Synapse's host only). */
export interface CompressorOptions {
    /** Run the compressor. Default true (needs PostgreSQL on Synapse's host). */
    enabled?: boolean;
    /** When it runs, as a systemd calendar (`OnCalendar=`). Default `Sun *-*-* 04:30:00` (weekly). */
    schedule?: string;
    /** State groups worked on at once (`-c`; at least the first level's size). Default 500, as the compressor's README runs it. */
    chunkSize?: number;
    /** Chunks compressed per run (`-n`): how long one run works. Default 100. */
    chunks?: number;
    /** Sizes of the compression levels (`-l`), lowest first. Default [100, 50, 25] (the compressor's own default). */
    levels?: number[];
    /**
     * A `synapse_auto_compressor` binary to download instead of the PyPI
     * wheel (an https URL); needs `binarySha256`. Default none: PyPI's
     * `synapse-auto-compressor` 0.1.2, hash-pinned, in a virtualenv of its own.
     */
    binaryUrl?: string;
    /** The SHA-256 (64 hex digits) of the file at `binaryUrl`; the download is refused when it differs. */
    binarySha256?: string;
}

/** The purge of cached remote media (`purge_media_cache`). */
export interface MediaCacheOptions {
    /** Run the purge. Default true. */
    enabled?: boolean;
    /** When it runs (`OnCalendar=`). Default `Sun *-*-* 05:30:00` (weekly). */
    schedule?: string;
    /** Cached remote media not accessed for this many days is deleted (it is fetched again when asked for). Default 30; at least 1. */
    olderThanDays?: number;
}

/** Deletion (with purge) of rooms no local user has been in for a while. */
export interface EmptyRoomsOptions {
    /** Run the deletion (a dry run unless `dryRun` is false). Default true. */
    enabled?: boolean;
    /** When it runs (`OnCalendar=`). Default `Sun *-*-* 06:00:00` (weekly). */
    schedule?: string;
    /**
     * A room is deleted once its last local member left this many days ago
     * (the newest local membership event of its current state). Default 30; at least 1.
     */
    emptyForDays?: number;
    /** Only log what would be deleted. Default true: set false to delete. */
    dryRun?: boolean;
}

/** The maintenance timers a user writes; each one is on unless its `enabled` is false. */
export interface MaintenanceOptions {
    /** The maintenance timers at all: false turns every one off (and takes away those an earlier deployment set up). Default true. */
    enabled?: boolean;
    /** State compression. Default on (needs PostgreSQL on Synapse's host). */
    compressor?: CompressorOptions;
    /** The remote media cache purge. Default on. */
    mediaCache?: MediaCacheOptions;
    /** The empty-room deletion. Default on, as a dry run. */
    emptyRooms?: EmptyRoomsOptions;
}

/** Every timer off: what a stack without maintenance deploys (it takes away the timers of an earlier deployment). */
export const NO_MAINTENANCE: MaintenanceOptions = { enabled: false };

/** Where the compressor comes from. */
export type CompressorSource = { kind: "pypi"; requirement: string } | { kind: "binary"; url: string; sha256: string };

/** How the compressor reaches the database: as the `postgres` superuser through the local socket (peer authentication, no password). */
export interface CompressorDatabase {
    /** The database's name. */
    name: string;
    /** The directory of PostgreSQL's socket (default /var/run/postgresql). */
    socketDir: string;
    port: number;
    /** The OS user (and role) peer authentication admits (default postgres). */
    osUser: string;
}

export interface CompressorSettings {
    schedule: string;
    chunkSize: number;
    chunks: number;
    levels: number[];
    source: CompressorSource;
    database: CompressorDatabase;
}

export interface MaintenanceSettings {
    compressor?: CompressorSettings;
    mediaCache?: { schedule: string; olderThanDays: number };
    emptyRooms?: { schedule: string; emptyForDays: number; dryRun: boolean };
    /** What the purges need of Synapse: its loopback listener, server name, shared secret and Python. */
    synapse?: { baseUrl: string; serverName: string; registrationSharedSecret: string; python: string };
    /** Synapse is in standby (a move to a new VM): the timers are installed but stay stopped. */
    standby: boolean;
    paths: MaintenancePaths;
}

/** Sunday mornings, after the nightly database dump (03:30): a backup from before the compressor ran. */
export const MAINTENANCE_DEFAULTS = {
    compressor: { schedule: "Sun *-*-* 04:30:00", chunkSize: 500, chunks: 100, levels: [100, 50, 25] },
    mediaCache: { schedule: "Sun *-*-* 05:30:00", olderThanDays: 30 },
    emptyRooms: { schedule: "Sun *-*-* 06:00:00", emptyForDays: 30, dryRun: true },
} as const;

/** What the maintenance needs to know of the deployment. */
export interface MaintenanceContext {
    /** Synapse's settings (its database, listener, secrets' paths). */
    synapse: SynapseSettings;
    /**
     * The PostgreSQL server on Synapse's host, when there is one: the
     * compressor connects to it through the local socket. Absent with
     * SQLite, a database on another host or an external server.
     */
    localPostgres?: { database: string; port: number; socketDir?: string; osUser?: string };
}

/** A systemd calendar expression as the timers take it: printable text without quotes, backslashes or line breaks. */
function isCalendar(v: unknown): boolean {
    return typeof v === "string" && /^[A-Za-z0-9*:.,/~ -]{1,100}$/.test(v) && v.trim() === v && v !== "";
}

/** Fills in the defaults and validates; every problem is reported at once. `paths` is for tests (the host layout by default). */
export function resolveMaintenanceSettings(
    component: string,
    o: MaintenanceOptions,
    ctx: MaintenanceContext,
    paths: MaintenancePaths = MAINTENANCE_FILES,
): MaintenanceSettings {
    const c = new Checker(component);
    const errors: ConfigError[] = [];
    const sqlite = ctx.synapse.database.kind === "sqlite";
    const s: MaintenanceSettings = { standby: ctx.synapse.standby, paths };
    const schedule = (setting: string, v: unknown) =>
        c.check(setting, v, isCalendar(v), "expected a systemd calendar expression such as weekly or Sun *-*-* 04:30:00 (see systemd.time(7))");

    const shown = (t: MaintenanceTimer) => o[t]?.enabled ?? new Described("true (the default)");
    c.check("enabled", o.enabled, o.enabled === undefined || typeof o.enabled === "boolean", "expected true or false");
    const on = (t: MaintenanceTimer) => {
        if (o.enabled === false) return false;
        const v = o[t]?.enabled;
        c.check(`${t}.enabled`, v, v === undefined || typeof v === "boolean", "expected true or false");
        return v !== false;
    };
    if (on("compressor")) {
        const co = o.compressor ?? {};
        const d = MAINTENANCE_DEFAULTS.compressor;
        if (sqlite)
            errors.push(
                new ConfigError(
                    component,
                    "compressor.enabled",
                    shown("compressor"),
                    "the compressor works on PostgreSQL only, and Synapse uses SQLite: set compressor.enabled to false",
                ),
            );
        else if (!ctx.localPostgres)
            errors.push(
                new ConfigError(
                    component,
                    "compressor.enabled",
                    shown("compressor"),
                    "the compressor connects through PostgreSQL's local socket, and the database is not on Synapse's host: set compressor.enabled to false (run it on the database host yourself)",
                ),
            );
        const settings: CompressorSettings = {
            schedule: co.schedule ?? d.schedule,
            chunkSize: co.chunkSize ?? d.chunkSize,
            chunks: co.chunks ?? d.chunks,
            levels: [...(co.levels ?? d.levels)],
            source:
                co.binaryUrl !== undefined
                    ? { kind: "binary", url: co.binaryUrl, sha256: String(co.binarySha256 ?? "").toLowerCase() }
                    : { kind: "pypi", requirement: COMPRESSOR_REQUIREMENT },
            database: {
                name: ctx.localPostgres?.database ?? "synapse",
                port: ctx.localPostgres?.port ?? 5432,
                socketDir: ctx.localPostgres?.socketDir ?? "/var/run/postgresql",
                osUser: ctx.localPostgres?.osUser ?? "postgres",
            },
        };
        schedule("compressor.schedule", settings.schedule);
        c.positiveInt("compressor.chunkSize", settings.chunkSize, 100_000);
        c.positiveInt("compressor.chunks", settings.chunks, 100_000);
        const levelsOk =
            Array.isArray(settings.levels) &&
            settings.levels.length > 0 &&
            settings.levels.length <= 10 &&
            settings.levels.every((l) => Number.isInteger(l) && l > 0 && l <= 10_000);
        c.check(
            "compressor.levels",
            co.levels ?? settings.levels,
            levelsOk,
            "expected 1 to 10 level sizes, whole numbers from 1 to 10000, such as [100, 50, 25]",
        );
        if (levelsOk && Number.isInteger(settings.chunkSize))
            c.check(
                "compressor.chunkSize",
                settings.chunkSize,
                settings.chunkSize >= settings.levels[0],
                `expected at least the first level's size (${settings.levels[0]}): a smaller chunk makes the compressor skip chunks of rooms it compressed before`,
            );
        if (co.binaryUrl !== undefined) {
            c.check(
                "compressor.binaryUrl",
                co.binaryUrl,
                typeof co.binaryUrl === "string" && /^https:\/\/[^\s'"\\]+$/.test(co.binaryUrl),
                "expected an https:// URL of a synapse_auto_compressor binary",
            );
            if (co.binarySha256 === undefined)
                c.check(
                    "compressor.binaryUrl",
                    co.binaryUrl,
                    false,
                    "expected compressor.binarySha256 with it (the binary's SHA-256, 64 hex digits): a binary downloaded without it is refused",
                );
            else
                c.check(
                    "compressor.binarySha256",
                    co.binarySha256,
                    typeof co.binarySha256 === "string" && /^[0-9a-fA-F]{64}$/.test(co.binarySha256),
                    "expected the binary's SHA-256 (64 hex digits)",
                );
        } else if (co.binarySha256 !== undefined)
            c.check(
                "compressor.binarySha256",
                co.binarySha256,
                false,
                "expected it only together with compressor.binaryUrl (the wheel from PyPI is pinned already)",
            );
        s.compressor = settings;
    }

    const days = (setting: string, v: unknown) =>
        c.check(
            setting,
            v,
            typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 36500,
            "expected a whole number of days, at least 1 (retention under one day is refused)",
        );
    if (on("mediaCache")) {
        const mo = o.mediaCache ?? {};
        const d = MAINTENANCE_DEFAULTS.mediaCache;
        s.mediaCache = { schedule: mo.schedule ?? d.schedule, olderThanDays: mo.olderThanDays ?? d.olderThanDays };
        schedule("mediaCache.schedule", s.mediaCache.schedule);
        days("mediaCache.olderThanDays", s.mediaCache.olderThanDays);
    }
    if (on("emptyRooms")) {
        const ro = o.emptyRooms ?? {};
        const d = MAINTENANCE_DEFAULTS.emptyRooms;
        s.emptyRooms = { schedule: ro.schedule ?? d.schedule, emptyForDays: ro.emptyForDays ?? d.emptyForDays, dryRun: ro.dryRun ?? d.dryRun };
        schedule("emptyRooms.schedule", s.emptyRooms.schedule);
        days("emptyRooms.emptyForDays", s.emptyRooms.emptyForDays);
        c.check("emptyRooms.dryRun", s.emptyRooms.dryRun, typeof s.emptyRooms.dryRun === "boolean", "expected true (only log) or false (delete)");
    }
    if (sqlite)
        for (const t of ["mediaCache", "emptyRooms"] as const)
            if (s[t])
                errors.push(
                    new ConfigError(
                        component,
                        `${t}.enabled`,
                        shown(t),
                        "the purges are for PostgreSQL deployments (SQLite is for tiny test servers): set its enabled to false",
                    ),
                );
    if (s.mediaCache || s.emptyRooms) {
        const sy = ctx.synapse;
        s.synapse = {
            baseUrl: `http://127.0.0.1:${sy.httpPort}`,
            serverName: sy.serverName,
            registrationSharedSecret: synapseFiles(sy.paths).registrationSharedSecret,
            python: `${sy.paths.venvDir}/bin/python`,
        };
    }
    throwIfAny([...errors, ...c.errors]);
    return s;
}

/** Which timers are on. */
export function maintenanceTimers(s: MaintenanceSettings): MaintenanceTimer[] {
    return (["compressor", "mediaCache", "emptyRooms"] as const).filter((t) => s[t] !== undefined);
}
