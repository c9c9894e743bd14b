import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

import { componentLabel, ConfigError } from "../src/model/errors";
import { resolveTurnSettings, TurnOptions, turnPortClaims, TurnSettings, turnUris } from "../src/model/turn";
import { turnCertificateScript, turnSecretScript, turnServerScript, turnSynapseConfigScript, turnSynapseSecretScript } from "../src/provision/turn";
import { Host } from "./Host";
import { childName, typeToken, withFormerType } from "./naming";
import { hostScript } from "./remote";
import { ReverseProxy } from "./ReverseProxy";
import { SynapseHomeserver } from "./SynapseHomeserver";
import { WorkerPool } from "./WorkerPool";

export interface TurnServerArgs extends TurnOptions {
    /**
     * The homeserver whose clients use this TURN server: it gets `turn_uris`,
     * the shared secret (`turn_shared_secret_path`), `turn_user_lifetime` and
     * `turn_allow_guests` in files of their own (conf.d/45-turn.yaml,
     * secrets/turn_shared_secret) and restarts with them.
     */
    synapse: SynapseHomeserver;
    /** The Host coturn runs on; its ports are claimed and opened there. Default: Synapse's host. */
    host?: Host;
    /**
     * TLS and DTLS on `tlsPort` (`turns:` URIs) with a certificate of
     * coturn's own for `domain` alone (certbot lineage `coturn-<domain>`,
     * its own key), obtained from this reverse proxy's ACME CA the way the
     * proxy's is (HTTP-01 through its nginx, or DNS-01), so coturn never
     * holds the key of the web names; coturn must then run on the proxy's
     * host (Synapse's). Renewals reach coturn without Pulumi (certbot's
     * deploy hook copies the renewed certificate and reloads coturn).
     * Default: none (plain TURN only).
     */
    certificate?: ReverseProxy;
    /** Synapse's WorkerPool, if any: TURN's Synapse steps run after it, so the two never restart Synapse's processes at once. Default: none. */
    workers?: WorkerPool;
    /**
     * coturn's settings already resolved from these options (MatrixStack passes its
     * plan's: see `planStack`): used as they are, so they are resolved once
     * per deployment. Default: resolved here.
     */
    resolved?: TurnSettings;
}

/** How errors, port claims and the firewall opening name a TurnServer. */
export function turnServerLabel(name: string): string {
    return componentLabel("TurnServer", name);
}

/**
 * coturn from the distribution for Matrix calls: credentials that Synapse
 * makes from a generated secret the two share (secret files on both
 * sides, never in a readable config, command line or log), TLS/DTLS with
 * a certificate of its own from the reverse proxy's CA, relays only to public addresses (the
 * denied-peer list) over a UDP port range the firewall opens, quotas, no
 * CLI or admin port, logs to the journal. Claims its ports on its host.
 */
export class TurnServer extends pulumi.ComponentResource {
    /** The resolved settings as plain values (`domain` is the name DNS must point at coturn's host). */
    readonly settings: TurnSettings;
    /** The host coturn runs on. */
    readonly host: Host;
    /** The URIs Synapse hands to clients (`turn_uris`). */
    readonly uris: pulumi.Output<string[]>;
    /** The secret Synapse and coturn share (secret). */
    readonly sharedSecret: pulumi.Output<string>;
    /** Depend on this to run once coturn answers and Synapse hands out credentials for it. */
    readonly ready: pulumi.Resource;

    constructor(name: string, args: TurnServerArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("TurnServer"), name, {}, withFormerType(opts, "CoturnServer"));
        const component = turnServerLabel(name);
        const { synapse, host: hostArg, certificate, workers, resolved, ...options } = args;
        const host = hostArg ?? synapse.host;
        if (certificate && host !== synapse.host) {
            throw new ConfigError(
                component,
                "certificate",
                certificate.settings.homeserverDomain,
                `the certificate is on the reverse proxy's host (Synapse's, ${synapse.host.label}), coturn on ${host.label}: run coturn on Synapse's host, or leave certificate out (no TLS)`,
            );
        }
        const s = resolved ?? resolveTurnSettings(component, options, certificate ? { acme: certificate.settings.acme } : undefined);
        host.claimPorts(component, turnPortClaims(s));
        this.settings = s;
        this.host = host;

        const secret = pulumi.secret(new random.RandomPassword(childName(name, "shared-secret"), { length: 48, special: false }, { parent: this }).result);
        const server = hostScript(
            childName(name, "server"),
            { host, script: turnServerScript(s, name), after: certificate ? [certificate.ready] : [], timeout: "20m" },
            { parent: this },
        );
        // coturn's own certificate (only the TURN name), after the server step wrote the hook that gives coturn its copy.
        const tls = s.tls
            ? [hostScript(childName(name, "certificate"), { host, script: turnCertificateScript(s), after: [server], timeout: "20m" }, { parent: this })]
            : [];
        const coturnSecret = hostScript(
            childName(name, "secrets"),
            { host, script: secret.apply((v) => turnSecretScript(s, v)), secret: true, after: [server, ...tls] },
            { parent: this },
        );
        const synapseSecret = hostScript(
            childName(name, "synapse-secrets"),
            {
                host: synapse.host,
                script: secret.apply((v) => turnSynapseSecretScript(synapse.settings, v)),
                secret: true,
                after: [synapse.ready, ...(workers ? [workers.ready] : [])],
            },
            { parent: this },
        );
        this.ready = hostScript(
            childName(name, "synapse-config"),
            { host: synapse.host, script: turnSynapseConfigScript(synapse.settings, s), after: [synapseSecret, coturnSecret] },
            { parent: this },
        );
        this.uris = pulumi.output(turnUris(s));
        this.sharedSecret = secret;
        this.registerOutputs({ uris: this.uris, sharedSecret: this.sharedSecret });
    }
}
