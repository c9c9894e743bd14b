import * as pulumi from "@pulumi/pulumi";

import { monitoringRemovalScript } from "../src/provision/monitoring";
import { childName, typeToken } from "./naming";
import { hostScript } from "./remote";
import { ReverseProxy } from "./ReverseProxy";
import { SynapseHomeserver } from "./SynapseHomeserver";

export interface MonitoringRemovalArgs {
    /** The homeserver whose host had monitoring. */
    synapse: SynapseHomeserver;
    /** The reverse proxy, if any: the removal runs after it (nginx reloads without the status page). */
    proxy?: ReverseProxy;
}

/**
 * Takes away the monitoring a `MonitoringServer` set up before (what
 * MatrixStack puts in its place without `monitoring`): its daemons are
 * stopped and disabled, its files removed; the packages and Prometheus's
 * data stay. Changes nothing on a host that never had it.
 */
export class MonitoringRemoval extends pulumi.ComponentResource {
    readonly ready: pulumi.Resource;

    constructor(name: string, args: MonitoringRemovalArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("MonitoringRemoval"), name, {}, opts);
        this.ready = hostScript(
            childName(name, "server"),
            { host: args.synapse.host, script: monitoringRemovalScript(), after: [args.synapse.ready, ...(args.proxy ? [args.proxy.ready] : [])] },
            { parent: this },
        );
        this.registerOutputs({});
    }
}
