import * as pulumi from "@pulumi/pulumi";

import { componentLabel, ConfigError } from "../src/model/errors";
import { turnRemovalScript, turnSynapseRemovalScript } from "../src/provision/turn";
import { Host } from "./Host";
import { childName, typeToken, withFormerType } from "./naming";
import { hostScript } from "./remote";
import { ReverseProxy } from "./ReverseProxy";
import { SynapseHomeserver } from "./SynapseHomeserver";
import { WorkerPool } from "./WorkerPool";

export interface TurnRemovalArgs {
    /**
     * The name the removed `TurnServer` had (its first constructor
     * argument): its firewall openings are named after it.
     */
    turnName?: string;
    /** @deprecated Renamed `turnName`; accepted for one release. Give one of the two. */
    coturnName?: string;
    /** The homeserver that handed out credentials for it: its TURN options and its copy of the secret are removed, and it restarts without them. */
    synapse: SynapseHomeserver;
    /** The Host coturn ran on. Default: Synapse's host. */
    host?: Host;
    /**
     * The reverse proxy whose CA coturn's certificate came from, if any: the
     * removal runs after its certificate step (so a hook an earlier release
     * left there is gone after the web certificate was last issued). Default: none.
     */
    certificate?: ReverseProxy;
    /** Synapse's WorkerPool, if any: Synapse's step runs after it, so the two never restart Synapse's processes at once. Default: none. */
    workers?: WorkerPool;
}

/**
 * Takes away a TURN server that a `TurnServer` set up before: what a
 * stack puts in its place when it no longer has one (`MatrixStack` does so
 * whenever `turn` is left out). Synapse first stops handing out TURN
 * credentials (its TURN options and secret are removed, it restarts), then
 * coturn is stopped and disabled, its files are removed and its firewall
 * openings, the relay range among them, are closed. The coturn package stays
 * installed. On a host that never ran pulumi-matrix's coturn, both steps
 * change nothing.
 */
export class TurnRemoval extends pulumi.ComponentResource {
    /** Depend on this to run once TURN is gone from the host and from Synapse. */
    readonly ready: pulumi.Resource;

    constructor(name: string, args: TurnRemovalArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("TurnRemoval"), name, {}, withFormerType(opts, "CoturnRemoval"));
        const { synapse, certificate, workers } = args;
        const component = componentLabel("TurnRemoval", name);
        if (args.turnName !== undefined && args.coturnName !== undefined) {
            throw new ConfigError(component, "coturnName", args.coturnName, "expected turnName alone: coturnName is its former name; keep turnName");
        }
        const turnName = args.turnName ?? args.coturnName;
        if (!turnName) {
            throw new ConfigError(component, "turnName", turnName, "expected the name the removed TurnServer was constructed with");
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
                script: turnRemovalScript(turnName),
                after: [synapseStep, ...(certificate ? [certificate.ready] : [])],
            },
            { parent: this },
        );
        this.registerOutputs({});
    }
}
