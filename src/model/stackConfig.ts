import { isDeepStrictEqual } from "node:util";
import { parse } from "yaml";
import { ConfigError, ConfigErrors, Described, SECRET_VALUE, describe, throwIfAny } from "./errors";
import { HostOptions, resolveHostSettings } from "./host";
import { PostgresOptions, resolvePostgresSettings } from "./postgres";
import { RedisOptions, resolveRedisSettings } from "./redis";
import { PROXY_DEFAULTS, ReverseProxyOptions, resolveReverseProxySettings } from "./proxy";
import { ElementWebOptions, resolveElementWebSettings } from "./element";
import { DNS_DEFAULTS, DnsOptions } from "./dns";
import { CoturnOptions, resolveCoturnSettings } from "./coturn";
import { SynapseOptions, resolveSynapseSettings } from "./synapse";
import { WorkerPoolOptions, resolveWorkerPoolSettings } from "./workers";

/**
 * The stack config of Pulumi.yaml (keys in the `matrix:` namespace) and the
 * component options it becomes. Every key is declared in Pulumi.yaml with
 * its type, default and description; `STACK_KEYS` says which component
 * setting each key sets. The same table builds the options and translates
 * the components' errors back into the key a user wrote (`matrix:<key>`).
 */

/** The components stack config reaches (MatrixStack composes them). */
export type StackComponent =
    "Host" | "PostgresDatabase" | "SynapseHomeserver" | "WorkerPool" | "RedisServer" | "ReverseProxy" | "ElementWeb" | "CloudflareDns" | "CoturnServer";

/** How a key's text is read. */
export type StackKeyType =
    | "string"
    /** Pulumi type integer. */
    | "integer"
    /** A decimal number; declared as a Pulumi string (Pulumi has no decimal type). */
    | "number"
    | "boolean"
    /** A boolean that turns an option group on: true sets the setting to `{}` (useSqlite -> sqlite: {}). */
    | "switch"
    /** A list of strings (Pulumi type array). */
    | "list"
    /** A YAML mapping, given as a string. */
    | "yaml"
    /** A string Pulumi keeps encrypted; read by the program as a secret, never as plain text. */
    | "secret";

export interface StackKey {
    /** The component whose options the key sets. */
    readonly component: StackComponent;
    /** Dotted path of the setting in that component's options, as the component's errors name it. */
    readonly setting: string;
    readonly type: StackKeyType;
    /** The key must be set (when it applies at all); the value shown in the hint `pulumi config set <key> <value>`. */
    readonly required?: string;
    /** The key only means something while this key is in effect; set without it, it is an error. */
    readonly onlyWith?: string;
    /** The key contradicts these keys: both in effect is an error. */
    readonly notWith?: readonly string[];
    /** What this key in effect means, for errors about keys that contradict it. */
    readonly whenSet?: string;
    /** What this key not in effect means, for errors about keys that need it. */
    readonly whenUnset?: string;
    /** How a secret's value is given in the hint `pulumi config set --secret <key> <hint>` (default `required`, else `...`). */
    readonly hint?: string;
    /** For a YAML key: what the mapping holds and an example, for its errors (default: homeserver.yaml options). */
    readonly yaml?: { holds: string; example: string };
}

const LOCAL_POSTGRES = ["postgresExternalHost", "useSqlite"] as const;
const LOCAL_REDIS = ["redisExternalHost"] as const;
const WITH_PROXY = ["proxy"] as const;

/**
 * Every key of the stack config, in Pulumi.yaml's order. A key is "in
 * effect" when it is set to something other than its default (Pulumi fills
 * declared defaults in, so a value equal to the default means "not set").
 */
export const STACK_KEYS = {
    sshHost: { component: "Host", setting: "host", type: "string", required: "203.0.113.10" },
    sshPort: { component: "Host", setting: "port", type: "integer" },
    sshUser: { component: "Host", setting: "user", type: "string" },
    sshPrivateKey: { component: "Host", setting: "privateKey", type: "secret", required: "< ~/.ssh/id_ed25519" },
    sshHostKey: { component: "Host", setting: "hostKey", type: "string" },
    reapply: { component: "Host", setting: "reapply", type: "string" },
    firewallSshPort: { component: "Host", setting: "firewall.sshPort", type: "integer" },
    ntpServers: { component: "Host", setting: "ntpServers", type: "list" },
    serverName: { component: "SynapseHomeserver", setting: "serverName", type: "string", required: "example.com" },
    publicBaseUrl: { component: "SynapseHomeserver", setting: "publicBaseUrl", type: "string" },
    synapseVersion: { component: "SynapseHomeserver", setting: "version", type: "string" },
    installMethod: { component: "SynapseHomeserver", setting: "installMethod", type: "string" },
    maxUploadSize: { component: "SynapseHomeserver", setting: "maxUploadSize", type: "string" },
    registration: { component: "SynapseHomeserver", setting: "registration", type: "string" },
    allowGuestAccess: { component: "SynapseHomeserver", setting: "allowGuestAccess", type: "boolean" },
    urlPreviews: { component: "SynapseHomeserver", setting: "urlPreviews.enabled", type: "boolean" },
    presence: { component: "SynapseHomeserver", setting: "presence", type: "boolean" },
    cacheFactor: { component: "SynapseHomeserver", setting: "cacheFactor", type: "number" },
    trustedKeyServers: { component: "SynapseHomeserver", setting: "trustedKeyServers", type: "list" },
    federationDomainWhitelist: { component: "SynapseHomeserver", setting: "federationDomainWhitelist", type: "list" },
    reportStats: { component: "SynapseHomeserver", setting: "reportStats", type: "boolean" },
    enableMetrics: { component: "SynapseHomeserver", setting: "metrics.enabled", type: "boolean" },
    logLevel: { component: "SynapseHomeserver", setting: "logLevel", type: "string" },
    adminUser: { component: "SynapseHomeserver", setting: "adminUser", type: "string" },
    signingKey: { component: "SynapseHomeserver", setting: "signingKey", type: "secret", hint: "< homeserver.signing.key" },
    protectSigningKey: { component: "SynapseHomeserver", setting: "protectSigningKey", type: "boolean" },
    allowSigningKeyReplacement: { component: "SynapseHomeserver", setting: "allowSigningKeyReplacement", type: "boolean" },
    synapseExtraConfig: { component: "SynapseHomeserver", setting: "extraConfig", type: "yaml" },
    synapseAllowOverride: { component: "SynapseHomeserver", setting: "allowOverride", type: "list" },
    smtpHost: { component: "SynapseHomeserver", setting: "email.smtpHost", type: "string", whenUnset: "no mail is sent" },
    smtpPort: { component: "SynapseHomeserver", setting: "email.smtpPort", type: "integer", onlyWith: "smtpHost" },
    smtpUser: { component: "SynapseHomeserver", setting: "email.smtpUser", type: "string", onlyWith: "smtpHost" },
    smtpPassword: { component: "SynapseHomeserver", setting: "smtpPassword", type: "secret", onlyWith: "smtpHost" },
    notifFrom: { component: "SynapseHomeserver", setting: "email.notifFrom", type: "string", onlyWith: "smtpHost", required: '"Matrix <noreply@example.com>"' },
    useSqlite: {
        component: "SynapseHomeserver",
        setting: "sqlite",
        type: "switch",
        notWith: ["postgresExternalHost"],
        whenSet: "Synapse keeps its data in SQLite and uses no PostgreSQL",
    },
    postgresMemoryMb: { component: "PostgresDatabase", setting: "memoryMb", type: "integer", notWith: LOCAL_POSTGRES },
    postgresBackup: { component: "PostgresDatabase", setting: "backup.enabled", type: "boolean", notWith: LOCAL_POSTGRES },
    postgresBackupRetention: { component: "PostgresDatabase", setting: "backup.retention", type: "integer", notWith: LOCAL_POSTGRES },
    postgresBackupDirectory: { component: "PostgresDatabase", setting: "backup.directory", type: "string", notWith: LOCAL_POSTGRES },
    postgresExternalHost: {
        component: "PostgresDatabase",
        setting: "external.host",
        type: "string",
        whenSet: "an existing PostgreSQL server is used and the stack installs none",
        whenUnset: "the stack installs PostgreSQL itself",
    },
    postgresExternalPort: { component: "PostgresDatabase", setting: "external.port", type: "integer", onlyWith: "postgresExternalHost" },
    postgresExternalDatabase: { component: "PostgresDatabase", setting: "external.database", type: "string", onlyWith: "postgresExternalHost" },
    postgresExternalUser: { component: "PostgresDatabase", setting: "external.user", type: "string", onlyWith: "postgresExternalHost" },
    postgresExternalPassword: { component: "PostgresDatabase", setting: "external.password", type: "secret", onlyWith: "postgresExternalHost", required: "" },
    workers: {
        component: "WorkerPool",
        setting: "workers",
        type: "yaml",
        yaml: { holds: "worker roles to counts", example: '"{federation_reader: 2, federation_sender: 1}"' },
    },
    workerBasePort: { component: "WorkerPool", setting: "basePort", type: "integer" },
    redisPort: { component: "RedisServer", setting: "port", type: "integer", notWith: LOCAL_REDIS },
    redisMaxMemoryMb: { component: "RedisServer", setting: "maxMemoryMb", type: "integer", notWith: LOCAL_REDIS },
    redisExternalHost: {
        component: "RedisServer",
        setting: "external.host",
        type: "string",
        whenSet: "an existing Redis is used and the stack installs none",
        whenUnset: "the stack installs Redis itself",
    },
    redisExternalPort: { component: "RedisServer", setting: "external.port", type: "integer", onlyWith: "redisExternalHost" },
    redisExternalPassword: { component: "RedisServer", setting: "external.password", type: "secret", onlyWith: "redisExternalHost" },
    redisExternalTls: { component: "RedisServer", setting: "external.tls", type: "boolean", onlyWith: "redisExternalHost" },
    proxy: {
        component: "ReverseProxy",
        setting: "mode",
        type: "string",
        whenSet: "no reverse proxy is installed (your own TLS proxy forwards to Synapse's loopback listener)",
    },
    acmeEmail: { component: "ReverseProxy", setting: "acme.email", type: "string", required: "admin@example.com", notWith: WITH_PROXY },
    acmeDirectoryUrl: { component: "ReverseProxy", setting: "acme.directoryUrl", type: "string", notWith: WITH_PROXY },
    acmeCaBundle: { component: "ReverseProxy", setting: "acme.caBundle", type: "string", notWith: WITH_PROXY },
    acmeChallenge: {
        component: "ReverseProxy",
        setting: "acme.challenge",
        type: "string",
        notWith: WITH_PROXY,
        whenUnset: "the CA validates the names through HTTP-01 on port 80 and needs no token",
    },
    acmeCloudflareApiToken: { component: "ReverseProxy", setting: "cloudflareApiToken", type: "secret", notWith: WITH_PROXY, onlyWith: "acmeChallenge" },
    federationPort: { component: "ReverseProxy", setting: "federationPort", type: "integer", notWith: WITH_PROXY },
    adminAllowList: { component: "ReverseProxy", setting: "adminAllowList", type: "list", notWith: WITH_PROXY },
    serverNameWellKnown: { component: "ReverseProxy", setting: "serverNameWellKnown", type: "boolean", notWith: WITH_PROXY },
    elementDomain: {
        component: "ElementWeb",
        setting: "domain",
        type: "string",
        notWith: WITH_PROXY,
        whenUnset: "no Element Web is served",
    },
    elementVersion: { component: "ElementWeb", setting: "version", type: "string", onlyWith: "elementDomain", required: "1.11.100" },
    elementSha256: { component: "ElementWeb", setting: "sha256", type: "string", onlyWith: "elementDomain", required: "<sha256sum of the verified tarball>" },
    elementDownloadUrl: { component: "ElementWeb", setting: "downloadUrl", type: "string", onlyWith: "elementDomain" },
    elementBrand: { component: "ElementWeb", setting: "brand", type: "string", onlyWith: "elementDomain" },
    elementDefaultTheme: { component: "ElementWeb", setting: "defaultTheme", type: "string", onlyWith: "elementDomain" },
    turnDomain: {
        component: "CoturnServer",
        setting: "domain",
        type: "string",
        whenUnset: "no TURN server is installed (calls then work only between clients that reach each other directly)",
    },
    turnRelayPortMin: { component: "CoturnServer", setting: "relayPorts.min", type: "integer", onlyWith: "turnDomain" },
    turnRelayPortMax: { component: "CoturnServer", setting: "relayPorts.max", type: "integer", onlyWith: "turnDomain" },
    turnExternalIp: { component: "CoturnServer", setting: "externalIp", type: "string", onlyWith: "turnDomain" },
    turnRelayIp: { component: "CoturnServer", setting: "relayIp", type: "string", onlyWith: "turnDomain" },
    turnUserLifetime: { component: "CoturnServer", setting: "userLifetime", type: "string", onlyWith: "turnDomain" },
    turnAllowGuests: { component: "CoturnServer", setting: "allowGuests", type: "boolean", onlyWith: "turnDomain" },
    dnsZone: {
        component: "CloudflareDns",
        setting: "zone.name",
        type: "string",
        whenUnset: "no DNS records are made (yours point the names at the VM)",
    },
    dnsIpv4: { component: "CloudflareDns", setting: "ipv4", type: "string", onlyWith: "dnsZone", required: "203.0.113.10" },
    dnsIpv6: { component: "CloudflareDns", setting: "ipv6", type: "string", onlyWith: "dnsZone" },
    dnsDelegation: { component: "CloudflareDns", setting: "delegation", type: "string", onlyWith: "dnsZone" },
    dnsWellKnownVia: { component: "CloudflareDns", setting: "wellKnownVia", type: "string", onlyWith: "dnsZone" },
    cloudflareAccountId: { component: "CloudflareDns", setting: "accountId", type: "string", onlyWith: "dnsZone" },
    dnsLegacySrv: { component: "CloudflareDns", setting: "legacySrv", type: "boolean", onlyWith: "dnsZone" },
    dnsTtl: { component: "CloudflareDns", setting: "ttl", type: "integer", onlyWith: "dnsZone" },
    dnsCloudflare: { component: "CloudflareDns", setting: "cloudflare", type: "boolean", onlyWith: "dnsZone" },
} as const satisfies Record<string, StackKey>;

export type StackConfigKey = keyof typeof STACK_KEYS;

export const STACK_CONFIG_KEYS = Object.keys(STACK_KEYS) as StackConfigKey[];

const spec = (key: StackConfigKey): StackKey => STACK_KEYS[key];

/**
 * A stack config key with a value the library cannot use, or set together
 * with a key it contradicts. The message names the key as users write it:
 * `matrix:maxUploadSize is "huge"; expected ...`.
 */
export class StackConfigError extends ConfigError {
    constructor(
        /** The key, without the `matrix:` namespace. */
        readonly key: string,
        value: unknown,
        expected: string,
        /** The component's own error this one translates, if any. */
        readonly original?: ConfigError,
        /** Where inside a YAML key's value, e.g. `.typing` for `matrix:workers.typing`. Default: the whole value. */
        path = "",
    ) {
        super("stack config", `matrix:${key}${path}`, value, expected);
        this.message = `matrix:${key}${path} is ${describe(value)}; ${expected}`;
    }
}

/** The stack config as Pulumi hands it over: strings (numbers, booleans and lists in their text form). */
export interface RawConfig {
    get(key: string): string | undefined;
    /**
     * Whether the stack stores the key's value encrypted (`pulumi config set --secret`).
     * Given, a secret key set in plain text is an error. Pulumi.yaml cannot force
     * secrecy on an optional key (a secret declaration cannot have a default, so it
     * would be required), so the program checks it here.
     */
    isSecret?(key: string): boolean;
}

/** The error for a secret key whose value the stack keeps in plain text. */
function plainTextSecret(key: StackConfigKey): StackConfigError {
    const s: StackKey = spec(key);
    const hint = s.hint ?? (s.required || "...");
    return new StackConfigError(
        key,
        new Described("set in plain text"),
        `it is a secret and must be stored encrypted: set it again with \`pulumi config set --secret ${key} ${hint}\``,
    );
}

/** The options of the three components, as MatrixStack takes them; `S` is how secrets arrive (an Output in the program). */
export interface StackOptions<S> {
    host: HostOptions & { host: string; hostKey?: string; reapply?: string; privateKey: S };
    synapse: SynapseOptions & { adminUser?: string; signingKey?: S; smtpPassword?: S };
    postgres: PostgresOptions & { external?: { host: string; port?: number; database: string; user: string; password: S } };
    /** The WorkerPool's options; `workers` only when the key is set (otherwise the stack's default pool). */
    workers: WorkerPoolOptions;
    /** Redis's options; `external` with redisExternalHost. */
    redis: RedisOptions & { external?: { host: string; port?: number; password?: S; tls?: boolean } };
    /** The reverse proxy's options; `mode` is `nginx` (the default) or `none` (no proxy: the other options are then refused). */
    proxy: Partial<ReverseProxyOptions> & { mode?: string; cloudflareApiToken?: S };
    /** Element's options; only with elementDomain. */
    element?: ElementWebOptions;
    /** coturn's options; only with turnDomain. */
    turn?: CoturnOptions;
    /** DNS: the record set (and Cloudflare with dnsCloudflare); only with dnsZone. */
    dns?: Omit<DnsOptions, "serverName" | "publicBaseUrl"> & { ipv4: string; cloudflare?: boolean };
}

/** Reads one key's text as its type; "" (the declared default of optional strings) is unset. */
function readValue(key: StackConfigKey, text: string | undefined): unknown {
    if (text === undefined || text === "") return undefined;
    const fail = (expected: string): never => {
        throw new StackConfigError(key, text, expected);
    };
    switch (spec(key).type) {
        case "string":
        case "secret":
            return text;
        case "integer":
        case "number": {
            const n = Number(text);
            return Number.isFinite(n) && text.trim() !== "" ? n : fail("expected a number");
        }
        case "boolean":
        case "switch":
            return text === "true" ? true : text === "false" ? false : fail("expected true or false");
        case "list": {
            let v: unknown;
            try {
                v = JSON.parse(text);
            } catch {
                return fail("expected a list, e.g. `pulumi config set --path 'key[0]' value`");
            }
            if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new StackConfigError(key, v, "expected a list of strings");
            return v;
        }
        case "yaml": {
            if (text.trim() === "") return undefined;
            let v: unknown;
            try {
                v = parse(text);
            } catch (e) {
                return fail(`expected a YAML mapping of ${spec(key).yaml?.holds ?? "homeserver.yaml options"} (${(e as Error).message.split("\n")[0]})`);
            }
            if (v === null || typeof v !== "object" || Array.isArray(v))
                fail(
                    `expected a YAML mapping of ${spec(key).yaml?.holds ?? "homeserver.yaml options"}, such as ${spec(key).yaml?.example ?? '"enable_media_repo: true"'}`,
                );
            return v;
        }
    }
}

function getPath(o: unknown, path: string): unknown {
    return path.split(".").reduce<unknown>((v, p) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[p] : undefined), o);
}

function setPath(o: Record<string, unknown>, path: string, value: unknown): void {
    const parts = path.split(".");
    let at = o;
    for (const p of parts.slice(0, -1)) at = (at[p] ??= {}) as Record<string, unknown>;
    at[parts[parts.length - 1]] = value;
}

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
];

let defaults: Partial<Record<StackConfigKey, unknown>> | undefined;

/**
 * The library's default of each key, as a config value: each component's
 * settings resolved from empty options by its model, read at the key's
 * setting path. Conversions: useSqlite is false when the resolved database
 * is PostgreSQL; an external server's port, database and role default as an
 * installed one's. Secrets and keys without a fixed default are absent.
 */
export function libraryDefaults(): Partial<Record<StackConfigKey, unknown>> {
    if (defaults) return defaults;
    const postgres = resolvePostgresSettings("PostgresDatabase", {});
    const synapse = resolveSynapseSettings("SynapseHomeserver", SAMPLE_SYNAPSE);
    const redis = resolveRedisSettings("RedisServer", {});
    const settings: Record<StackComponent, unknown> = {
        WorkerPool: resolveWorkerPoolSettings("WorkerPool", {}, resolveSynapseSettings("SynapseHomeserver", { ...SAMPLE_SYNAPSE, replication: {} }), "Host"),
        // An existing server's port defaults as an installed one's; TLS is off unless asked for.
        RedisServer: { ...redis, external: { port: redis.port, tls: false } },
        Host: resolveHostSettings("Host", {}),
        PostgresDatabase: { ...postgres, external: { port: postgres.port, database: postgres.database, user: postgres.user } },
        SynapseHomeserver: { ...synapse, sqlite: synapse.database.kind === "sqlite" },
        // The proxy resolves only with a contact address; mode is the stack's own switch.
        ReverseProxy: {
            ...resolveReverseProxySettings("ReverseProxy", { acme: { email: "admin@example.com" } }, { ...synapse, serverName: "example.com" }),
            mode: "nginx",
            serverNameWellKnown: PROXY_DEFAULTS.serverNameWellKnown,
        },
        // Only the mode-independent defaults: the delegation follows the names.
        CloudflareDns: { ...DNS_DEFAULTS, legacySrv: false, cloudflare: false },
        CoturnServer: resolveCoturnSettings("CoturnServer", { domain: "turn.example.com" }),
        ElementWeb: resolveElementWebSettings(
            "ElementWeb",
            { domain: "element.example.org", version: "1.11.100", sha256: "0".repeat(64) },
            { serverName: "example.com", publicBaseUrl: "https://example.com/" },
        ),
    };
    const out: Partial<Record<StackConfigKey, unknown>> = {};
    for (const key of STACK_CONFIG_KEYS) {
        if (spec(key).type === "secret" || NO_FIXED_DEFAULT.includes(key)) continue;
        const v = getPath(settings[spec(key).component], spec(key).setting);
        if (v !== undefined) out[key] = v;
    }
    defaults = out;
    return out;
}

/**
 * Reads the stack config into component options. `secret` turns a secret
 * key into the value the options carry (the program passes
 * `cfg.requireSecret`); without it, secret keys are left out. Values that
 * cannot be read, missing required keys and contradictory keys are all
 * reported at once, before anything is built.
 */
export function readStackConfig(raw: RawConfig): StackOptions<undefined>;
export function readStackConfig<S>(raw: RawConfig, secret: (key: StackConfigKey) => S): StackOptions<S>;
export function readStackConfig<S>(raw: RawConfig, secret?: (key: StackConfigKey) => S): StackOptions<S | undefined> {
    const errors: ConfigError[] = [];
    const values = new Map<StackConfigKey, unknown>();
    for (const key of STACK_CONFIG_KEYS) {
        try {
            const text = raw.get(key);
            if (spec(key).type === "secret" && text !== undefined && text !== "" && raw.isSecret && !raw.isSecret(key)) {
                errors.push(plainTextSecret(key));
            }
            values.set(key, readValue(key, text));
        } catch (e) {
            if (!(e instanceof ConfigError)) throw e;
            errors.push(e);
        }
    }
    const lib = libraryDefaults();
    const inEffect = (key: string): boolean => {
        const v = values.get(key as StackConfigKey);
        return v !== undefined && !isDeepStrictEqual(v, lib[key as StackConfigKey]);
    };
    /** A key applies unless a key it needs is not in effect or a key it contradicts is: one that does not apply is not passed on (its default neither). */
    const applies = (key: StackConfigKey): boolean =>
        (spec(key).onlyWith === undefined || inEffect(spec(key).onlyWith!)) && !(spec(key).notWith ?? []).some(inEffect);
    const remove = (key: string) => `\`pulumi config rm ${key}\``;
    /** A value as an error shows it: a secret's never. */
    const shown = (key: string): unknown => (spec(key as StackConfigKey).type === "secret" ? SECRET_VALUE : values.get(key as StackConfigKey));

    const options: Record<StackComponent, Record<string, unknown>> = {
        Host: {},
        PostgresDatabase: {},
        SynapseHomeserver: {},
        WorkerPool: {},
        RedisServer: {},
        ReverseProxy: {},
        ElementWeb: {},
        CloudflareDns: {},
        CoturnServer: {},
    };
    for (const key of STACK_CONFIG_KEYS) {
        const s = spec(key);
        const value = values.get(key);
        if (s.onlyWith !== undefined && inEffect(key) && !inEffect(s.onlyWith)) {
            const other = spec(s.onlyWith as StackConfigKey);
            errors.push(
                new StackConfigError(
                    key,
                    shown(key),
                    `it does nothing without matrix:${s.onlyWith}, which is not set (${other.whenUnset}); set ${s.onlyWith} too, or remove ${key} with ${remove(key)}`,
                ),
            );
        }
        for (const o of s.notWith ?? []) {
            if (inEffect(key) && inEffect(o)) {
                errors.push(
                    new StackConfigError(
                        key,
                        shown(key),
                        `it contradicts matrix:${o}, which is ${describe(shown(o))} (${spec(o as StackConfigKey).whenSet}); remove one of them, e.g. ${remove(key)}`,
                    ),
                );
            }
        }
        if (!applies(key)) continue;
        if (s.type === "secret") {
            if (!secret) continue;
            if (value === undefined && s.required === undefined) continue;
        }
        if (value === undefined) {
            if (s.required !== undefined) {
                const needs = s.onlyWith ? ` with matrix:${s.onlyWith}` : "";
                const command = `pulumi config set${s.type === "secret" ? " --secret" : ""} ${key}${s.required ? ` ${s.required}` : ""}`;
                errors.push(new StackConfigError(key, undefined, `it is required${needs}; set it with \`${command}\``));
            }
            continue;
        }
        const option = s.type === "secret" ? secret!(key) : s.type === "switch" ? (value ? {} : undefined) : value;
        if (option !== undefined) setPath(options[s.component], s.setting, option);
    }
    throwIfAny(errors);

    const postgres = options.PostgresDatabase as StackOptions<S>["postgres"];
    // An external server has no database or role of its own choosing: the declared defaults, also when Pulumi did not fill them in.
    if (postgres.external) {
        postgres.external.database ??= lib.postgresExternalDatabase as string;
        postgres.external.user ??= lib.postgresExternalUser as string;
    }
    return {
        host: options.Host as unknown as StackOptions<S>["host"],
        synapse: options.SynapseHomeserver as unknown as StackOptions<S>["synapse"],
        postgres,
        workers: options.WorkerPool as WorkerPoolOptions,
        redis: options.RedisServer as StackOptions<S>["redis"],
        proxy: options.ReverseProxy as StackOptions<S>["proxy"],
        ...(Object.keys(options.ElementWeb).length ? { element: options.ElementWeb as unknown as ElementWebOptions } : {}),
        ...(Object.keys(options.CoturnServer).length ? { turn: options.CoturnServer as unknown as CoturnOptions } : {}),
        ...(Object.keys(options.CloudflareDns).length ? { dns: options.CloudflareDns as unknown as StackOptions<S>["dns"] } : {}),
    };
}

/** The key that sets `setting` of a component, given its label in an error (`Host "dev-host"` or `Host`). */
export function stackKeyFor(component: string, setting: string): StackConfigKey | undefined {
    const kind = /^(\w+)(?: "|$)/.exec(component)?.[1];
    return STACK_CONFIG_KEYS.find((k) => spec(k).component === kind && spec(k).setting === setting);
}

/**
 * Restates a component's ConfigError in terms of the stack config: the key
 * the user set instead of the internal setting, the same value and the same
 * `expected`. Several errors are translated one by one; an error whose
 * setting has no key, and anything else, is returned as it is.
 */
export function inStackConfigTerms(e: unknown): unknown {
    if (e instanceof ConfigErrors) return new ConfigErrors(e.errors.map((x) => inStackConfigTerms(x) as ConfigError));
    if (!(e instanceof ConfigError) || e instanceof StackConfigError) return e;
    const key = stackKeyFor(e.component, e.setting);
    if (key) return new StackConfigError(key, e.value, e.expected, e);
    // A setting inside a YAML key's value (`workers.typing`): the key, and the path inside it.
    const m = /^([A-Za-z]+)([.[].*)$/.exec(e.setting);
    const outer = m ? stackKeyFor(e.component, m[1]) : undefined;
    return outer && spec(outer).type === "yaml" ? new StackConfigError(outer, e.value, e.expected, e, m![2]) : e;
}

/** Runs `build` (constructing components from stack config) and throws its ConfigErrors in stack config terms. */
export function withStackConfigErrors<T>(build: () => T): T {
    try {
        return build();
    } catch (e) {
        throw inStackConfigTerms(e);
    }
}
