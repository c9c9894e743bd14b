import * as pulumi from "@pulumi/pulumi";

import { AdoptOptions, AdoptSettings, resolveAdoptSettings } from "../src/model/adopt";
import { componentLabel, ConfigError, Described } from "../src/model/errors";
import { SynapseSettings } from "../src/model/synapse";
import { ADOPTED_KEY_PREFIX, adoptPreflightScript, adoptScript } from "../src/provision/adopt";
import { Host } from "./Host";
import { childName, typeToken } from "./naming";
import { PostgresDatabase } from "./PostgresDatabase";
import { hostScript } from "./remote";

export interface SynapseAdoptionArgs extends AdoptOptions {
    /** The host the existing Synapse runs on: the stack's Synapse runs there after the adoption. */
    host: Host;
    /** The settings of the stack's Synapse (its `settings`, or the plan's): server_name, paths, release. */
    synapse: SynapseSettings;
    /** The stack's database, created empty: the SQLite database is ported into it. */
    database: PostgresDatabase;
    /**
     * Synapse's `secretsWritten`: the port waits for the adopted key and the
     * database passfile on disk. A Promise stands for it, as Synapse is made
     * after this component (it takes `signingKey` from here).
     */
    synapseSecretsWritten: pulumi.Input<pulumi.Resource>;
    /** The settings already resolved from these options (MatrixStack passes its plan's). Default: resolved here. */
    resolved?: AdoptSettings;
}

/**
 * Adopts a Synapse installed by hand in the Debian package's layout: a
 * read-only preflight first (`preflight`; nothing of the stack's Synapse
 * should run before it: give SynapseHomeserver `after: [preflight]`), whose
 * result is the adopted signing key (`signingKey`, secret: SynapseHomeserver's
 * `signingKey`), then the port of its SQLite database into the stack's empty
 * PostgreSQL database before the stack's Synapse first starts
 * (SynapseHomeserver's `startAfter: [adopted]`). Done once per host.
 */
export class SynapseAdoption extends pulumi.ComponentResource {
    readonly settings: AdoptSettings;
    /** The read-only preflight: stops the deployment, changing nothing, when the server is not the stack's. */
    readonly preflight: pulumi.Resource;
    /** The adopted signing key file's line (secret), kept in the stack's state. */
    readonly signingKey: pulumi.Output<string>;
    /** Done once the database is ported and the old unit disabled (or was, on an earlier run). */
    readonly adopted: pulumi.Resource;

    constructor(name: string, args: SynapseAdoptionArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("SynapseAdoption"), name, {}, opts);
        const component = componentLabel("SynapseAdoption", name);
        const { host, synapse, database, synapseSecretsWritten, resolved, ...options } = args;
        if (!database.settings && !database.connection)
            throw new ConfigError(component, "database", new Described("not set"), "expected the stack's PostgresDatabase");
        const s = resolved ?? resolveAdoptSettings(component, options, { ...synapse, sqlite: synapse.database.kind === "sqlite" });
        this.settings = s;
        const preflight = hostScript(childName(name, "preflight"), { host, script: adoptPreflightScript(s), secret: true, timeout: "5m" }, { parent: this });
        this.preflight = preflight;
        // The script prints the key on the command's own stdout (fd 4), a secret output; never in a log.
        this.signingKey = pulumi.secret(
            preflight.stdout.apply((out) => {
                const line = out.split("\n").find((l) => l.startsWith(ADOPTED_KEY_PREFIX));
                if (!line) throw new Error(`${component}: the preflight printed no signing key`);
                return `${line.slice(ADOPTED_KEY_PREFIX.length)}\n`;
            }),
        );
        this.adopted = hostScript(
            childName(name, "port"),
            {
                host,
                script: database.connection.apply((c) => adoptScript(s, synapse, { database: c })),
                after: [preflight, database.ready, synapseSecretsWritten],
                timeout: "12h",
            },
            { parent: this },
        );
        this.registerOutputs({});
    }
}
