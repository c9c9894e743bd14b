import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

import { componentLabel, ConfigError } from "../src/model/errors";
import { ExternalServer } from "../src/model/external";
import {
    DatabaseConnection,
    ExternalPostgresOptions,
    PostgresExternalSettings,
    PostgresLocalSettings,
    PostgresOptions,
    postgresPortClaims,
    postgresServesOtherHosts,
    postgresWarnings,
    resolveExternalPostgres,
    resolvePostgresSettings,
} from "../src/model/postgres";
import { postgresDatabaseScript, postgresInstallScript, postgresTlsScript } from "../src/provision/postgres";
import { Host } from "./Host";
import { childName, typeToken } from "./naming";
import { privateServerTls } from "./privateCa";
import { hostScript } from "./remote";

/** An existing or managed PostgreSQL server; the library installs nothing. */
export interface ExternalPostgresArgs extends ExternalPostgresOptions<Exclude<pulumi.Input<string>, string>> {
    /** The role's password (secret). */
    password: pulumi.Input<string>;
}

export interface PostgresDatabaseArgs extends PostgresOptions {
    /** The host to install PostgreSQL on. Required unless `external` is given. */
    host?: Host;
    /** Use this server instead of installing one (the options for an installed server must then be left out). */
    external?: ExternalPostgresArgs;
    /**
     * The address clients on other hosts use to reach this server (one of
     * `listenAddresses`). Default 127.0.0.1: only the same host.
     */
    reachableAt?: pulumi.Input<string>;
    /**
     * The settings already resolved from these options (MatrixStack passes
     * its plan's: see `planStack`): a server the library installs, or the
     * existing server of `external`. Used as they are, so they are resolved
     * once per deployment. Default: resolved here.
     */
    resolved?: PostgresLocalSettings | ExternalServer<PostgresExternalSettings>;
    /**
     * Steps this server's steps wait for (a Promise may stand for one made
     * later): a SynapseAdoption's preflight, so that a refused adoption
     * changes nothing of the server its old Synapse uses, or its takeover
     * step in `in-place` mode, which stops the old Synapse before the role
     * gets the stack's password. Default none. Ignored for an external server.
     */
    after?: pulumi.Input<pulumi.Resource>[];
}

/**
 * PostgreSQL for Synapse: on a Host (distribution package, tuned, a role
 * with a generated password, a UTF8/C database, nightly dumps, its port
 * claimed and opened to `allowedClients` on that host, who connect over
 * TLS only, verified against a CA of this server's own), or an external
 * server (verify-full by default). `connection` (with the CA when there is
 * one) and `password` feed SynapseHomeserver.
 */
export class PostgresDatabase extends pulumi.ComponentResource {
    /** How to reach the database (no password). */
    readonly connection: pulumi.Output<DatabaseConnection>;
    /** The role's password (secret). */
    readonly password: pulumi.Output<string>;
    /** Depend on this to run after the database exists. */
    readonly ready: pulumi.Resource;
    /** The resolved settings of a local server (undefined for an external one). */
    readonly settings?: PostgresLocalSettings;
    /** The host PostgreSQL is installed on (undefined for an external server). */
    readonly host?: Host;

    constructor(name: string, args: PostgresDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("PostgresDatabase"), name, {}, opts);
        const component = componentLabel("PostgresDatabase", name);
        if (args.external) {
            const { password: _password, ...e } = args.external;
            const server = args.resolved && "at" in args.resolved ? args.resolved : resolveExternalPostgres(component, args, e);
            if (server.now) for (const w of postgresWarnings(component, server.now)) pulumi.log.warn(w, this);
            this.connection = pulumi.output(e.host).apply((host) => {
                const settings = server.now ?? server.at(host);
                if (!server.now) for (const w of postgresWarnings(component, settings)) pulumi.log.warn(w, this);
                const { mode: _mode, ...connection } = settings;
                return connection;
            });
            this.password = pulumi.secret(args.external.password);
            // Nothing to wait for: the server exists already.
            this.ready = this;
            this.registerOutputs({ connection: this.connection });
            return;
        }
        if (!args.host) {
            throw new ConfigError(component, "host", undefined, "expected the Host to install PostgreSQL on, or external settings of an existing server");
        }
        const s = args.resolved && !("at" in args.resolved) ? args.resolved : resolvePostgresSettings(component, args);
        const host = args.host;
        host.claimPorts(component, postgresPortClaims(s));
        this.settings = s;
        this.host = host;

        const password = new random.RandomPassword(childName(name, "password"), { length: 40, special: false }, { parent: this });
        // The SCRAM verifier's salt, kept in the state so the role's statement is the same on every run.
        const salt = new random.RandomBytes(childName(name, "scram-salt"), { length: 16 }, { parent: this });
        const server = hostScript(
            childName(name, "server"),
            { host, script: postgresInstallScript(s, component), timeout: "30m", ...(args.after ? { after: args.after } : {}) },
            { parent: this },
        );
        const reachableAt = pulumi.output(args.reachableAt ?? "127.0.0.1");
        // Other hosts connect over TLS only (pg_hba), verified against a CA of this server's own.
        const tls = postgresServesOtherHosts(s)
            ? privateServerTls(name, { service: "PostgreSQL", addresses: reachableAt.apply((h) => [h, ...s.listenAddresses]) }, this)
            : undefined;
        const tlsStep = hostScript(
            childName(name, "tls"),
            {
                host,
                script: tls
                    ? pulumi
                          .all([tls.certificate, tls.privateKey, tls.caCertificate])
                          .apply(([certificate, privateKey, caCertificate]) => postgresTlsScript(s, { certificate, privateKey, caCertificate }))
                    : postgresTlsScript(s, undefined),
                secret: tls !== undefined,
                after: [server],
            },
            { parent: this },
        );
        this.ready = hostScript(
            childName(name, "database"),
            {
                host,
                script: pulumi.all([password.result, salt.base64]).apply(([pw, b64]) => postgresDatabaseScript(s, pw, Buffer.from(b64, "base64"))),
                secret: true,
                after: [server, tlsStep],
            },
            { parent: this },
        );

        this.connection = pulumi.all([reachableAt, tls?.caCertificate]).apply(([h, ca]) => ({
            host: h,
            port: s.port,
            database: s.database,
            user: s.user,
            ...(ca !== undefined ? { sslMode: "verify-full" as const, caCertificate: ca } : {}),
        }));
        this.password = pulumi.secret(password.result);
        this.registerOutputs({ connection: this.connection });
    }
}
