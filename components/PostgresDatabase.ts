import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as random from "@pulumi/random";
import { FirewallRule } from "../src/model/host";
import { PostgresOptions, resolvePostgresSettings } from "../src/model/options";
import { DatabaseConnection, PostgresExternalSettings, PostgresLocalSettings, postgresFirewallRules, validatePostgres } from "../src/model/postgres";
import { postgresDatabaseScript, postgresInstallScript } from "../src/provision/postgres";
import { bashCommand } from "../src/provision/shell";
import { Host } from "./Host";
import { childName, typeToken } from "./naming";

/** An existing or managed PostgreSQL server; the library installs nothing. */
export interface ExternalPostgresArgs {
    /** Host name or address of the server. */
    host: pulumi.Input<string>;
    /** Port. Default 5432. */
    port?: number;
    /** Database (must be UTF8 with LC_COLLATE and LC_CTYPE C). */
    database: string;
    /** Role Synapse logs in as. */
    user: string;
    /** The role's password (secret). */
    password: pulumi.Input<string>;
    /** libpq sslmode. Default `prefer`. */
    sslMode?: PostgresExternalSettings["sslMode"];
}

export interface PostgresDatabaseArgs extends PostgresOptions {
    /** The host to install PostgreSQL on. Required unless `external` is given. */
    host?: Host;
    /** Use this server instead of installing one. */
    external?: ExternalPostgresArgs;
    /**
     * The address clients on other hosts use to reach this server (one of
     * `listenAddresses`). Default 127.0.0.1: only the same host.
     */
    reachableAt?: pulumi.Input<string>;
}

/**
 * PostgreSQL for Synapse: on a Host (distribution package, tuned, a role
 * with a generated password, a UTF8/C database, nightly dumps), or an
 * external server. `connection` and `password` feed SynapseHomeserver.
 */
export class PostgresDatabase extends pulumi.ComponentResource {
    /** How to reach the database (no password). */
    readonly connection: pulumi.Output<DatabaseConnection>;
    /** The role's password (secret). */
    readonly password: pulumi.Output<string>;
    /** Depend on this to run after the database exists. */
    readonly ready: pulumi.Resource[];
    /** The firewall openings this server needs on its host (none unless clients on other hosts are allowed). */
    readonly firewallRules: FirewallRule[];
    /** The resolved settings of a local server (undefined for an external one). */
    readonly settings?: PostgresLocalSettings;
    /** The host PostgreSQL is installed on (undefined for an external server). */
    readonly host?: Host;

    constructor(name: string, args: PostgresDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("PostgresDatabase"), name, {}, opts);
        const component = `PostgresDatabase "${name}"`;
        if (args.external) {
            const e = args.external;
            const port = e.port ?? 5432;
            if (args.host) throw new pulumi.RunError(`${component}: host and external are both set; choose one: host installs PostgreSQL there, external uses an existing server`);
            pulumi.output(e.host).apply((host) => validatePostgres(component, { mode: "external", host, port, database: e.database, user: e.user, sslMode: e.sslMode ?? "prefer" }));
            this.connection = pulumi.output({ host: e.host, port, database: e.database, user: e.user, sslMode: e.sslMode ?? "prefer" });
            this.password = pulumi.secret(e.password);
            this.ready = [];
            this.firewallRules = [];
            this.registerOutputs({ connection: this.connection });
            return;
        }
        if (!args.host) throw new pulumi.RunError(`${component}: host is not set; expected the Host to install PostgreSQL on, or external settings of an existing server`);
        const s = resolvePostgresSettings(component, args);
        const host = args.host;
        this.settings = s;
        this.host = host;
        this.firewallRules = postgresFirewallRules(s);

        const password = new random.RandomPassword(childName(name, "password"), { length: 40, special: false }, { parent: this });
        const install = new command.remote.Command(childName(name, "server"), {
            connection: host.connection,
            create: bashCommand(host.sudo),
            stdin: postgresInstallScript(s),
            addPreviousOutputInEnv: false,
        }, { parent: this, dependsOn: [host.ready], customTimeouts: { create: "30m", update: "30m" } });
        const database = new command.remote.Command(childName(name, "database"), {
            connection: host.connection,
            create: bashCommand(host.sudo),
            stdin: pulumi.secret(password.result.apply((pw) => postgresDatabaseScript(s, pw))),
            logging: "none",
            addPreviousOutputInEnv: false,
        }, { parent: this, dependsOn: [install], additionalSecretOutputs: ["stdout", "stderr"] });

        this.connection = pulumi.output(args.reachableAt ?? "127.0.0.1").apply((h) => ({ host: h, port: s.port, database: s.database, user: s.user }));
        this.password = pulumi.secret(password.result);
        this.ready = [install, database];
        this.registerOutputs({ connection: this.connection });
    }
}

