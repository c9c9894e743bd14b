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
    /**
     * The stack's database: created empty, the SQLite database is ported or
     * the PostgreSQL dump restored into it; in `in-place` mode it is the old
     * database itself. Give it `after: [databaseAfter]` (a Promise of it).
     */
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
 * `signingKey`), then its database taken over before the stack's Synapse
 * first starts (SynapseHomeserver's `startAfter: [adopted]`): SQLite ported,
 * PostgreSQL dumped and restored into the stack's empty database, or taken
 * over in place (`postgres`). The stack's PostgresDatabase waits for
 * `databaseAfter`. Done once per host.
 */
export class SynapseAdoption extends pulumi.ComponentResource {
    readonly settings: AdoptSettings;
    /** The read-only preflight: stops the deployment, changing nothing, when the server is not the stack's. */
    readonly preflight: pulumi.Resource;
    /** The adopted signing key file's line (secret), kept in the stack's state. */
    readonly signingKey: pulumi.Output<string>;
    /** Done once the database is ported and the old unit disabled (or was, on an earlier run). */
    readonly adopted: pulumi.Resource;
    /**
     * What the stack's PostgresDatabase must wait for (its `after`): the
     * preflight, so a refused adoption changes nothing of the server the old
     * Synapse uses; in `in-place` mode the adoption step, which stops the old
     * Synapse before the role gets the stack's password.
     */
    readonly databaseAfter: pulumi.Resource;

    constructor(name: string, args: SynapseAdoptionArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("SynapseAdoption"), name, {}, opts);
        const component = componentLabel("SynapseAdoption", name);
        const { host, synapse, database, synapseSecretsWritten, resolved, ...options } = args;
        if (!database.settings && !database.connection)
            throw new ConfigError(component, "database", new Described("not set"), "expected the stack's PostgresDatabase");
        // The stack's PostgreSQL counts as this host's when the component installs it on the same Host.
        const local = database.settings && database.host === host ? database.settings : undefined;
        const s = resolved ?? resolveAdoptSettings(component, options, { ...synapse, sqlite: synapse.database.kind === "sqlite" }, local);
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
                // In place, this step stops the old server before the database's steps take over its role (they wait for it: databaseAfter).
                after: s.postgres === "in-place" ? [preflight, synapseSecretsWritten] : [preflight, database.ready, synapseSecretsWritten],
                timeout: "12h",
            },
            { parent: this },
        );
        this.databaseAfter = s.postgres === "in-place" ? this.adopted : preflight;
        this.registerOutputs({});
    }
}
