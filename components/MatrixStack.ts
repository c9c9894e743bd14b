import * as pulumi from "@pulumi/pulumi";
import { ConfigError, Described } from "../src/model/errors";
import { resolveHostSettings } from "../src/model/host";
import { PostgresOptions, resolvePostgresSettings } from "../src/model/postgres";
import { SynapseOptions, resolveSynapseSettings } from "../src/model/synapse";
import { Host, HostArgs } from "./Host";
import { ExternalPostgresArgs, PostgresDatabase } from "./PostgresDatabase";
import { SynapseHomeserver, SynapseHomeserverArgs } from "./SynapseHomeserver";
import { childName, typeToken } from "./naming";

export interface MatrixStackArgs {
    /** The VM everything runs on (SSH connection, firewall, bootstrap options). */
    host: HostArgs;
    /** Synapse settings, plus the admin account, an imported signing key and the SMTP password. */
    synapse: SynapseOptions & Pick<SynapseHomeserverArgs, "adminUser" | "signingKey" | "smtpPassword" | "secretFiles">;
    /**
     * PostgreSQL: installed on the VM by default. Give `external` to use an existing server,
     * or `host` to install it on a second VM reached over a private network.
     */
    postgres?: PostgresOptions & {
        /** Use an existing server instead of installing one. Default: installed. */
        external?: ExternalPostgresArgs;
        /** A second VM for PostgreSQL. Default: the main host. */
        host?: HostArgs;
        /** The database host's address as Synapse dials it (required with `host`). */
        reachableAt?: pulumi.Input<string>;
    };
}

/**
 * A whole homeserver on one VM (optionally with PostgreSQL on a second
 * one): Host, PostgresDatabase and SynapseHomeserver constructed and
 * connected. Each component claims its ports and opens its firewall itself.
 */
export class MatrixStack extends pulumi.ComponentResource {
    readonly host: Host;
    readonly databaseHost?: Host;
    readonly database?: PostgresDatabase;
    readonly synapse: SynapseHomeserver;

    constructor(name: string, args: MatrixStackArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("MatrixStack"), name, {}, opts);
        const component = `MatrixStack "${name}"`;
        const { host: dbHostArgs, reachableAt, external, ...pg } = args.postgres ?? {};
        if (dbHostArgs && reachableAt === undefined) {
            throw new ConfigError(
                component,
                "postgres.reachableAt",
                undefined,
                "with postgres.host it must be the database VM's private address that Synapse dials, e.g. 10.0.0.5",
            );
        }
        if (external && dbHostArgs) {
            throw new ConfigError(
                component,
                "postgres.host",
                new Described("set together with postgres.external"),
                "choose one: host installs PostgreSQL on a second VM, external uses an existing server",
            );
        }
        if (args.synapse.sqlite && (external || dbHostArgs)) {
            throw new ConfigError(
                component,
                external ? "postgres.external" : "postgres.host",
                new Described("set together with synapse.sqlite"),
                "choose one: SQLite (tiny test servers), or PostgreSQL",
            );
        }

        // Every child's plain settings are checked before the first child registers anything.
        resolveHostSettings(`Host "${childName(name, "host")}"`, args.host);
        if (dbHostArgs) resolveHostSettings(`Host "${childName(name, "db-host")}"`, dbHostArgs);
        if (!external && !args.synapse.sqlite) resolvePostgresSettings(`PostgresDatabase "${childName(name, "postgres")}"`, pg);
        resolveSynapseSettings(`SynapseHomeserver "${childName(name, "synapse")}"`, args.synapse);

        this.host = new Host(childName(name, "host"), args.host, { parent: this });
        if (external) {
            this.database = new PostgresDatabase(childName(name, "postgres"), { ...pg, external }, { parent: this });
        } else if (!args.synapse.sqlite) {
            if (dbHostArgs) this.databaseHost = new Host(childName(name, "db-host"), dbHostArgs, { parent: this });
            this.database = new PostgresDatabase(childName(name, "postgres"), { ...pg, host: this.databaseHost ?? this.host, reachableAt }, { parent: this });
        }
        this.synapse = new SynapseHomeserver(childName(name, "synapse"), { ...args.synapse, host: this.host, database: this.database }, { parent: this });
        this.registerOutputs({
            serverName: this.synapse.serverName,
            publicBaseUrl: this.synapse.publicBaseUrl,
            signingKeyId: this.synapse.signingKeyId,
        });
    }
}
