import { ConfigError } from "../errors";
import { FirewallRule, HOST_FILES, OsInfo, PortClaim } from "../host";
import { publicBaseUrlProblem } from "../synapse";
import { Checker, isCidr, isHostname, isIpAddress, isWildcardAddress, parseSize } from "../validate";
import { AcmeOptions, AcmeSettings, resolveAcmeSettings } from "./acme";
import type { RateLimitZone } from "./routes";

/** Where the proxy's files live on the host. */
export const PROXY_FILES = {
    /** The site (http context: Debian's nginx.conf includes conf.d/*.conf). */
    conf: "/etc/nginx/conf.d/pulumi-matrix.conf",
    /** The certificate nginx serves: a symlink to the bootstrap certificate, then to certbot's live directory. */
    tls: "/etc/nginx/pulumi-matrix/tls",
    /** A self-signed certificate so nginx can start and answer the first ACME challenge. */
    bootstrap: "/etc/nginx/pulumi-matrix/bootstrap",
    /** Only for nginx < 1.19.4 (no `ssl_reject_handshake`): a self-signed certificate naming no host, for requests to names nginx does not serve. */
    unknownName: "/etc/nginx/pulumi-matrix/unknown-name",
    /** Debian's default site also claims port 80 as the default server. */
    defaultSite: "/etc/nginx/sites-enabled/default",
    deployHook: "/etc/letsencrypt/renewal-hooks/deploy/pulumi-matrix",
    /**
     * With LiveKit's TURN (`RtcSite.turn`) only: nginx's stream front on 443
     * (main context: Debian's nginx.conf includes modules-enabled/*.conf
     * there, after the stream module's load_module), and the sockets it hands
     * connections to: the web servers' TLS, and the TURN name's TLS.
     */
    stream: "/etc/nginx/modules-enabled/pulumi-matrix-stream.conf",
    httpsSocket: "/run/pulumi-matrix-nginx-https.sock",
    turnSocket: "/run/pulumi-matrix-nginx-turn.sock",
    /** Services that use the certificate put their renewal hooks here (coturn: a copy with its owner). */
    hooksDir: "/etc/pulumi-matrix/certificate-hooks.d",
    caBundle: "/etc/pulumi-matrix/acme-ca.pem",
    /** The Cloudflare API token for DNS-01 (root only), written by its own secret step. */
    cloudflareCredentials: "/etc/pulumi-matrix/acme-cloudflare.ini",
    certbotDropIn: "/etc/systemd/system/certbot.service.d/pulumi-matrix.conf",
    /** What the current certificate was requested with: a change asks the CA again. */
    request: `${HOST_FILES.stateDir}/acme-request`,
} as const;

/**
 * The reverse proxy in front of Synapse: nginx from the distro terminates
 * TLS on 443 (and 8448 for federation), routes requests to the main process
 * or its workers, serves the well-known documents and Element Web, and
 * answers ACME challenges on port 80.
 */

/** The reverse-proxy settings a user writes. */
export interface ReverseProxyOptions {
    /** The certificate's CA and contact (Let's Encrypt by default). `email` is required. */
    acme: AcmeOptions;
    /**
     * The port other servers reach federation on. `8448` (default): a TLS
     * listener on 8448, the port servers try without delegation. `443`: no
     * 8448 listener; `/.well-known/matrix/server` tells servers to use 443
     * (it must be served on the server_name's domain: see `serverNameWellKnown`).
     */
    federationPort?: 443 | 8448;
    /**
     * Networks (CIDR) allowed to call Synapse's admin API (`/_synapse/admin`)
     * through the proxy. Default none: the admin API is refused to everyone
     * (use it over SSH on the host, at Synapse's loopback listener).
     */
    adminAllowList?: string[];
    /**
     * This nginx also answers for the server_name's domain (its A/AAAA
     * records point to this host): it serves `/.well-known/matrix/server` and
     * `/client` there, and the certificate covers that name. Only when the
     * server_name is not the homeserver's own domain (where they are always
     * served). Default false (the apex website lives elsewhere).
     */
    serverNameWellKnown?: boolean;
    /**
     * Addresses nginx listens on. Default: every address (IPv4 and IPv6).
     * Give the host's public address(es) when something else serves other
     * addresses of this host.
     */
    listenAddresses?: string[];
    /**
     * More names the certificate covers and the homeserver's vhost answers
     * for. SRV delegation needs the server_name here: servers that find the
     * homeserver through `_matrix-fed._tcp` ask it for the server_name's
     * certificate. Their DNS must point to this host (HTTP-01). Default none.
     */
    extraCertificateNames?: string[];
    /**
     * More names nginx answers ACME HTTP-01 challenges for on port 80,
     * without serving them otherwise: the certificates of other services on
     * this host that validate through this nginx's webroot (a TurnServer's
     * own certificate). Any other name gets no answer on port 80. Default
     * none (`MatrixStack` adds the TURN name).
     */
    acmeChallengeNames?: string[];
    /**
     * Log-in attempts a client address may make through nginx
     * (`POST /_matrix/client/.../login`, `/account/password`, the admin
     * API's shared-secret `/register`): `perMinute` on average, `burst` more
     * at once; beyond that nginx answers 429 (`M_LIMIT_EXCEEDED`) without
     * asking Synapse. Synapse's own `rc_login` limits still apply behind it.
     * Default `{ perMinute: 30, burst: 10 }`; `false` turns it off (e.g.
     * behind a proxy of your own, where every client has its address).
     */
    loginRateLimit?: Partial<RateLimit> | false;
    /**
     * Registrations and mails a client address may ask for through nginx
     * (`POST .../register`, the `requestToken` endpoints that send a mail or
     * text message, registration token checks), as `loginRateLimit`.
     * Default `{ perMinute: 10, burst: 5 }`; `false` turns it off.
     */
    registrationRateLimit?: Partial<RateLimit> | false;
}

/** A limit on requests per client address (nginx's `limit_req`). */
export interface RateLimit {
    /** Requests a minute on average (a whole number, 1 or more). */
    perMinute: number;
    /** Requests allowed at once beyond the average, answered without delay (0 or more). */
    burst: number;
}

/** The reverse-proxy settings with every default filled in. */
export interface ReverseProxySettings {
    acme: AcmeSettings;
    federationPort: 443 | 8448;
    adminAllowList: string[];
    /** The homeserver's public domain (the host of Synapse's publicBaseUrl). */
    homeserverDomain: string;
    /** Synapse's server_name without a port. */
    serverNameHost: string;
    /** A server block answers for the server_name's domain with the well-known documents (it is not the homeserver domain). */
    serverNameVhost: boolean;
    /** nginx's `client_max_body_size`, following Synapse's `max_upload_size`. */
    clientMaxBodySize: string;
    /** The certificate's names, homeserver domain first (certbot's lineage is named after it). */
    certificateNames: string[];
    /** Addresses nginx listens on; empty: every address. */
    listenAddresses: string[];
    /** Names the homeserver's vhost answers for besides its own domain (`extraCertificateNames`). */
    extraNames: string[];
    /** Names port 80 answers ACME HTTP-01 challenges for besides the certificate's (`acmeChallengeNames`). */
    challengeNames: string[];
    /** Per-address limits on log-in attempts and registrations; `false`: none. */
    rateLimits: Record<RateLimitZone, RateLimit | false>;
}

/** What the proxy needs to know of Synapse (plain values from its settings). */
export interface ProxiedHomeserver {
    serverName: string;
    publicBaseUrl: string;
    /** publicBaseUrl was left out and made from serverName (SynapseSettings' flag): errors then name serverName. */
    publicBaseUrlDerived?: true;
    maxUploadSize: string;
    /** Synapse is in standby (SynapseSettings' `standby`): the certificate's HTTP-01 request waits for its end. */
    standby?: boolean;
}

/** A site nginx serves besides the homeserver: Element Web on its own domain. */
export interface ElementSite {
    domain: string;
    /** The directory served (a symlink to the current release). */
    webRoot: string;
    /** Element's config.json (kept outside the release directories). */
    configPath: string;
}

export const PROXY_DEFAULTS = {
    federationPort: 8448,
    serverNameWellKnown: false,
    loginRateLimit: { perMinute: 30, burst: 10 },
    registrationRateLimit: { perMinute: 10, burst: 5 },
} as const;

/**
 * Whether the distro's nginx can refuse a TLS handshake for a name it does
 * not serve (`ssl_reject_handshake`, nginx 1.19.4): Debian 12 has 1.22,
 * Debian 13 1.26, Ubuntu 24.04 1.24; Ubuntu 22.04 has 1.18, whose default
 * server presents a self-signed certificate naming no host instead.
 */
export function nginxRejectsHandshake(os: Pick<OsInfo, "id" | "versionId">): boolean {
    return !(os.id === "ubuntu" && os.versionId === "22.04");
}

/** A rate limit with its defaults, checked. */
function resolveRateLimit(c: Checker, setting: string, o: Partial<RateLimit> | false | undefined, defaults: RateLimit): RateLimit | false {
    if (o === false) return false;
    c.check(setting, o, o === undefined || (typeof o === "object" && o !== null), "expected { perMinute, burst } or false (no limit)");
    const limit = { ...defaults, ...(typeof o === "object" && o !== null ? o : {}) };
    c.check(
        `${setting}.perMinute`,
        limit.perMinute,
        Number.isInteger(limit.perMinute) && limit.perMinute >= 1,
        "expected a whole number of requests a minute, 1 or more",
    );
    c.check(`${setting}.burst`, limit.burst, Number.isInteger(limit.burst) && limit.burst >= 0, "expected a whole number of requests, 0 or more");
    return { perMinute: limit.perMinute, burst: limit.burst };
}

/** The homeserver's public domain: the host of its public base URL. */
export function homeserverDomain(publicBaseUrl: string): string {
    return new URL(publicBaseUrl).hostname;
}

/** server_name without a port (`example.com:8448` -> `example.com`). */
export function serverNameHost(serverName: string): string {
    return serverName.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
}

/** Fills in the defaults and validates, including how the proxy fits Synapse's settings and the Element site. */
export function resolveReverseProxySettings(
    component: string,
    o: Partial<ReverseProxyOptions>,
    homeserver: ProxiedHomeserver,
    element?: Pick<ElementSite, "domain">,
    rtc?: { domain: string; ownDomain: boolean; turn?: { domain: string } },
): ReverseProxySettings {
    const c = new Checker(component);
    const acme = resolveAcmeSettings(component, o.acme, "acme.", c);
    if (homeserver.standby) acme.standby = true;
    const federationPort = o.federationPort ?? PROXY_DEFAULTS.federationPort;
    c.check(
        "federationPort",
        federationPort,
        federationPort === 443 || federationPort === 8448,
        "expected 8448 (a federation listener) or 443 (delegated to 443)",
    );
    const adminAllowList = o.adminAllowList ?? [];
    for (const cidr of adminAllowList)
        c.check(
            "adminAllowList",
            cidr,
            typeof cidr === "string" && isCidr(cidr),
            "expected networks in CIDR notation, such as 203.0.113.0/24 or 2001:db8::/48",
        );
    const listenAddresses = o.listenAddresses ?? [];
    for (const a of listenAddresses)
        c.check(
            "listenAddresses",
            a,
            typeof a === "string" && isIpAddress(a) && !isWildcardAddress(a),
            "expected specific IP addresses of this host, such as 203.0.113.10 (leave it out for every address)",
        );
    const domain = homeserverDomain(homeserver.publicBaseUrl);
    const url = publicBaseUrlProblem(homeserver, "synapse.");
    c.check(
        url.setting,
        url.value,
        isHostname(domain) && new URL(homeserver.publicBaseUrl).protocol === "https:" && ["", "443"].includes(new URL(homeserver.publicBaseUrl).port),
        url.expected(
            "the reverse proxy serves https://<DNS name>/ on port 443 with a certificate for that name: expected a URL such as https://matrix.example.com/",
        ),
    );
    const snHost = serverNameHost(homeserver.serverName);
    const separate = snHost !== domain;
    const serverNameVhost = separate && (o.serverNameWellKnown ?? PROXY_DEFAULTS.serverNameWellKnown);
    if (serverNameVhost)
        c.check(
            "serverNameWellKnown",
            homeserver.serverName,
            isHostname(snHost),
            "the well-known documents are served on the server_name's domain, which needs a DNS name there (the server_name is an IP literal)",
        );
    const size = parseSize(homeserver.maxUploadSize);
    c.check("synapse.maxUploadSize", homeserver.maxUploadSize, size !== undefined, "expected a size such as 50M (K, M or G)");
    if (element) {
        c.check(
            "element.domain",
            element.domain,
            element.domain !== domain,
            `Element must have its own domain, not the homeserver's (${domain}): media the homeserver serves must not run script in Element's origin; use e.g. element.${domain.replace(/^matrix\./, "")}`,
        );
        c.check(
            "element.domain",
            element.domain,
            !serverNameVhost || element.domain !== snHost,
            `the server_name's domain ${snHost} already serves the well-known documents here; give Element its own domain`,
        );
    }
    const extra = o.extraCertificateNames ?? [];
    for (const n of extra)
        c.check(
            "extraCertificateNames",
            n,
            typeof n === "string" && isHostname(n),
            "expected DNS names such as example.com (their DNS must point to this host)",
        );
    for (const n of extra)
        c.check(
            "extraCertificateNames",
            n,
            !(serverNameVhost && n === snHost) && n !== element?.domain,
            "this name already has its own vhost here (the server_name's well-known, or Element): leave it out",
        );
    const challengeNames = o.acmeChallengeNames ?? [];
    for (const n of challengeNames)
        c.check(
            "acmeChallengeNames",
            n,
            typeof n === "string" && isHostname(n),
            "expected DNS names such as turn.example.com (their DNS must point to this host)",
        );
    const rateLimits = {
        login: resolveRateLimit(c, "loginRateLimit", o.loginRateLimit, PROXY_DEFAULTS.loginRateLimit),
        registration: resolveRateLimit(c, "registrationRateLimit", o.registrationRateLimit, PROXY_DEFAULTS.registrationRateLimit),
    };
    // MatrixRTC on a domain of its own: a server block of its own, on the certificate.
    const rtcNames = rtc?.ownDomain ? [rtc.domain] : [];
    for (const n of rtcNames)
        c.check(
            "rtc.domain",
            n,
            !(serverNameVhost && n === snHost) && !extra.includes(n),
            "this name already has its own vhost here (the server_name's well-known, or extraCertificateNames): give MatrixRTC another domain, or leave rtc.domain out (the homeserver's)",
        );
    // LiveKit's TURN name: nginx's stream front sends its TLS connections to the TURN server, so no web server may use it.
    const turnNames = rtc?.turn ? [rtc.turn.domain] : [];
    for (const n of turnNames)
        c.check(
            "rtc.turn.domain",
            n,
            !(serverNameVhost && n === snHost) && !extra.includes(n),
            "this name already has a web server here (the server_name's well-known, or extraCertificateNames): give LiveKit's TURN a name of its own",
        );
    c.done();
    const names = [domain, ...(serverNameVhost ? [snHost] : []), ...(element ? [element.domain] : []), ...extra, ...rtcNames, ...turnNames];
    return {
        acme,
        federationPort,
        adminAllowList: [...adminAllowList],
        homeserverDomain: domain,
        serverNameHost: snHost,
        serverNameVhost,
        clientMaxBodySize: homeserver.maxUploadSize,
        certificateNames: [...new Set(names)],
        listenAddresses: [...listenAddresses],
        extraNames: [...new Set(extra)].filter((n) => n !== domain),
        challengeNames: [...new Set(challengeNames)].filter((n) => !names.includes(n)),
        rateLimits,
    };
}

/** certbot's live directory of the certificate (its lineage is named after the homeserver domain). */
export function liveDir(s: Pick<ReverseProxySettings, "homeserverDomain">): string {
    return `/etc/letsencrypt/live/${s.homeserverDomain}`;
}

/** The TCP ports nginx listens on, on every address. */
export function proxyPorts(s: ReverseProxySettings): number[] {
    return [80, 443, ...(s.federationPort === 8448 ? [8448] : [])];
}

export function proxyPortClaims(s: ReverseProxySettings): PortClaim[] {
    const addresses = s.listenAddresses.length ? s.listenAddresses : ["*"];
    return proxyPorts(s).flatMap((port) =>
        addresses.map((address) => ({ port, protocol: "tcp" as const, address, owner: "nginx", ...(port === 8448 ? { setting: "federationPort" } : {}) })),
    );
}

/** Where Synapse's main process answers the proxy: its http listener, on loopback when it binds it. */
export function synapseListener(s: { httpBindAddresses: string[]; httpPort: number }): string {
    const a = s.httpBindAddresses.includes("127.0.0.1") ? "127.0.0.1" : s.httpBindAddresses[0];
    return `${a.includes(":") ? `[${a}]` : a}:${s.httpPort}`;
}

/** Open to everyone: HTTP for ACME challenges and the redirect, HTTPS, and federation. */
export function proxyFirewallRules(s: ReverseProxySettings): FirewallRule[] {
    return proxyPorts(s).map((port) => ({ port, protocol: "tcp", owner: "nginx" }));
}

/** `/.well-known/matrix/server`: where other servers reach federation. */
export function wellKnownServer(s: ReverseProxySettings): { "m.server": string } {
    return { "m.server": `${s.homeserverDomain}:${s.federationPort}` };
}

/** `/.well-known/matrix/client`: where clients reach the client API. */
export function wellKnownClient(publicBaseUrl: string, rtcServiceUrl?: string): Record<string, unknown> {
    return {
        "m.homeserver": { base_url: publicBaseUrl.replace(/\/+$/, "") },
        // MSC4143: where MatrixRTC clients (Element Call, Element X) get their LiveKit token.
        ...(rtcServiceUrl !== undefined ? { "org.matrix.msc4143.rtc_foci": [{ type: "livekit", livekit_service_url: rtcServiceUrl }] } : {}),
    };
}

/** What another part of a deployment needs of the proxy: the well-known vhost on the server_name's domain, or names on the certificate. */
export interface ProxyNeed {
    /** Who needs it, for the error when the user's options refuse it (e.g. `dns.delegation "well-known"`). */
    by: string;
    /** The server_name's domain points here and must serve the well-known documents. */
    serverNameWellKnown?: boolean;
    /** Names the certificate (and the homeserver's vhost) must cover. */
    names?: string[];
    /** Names port 80 must answer HTTP-01 challenges for (another service's certificate through this nginx's webroot). */
    challengeNames?: string[];
    /** The setting the user wrote that the names come from (`turn.domain`, `synapse.serverName`), named when one is not a DNS name. */
    setting: string;
}

/**
 * The proxy's options with what other parts need added: DNS delegation
 * (well-known or SRV), coturn's TLS name. A user's explicit
 * `serverNameWellKnown: false` against a need for it is an error.
 */
export function withProxyNeeds(component: string, o: ReverseProxyOptions, homeserver: { publicBaseUrl: string }, needs: ProxyNeed[]): ReverseProxyOptions {
    let out = o;
    const domain = homeserverDomain(homeserver.publicBaseUrl);
    for (const need of needs) {
        if (need.serverNameWellKnown && out.serverNameWellKnown === false)
            throw new ConfigError(
                component,
                "proxy.serverNameWellKnown",
                false,
                `${need.by} needs it: the server_name's domain points to this host and serves the well-known documents; remove it`,
            );
        const served = need.serverNameWellKnown ? [] : (need.names ?? []);
        for (const n of served)
            if (!isHostname(n))
                throw new ConfigError(component, need.setting, n, `expected a DNS name such as example.com: ${need.by} puts it on the proxy's certificate`);
        const names = served.filter((n) => n !== domain && !(out.extraCertificateNames ?? []).includes(n));
        out = {
            ...out,
            ...(need.serverNameWellKnown ? { serverNameWellKnown: true } : {}),
            ...(names.length ? { extraCertificateNames: [...(out.extraCertificateNames ?? []), ...names] } : {}),
            ...(need.challengeNames?.length ? { acmeChallengeNames: [...new Set([...(out.acmeChallengeNames ?? []), ...need.challengeNames])] } : {}),
        };
    }
    return out;
}
