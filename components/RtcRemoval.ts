import * as pulumi from "@pulumi/pulumi";

import { componentLabel, ConfigError } from "../src/model/errors";
import { rtcRemovalScript, rtcSynapseRemovalScript } from "../src/provision/rtc";
import { Host } from "./Host";
import { childName, typeToken } from "./naming";
import { hostScript } from "./remote";
import { SynapseHomeserver } from "./SynapseHomeserver";
import { WorkerPool } from "./WorkerPool";

export interface RtcRemovalArgs {
    /** The name the removed `RtcServer` had (its first constructor argument): its firewall openings are named after it. */
    rtcName: string;
    /** The homeserver that advertised it: its MatrixRTC options are removed, and it restarts without them. */
    synapse: SynapseHomeserver;
    /** The Host the programs ran on. Default: Synapse's host. */
    host?: Host;
    /** Synapse's WorkerPool, if any: Synapse's step runs after it. Default: none. */
    workers?: WorkerPool;
}

/**
 * Takes away a MatrixRTC back end an `RtcServer` set up before (what
 * `MatrixStack` puts in its place when `rtc` is false): Synapse stops
 * advertising the transport, then both programs are stopped and disabled,
 * their units, configs, key files and binaries removed and their firewall
 * openings closed. On a host that never had it, both steps change nothing.
 */
export class RtcRemoval extends pulumi.ComponentResource {
    /** Depend on this to run once MatrixRTC is gone from the host and from Synapse. */
    readonly ready: pulumi.Resource;

    constructor(name: string, args: RtcRemovalArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("RtcRemoval"), name, {}, opts);
        const { synapse, workers } = args;
        if (!args.rtcName)
            throw new ConfigError(componentLabel("RtcRemoval", name), "rtcName", args.rtcName, "expected the name the removed RtcServer was constructed with");
        const synapseStep = hostScript(
            childName(name, "synapse-config"),
            { host: synapse.host, script: rtcSynapseRemovalScript(synapse.settings), after: [synapse.ready, ...(workers ? [workers.ready] : [])] },
            { parent: this },
        );
        this.ready = hostScript(
            childName(name, "server"),
            { host: args.host ?? synapse.host, script: rtcRemovalScript(args.rtcName), after: [synapseStep] },
            { parent: this },
        );
        this.registerOutputs({});
    }
}
