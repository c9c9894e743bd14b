import { resolveBackupSettings } from "../model/backup";
import { DNS_DEFAULTS } from "../model/dns";
import { resolveElementWebSettings } from "../model/element";
import { resolveHostSettings } from "../model/host";
import { MAINTENANCE_DEFAULTS } from "../model/maintenance";
import { MONITORING_DEFAULTS } from "../model/monitoring";
import { resolvePostgresSettings } from "../model/postgres";
import { PROXY_DEFAULTS, resolveReverseProxySettings } from "../model/proxy";
import { resolveRedisSettings } from "../model/redis";
import { RTC_DEFAULTS } from "../model/rtc";
import { resolveSynapseSettings, SynapseOptions } from "../model/synapse";
import { resolveTurnSettings } from "../model/turn";
import { resolveWorkerPoolSettings } from "../model/workers";
import { STACK_CONFIG_KEYS, STACK_KEYS, StackConfigKey, StackKey, StackPart } from "./keys";

/**
 * The keys' defaults, written nowhere by hand: each component's settings
 * resolved from empty options by its model, read at the key's setting.
 */

/**
 * Sample values the Synapse defaults are resolved with (serverName and an
 * email block are required to resolve at all); keys set from them, or
 * derived from them, have no fixed default.
 */
const SAMPLE_SYNAPSE: SynapseOptions = { serverName: "example.com", email: { smtpHost: "smtp.example.com", notifFrom: "noreply@example.com" } };
const NO_FIXED_DEFAULT: readonly StackConfigKey[] = [
    "serverName",
    "publicBaseUrl",
    "smtpHost",
    "notifFrom",
    "reapply",
    "elementDomain",
    "elementVersion",
    "elementSha256",
    // The download URL's default has the version in it.
    "elementDownloadUrl",
    "turnDomain",
    "backupRepository",
    // Required with the proxy (the models resolve with a sample address).
    "acmeEmail",
    // The pool follows the database (none with SQLite): the key's text has no fixed default.
    "workers",
];

let defaults: Partial<Record<StackConfigKey, unknown>> | undefined;

/**
 * The library's default of each key, as a config value. Conversions:
 * useSqlite is false when the resolved database is PostgreSQL; an external
 * server's port, database and role default as an installed one's. Secrets
 * and keys without a fixed default are absent.
 */
export function libraryDefaults(): Partial<Record<StackConfigKey, unknown>> {
    if (defaults) return defaults;
    const postgres = resolvePostgresSettings("PostgresDatabase", {});
    const synapse = resolveSynapseSettings("SynapseHomeserver", SAMPLE_SYNAPSE);
    const redis = resolveRedisSettings("RedisServer", {});
    const settings: Record<StackPart, unknown> = {
        // Adoption is on only when its config directory is set: no key of it has a fixed default.
        adopt: {},
        workers: resolveWorkerPoolSettings("WorkerPool", {}, resolveSynapseSettings("SynapseHomeserver", { ...SAMPLE_SYNAPSE, replication: {} }), "Host"),
        // An existing server's port defaults as an installed one's; TLS is off unless asked for.
        redis: { ...redis, external: { port: redis.port, tls: false } },
        host: resolveHostSettings("Host", {}),
        postgres: { ...postgres, external: { port: postgres.port, database: postgres.database, user: postgres.user } },
        synapse: { ...synapse, sqlite: synapse.database.kind === "sqlite" },
        // The proxy resolves only with a contact address; mode is the stack's own switch.
        proxy: {
            ...resolveReverseProxySettings("ReverseProxy", { acme: { email: "admin@example.com" } }, { ...synapse, serverName: "example.com" }),
            mode: "nginx",
            serverNameWellKnown: PROXY_DEFAULTS.serverNameWellKnown,
        },
        // Only the mode-independent defaults: the delegation follows the names.
        dns: { ...DNS_DEFAULTS, legacySrv: false, cloudflare: false },
        turn: resolveTurnSettings("TurnServer", { domain: "turn.example.com" }),
        // Off unless set, and no alert receiver unless given (the list key declares []).
        monitoring: { ...MONITORING_DEFAULTS, enabled: false, alertEmail: { to: [] } },
        backup: resolveBackupSettings(
            "SynapseBackup",
            { repository: "s3:https://s3.example.com/bucket" },
            { synapse, database: postgres, credentials: { password: true, sftpPrivateKey: false, s3AccessKeyId: true, s3SecretAccessKey: true } },
        ),
        // Off unless asked for; each timer on with it; the compressor's binary has no default (PyPI's wheel).
        maintenance: {
            enabled: false,
            compressor: { enabled: true, ...MAINTENANCE_DEFAULTS.compressor },
            mediaCache: { enabled: true, ...MAINTENANCE_DEFAULTS.mediaCache },
            emptyRooms: { enabled: true, ...MAINTENANCE_DEFAULTS.emptyRooms },
        },
        // mode is the stack's own switch; the release URLs' defaults have the version in them.
        rtc: {
            mode: "livekit",
            architecture: RTC_DEFAULTS.architecture,
            tcpPort: RTC_DEFAULTS.tcpPort,
            udpPort: RTC_DEFAULTS.udpPort,
            livekit: { version: RTC_DEFAULTS.livekit.version },
            jwtService: { version: RTC_DEFAULTS.jwtService.version },
            // LiveKit's TURN is on only when its name is set; its port and relay range have fixed defaults.
            turn: { port: RTC_DEFAULTS.turnPort, relayPorts: RTC_DEFAULTS.turnRelayPorts },
        },
        element: resolveElementWebSettings(
            "ElementWeb",
            { domain: "element.example.org", version: "1.11.100", sha256: "0".repeat(64) },
            { serverName: "example.com", publicBaseUrl: "https://example.com/" },
        ),
    };
    const out: Partial<Record<StackConfigKey, unknown>> = {};
    for (const key of STACK_CONFIG_KEYS) {
        const s = STACK_KEYS[key];
        if (s.type === "secret" || NO_FIXED_DEFAULT.includes(key)) continue;
        const v = s.setting.rest.get(settings[s.setting.segments[0] as StackPart]);
        if (v !== undefined) out[key] = v;
    }
    defaults = out;
    return out;
}

/** The Pulumi type of each key type (Pulumi has no decimal or mapping type: those are strings). */
export const PULUMI_TYPES = {
    string: "string",
    integer: "integer",
    number: "string",
    boolean: "boolean",
    switch: "boolean",
    list: "array",
    yaml: "string",
    secret: "string",
} as const;

/** A key every stack must set: Pulumi.yaml declares it without a default, so the CLI asks for it. */
export function alwaysRequired(key: StackConfigKey): boolean {
    const s: StackKey = STACK_KEYS[key];
    return s.required !== undefined && s.onlyWith === undefined && s.notWith === undefined;
}

/**
 * The default Pulumi.yaml declares: the library's, in the key's Pulumi type;
 * "" (or [] for a list) for a key without one, which reads as "not set". A
 * secret every stack sets has none; optional secrets default to "" (a secret
 * declaration cannot have a default, so they are declared non-secret).
 */
export function declaredDefault(key: StackConfigKey): unknown {
    const s: StackKey = STACK_KEYS[key];
    if (alwaysRequired(key)) return undefined;
    if (s.declaredDefault !== undefined) return s.declaredDefault;
    const v = s.type === "secret" || s.type === "yaml" ? undefined : libraryDefaults()[key];
    if (v === undefined) return s.type === "list" ? [] : "";
    return s.type === "number" ? String(v) : v;
}
