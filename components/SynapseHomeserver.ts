import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import { SynapseOptions, resolveSynapseSettings } from "../src/model/options";
import { DatabaseConnection } from "../src/model/postgres";
import { SynapseSettings, userId, validateAdminUser } from "../src/model/synapse";
import { ed25519PublicKeyFromOpenssh, parseSigningKeyFile, signingKeyFromPem, signingKeyIdFor } from "../src/render/synapse/signingKey";
import { bashCommand } from "../src/provision/shell";
import { synapseAdminScript, synapseConfigScript, synapseInstallScript, synapseSecretsScript } from "../src/provision/synapse";
import { Host } from "./Host";
import { PostgresDatabase } from "./PostgresDatabase";
import { childName, typeToken } from "./naming";

export interface SynapseHomeserverArgs extends SynapseOptions {
    /** The host Synapse runs on. */
    host: Host;
    /** The PostgreSQL database (on this host, another host, or external). Required unless `sqlite` is set. */
    database?: PostgresDatabase;
    /** Use an SQLite file instead of PostgreSQL: for tiny test servers only. Default: off. */
    sqlite?: { path?: string };
    /** Localpart of an admin account to create once through the shared-secret API (e.g. `admin`). Default: none. */
    adminUser?: string;
    /**
     * An existing Synapse signing key file's content (`ed25519 <key_id> <seed>`), to migrate a
     * server without breaking federation. Secret. Default: a new key kept in Pulumi state.
     */
    signingKey?: pulumi.Input<string>;
    /** Protect the generated signing key from deletion (losing it breaks other servers' view of old events). Default true. */
    protectSigningKey?: boolean;
    /** SMTP password for `email` (secret). Default: none. */
    smtpPassword?: pulumi.Input<string>;
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
    /** The settings Synapse runs with (database host resolved). */
    readonly settings: pulumi.Output<SynapseSettings>;
    /** Depend on this to run once Synapse answers /health. */
    readonly ready: pulumi.Resource;

    constructor(name: string, args: SynapseHomeserverArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("SynapseHomeserver"), name, {}, opts);
        const component = `SynapseHomeserver "${name}"`;
        if (!!args.database === !!args.sqlite) {
            throw new pulumi.RunError(`${component}: database is ${args.database ? "set" : "not set"} and sqlite is ${args.sqlite ? "set" : "not set"}; expected exactly one: a PostgresDatabase, or sqlite for a tiny test server`);
        }
        validateAdminUser(component, args.adminUser);
        const sqlitePath = args.sqlite ? args.sqlite.path ?? `${args.paths?.dataDir ?? "/var/lib/matrix-synapse"}/homeserver.db` : undefined;
        const databaseOf = (conn?: DatabaseConnection): SynapseSettings["database"] =>
            sqlitePath ? { kind: "sqlite", path: sqlitePath } : { kind: "postgres", connection: conn! };
        // Validate the plain settings now, before anything touches the host.
        resolveSynapseSettings(component, args, databaseOf({ host: "127.0.0.1", port: 5432, database: "synapse", user: "synapse" }));
        if (sqlitePath) pulumi.log.warn(`${component}: SQLite is for tiny test servers only; use a PostgresDatabase for anything real`, this);

        const host = args.host;
        const connection: pulumi.Output<DatabaseConnection | undefined> = args.database ? args.database.connection : pulumi.output(undefined);
        this.settings = connection.apply((conn) => resolveSynapseSettings(component, args, databaseOf(conn)));

        const secret = (role: string) => new random.RandomPassword(childName(name, role), { length: 48, special: false }, { parent: this }).result;
        const macaroon = secret("macaroon-secret-key");
        const form = secret("form-secret");
        this.registrationSharedSecret = pulumi.secret(secret("registration-shared-secret"));

        let keyLine: pulumi.Output<string>;
        if (args.signingKey !== undefined) {
            const parsed = pulumi.secret(pulumi.output(args.signingKey).apply(parseSigningKeyFile));
            keyLine = parsed.apply((k) => k.fileLine);
            this.signingKeyId = pulumi.unsecret(parsed.apply((k) => k.keyId));
        } else {
            const key = new tls.PrivateKey(childName(name, "signing-key"), { algorithm: "ED25519" }, { parent: this, protect: args.protectSigningKey ?? true });
            keyLine = pulumi.secret(key.privateKeyPem.apply((pem) => signingKeyFromPem(pem).fileLine));
            this.signingKeyId = key.publicKeyOpenssh.apply((pub) => signingKeyIdFor(ed25519PublicKeyFromOpenssh(pub)));
        }

        const install = new command.remote.Command(childName(name, "install"), {
            connection: host.connection,
            create: bashCommand(host.sudo),
            stdin: pulumi.all([this.settings, host.os]).apply(([s, os]) => synapseInstallScript(s, os)),
            addPreviousOutputInEnv: false,
        }, { parent: this, dependsOn: [host.ready], customTimeouts: { create: "40m", update: "40m" } });

        const dbPassword = args.database ? args.database.password : pulumi.output(undefined);
        const secrets = new command.remote.Command(childName(name, "secrets"), {
            connection: host.connection,
            create: bashCommand(host.sudo),
            stdin: pulumi.secret(pulumi.all([this.settings, macaroon, form, this.registrationSharedSecret, keyLine, dbPassword, pulumi.output(args.smtpPassword)])
                .apply(([s, m, f, r, k, db, smtp]) => synapseSecretsScript(s, {
                    macaroonSecretKey: m, formSecret: f, registrationSharedSecret: r, signingKey: k, databasePassword: db, smtpPassword: smtp,
                }))),
            logging: "none",
            addPreviousOutputInEnv: false,
        }, { parent: this, dependsOn: [install], additionalSecretOutputs: ["stdout", "stderr"] });

        const localDb = args.database?.host === host;
        const config = new command.remote.Command(childName(name, "config"), {
            connection: host.connection,
            create: bashCommand(host.sudo),
            stdin: this.settings.apply((s) => synapseConfigScript(s, component, { afterUnits: localDb ? ["postgresql.service"] : [] })),
            addPreviousOutputInEnv: false,
        }, { parent: this, dependsOn: [secrets, ...(args.database?.ready ?? [])], customTimeouts: { create: "10m", update: "10m" } });
        this.ready = config;

        if (args.adminUser) {
            const adminPassword = new random.RandomPassword(childName(name, "admin-password"), { length: 32, special: false }, { parent: this });
            new command.remote.Command(childName(name, "admin"), {
                connection: host.connection,
                create: bashCommand(host.sudo),
                stdin: pulumi.secret(pulumi.all([this.settings, adminPassword.result]).apply(([s, pw]) => synapseAdminScript(s, args.adminUser!, pw))),
                logging: "none",
                addPreviousOutputInEnv: false,
            }, { parent: this, dependsOn: [config], additionalSecretOutputs: ["stdout", "stderr"] });
            this.adminUserId = pulumi.output(userId(args.adminUser, args.serverName));
            this.adminPassword = pulumi.secret(adminPassword.result);
        }

        this.serverName = pulumi.output(args.serverName);
        this.publicBaseUrl = this.settings.apply((s) => s.publicBaseUrl);
        this.version = this.settings.apply((s) => s.version);
        this.registerOutputs({
            serverName: this.serverName, publicBaseUrl: this.publicBaseUrl, signingKeyId: this.signingKeyId,
            version: this.version, adminUserId: this.adminUserId, registrationSharedSecret: this.registrationSharedSecret,
        });
    }
}
