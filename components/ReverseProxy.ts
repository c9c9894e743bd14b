import * as pulumi from "@pulumi/pulumi";

import { componentLabel } from "../src/model/errors";
import {
    ElementSite,
    nginxRejectsHandshake,
    proxyPortClaims,
    resolveReverseProxySettings,
    ReverseProxyOptions,
    ReverseProxySettings,
    synapseListener,
} from "../src/model/proxy";
import { checkAcmeCredentials } from "../src/model/proxy/acme";
import { RtcSite } from "../src/model/rtc";
import { WorkerUpstream } from "../src/model/workers";
import { acmeCredentialsScript, certificateScript, proxyServerScript, servedCertificate, unknownNameCertificate } from "../src/provision/proxy";
import { childName, typeToken } from "./naming";
import { hostScript } from "./remote";
import { SynapseHomeserver } from "./SynapseHomeserver";
import { WorkerPool } from "./WorkerPool";

export interface ReverseProxyArgs extends ReverseProxyOptions {
    /** The homeserver it serves; nginx runs on Synapse's host and proxies to its loopback listener. */
    synapse: SynapseHomeserver;
    /** Synapse's workers: their routes go to them (the route table, WORKER_ROUTES). Default: everything to the main process. */
    workers?: WorkerPool;
    /** Element Web to serve on its own domain (an ElementWeb, or any site with the same fields). Default: none. */
    element?: ElementSite;
    /**
     * MatrixRTC to serve (`rtcSite(rtc.settings)` of an RtcServer on this
     * host): its locations on the homeserver's domain or a server block of
     * its own (then its name is on the certificate), and the focus in the
     * client well-known. Default: none.
     */
    rtc?: RtcSite;
    /**
     * With `acme.challenge: "dns-01-cloudflare"` (and only then, where it is
     * required): a Cloudflare API token with the Zone:DNS:Edit permission
     * for the zones of the certificate's names (secret). A step of its own,
     * with the secret flags, writes it to a root-only file for certbot's
     * Cloudflare plugin; it never appears in a readable script, a command
     * line or an output. It stays on the host for renewals: give it DNS Edit
     * on those zones only, limited to the host's addresses (README, "The
     * DNS-01 token"); the plugin does not follow a CNAME to a delegated
     * validation zone.
     */
    cloudflareApiToken?: pulumi.Input<string>;
    /**
     * The proxy's settings already resolved from these options (MatrixStack passes its
     * plan's: see `planStack`): used as they are, so they are resolved once
     * per deployment. Default: resolved here.
     */
    resolved?: ReverseProxySettings;
}

/**
 * nginx from the distro in front of Synapse: TLS on 443 (and 8448 for
 * federation) with a certificate from an ACME CA (Let's Encrypt by default,
 * renewed by certbot's timer), worker routing from the route table, the
 * well-known documents, the admin API limited to an allow-list, per-address
 * limits on log-ins and registrations, and Element Web on its own domain;
 * any other name gets no answer (no certificate on 443). Claims ports 80,
 * 443 (and 8448) on Synapse's host and opens them in its firewall.
 */
export class ReverseProxy extends pulumi.ComponentResource {
    /** The resolved settings (certificate names, ports, allow-list). */
    readonly settings: ReverseProxySettings;
    /** The names the certificate covers (homeserver domain first). */
    readonly certificateNames: string[];
    /** Depend on this to run once nginx serves the issued certificate. */
    readonly ready: pulumi.Resource;

    constructor(name: string, args: ReverseProxyArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("ReverseProxy"), name, {}, opts);
        const component = componentLabel("ReverseProxy", name);
        const synapse = args.synapse;
        const s = args.resolved ?? resolveReverseProxySettings(component, args, synapse.settings, args.element, args.rtc);
        checkAcmeCredentials(component, s.acme, args.cloudflareApiToken !== undefined);
        this.settings = s;
        this.certificateNames = s.certificateNames;
        const host = synapse.host;
        host.claimPorts(component, proxyPortClaims(s));

        const main = synapseListener(synapse.settings);
        const workers: pulumi.Output<WorkerUpstream[]> = args.workers ? args.workers.upstreams : pulumi.output([]);
        const element = args.element ? { domain: args.element.domain, webRoot: args.element.webRoot, configPath: args.element.configPath } : undefined;
        const server = hostScript(
            childName(name, "nginx"),
            {
                host,
                script: pulumi.all([workers, host.os]).apply(([w, os]) =>
                    proxyServerScript(
                        {
                            proxy: s,
                            publicBaseUrl: synapse.settings.publicBaseUrl,
                            main,
                            workers: w,
                            ...(element ? { element } : {}),
                            ...(args.rtc ? { rtc: args.rtc } : {}),
                            tls: servedCertificate(),
                            challengeNames: s.challengeNames,
                            // nginx 1.18 (Ubuntu 22.04) cannot refuse the handshake for an unknown name.
                            ...(nginxRejectsHandshake(os) ? {} : { unknownNameCertificate: unknownNameCertificate() }),
                        },
                        component,
                    ),
                ),
                timeout: "20m",
            },
            { parent: this },
        );
        // DNS-01: the token's own secret step, before the certificate step that uses it.
        const credentials =
            args.cloudflareApiToken !== undefined
                ? [
                      hostScript(
                          childName(name, "acme-credentials"),
                          { host, script: pulumi.output(args.cloudflareApiToken).apply(acmeCredentialsScript), secret: true },
                          { parent: this },
                      ),
                  ]
                : [];
        this.ready = hostScript(childName(name, "certificate"), { host, script: certificateScript(s), after: [server, ...credentials] }, { parent: this });
        this.registerOutputs({ certificateNames: this.certificateNames });
    }
}
