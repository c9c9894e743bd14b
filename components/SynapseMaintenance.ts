import * as pulumi from "@pulumi/pulumi";

import { componentLabel } from "../src/model/errors";
import { MaintenanceOptions, MaintenanceSettings, resolveMaintenanceSettings } from "../src/model/maintenance";
import { maintenanceScript } from "../src/provision/maintenance";
import { childName, typeToken } from "./naming";
import { PostgresDatabase } from "./PostgresDatabase";
import { hostScript } from "./remote";
import { SynapseHomeserver } from "./SynapseHomeserver";
import { WorkerPool } from "./WorkerPool";

export interface SynapseMaintenanceArgs extends MaintenanceOptions {
    /** The homeserver to keep: the timers run on its host and use its loopback listener. */
    synapse: SynapseHomeserver;
    /**
     * Synapse's database: the compressor needs it on Synapse's host (it
     * connects through the local socket). Default none (then the compressor
     * must be `false`).
     */
    database?: PostgresDatabase;
    /** Synapse's WorkerPool, if any: the step runs after it. Default none. */
    workers?: WorkerPool;
    /** Settings already resolved (MatrixStack passes its plan's). Default: resolved here. */
    resolved?: MaintenanceSettings;
}

/** How errors name a SynapseMaintenance. */
export function maintenanceLabel(name: string): string {
    return componentLabel("SynapseMaintenance", name);
}

/**
 * Maintenance timers on Synapse's host (systemd timers, each optional):
 * state compression with `synapse_auto_compressor`, the purge of cached
 * remote media and the deletion of rooms no local user is in (a dry run
 * by default). Failed runs leave their service failed
 * (`matrix-maintenance-*.service`). Nothing secret passes through Pulumi:
 * the purges' admin account and token are made on the host, root-only.
 */
export class SynapseMaintenance extends pulumi.ComponentResource {
    readonly settings: MaintenanceSettings;
    /** Depend on this to run once the timers are in place. */
    readonly ready: pulumi.Resource;

    constructor(name: string, args: SynapseMaintenanceArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("SynapseMaintenance"), name, {}, opts);
        const { synapse, database, workers, resolved, ...options } = args;
        const local = database?.settings && database.host === synapse.host ? database.settings : undefined;
        const s =
            resolved ??
            resolveMaintenanceSettings(maintenanceLabel(name), options, {
                synapse: synapse.settings,
                ...(local ? { localPostgres: { database: local.database, port: local.port } } : {}),
            });
        this.settings = s;
        this.ready = hostScript(
            childName(name, "timers"),
            {
                host: synapse.host,
                script: maintenanceScript(s),
                after: [synapse.ready, ...(database ? [database.ready] : []), ...(workers ? [workers.ready] : [])],
                timeout: "20m",
            },
            { parent: this },
        );
        this.registerOutputs({});
    }
}
