import { ConfigError } from "../../model/errors";
import { DatabaseConnection, SYSTEM_CA_BUNDLE } from "../../model/postgres";
import {
    blockedIpRanges,
    EMAIL_FRAGMENT,
    PGPASS_FILE,
    synapseFiles,
    SynapsePaths,
    SynapsePeers,
    SynapseSecretFile,
    SynapseSettings,
} from "../../model/synapse";
import { MANAGED_HEADER, renderYaml } from "../yaml";

/** Plain-object form of homeserver.yaml before extraConfig, in the order Synapse's docs present the options. */
export function homeserverConfig(s: SynapseSettings, peers: SynapsePeers): Record<string, unknown> {
    const f = synapseFiles(s.paths);
    const listeners: Record<string, unknown>[] = [
        {
            port: s.httpPort,
            bind_addresses: s.httpBindAddresses,
            type: "http",
            tls: false,
            x_forwarded: true,
            resources: [{ names: ["client", "federation"], compress: false }],
        },
    ];
    if (s.metrics.enabled) {
        listeners.push({ port: s.metrics.port, bind_addresses: [s.metrics.bindAddress], type: "metrics" });
    }
    if (s.replication) {
        // Workers call the main process here; never public (see the WorkerPool's firewall fragment).
        listeners.push({ port: s.replication.port, bind_addresses: s.replication.bindAddresses, type: "http", resources: [{ names: ["replication"] }] });
    }
    const config: Record<string, unknown> = {
        server_name: s.serverName,
        public_baseurl: s.publicBaseUrl,
        report_stats: s.reportStats,
        listeners,
        enable_metrics: s.metrics.enabled,
        database: databaseBlock(s, peers),
        log_config: f.logConfig,
        media_store_path: s.paths.mediaStorePath,
        max_upload_size: s.maxUploadSize,
        enable_registration: s.registration === "token",
        ...(s.registration === "token" ? { registration_requires_token: true } : {}),
        registration_shared_secret_path: f.registrationSharedSecret,
        macaroon_secret_key_path: f.macaroonSecretKey,
        form_secret_path: f.formSecret,
        signing_key_path: f.signingKey,
        ...(Object.keys(s.oldSigningKeys).length
            ? {
                  old_signing_keys: Object.fromEntries(
                      Object.entries(s.oldSigningKeys)
                          .sort(([a], [b]) => a.localeCompare(b))
                          .map(([id, k]) => [id, { key: k.key, expired_ts: k.expiredTs }]),
                  ),
              }
            : {}),
        allow_guest_access: s.allowGuestAccess,
        url_preview_enabled: s.urlPreviews.enabled,
        // Synapse 1.163 reads only the *_blacklist names (its documented ones); the *_whitelist ones stay unset.
        ...(s.urlPreviews.enabled ? { url_preview_ip_range_blacklist: blockedIpRanges(s.urlPreviews.ipRangeBlacklist) } : {}),
        ip_range_blacklist: blockedIpRanges(s.ipRangeBlacklist),
        presence: { enabled: s.presence },
        forgotten_room_retention_period: s.forgottenRoomRetentionPeriod,
        // Off unless a lifetime is set: an empty media_retention would only say nothing.
        ...(Object.keys(s.mediaRetention).length
            ? {
                  media_retention: {
                      ...(s.mediaRetention.localMediaLifetime ? { local_media_lifetime: s.mediaRetention.localMediaLifetime } : {}),
                      ...(s.mediaRetention.remoteMediaLifetime ? { remote_media_lifetime: s.mediaRetention.remoteMediaLifetime } : {}),
                  },
              }
            : {}),
        caches: { global_factor: s.cacheFactor },
        trusted_key_servers: s.trustedKeyServers.map((server_name) => ({ server_name })),
        // The notice only asks the admin to confirm the default they chose; stated in the README.
        ...(s.trustedKeyServers.includes("matrix.org") ? { suppress_key_server_warning: true } : {}),
        ...(s.federationDomainWhitelist ? { federation_domain_whitelist: s.federationDomainWhitelist } : {}),
        ...(s.email ? { email: emailBlock(s) } : {}),
    };
    return config;
}

export function databaseBlock(s: SynapseSettings, peers: SynapsePeers): Record<string, unknown> {
    if (s.database.kind === "sqlite") return { name: "sqlite3", args: { database: s.database.path } };
    const c = peers.database;
    if (!c) throw new Error("homeserver.yaml: Synapse uses PostgreSQL but no database connection was given");
    return {
        name: "psycopg2",
        // Everything but cp_* goes to libpq; the password sits in a libpq passfile
        // so this block stays readable (Synapse merges config files only at the top level).
        args: {
            user: c.user,
            dbname: c.database,
            host: c.host,
            port: c.port,
            passfile: synapseFiles(s.paths).databasePassfile,
            ...(c.sslMode ? { sslmode: c.sslMode } : {}),
            // The server's CA (the library's own, or the one given for an external server); else the system's CAs.
            ...(c.sslMode === "verify-full" || c.sslMode === "verify-ca" ? { sslrootcert: c.caCertificate ? databaseCaFile(s.paths) : SYSTEM_CA_BUNDLE } : {}),
            cp_min: 5,
            cp_max: 10,
            keepalives_idle: 10,
            keepalives_interval: 10,
            keepalives_count: 3,
        },
    };
}

/** Where Synapse's hosts keep the database server's CA certificate (public), libpq's `sslrootcert`. */
export function databaseCaFile(paths: SynapsePaths): string {
    return `${paths.configDir}/database-ca.pem`;
}

/** The database CA file every Synapse host writes beside homeserver.yaml, when the connection names a CA. */
export function databaseCaFiles(paths: SynapsePaths, peers: SynapsePeers): { path: string; content: string }[] {
    const ca = peers.database?.caCertificate;
    return ca ? [{ path: databaseCaFile(paths), content: ca.endsWith("\n") ? ca : `${ca}\n` }] : [];
}

/** The email block without the SMTP password (the secret fragment repeats it with the password). */
export function emailBlock(s: SynapseSettings, smtpPass?: string): Record<string, unknown> {
    const e = s.email!;
    return {
        smtp_host: e.smtpHost,
        smtp_port: e.smtpPort,
        ...(e.smtpUser ? { smtp_user: e.smtpUser } : {}),
        ...(smtpPass !== undefined ? { smtp_pass: smtpPass } : {}),
        require_transport_security: e.requireTransportSecurity,
        notif_from: e.notifFrom,
        app_name: e.appName,
        enable_notifs: e.enableNotifs,
        notif_for_new_users: e.enableNotifs,
        client_base_url: s.publicBaseUrl,
    };
}

/**
 * Merges extraConfig over the managed config. A key the library manages may
 * only be replaced when it is listed in allowOverride, so a typo cannot
 * silently undo, say, closed registration.
 */
export function mergeExtraConfig(
    component: string,
    managed: Record<string, unknown>,
    extra: Record<string, unknown>,
    allowOverride: string[],
): Record<string, unknown> {
    const clashes = Object.keys(extra).filter((k) => k in managed && !allowOverride.includes(k));
    if (clashes.length) {
        throw new ConfigError(
            component,
            "extraConfig",
            Object.fromEntries(clashes.map((k) => [k, extra[k]])),
            `${clashes.join(", ")} ${clashes.length > 1 ? "are" : "is"} managed by the library; use the matching setting, or list the key in allowOverride to replace it`,
        );
    }
    // Secrets in extra, at any depth, were refused when the settings were resolved (model/synapse/secrets.ts).
    return { ...managed, ...extra };
}

/** homeserver.yaml as it is written to the host: readable, no secret in it. */
export function renderHomeserverYaml(component: string, s: SynapseSettings, peers: SynapsePeers): string {
    const config = mergeExtraConfig(component, homeserverConfig(s, peers), s.extraConfig, s.allowOverride);
    return renderYaml(config, `${MANAGED_HEADER}\nSecrets are in ${synapseFiles(s.paths).secretsDir}/ and ${synapseFiles(s.paths).confD}/ (not shown here).`);
}

/** The conf.d fragment holding the email block with the SMTP password (secret). */
export function renderEmailSecretFragment(s: SynapseSettings, smtpPass: string): string {
    return renderYaml({ email: emailBlock(s, smtpPass) }, MANAGED_HEADER);
}

/** A libpq passfile line; `:` and `\` in fields are escaped as libpq requires. */
export function renderPgpass(c: DatabaseConnection, password: string): string {
    const esc = (v: string | number) => String(v).replace(/\\/g, "\\\\").replace(/:/g, "\\:");
    return `${esc(c.host)}:${esc(c.port)}:${esc(c.database)}:${esc(c.user)}:${esc(password)}\n`;
}

/** Logging to stdout, which systemd hands to the journal (it adds the timestamps). */
export function renderLogConfig(s: SynapseSettings): string {
    return renderYaml(
        {
            version: 1,
            formatters: { journal: { format: "%(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s" } },
            handlers: {
                console: { class: "logging.StreamHandler", formatter: "journal", stream: "ext://sys.stdout" },
            },
            loggers: {
                synapse: { level: s.logLevel },
                "synapse.storage.SQL": { level: s.logLevel === "DEBUG" ? "DEBUG" : "WARNING" },
            },
            root: { level: s.logLevel, handlers: ["console"] },
            disable_existing_loggers: false,
        },
        MANAGED_HEADER,
    );
}

/** The database password as the secret file Synapse's libpq reads. */
export function pgpassSecretFile(c: DatabaseConnection, password: string): SynapseSecretFile {
    return { name: PGPASS_FILE, kind: "secret", content: renderPgpass(c, password), access: "user" };
}

/** The SMTP password as the conf.d fragment that repeats the email block with it. */
export function emailSecretFile(s: SynapseSettings, smtpPass: string): SynapseSecretFile {
    return { name: EMAIL_FRAGMENT, kind: "fragment", content: renderEmailSecretFragment(s, smtpPass) };
}
