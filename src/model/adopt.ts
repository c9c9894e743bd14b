import { DEFAULT_SYNAPSE_PATHS, OldSigningKey, SynapsePaths } from "./synapse";
import { Checker, isAbsolutePath, isServerName } from "./validate";

/**
 * Adopting a Synapse installed by hand the way the seed guides install it
 * (the Debian package's layout: /etc/matrix-synapse with homeserver.yaml and
 * conf.d, /var/lib/matrix-synapse with the SQLite file and the media store,
 * the unit matrix-synapse.service): a read-only preflight, then its database
 * taken over: a SQLite database ported into the stack's empty PostgreSQL
 * database with Synapse's own synapse_port_db (from snapshot copies, never
 * the file itself); a PostgreSQL database dumped and restored into the
 * stack's empty database (the old one untouched), or kept in place as the
 * stack's own. Its signing key is imported into the stack's state, its unit
 * and its package's config disabled (kept, not deleted). Done once: the host
 * keeps a marker.
 */

const ADOPT_STATE_DIR = "/var/lib/pulumi-matrix/adopt";

/** Where the adoption keeps its files on the host (all root only). */
export const ADOPT_FILES = {
    /** root:root 0700: the snapshot copies of the SQLite file, the port's configs, the kept config. */
    stateDir: ADOPT_STATE_DIR,
    /** Written once the adoption finished (date, server_name, key id): a later run does nothing. */
    adoptedMarker: `${ADOPT_STATE_DIR}/adopted`,
    /** The adopted signing key file, as it was (0600): what the stack keeps in its state. */
    signingKey: `${ADOPT_STATE_DIR}/homeserver.signing.key`,
    /** A copy of the whole config directory as it was before the adoption (with its unit file when under /etc). */
    keptConfig: `${ADOPT_STATE_DIR}/config-before-adoption`,
} as const;

/** The layout the scripts use: ADOPT_FILES on a host (a test points it at a directory of its own). */
export type AdoptFiles = { readonly [K in keyof typeof ADOPT_FILES]: string };

/**
 * The database schema version (Synapse's `SCHEMA_VERSION`, in
 * synapse/storage/schema/__init__.py) of each release the library pins: a
 * server whose database is newer than this cannot be run by that release.
 */
export const SYNAPSE_SCHEMA_VERSIONS: Record<string, number> = {
    "1.163.1": 94,
    "1.163.2": 94,
};

/** How a server already on PostgreSQL is taken over (a SQLite server is always ported). */
export const ADOPT_POSTGRES_MODES = ["dump", "in-place"] as const;
export type AdoptPostgresMode = (typeof ADOPT_POSTGRES_MODES)[number];

/** Where the existing Synapse is; every default is the Debian package's layout. */
export interface AdoptOptions {
    /**
     * The existing Synapse's config directory: `homeserver.yaml` and the
     * `conf.d/*.yaml` read after it (where its database, media store and
     * signing key are is read from them). Absolute. Default
     * `/etc/matrix-synapse`.
     */
    configDir?: string;
    /**
     * The virtualenv the existing Synapse runs from: its Python reads the
     * config, the SQLite file (read only) and the key. Absolute. Default
     * `/opt/venvs/matrix-synapse` (the package's).
     */
    venvDir?: string;
    /** The systemd unit that runs it: stopped for the final pass, then disabled (not removed). Default `matrix-synapse.service`. */
    unit?: string;
    /**
     * Where the preflight asks the running server for the key it publishes
     * (`/_matrix/key/v2/server`), from the host itself. Default: its first
     * plain HTTP listener that serves `federation` or `keys`, on loopback.
     */
    keyUrl?: string;
    /**
     * How a server that runs on PostgreSQL (`database.name: psycopg2`) is
     * taken over. `dump` (default): once the old unit is stopped, its
     * database is dumped (`pg_dump -Fc`) and restored into the stack's
     * empty database (UTF8, C, from template0, owned by the stack's role);
     * the old database and role are left as they were, so the old server can
     * be started again. A collation other than C is fixed on the way.
     * `in-place`: the stack's PostgresDatabase takes over the existing
     * database and role on this host's server: the role gets the stack's
     * password, pg_hba and tuning follow the stack, the database is never
     * dropped or recreated; it must already be the stack's `postgres`
     * `database`, owned by its `user`, with collation C. Has no effect on a
     * SQLite server (`in-place` there is refused by the preflight).
     */
    postgres?: AdoptPostgresMode;
}

/** The stack's PostgreSQL when it is installed on the adopted server's host: what `in-place` takes over, and what `dump` must not collide with. */
export interface AdoptStackDatabase {
    database: string;
    user: string;
    port: number;
}

/** The adoption's settings with every default filled in. */
export interface AdoptSettings {
    configDir: string;
    /** homeserver.yaml, then conf.d/ (each a --config-path, as the package's unit passes them). */
    configPaths: string[];
    venvDir: string;
    unit: string;
    keyUrl?: string;
    postgres: AdoptPostgresMode;
    /** The stack's PostgreSQL on this host (absent: external, or on another host). */
    database?: AdoptStackDatabase;
    /** What the new server will be: the scripts compare the old one with it. */
    synapse: {
        serverName: string;
        paths: SynapsePaths;
        version: string;
        /** The pinned release's SCHEMA_VERSION. */
        schemaVersion: number;
        oldSigningKeys: Record<string, OldSigningKey>;
    };
}

export const ADOPT_DEFAULTS = {
    configDir: DEFAULT_SYNAPSE_PATHS.configDir,
    venvDir: DEFAULT_SYNAPSE_PATHS.venvDir,
    unit: "matrix-synapse.service",
    postgres: "dump",
} as const;

/**
 * Fills in the defaults and validates the paths, the unit's name and the key
 * URL. `synapse` is the stack's Synapse: it must use PostgreSQL (the port's
 * target), and its release must be one whose schema version is known.
 * `database` is the stack's PostgreSQL when it is installed on this host:
 * `in-place` needs it.
 */
export function resolveAdoptSettings(
    component: string,
    o: AdoptOptions,
    synapse: { serverName: string; paths: SynapsePaths; version: string; sqlite: boolean; oldSigningKeys: Record<string, OldSigningKey> },
    database?: AdoptStackDatabase,
): AdoptSettings {
    const d = ADOPT_DEFAULTS;
    const c = new Checker(component);
    const configDir = o.configDir ?? d.configDir;
    const venvDir = o.venvDir ?? d.venvDir;
    const unit = o.unit ?? d.unit;
    const postgres = o.postgres ?? d.postgres;
    for (const [k, v] of [
        ["configDir", configDir],
        ["venvDir", venvDir],
    ] as const)
        c.check(k, v, typeof v === "string" && isAbsolutePath(v) && v !== "/", `expected an absolute path such as ${d[k]}`);
    c.check(
        "unit",
        unit,
        typeof unit === "string" && /^[A-Za-z0-9@_.:-]+\.service$/.test(unit),
        "expected a systemd service name such as matrix-synapse.service",
    );
    c.check(
        "keyUrl",
        o.keyUrl,
        o.keyUrl === undefined || (typeof o.keyUrl === "string" && /^https?:\/\/[A-Za-z0-9.:[\]-]+(:\d+)?\/_matrix\/key\/v2\/server$/.test(o.keyUrl)),
        "expected the server's key URL as the host reaches it, such as http://127.0.0.1:8008/_matrix/key/v2/server",
    );
    c.oneOf("postgres", postgres, ADOPT_POSTGRES_MODES);
    c.check(
        "postgres",
        postgres,
        postgres !== "in-place" || database !== undefined,
        'expected "dump" here: "in-place" takes over a database of the stack\'s own PostgreSQL, which must then be installed on the adopted server\'s host (not external, not on another host)',
    );
    c.check(
        "sqlite",
        synapse.sqlite ? "set" : "not set",
        !synapse.sqlite,
        "expected Synapse on PostgreSQL: the adopted SQLite database is ported into the stack's PostgreSQL database (remove sqlite, give a database)",
    );
    c.check(
        "version",
        synapse.version,
        Object.prototype.hasOwnProperty.call(SYNAPSE_SCHEMA_VERSIONS, synapse.version),
        `expected a Synapse release whose schema version the adoption knows: ${Object.keys(SYNAPSE_SCHEMA_VERSIONS).join(", ")}`,
    );
    c.check("serverName", synapse.serverName, isServerName(synapse.serverName), "expected Synapse's server_name");
    c.done();
    return {
        configDir,
        configPaths: [`${configDir}/homeserver.yaml`, `${configDir}/conf.d/`],
        venvDir,
        unit,
        ...(o.keyUrl !== undefined ? { keyUrl: o.keyUrl } : {}),
        postgres,
        ...(database ? { database: { database: database.database, user: database.user, port: database.port } } : {}),
        synapse: {
            serverName: synapse.serverName,
            paths: synapse.paths,
            version: synapse.version,
            schemaVersion: SYNAPSE_SCHEMA_VERSIONS[synapse.version],
            oldSigningKeys: synapse.oldSigningKeys,
        },
    };
}
