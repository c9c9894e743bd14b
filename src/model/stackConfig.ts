import { parse } from "yaml";
import { ConfigError } from "./errors";
import { PostgresOptions } from "./postgres";
import { SynapseOptions } from "./synapse";

/**
 * Reads the stack config of Pulumi.yaml (plain values only; the program adds
 * the secrets) into component options. Every key is declared in Pulumi.yaml
 * with its type, default and description; errors name the key as users
 * write it (`matrix:<key>`).
 */
/** Typed access to the stack config, built from its raw strings by `withoutEmpty`. */
interface ConfigReader {
    get(key: string): string | undefined;
    getNumber(key: string): number | undefined;
    getBoolean(key: string): boolean | undefined;
    getObject<T>(key: string): T | undefined;
}

export interface PlainStackConfig {
    host: { host: string; port?: number; user?: string; hostKey?: string; ntpServers?: string[]; firewallSshPort?: number };
    synapse: SynapseOptions & { adminUser?: string };
    postgres: PostgresOptions & { external?: { host: string; port?: number; database: string; user: string } };
}

const KEY = (k: string) => `matrix:${k}`;

function stringList(cfg: ConfigReader, key: string): string[] | undefined {
    const v = cfg.getObject<unknown>(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new ConfigError("stack config", KEY(key), v, "expected a list of strings");
    return v as string[];
}

function required(cfg: ConfigReader, key: string, example: string): string {
    const v = cfg.get(key);
    if (v === undefined || v === "") throw new ConfigError("stack config", KEY(key), v, `it is required; set it with \`pulumi config set ${key} ${example}\``);
    return v;
}

/** The stack config as Pulumi hands it over: strings (numbers, booleans and lists in their text form). */
export type RawConfig = Pick<ConfigReader, "get">;

/** Project config declares "" as the default of optional strings: treat it as unset. */
function withoutEmpty(cfg: RawConfig): ConfigReader {
    const empty = (k: string) => cfg.get(k) === "";
    return {
        get: (k) => (empty(k) ? undefined : cfg.get(k)),
        getNumber: (k) => {
            const v = cfg.get(k);
            if (v === undefined || v === "") return undefined;
            const n = Number(v);
            if (!Number.isFinite(n)) throw new ConfigError("stack config", KEY(k), v, "expected a number");
            return n;
        },
        getBoolean: (k) => {
            const v = cfg.get(k);
            if (v === undefined || v === "") return undefined;
            if (v !== "true" && v !== "false") throw new ConfigError("stack config", KEY(k), v, "expected true or false");
            return v === "true";
        },
        getObject: <T>(k: string) => {
            const v = cfg.get(k);
            if (v === undefined || v === "") return undefined;
            try { return JSON.parse(v) as T; } catch { throw new ConfigError("stack config", KEY(k), v, "expected a list, e.g. `pulumi config set --path 'key[0]' value`"); }
        },
    };
}

export function readStackConfig(raw: RawConfig): PlainStackConfig {
    const cfg = withoutEmpty(raw);
    let extraConfig: Record<string, unknown> | undefined;
    const extraText = cfg.get("synapseExtraConfig");
    if (extraText !== undefined && extraText.trim() !== "") {
        let parsed: unknown;
        try { parsed = parse(extraText); } catch (e) { throw new ConfigError("stack config", KEY("synapseExtraConfig"), extraText, `expected a YAML mapping of homeserver.yaml options (${(e as Error).message.split("\n")[0]})`); }
        if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new ConfigError("stack config", KEY("synapseExtraConfig"), extraText, "expected a YAML mapping of homeserver.yaml options, such as \"enable_media_repo: true\"");
        extraConfig = parsed as Record<string, unknown>;
    }
    const smtpHost = cfg.get("smtpHost");
    const externalHost = cfg.get("postgresExternalHost");
    const sqlite = cfg.getBoolean("useSqlite") ?? false;
    const registration = cfg.get("registration");
    const installMethod = cfg.get("installMethod");
    const logLevel = cfg.get("logLevel");
    return {
        host: {
            host: required(cfg, "sshHost", "203.0.113.10"),
            port: cfg.getNumber("sshPort"),
            user: cfg.get("sshUser"),
            hostKey: cfg.get("sshHostKey"),
            ntpServers: stringList(cfg, "ntpServers"),
            firewallSshPort: cfg.getNumber("firewallSshPort"),
        },
        synapse: {
            serverName: required(cfg, "serverName", "example.com"),
            publicBaseUrl: cfg.get("publicBaseUrl"),
            version: cfg.get("synapseVersion"),
            installMethod: installMethod as SynapseOptions["installMethod"],
            maxUploadSize: cfg.get("maxUploadSize"),
            registration: registration as SynapseOptions["registration"],
            allowGuestAccess: cfg.getBoolean("allowGuestAccess"),
            urlPreviews: { enabled: cfg.getBoolean("urlPreviews") },
            presence: cfg.getBoolean("presence"),
            cacheFactor: cfg.getNumber("cacheFactor"),
            trustedKeyServers: stringList(cfg, "trustedKeyServers"),
            federationDomainWhitelist: stringList(cfg, "federationDomainWhitelist"),
            reportStats: cfg.getBoolean("reportStats"),
            metrics: { enabled: cfg.getBoolean("enableMetrics") },
            logLevel: logLevel as SynapseOptions["logLevel"],
            extraConfig,
            allowOverride: stringList(cfg, "synapseAllowOverride"),
            email: smtpHost ? {
                smtpHost,
                smtpPort: cfg.getNumber("smtpPort"),
                smtpUser: cfg.get("smtpUser"),
                notifFrom: required(cfg, "notifFrom", "\"Matrix <noreply@example.com>\""),
            } : undefined,
            adminUser: cfg.get("adminUser"),
            sqlite: sqlite ? {} : undefined,
        },
        postgres: {
            memoryMb: cfg.getNumber("postgresMemoryMb"),
            backup: {
                enabled: cfg.getBoolean("postgresBackup"),
                retention: cfg.getNumber("postgresBackupRetention"),
                directory: cfg.get("postgresBackupDirectory"),
            },
            external: externalHost ? {
                host: externalHost,
                port: cfg.getNumber("postgresExternalPort"),
                database: cfg.get("postgresExternalDatabase") ?? "synapse",
                user: cfg.get("postgresExternalUser") ?? "synapse",
            } : undefined,
        },
    };
}
