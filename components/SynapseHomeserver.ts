import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";

import { componentLabel, ConfigError, Described } from "../src/model/errors";
import {
    resolveSynapseSettings,
    SynapseOptions,
    SynapsePeers,
    synapsePortClaims,
    SynapseSecretFile,
    SynapseSettings,
    synapseWarnings,
    userId,
    validateAdminUser,
} from "../src/model/synapse";
import { restartTimeout } from "../src/provision/apply";
import { synapseAdminScript, synapseConfigScript, synapseInstallScript, SynapseSecrets, synapseSecretsScript } from "../src/provision/synapse";
import { renderSynapseScrapeConfig } from "../src/render/prometheus";
import { emailSecretFile, pgpassSecretFile } from "../src/render/synapse/homeserver";
import { ed25519PublicKeyFromOpenssh, parseSigningKeyFile, signingKeyFromPem, signingKeyIdFor } from "../src/render/synapse/signingKey";
import { Host } from "./Host";
import { childName, typeToken } from "./naming";
import { PostgresDatabase } from "./PostgresDatabase";
import { hostScript } from "./remote";

export interface SynapseHomeserverArgs extends SynapseOptions {
    /** The host Synapse runs on; its ports are claimed there. */
    host: Host;
    /** The PostgreSQL database (on this host, another host, or external). Required unless `sqlite` is set. */
    database?: PostgresDatabase;
    /** Localpart of an admin account to create once through the shared-secret API (e.g. `admin`). Default: none. */
    adminUser?: string;
    /**
     * An existing Synapse signing key file's content (`ed25519 <key_id> <seed>`), to migrate a
     * server without breaking federation. Secret. Default: a new key kept in Pulumi state.
     */
    signingKey?: pulumi.Input<string>;
    /** SMTP password for `email` (secret). Default: none. */
    smtpPassword?: pulumi.Input<string>;
    /**
     * Synapse's settings already resolved from these options (MatrixStack passes its
     * plan's: see `planStack`): used as they are, so they are resolved once
     * per deployment. Default: resolved here.
     */
    resolved?: SynapseSettings;
    /**
     * How many worker processes a WorkerPool runs on this Synapse's host.
     * Synapse's secrets and config steps restart them one after another,
     * each waiting for its health check, so the steps' timeouts grow with
     * it. Default 0 (MatrixStack passes its plan's count); a pool added by
     * your own stack that runs many workers here wants it set.
     */
    workersOnHost?: number;
    /**
     * Resources the config step, which first starts Synapse, waits for: a
     * SynapseBackup's `restored`, so a restore (`restoreFrom`) happens
     * before Synapse ever starts. A Promise may stand for one made after
     * this component (MatrixStack passes one). Default none.
     */
    startAfter?: pulumi.Input<pulumi.Resource>[];
    /**
     * Resources every step waits for, the install first: a
     * SynapseAdoption's `preflight`, so nothing of Synapse is installed or
     * written before it passed. Default none.
     */
    after?: pulumi.Input<pulumi.Resource>[];
}

/**
 * Synapse on a Host: install (matrix.org apt repository or a PyPI
 * virtualenv, pinned), readable homeserver.yaml with secrets in separate
 * files, the persistent signing key, systemd units, and a health wait after
 * every (re)start.
 */
export class SynapseHomeserver extends pulumi.ComponentResource {
    readonly serverName: pulumi.Output<string>;
    readonly publicBaseUrl: pulumi.Output<string>;
    /** The key id published at /_matrix/key/v2/server (`ed25519:<id>`), without the algorithm. */
    readonly signingKeyId: pulumi.Output<string>;
    readonly version: pulumi.Output<string>;
    /** The admin's Matrix ID, when `adminUser` is set. */
    readonly adminUserId?: pulumi.Output<string>;
    /** The admin's password (secret), when `adminUser` is set. */
    readonly adminPassword?: pulumi.Output<string>;
    /** The shared secret for the admin registration API (secret). */
    readonly registrationSharedSecret: pulumi.Output<string>;
    /** The settings Synapse runs with, as plain values (a reverse proxy reads `maxUploadSize` here). */
    readonly settings: SynapseSettings;
    /** Depend on this to run once Synapse answers /health. */
    readonly ready: pulumi.Resource;
    /** Done once Synapse is installed and its secret files (the signing key among them) are written, before it first starts. */
    readonly secretsWritten: pulumi.Resource;
    /** The host the main process runs on. */
    readonly host: Host;
    /** What Synapse learns from other resources (the database's address): a WorkerPool renders homeserver.yaml with it on hosts of its own. */
    readonly peers: pulumi.Output<SynapsePeers>;
    /** The secrets the secrets script writes (secret): a WorkerPool writes them on hosts of its own. */
    readonly secrets: pulumi.Output<SynapseSecrets>;
    /**
     * A Prometheus scrape file for the main process's metrics listener, as written to
     * /etc/pulumi-matrix/prometheus/synapse.yml on its host (targets as reached from there).
     */
    readonly prometheusScrapeConfig: pulumi.Output<string>;

    constructor(name: string, args: SynapseHomeserverArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("SynapseHomeserver"), name, {}, opts);
        const component = componentLabel("SynapseHomeserver", name);
        if (!!args.database === !!args.sqlite) {
            throw new ConfigError(
                component,
                "database",
                new Described(args.database ? "set, and sqlite is set too" : "not set, and neither is sqlite"),
                "expected exactly one: a PostgresDatabase, or sqlite for a tiny test server",
            );
        }
        validateAdminUser(component, args.adminUser);
        const s = args.resolved ?? resolveSynapseSettings(component, args);
        this.settings = s;
        for (const w of synapseWarnings(s)) pulumi.log.warn(`${component}: ${w}`, this);
        const host = args.host;
        host.claimPorts(component, synapsePortClaims(s));

        const secret = (role: string) => new random.RandomPassword(childName(name, role), { length: 48, special: false }, { parent: this }).result;
        const macaroon = secret("macaroon-secret-key");
        const form = secret("form-secret");
        this.registrationSharedSecret = pulumi.secret(secret("registration-shared-secret"));

        let keyLine: pulumi.Output<string>;
        // The URN of a generated, protected key: the guard's message says how to let Pulumi drop it when the host's key is imported instead.
        let protectedKeyUrn: pulumi.Output<string | undefined> = pulumi.output(undefined);
        if (args.signingKey !== undefined) {
            const parsed = pulumi.secret(pulumi.output(args.signingKey).apply((text) => parseSigningKeyFile(text, component, "signingKey")));
            keyLine = parsed.apply((k) => k.fileLine);
            this.signingKeyId = pulumi.unsecret(parsed.apply((k) => k.keyId));
        } else {
            const key = new tls.PrivateKey(childName(name, "signing-key"), { algorithm: "ED25519" }, { parent: this, protect: s.protectSigningKey });
            keyLine = pulumi.secret(key.privateKeyPem.apply((pem) => signingKeyFromPem(pem).fileLine));
            this.signingKeyId = key.publicKeyOpenssh.apply((pub) => signingKeyIdFor(ed25519PublicKeyFromOpenssh(pub)));
            if (s.protectSigningKey) protectedKeyUrn = key.urn;
        }

        // Secret files of Synapse's own inputs; services built after Synapse write theirs in steps of their own (synapsePeerSecrets).
        const ownFiles: pulumi.Input<SynapseSecretFile>[] = [];
        if (args.database) ownFiles.push(pulumi.all([args.database.connection, args.database.password]).apply(([c, pw]) => pgpassSecretFile(c, pw)));
        if (s.email && args.smtpPassword !== undefined) ownFiles.push(pulumi.output(args.smtpPassword).apply((pw) => emailSecretFile(s, pw)));

        const install = hostScript(
            childName(name, "install"),
            {
                host,
                script: host.os.apply((os) => synapseInstallScript(s, os)),
                after: args.after ?? [],
                // A new release's install, the backup before it and the schema migration's health wait (UPGRADE_HEALTH_SECONDS).
                timeout: "120m",
            },
            { parent: this },
        );

        this.host = host;
        this.secrets = pulumi.secret(
            pulumi
                .all([macaroon, form, this.registrationSharedSecret, keyLine, pulumi.all(ownFiles), protectedKeyUrn])
                .apply(([m, f, r, k, files, urn]): SynapseSecrets => ({
                    macaroonSecretKey: m,
                    formSecret: f,
                    registrationSharedSecret: r,
                    signingKey: k,
                    files,
                    protectedKeyUrn: urn,
                })),
        );
        const secrets = hostScript(
            childName(name, "secrets"),
            {
                host,
                script: this.secrets.apply((values) => synapseSecretsScript(s, values, component)),
                secret: true,
                after: [install],
                // It may restart the main process and the workers listed here, one by one.
                timeout: restartTimeout(1 + (args.workersOnHost ?? 0)),
            },
            { parent: this },
        );

        this.secretsWritten = secrets;
        const localDb = args.database?.host === host;
        const peers: pulumi.Output<SynapsePeers> = args.database ? args.database.connection.apply((database) => ({ database })) : pulumi.output({});
        this.peers = peers;
        const config = hostScript(
            childName(name, "config"),
            {
                host,
                script: peers.apply((p) => synapseConfigScript(s, p, component, { afterUnits: localDb ? ["postgresql.service"] : [] })),
                after: [secrets, ...(args.database ? [args.database.ready] : []), ...(args.startAfter ?? [])],
                timeout: restartTimeout(1 + (args.workersOnHost ?? 0)),
            },
            { parent: this },
        );
        this.ready = config;

        if (args.adminUser) {
            const adminPassword = new random.RandomPassword(childName(name, "admin-password"), { length: 32, special: false }, { parent: this });
            hostScript(
                childName(name, "admin"),
                {
                    host,
                    script: adminPassword.result.apply((pw) => synapseAdminScript(s, args.adminUser!, pw)),
                    secret: true,
                    after: [config],
                },
                { parent: this },
            );
            this.adminUserId = pulumi.output(userId(args.adminUser, s.serverName));
            this.adminPassword = pulumi.secret(adminPassword.result);
        }

        this.serverName = pulumi.output(s.serverName);
        this.publicBaseUrl = pulumi.output(s.publicBaseUrl);
        this.version = pulumi.output(s.version);
        this.prometheusScrapeConfig = pulumi.output(renderSynapseScrapeConfig(s));
        this.registerOutputs({
            prometheusScrapeConfig: this.prometheusScrapeConfig,
            serverName: this.serverName,
            publicBaseUrl: this.publicBaseUrl,
            signingKeyId: this.signingKeyId,
            version: this.version,
            adminUserId: this.adminUserId,
            registrationSharedSecret: this.registrationSharedSecret,
        });
    }
}
