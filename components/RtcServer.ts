import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

import { componentLabel, ConfigError } from "../src/model/errors";
import { resolveRtcSettings, RtcOptions, rtcPortClaims, RtcSettings } from "../src/model/rtc";
import { rtcSecretScript, rtcServerScript, rtcSynapseConfigScript } from "../src/provision/rtc";
import { Host } from "./Host";
import { childName, typeToken } from "./naming";
import { hostScript } from "./remote";
import { SynapseHomeserver } from "./SynapseHomeserver";
import { WorkerPool } from "./WorkerPool";

export interface RtcServerArgs extends RtcOptions {
    /**
     * The homeserver whose users call through this back end: it gets the
     * RTC transport and the options Element Call needs in a conf.d fragment
     * of their own (conf.d/46-rtc.yaml) and restarts with them; its
     * server_name is the default `fullAccessHomeservers`.
     */
    synapse: SynapseHomeserver;
    /**
     * The Host both programs run on; their ports are claimed and opened
     * there. It must be the reverse proxy's (nginx reaches them on
     * loopback). Default: Synapse's host.
     */
    host?: Host;
    /** Element Web's domain, when one is served: `domain` must differ from it. Default: none. */
    elementDomain?: string;
    /** Synapse's WorkerPool, if any: the Synapse step runs after it, so the two never restart Synapse's processes at once. Default: none. */
    workers?: WorkerPool;
    /** Settings already resolved from these options (MatrixStack passes its plan's). Default: resolved here. */
    resolved?: RtcSettings;
}

/** How errors, port claims and the firewall opening name an RtcServer. */
export function rtcServerLabel(name: string): string {
    return componentLabel("RtcServer", name);
}

/**
 * MatrixRTC for calls in Element X and Element Call: livekit-server (the
 * LiveKit SFU) and lk-jwt-service (the authorization service) from pinned,
 * SHA-256-verified release binaries, each as its own system user under a
 * hardened unit; an API key and secret generated once and kept in the
 * state (secret), written only to root-owned key files the programs read;
 * ICE ports claimed and opened; Synapse's RTC transport. The reverse proxy
 * serves both (give it `rtcSite(settings)`), and its client well-known
 * advertises the focus.
 */
export class RtcServer extends pulumi.ComponentResource {
    readonly settings: RtcSettings;
    readonly host: Host;
    /** The authorization service's URL clients are given (`livekit_service_url`). */
    readonly serviceUrl: pulumi.Output<string>;
    /** The LiveKit API key (secret). */
    readonly apiKey: pulumi.Output<string>;
    /** The LiveKit API secret (secret). */
    readonly apiSecret: pulumi.Output<string>;
    /** Depend on this to run once both programs answer and Synapse advertises the transport. */
    readonly ready: pulumi.Resource;

    constructor(name: string, args: RtcServerArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("RtcServer"), name, {}, opts);
        const component = rtcServerLabel(name);
        const { synapse, host: hostArg, elementDomain, workers, resolved, ...options } = args;
        const host = hostArg ?? synapse.host;
        // nginx (on Synapse's host) reaches both programs on loopback.
        if (host !== synapse.host)
            throw new ConfigError(
                component,
                "host",
                host.label,
                `expected the reverse proxy's host (Synapse's, ${synapse.host.label}): nginx reaches livekit-server and lk-jwt-service on loopback; leave host out`,
            );
        const s =
            resolved ??
            resolveRtcSettings(component, options, {
                serverName: synapse.settings.serverName,
                publicBaseUrl: synapse.settings.publicBaseUrl,
                ...(elementDomain !== undefined ? { elementDomain } : {}),
            });
        host.claimPorts(component, rtcPortClaims(s));
        this.settings = s;
        this.host = host;

        // Letters and digits only: both key files split at a colon.
        const apiKey = pulumi.secret(new random.RandomString(childName(name, "api-key"), { length: 16, special: false }, { parent: this }).result);
        const apiSecret = pulumi.secret(new random.RandomPassword(childName(name, "api-secret"), { length: 48, special: false }, { parent: this }).result);
        const server = hostScript(childName(name, "server"), { host, script: rtcServerScript(s, name), timeout: "20m" }, { parent: this });
        const secrets = hostScript(
            childName(name, "secrets"),
            { host, script: pulumi.all([apiKey, apiSecret]).apply(([k, v]) => rtcSecretScript(s, `API${k}`, v)), secret: true, after: [server] },
            { parent: this },
        );
        this.ready = hostScript(
            childName(name, "synapse-config"),
            { host: synapse.host, script: rtcSynapseConfigScript(synapse.settings, s), after: [synapse.ready, secrets, ...(workers ? [workers.ready] : [])] },
            { parent: this },
        );
        this.serviceUrl = pulumi.output(s.serviceUrl);
        this.apiKey = apiKey.apply((k) => `API${k}`);
        this.apiSecret = apiSecret;
        this.registerOutputs({ serviceUrl: this.serviceUrl });
    }
}
