import { ElementSite, PROXY_FILES, RateLimit, ReverseProxySettings, wellKnownClient, wellKnownServer } from "../../model/proxy";
import {
    LONG_POLL_TIMEOUT,
    MAIN_UPSTREAM,
    ProxyLocation,
    proxyLocations,
    ProxyUpstream,
    proxyUpstreams,
    RATE_LIMITED,
    RateLimitZone,
} from "../../model/proxy/routes";
import { RTC_PATHS, RtcSite } from "../../model/rtc";
import { WorkerUpstream } from "../../model/workers";
import { UNIT_HEADER as HEADER } from "../systemd";

/**
 * nginx's site for the homeserver: one file in conf.d (http context) with
 * the upstreams, the port-80 server (ACME challenges, redirect), the
 * homeserver on 443 (and 8448), the well-known documents and Element Web,
 * and default servers that refuse every name it does not serve.
 */

/** What the site is built from. */
export interface NginxSite {
    proxy: ReverseProxySettings;
    /** Synapse's public base URL (the client well-known's base_url). */
    publicBaseUrl: string;
    /** `address:port` of Synapse's main http listener. */
    main: string;
    /** Workers that serve requests (a WorkerPool's upstreams); empty without workers. */
    workers: readonly WorkerUpstream[];
    element?: ElementSite;
    /** MatrixRTC's authorization service and SFU, on the homeserver's domain or a server block of their own. Default: none. */
    rtc?: RtcSite;
    /** The certificate nginx serves (a symlink switched from the bootstrap certificate to the issued one). */
    tls: { certificate: string; key: string };
    /**
     * Only for nginx older than 1.19.4 (Ubuntu 22.04; see
     * `nginxRejectsHandshake`), which cannot refuse a TLS handshake: a
     * self-signed certificate naming no host that the default server
     * presents to a client asking for another name, before it closes the
     * connection. Default none: the handshake is refused (`ssl_reject_handshake`).
     */
    unknownNameCertificate?: { certificate: string; key: string };
    /**
     * More names port 80 answers ACME HTTP-01 challenges for (a certificate
     * of another service validated through this nginx's webroot). Default
     * none: the certificate's names only.
     */
    challengeNames?: string[];
}

/** A double-quoted nginx string (no variables are meant inside: `$` is only used in regexes, where nginx does not expand it). */
function q(text: string): string {
    if (/["\\\n]/.test(text)) throw new Error(`nginx string ${JSON.stringify(text)}: quotes, backslashes and newlines are not expected`);
    return `"${text}"`;
}

const indent = (lines: string[], by = "    ") => lines.map((l) => (l === "" ? l : by + l));

/** The certificate lines. */
function certificateLines(tls: { certificate: string; key: string }): string[] {
    return [`ssl_certificate ${tls.certificate};`, `ssl_certificate_key ${tls.key};`];
}

/**
 * TLS as Mozilla's "intermediate" profile has it: TLS 1.2 and 1.3,
 * forward-secret AEAD ciphers. The default server has them too: nginx
 * negotiates the protocol with the default server's settings, before the
 * name is known.
 */
function tlsPolicyLines(sessionCache = "pulumi_matrix_tls"): string[] {
    return [
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;",
        "ssl_prefer_server_ciphers off;",
        "ssl_session_timeout 1d;",
        `ssl_session_cache shared:${sessionCache}:10m;`,
        "ssl_session_tickets off;",
    ];
}

/** HSTS: browsers use only HTTPS for two years. */
const HSTS = 'add_header Strict-Transport-Security "max-age=63072000" always;';
const CORS = "add_header Access-Control-Allow-Origin $pm_cors always;";

/** The addresses nginx listens on: every one (IPv4 and IPv6), or the given ones, each ready for `:<port>`. */
function listenAddresses(site: NginxSite): string[] {
    return site.proxy.listenAddresses.length ? site.proxy.listenAddresses.map((a) => (a.includes(":") ? `[${a}]:` : `${a}:`)) : ["", "[::]:"];
}

/**
 * `listen` lines for each port. With LiveKit's TURN, 443 belongs to the
 * stream front (`renderNginxStreamConf`): the web servers take its TLS
 * connections on a socket, each with a PROXY header naming the client.
 */
function listen(site: NginxSite, ports: number[], extra = ""): string[] {
    return ports.flatMap((p) =>
        p === 443 && site.rtc?.turn
            ? [`listen unix:${PROXY_FILES.httpsSocket}${extra} proxy_protocol;`]
            : listenAddresses(site).map((a) => `listen ${a}${p}${extra};`),
    );
}

/** The certificate and TLS settings of a named server. */
function tlsLines(tls: NginxSite["tls"]): string[] {
    return [...certificateLines(tls), ...tlsPolicyLines()];
}

/** The well-known documents (JSON; their CORS header comes from the server's `$pm_cors`). */
function wellKnownLocations(site: NginxSite, server: boolean): string[] {
    const doc = (path: string, body: unknown) => [
        `location = ${path} {`,
        ...indent(["default_type application/json;", `return 200 '${JSON.stringify(body)}';`]),
        "}",
    ];
    return [
        ...(server ? doc("/.well-known/matrix/server", wellKnownServer(site.proxy)) : []),
        ...doc("/.well-known/matrix/client", wellKnownClient(site.publicBaseUrl, site.rtc?.serviceUrl)),
    ];
}

/**
 * MatrixRTC's two locations: the authorization service (`/livekit/jwt/`)
 * and the SFU's WebSocket (`/livekit/sfu/`), each on its loopback port with
 * the prefix taken off. A location with headers of its own inherits none of
 * the server's, so each sets them all.
 */
function rtcLocations(rtc: RtcSite): string[] {
    const forwarded = ["proxy_set_header Host $host;", "proxy_set_header X-Forwarded-For $remote_addr;", "proxy_set_header X-Forwarded-Proto $scheme;"];
    return [
        "# MatrixRTC: the authorization service (lk-jwt-service) and the LiveKit SFU's WebSocket.",
        ...location(`^~ ${RTC_PATHS.jwt}/`, [
            "proxy_http_version 1.1;",
            'proxy_set_header Connection "";',
            ...forwarded,
            `proxy_pass http://${rtc.jwtUpstream}/;`,
        ]),
        ...location(`^~ ${RTC_PATHS.sfu}/`, [
            "proxy_http_version 1.1;",
            "proxy_set_header Upgrade $http_upgrade;",
            'proxy_set_header Connection "upgrade";',
            ...forwarded,
            // A call's signalling connection stays open for the whole call.
            "proxy_read_timeout 1h;",
            "proxy_send_timeout 1h;",
            "proxy_buffering off;",
            `proxy_pass http://${rtc.sfuUpstream}/;`,
        ]),
    ];
}

function rtcServer(site: NginxSite, rtc: RtcSite): string[] {
    return tlsServer(site, "MatrixRTC on its own domain: the authorization service and the SFU only.", [443], rtc.domain, [
        HSTS,
        "gzip off;",
        ...rtcLocations(rtc),
        ...location("/", ["return 404;"]),
    ]);
}

/**
 * Maps for headers that depend on the path, set once per server (a location with an
 * `add_header` of its own would drop the server's): web clients fetch the
 * well-known documents cross-origin; Element's entry files are never cached,
 * so a new release reaches browsers at once. An empty value sends no header.
 */
function headerMaps(site: NginxSite): string[] {
    return [
        "map $uri $pm_cors {",
        ...indent(['default "";', '"~^/\\.well-known/matrix/" "*";']),
        "}",
        ...(site.element ? ["map $uri $pm_element_cache {", ...indent(['default "";', '"~^/(config.*\\.json|index\\.html|i18n/.*)?$" "no-cache";']), "}"] : []),
    ];
}

/** Only the admin allow-list gets through (nothing when it is empty). */
function adminAccess(site: NginxSite): string[] {
    return [...site.proxy.adminAllowList.map((cidr) => `allow ${cidr};`), "deny all;"];
}

function proxyTo(upstream: string): string {
    return `proxy_pass http://${upstream};`;
}

/** A route of the table: its upstream, or a map on the method when reads and writes go to different processes. */
function routeLocation(site: NginxSite, l: ProxyLocation): string[] {
    const target = l.byMethod.length ? `proxy_pass http://$pm_route_${l.id};` : proxyTo(l.upstream);
    const timeout = l.longPoll ? [`proxy_read_timeout ${LONG_POLL_TIMEOUT};`] : [];
    return [`location ~ ${q(l.pattern)} {`, ...indent([...(l.admin ? adminAccess(site) : []), ...timeout, target]), "}"];
}

const RATE_LIMIT_ZONES: readonly RateLimitZone[] = ["login", "registration"];

/** The zones that limit something (a zone set to `false` is left out). */
function rateLimits(site: NginxSite): [RateLimitZone, RateLimit][] {
    return RATE_LIMIT_ZONES.flatMap((z) => {
        const limit = site.proxy.rateLimits[z];
        return limit ? [[z, limit] as [RateLimitZone, RateLimit]] : [];
    });
}

/**
 * Per zone, a key that is the client's address for the limited requests and
 * empty for every other (nginx counts no request with an empty key), and
 * the zone itself. Keyed on method and normalized URI, so the limit holds
 * whichever location (and upstream) serves the request.
 */
function rateLimitZones(site: NginxSite): string[] {
    return rateLimits(site).flatMap(([zone, limit]) => [
        `map "$request_method $uri" $pm_limit_${zone} {`,
        ...indent([
            'default "";',
            ...RATE_LIMITED.filter((r) => r.zone === zone).map((r) => `${q(`~^${r.method} ${r.pattern.slice(1)}`)} $binary_remote_addr;`),
        ]),
        "}",
        `limit_req_zone $pm_limit_${zone} zone=pm_${zone}:10m rate=${limit.perMinute}r/m;`,
    ]);
}

/** Server-level limits (every location inherits them: none has its own) and their answer, as Synapse's own limit answers. */
function rateLimitLines(site: NginxSite): string[] {
    const limits = rateLimits(site);
    if (!limits.length) return [];
    return [
        ...limits.map(([zone, limit]) => `limit_req zone=pm_${zone} burst=${limit.burst} nodelay;`),
        "limit_req_status 429;",
        "limit_req_log_level warn;",
        "error_page 429 @pm_limited;",
        ...location("@pm_limited", [
            "default_type application/json;",
            `return 429 '${JSON.stringify({ errcode: "M_LIMIT_EXCEEDED", error: "Too many requests from this address; try again later" })}';`,
        ]),
    ];
}

function methodMaps(locations: ProxyLocation[]): string[] {
    return locations.flatMap((l) =>
        l.byMethod.length
            ? [`map $request_method $pm_route_${l.id} {`, ...indent([...l.byMethod.map((m) => `${m.method} ${m.upstream};`), `default ${l.upstream};`]), "}"]
            : [],
    );
}

/** Keys the sticky upstreams hash on. */
const STICKY_KEYS: Record<"source_ip" | "user" | "room", { key: string; map?: string[] }> = {
    source_ip: { key: "$remote_addr" },
    user: {
        key: "$pm_sync_user",
        // Synapse's access tokens start with syt_<base64 of the localpart>_: one user's devices stick together.
        map: [
            "map $http_authorization $pm_sync_user {",
            ...indent(["default $http_authorization;", '"~^Bearer syt_(?<pm_localpart>[^_]+)_" $pm_localpart;', '"" $arg_access_token;']),
            "}",
        ],
    },
    room: {
        key: "$pm_room",
        map: ["map $uri $pm_room {", ...indent(["default $uri;", '"~/rooms/(?<pm_room_id>[^/]+)" $pm_room_id;']), "}"],
    },
};

function upstreamBlock(name: string, servers: string[], balance?: string): string[] {
    return [`upstream ${name} {`, ...indent([...(balance ? [balance] : []), ...servers.map((s) => `server ${s};`), "keepalive 16;"]), "}"];
}

function upstreams(site: NginxSite, worker: ProxyUpstream[]): string[] {
    const blocks = [upstreamBlock(MAIN_UPSTREAM, [site.main])];
    for (const u of worker) {
        const sticky = u.sticky === "source_ip" || u.sticky === "user" || u.sticky === "room" ? STICKY_KEYS[u.sticky] : undefined;
        blocks.push(upstreamBlock(u.name, u.servers, sticky ? `hash ${sticky.key} consistent;` : undefined));
    }
    const maps = [...new Set(worker.map((u) => u.sticky))].flatMap((s) => (s === "user" || s === "room" ? STICKY_KEYS[s].map! : []));
    return [...blocks.flat(), ...maps];
}

/** Proxy settings Synapse needs: the URI passed on untouched (no URI part in proxy_pass), the client's address and scheme, the original Host. */
const PROXY_HEADERS = [
    "proxy_http_version 1.1;",
    'proxy_set_header Connection "";',
    "proxy_set_header Host $host:$server_port;",
    "proxy_set_header X-Forwarded-For $remote_addr;",
    "proxy_set_header X-Forwarded-Proto $scheme;",
];

/** A `location` block. */
function location(match: string, body: string[]): string[] {
    return [`location ${match} {`, ...indent(body), "}"];
}

/** A server block: a comment, its listen lines and name, then its body. */
function server(comment: string, listens: string[], name: string, body: string[]): string[] {
    return [`# ${comment}`, "server {", ...indent([...listens, `server_name ${name};`, ...body]), "}"];
}

/** An HTTPS server block for `name` with the certificate and TLS settings. */
function tlsServer(site: NginxSite, comment: string, ports: number[], name: string, body: string[]): string[] {
    return server(comment, listen(site, ports, " ssl"), name, [...tlsLines(site.tls), ...body]);
}

function homeserverServer(site: NginxSite, locations: ProxyLocation[]): string[] {
    const p = site.proxy;
    const ports = [443, ...(p.federationPort === 8448 ? [8448] : [])];
    const wellKnownHere = p.serverNameHost === p.homeserverDomain;
    const federation = p.federationPort === 8448 ? "8448 (and 443)" : "443";
    return tlsServer(site, `The homeserver: client API on 443, federation on ${federation}.`, ports, [p.homeserverDomain, ...p.extraNames].join(" "), [
        HSTS,
        CORS,
        // Matrix APIs carry secrets and small JSON: no compression (BREACH), as Synapse's docs advise.
        "gzip off;",
        `client_max_body_size ${p.clientMaxBodySize};`,
        ...PROXY_HEADERS,
        ...rateLimitLines(site),
        "",
        ...wellKnownLocations(site, wellKnownHere),
        ...(site.rtc && !site.rtc.ownDomain ? rtcLocations(site.rtc) : []),
        ...(locations.length ? ["# The route table's locations first (workers, long polls): nginx takes the first matching regex location."] : []),
        ...locations.flatMap((l) => [`# ${l.group}`, ...routeLocation(site, l)]),
        ...location("/_synapse/admin", [...adminAccess(site), proxyTo(MAIN_UPSTREAM)]),
        ...location("/_matrix", [proxyTo(MAIN_UPSTREAM)]),
        ...location("/_synapse/client", [proxyTo(MAIN_UPSTREAM)]),
        "# Nothing else (metrics, replication) is proxied.",
        ...location("/", ["return 404;"]),
    ]);
}

function serverNameServer(site: NginxSite): string[] {
    return tlsServer(site, "The server_name's domain: only the well-known documents that point to the homeserver.", [443], site.proxy.serverNameHost, [
        HSTS,
        CORS,
        ...wellKnownLocations(site, true),
        ...location("/", ["return 404;"]),
    ]);
}

/** Element's headers: it must not be framed by other sites, sniffed, leak its URLs as referrers, or keep a stale release cached. */
const ELEMENT_HEADERS = [
    HSTS,
    'add_header X-Frame-Options "SAMEORIGIN" always;',
    'add_header X-Content-Type-Options "nosniff" always;',
    "add_header Content-Security-Policy \"frame-ancestors 'self'\" always;",
    'add_header Referrer-Policy "no-referrer" always;',
    "add_header Cache-Control $pm_element_cache always;",
];

function elementServer(site: NginxSite, e: ElementSite): string[] {
    // Element asks for config.<domain>.json first, then config.json: both are the rendered file.
    const config = (path: string) => location(`= ${path}`, [`alias ${e.configPath};`]);
    return tlsServer(site, "Element Web on its own domain.", [443], e.domain, [
        ...ELEMENT_HEADERS,
        `root ${e.webRoot};`,
        "index index.html;",
        ...config("/config.json"),
        ...config(`/config.${e.domain}.json`),
        ...location("/", ["try_files $uri $uri/ =404;"]),
    ]);
}

/** Port 80 for our names: ACME HTTP-01 challenges, everything else redirected to HTTPS. */
function httpServer(site: NginxSite): string[] {
    const names = [...new Set([...site.proxy.certificateNames, ...(site.challengeNames ?? [])])];
    return server("Port 80: ACME challenges (certbot's webroot), everything else to HTTPS.", listen(site, [80]), names.join(" "), [
        ...location("^~ /.well-known/acme-challenge/", [`root ${site.proxy.acme.webroot};`, "default_type text/plain;"]),
        ...location("/", ["return 301 https://$host$request_uri;"]),
    ]);
}

/**
 * The default servers: a request for a name nginx does not serve (a
 * scanner's, an IP address, a name someone else points here) gets no
 * answer. Port 80 closes the connection (444); 443 (and 8448) refuse the
 * TLS handshake, so no certificate (and none of its names) is shown; an
 * nginx that cannot (see `unknownNameCertificate`) shows a certificate
 * naming no host, then closes.
 */
function defaultServers(site: NginxSite): string[] {
    const p = site.proxy;
    const tlsPorts = [443, ...(p.federationPort === 8448 ? [8448] : [])];
    const refuse = site.unknownNameCertificate ? [...certificateLines(site.unknownNameCertificate), "return 444;"] : ["ssl_reject_handshake on;"];
    return [
        ...server("Any other name on port 80: the connection is closed without an answer.", listen(site, [80], " default_server"), "_", ["return 444;"]),
        "",
        ...server(`Any other name (or none) on ${tlsPorts.join(" and ")}: no certificate, no answer.`, listen(site, tlsPorts, " ssl default_server"), "_", [
            ...tlsPolicyLines(),
            ...refuse,
        ]),
    ];
}

/** The whole site file. */
export function renderNginxConf(site: NginxSite): string {
    const present = new Set(site.workers.map((w) => w.role));
    const locations = proxyLocations((role) => present.has(role));
    const body = [
        "server_tokens off;",
        // Long host names (and several of them) need bigger buckets than the default 32/64 bytes.
        "server_names_hash_bucket_size 128;",
        ...(site.rtc?.turn
            ? [
                  "# TLS on 443 comes through the stream front (LiveKit's TURN shares the port): the client's address is in its PROXY header.",
                  "set_real_ip_from unix:;",
                  "real_ip_header proxy_protocol;",
              ]
            : []),
        "",
        ...upstreams(site, proxyUpstreams(locations, site.workers)),
        ...methodMaps(locations),
        ...headerMaps(site),
        ...rateLimitZones(site),
        "",
        ...defaultServers(site),
        "",
        ...httpServer(site),
        "",
        ...homeserverServer(site, locations),
        ...(site.proxy.serverNameVhost ? ["", ...serverNameServer(site)] : []),
        ...(site.element ? ["", ...elementServer(site, site.element)] : []),
        ...(site.rtc?.ownDomain ? ["", ...rtcServer(site, site.rtc)] : []),
    ];
    return `${HEADER}\n${body.join("\n")}\n`;
}

/**
 * nginx's stream front on 443, with LiveKit's TURN only: a TLS connection
 * is routed by the name its ClientHello asks for (SNI), before any
 * handshake. The TURN name's go to a TLS server here that ends TLS with the
 * proxy's certificate and hands the plain stream to LiveKit's TURN server
 * (`external_tls`); every other name's (and none) go on to the web servers,
 * which keep their certificates, default server and handshake refusal.
 * Each hand-over carries a PROXY header with the client's address.
 */
export function renderNginxStreamConf(site: NginxSite): string {
    const turn = site.rtc?.turn;
    if (!turn) throw new Error("renderNginxStreamConf: the site has no LiveKit TURN");
    const body = [
        "stream {",
        ...indent([
            "map $ssl_preread_server_name $pm_tls_backend {",
            ...indent([`${turn.domain} unix:${PROXY_FILES.turnSocket};`, `default unix:${PROXY_FILES.httpsSocket};`]),
            "}",
            "",
            "# 443: routed by SNI; nothing is decrypted here.",
            "server {",
            ...indent([...listenAddresses(site).map((a) => `listen ${a}443;`), "ssl_preread on;", "proxy_protocol on;", "proxy_pass $pm_tls_backend;"]),
            "}",
            "",
            `# TURN over TLS for ${turn.domain}: LiveKit's TURN server gets the plain stream on loopback.`,
            "server {",
            ...indent([
                `listen unix:${PROXY_FILES.turnSocket} ssl proxy_protocol;`,
                ...certificateLines(site.tls),
                ...tlsPolicyLines("pulumi_matrix_stream_tls"),
                `proxy_pass ${turn.upstream};`,
            ]),
            "}",
        ]),
        "}",
    ];
    return `${HEADER}\n${body.join("\n")}\n`;
}
