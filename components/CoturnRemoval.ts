import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "../src/model/errors";
import { coturnRemovalScript, turnSynapseRemovalScript } from "../src/provision/turn";
import { coturnServerLabel } from "./CoturnServer";
import { Host } from "./Host";
import { ReverseProxy } from "./ReverseProxy";
import { SynapseHomeserver } from "./SynapseHomeserver";
import { WorkerPool } from "./WorkerPool";
import { childName, typeToken } from "./naming";
import { hostScript } from "./remote";

export interface CoturnRemovalArgs {
    /**
     * The name the removed `CoturnServer` had (its first constructor
     * argument): its firewall openings are named after it.
     */
    coturnName: string;
    /** The homeserver that handed out credentials for it: its TURN options and its copy of the secret are removed, and it restarts without them. */
    synapse: SynapseHomeserver;
    /** The Host coturn ran on. Default: Synapse's host. */
    host?: Host;
    /** The reverse proxy whose certificate coturn used, if any: the removal runs after its certificate step (which no longer covers the TURN name). Default: none. */
    certificate?: ReverseProxy;
    /** Synapse's WorkerPool, if any: Synapse's step runs after it, so the two never restart Synapse's processes at once. Default: none. */
    workers?: WorkerPool;
}

/**
 * Takes away a TURN server that a `CoturnServer` set up before: what a
 * stack puts in its place when it no longer has one (`MatrixStack` does so
 * whenever `turn` is left out). Synapse first stops handing out TURN
 * credentials (its TURN options and secret are removed, it restarts), then
 * coturn is stopped and disabled, its files are removed and its firewall
 * openings, the relay range among them, are closed. The coturn package stays
 * installed. On a host that never ran pulumi-matrix's coturn, both steps
 * change nothing.
 */
export class CoturnRemoval extends pulumi.ComponentResource {
    /** Depend on this to run once TURN is gone from the host and from Synapse. */
    readonly ready: pulumi.Resource;

    constructor(name: string, args: CoturnRemovalArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("CoturnRemoval"), name, {}, opts);
        const { synapse, certificate, workers } = args;
        if (!args.coturnName) {
            throw new ConfigError(`CoturnRemoval "${name}"`, "coturnName", args.coturnName, "expected the name the removed CoturnServer was constructed with");
        }
        const host = args.host ?? synapse.host;
        const synapseStep = hostScript(
            childName(name, "synapse-config"),
            { host: synapse.host, script: turnSynapseRemovalScript(synapse.settings), after: [synapse.ready, ...(workers ? [workers.ready] : [])] },
            { parent: this },
        );
        this.ready = hostScript(
            childName(name, "server"),
            {
                host,
                script: coturnRemovalScript(coturnServerLabel(args.coturnName)),
                after: [synapseStep, ...(certificate ? [certificate.ready] : [])],
            },
            { parent: this },
        );
        this.registerOutputs({});
    }
}
