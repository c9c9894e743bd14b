import * as pulumi from "@pulumi/pulumi";
import { checkPortClashes, FirewallRule } from "../src/model/host";
import { PostgresOptions, SynapseOptions, resolvePostgresSettings } from "../src/model/options";
import { postgresFirewallRules } from "../src/model/postgres";
import { synapsePortClaims } from "../src/model/ports";
import { Host, HostArgs } from "./Host";
import { ExternalPostgresArgs, PostgresDatabase } from "./PostgresDatabase";
import { SynapseHomeserver, SynapseHomeserverArgs } from "./SynapseHomeserver";
import { childName, typeToken } from "./naming";

export interface MatrixStackArgs {
    /** The VM everything runs on (SSH connection, firewall, bootstrap options). */
    host: HostArgs;
    /** Synapse settings, plus the admin account, an imported signing key and the SMTP password. */
    synapse: SynapseOptions & Pick<SynapseHomeserverArgs, "adminUser" | "signingKey" | "smtpPassword" | "sqlite" | "protectSigningKey">;
    /**
     * PostgreSQL: installed on the VM by default. Give `external` to use an existing server,
     * or `host` to install it on a second VM reached over a private network.
     */
    postgres?: PostgresOptions & {
        external?: ExternalPostgresArgs;
        /** A second VM for PostgreSQL. Default: the main host. */
        host?: HostArgs;
        /** The database host's address as Synapse dials it (required with `host`). */
        reachableAt?: pulumi.Input<string>;
    };
}

/**
 * A whole homeserver on one VM (optionally with PostgreSQL on a second
 * one): Host, PostgresDatabase and SynapseHomeserver wired together, with the
 * firewall opened for exactly what they declare.
 */
export class MatrixStack extends pulumi.ComponentResource {
    readonly host: Host;
    readonly databaseHost?: Host;
    readonly database?: PostgresDatabase;
    readonly synapse: SynapseHomeserver;

    constructor(name: string, args: MatrixStackArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("MatrixStack"), name, {}, opts);
        const component = `MatrixStack "${name}"`;
        const pg = args.postgres ?? {};
        const separateDb = !!pg.host;
        if (separateDb && pg.reachableAt === undefined) {
            throw new pulumi.RunError(`${component}: postgres.reachableAt is not set; with postgres.host it must be the database VM's private address that Synapse dials, e.g. 10.0.0.5`);
        }
        const pgSettings = !args.synapse.sqlite && !pg.external ? resolvePostgresSettings(`PostgresDatabase "${childName(name, "postgres")}"`, pg) : undefined;

        // Every port a component on the main host listens on, so clashes fail here and not in a journal.
        const claims = synapsePortClaims(args.synapse);
        if (pgSettings && !separateDb) claims.push({ port: pgSettings.port, protocol: "tcp", address: "*", owner: "postgresql" });
        checkPortClashes(component, claims);

        const mainRules: FirewallRule[] = [...(args.host.firewall?.rules ?? [])];
        if (pgSettings && !separateDb) mainRules.push(...postgresFirewallRules(pgSettings));
        this.host = new Host(childName(name, "host"), { ...args.host, firewall: { ...args.host.firewall, rules: mainRules } }, { parent: this });

        if (pgSettings) {
            let dbHost = this.host;
            if (separateDb) {
                const h = pg.host!;
                this.databaseHost = new Host(childName(name, "db-host"), { ...h, firewall: { ...h.firewall, rules: [...(h.firewall?.rules ?? []), ...postgresFirewallRules(pgSettings)] } }, { parent: this });
                dbHost = this.databaseHost;
            }
            this.database = new PostgresDatabase(childName(name, "postgres"), { ...pg, host: dbHost, reachableAt: pg.reachableAt, external: undefined }, { parent: this });
        } else if (pg.external) {
            this.database = new PostgresDatabase(childName(name, "postgres"), { external: pg.external }, { parent: this });
        }

        this.synapse = new SynapseHomeserver(childName(name, "synapse"), { ...args.synapse, host: this.host, database: this.database }, { parent: this });
        this.registerOutputs({
            serverName: this.synapse.serverName, publicBaseUrl: this.synapse.publicBaseUrl, signingKeyId: this.synapse.signingKeyId,
        });
    }
}
