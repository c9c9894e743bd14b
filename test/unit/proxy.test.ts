import * as assert from "node:assert/strict";

import { MatrixStack } from "../../components/MatrixStack";
import { ConfigError, ConfigErrors } from "../../src/model/errors";
import { SUPPORTED_OS } from "../../src/model/host";
import { PROXY_FILES } from "../../src/model/proxy";
import { resolveReverseProxySettings, ReverseProxyOptions } from "../../src/model/proxy";
import { nginxRejectsHandshake } from "../../src/model/proxy";
import {
    LONG_POLL_TIMEOUT,
    MAIN_UPSTREAM,
    proxyLocations,
    proxyTarget,
    proxyUpstreams,
    RATE_LIMITED,
    rateLimitZone,
    upstreamName,
} from "../../src/model/proxy/routes";
import { servesRequests, WORKER_ROLES, WorkerRole } from "../../src/model/workers";
import { WorkerUpstream } from "../../src/model/workers";
import { RouteMethod, routeRequest, WORKER_ROUTES } from "../../src/model/workers/routes";
import { proxyServerScript, servedCertificate, unknownNameCertificate } from "../../src/provision/proxy";
import { acmeCredentialsScript, certificateScript } from "../../src/provision/proxy";
import { renderNginxConf } from "../../src/render/proxy";
import { NginxSite } from "../../src/render/proxy";
import { renderCertbotDropIn, renderDeployHook } from "../../src/render/proxy";
import { golden } from "../support/golden";
import { stackArgs } from "../support/unit/fixtures";
import { goldenElementSettings, goldenProxySettings, goldenWorkerUpstreams } from "../support/unit/fixtures";
import { runWithMocks } from "../support/unit/mocks";

const HOMESERVER = { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", maxUploadSize: "50M" };
const resolve = (o: Partial<ReverseProxyOptions> & Record<string, unknown> = {}, hs = HOMESERVER, element?: { domain: string }) =>
    resolveReverseProxySettings('ReverseProxy "p"', { acme: { email: "admin@example.com" }, ...o }, hs, element);

/** The error names the component, the setting, the value and what is valid. */
function rejects(f: () => unknown, message: RegExp): void {
    assert.throws(f, (e: Error) => {
        assert.ok(e instanceof ConfigError || e instanceof ConfigErrors, `${e.name}: ${e.message}`);
        assert.match(e.message, /^ReverseProxy "p": /);
        assert.match(e.message, message);
        return true;
    });
}

const METHODS: RouteMethod[] = ["GET", "HEAD", "POST", "PUT", "DELETE"];
const REQUEST_ROLES = WORKER_ROLES.filter(servesRequests);

describe("ReverseProxy: settings", () => {
    it("fills the defaults: Let's Encrypt, federation on 8448, no admin access, names from the homeserver", () => {
        const s = resolve();
        assert.equal(s.acme.directoryUrl, "https://acme-v02.api.letsencrypt.org/directory");
        assert.equal(s.acme.keyType, "ecdsa");
        assert.equal(s.federationPort, 8448);
        assert.deepEqual(s.adminAllowList, []);
        assert.deepEqual(s.certificateNames, ["matrix.example.com"]);
        assert.equal(s.serverNameVhost, false);
        assert.equal(s.clientMaxBodySize, "50M");
    });

    it("covers the server_name's domain and Element's in the certificate when they are served", () => {
        const s = resolve({ serverNameWellKnown: true }, HOMESERVER, { domain: "element.example.com" });
        assert.deepEqual(s.certificateNames, ["matrix.example.com", "example.com", "element.example.com"]);
        // A server_name that is the homeserver's domain is one vhost, one name.
        assert.deepEqual(resolve({ serverNameWellKnown: true }, { ...HOMESERVER, serverName: "matrix.example.com" }).certificateNames, ["matrix.example.com"]);
    });

    it("SRV delegation: extra names join the certificate and the homeserver's vhost", () => {
        const s = resolve({ extraCertificateNames: ["example.com"] });
        assert.deepEqual(s.certificateNames, ["matrix.example.com", "example.com"]);
        const conf = renderNginxConf({ proxy: s, publicBaseUrl: HOMESERVER.publicBaseUrl, main: "127.0.0.1:8008", workers: [], tls: servedCertificate() });
        assert.match(conf, /server_name matrix\.example\.com example\.com;/);
        rejects(() => resolve({ extraCertificateNames: ["not a name"] }), /extraCertificateNames is "not a name"; expected DNS names/);
        rejects(
            () => resolve({ extraCertificateNames: ["example.com"], serverNameWellKnown: true }),
            /extraCertificateNames is "example\.com"; this name already has its own vhost/,
        );
    });

    it("refuses each bad input with setting, value and what is valid", () => {
        rejects(() => resolveReverseProxySettings('ReverseProxy "p"', {}, HOMESERVER), /acme\.email is not set; expected the contact address .* \(required\)/);
        rejects(() => resolve({ acme: { email: "nobody" } }), /acme\.email is "nobody"/);
        rejects(
            () => resolve({ acme: { email: "a@example.com", directoryUrl: "http://acme.example.com/dir" } }),
            /acme\.directoryUrl is "http:.*expected the https:\/\/ URL/,
        );
        rejects(
            () => resolve({ acme: { email: "a@example.com", caBundle: "not a pem" } }),
            /acme\.caBundle is "not a pem"; expected one or more PEM certificates/,
        );
        rejects(() => resolve({ adminAllowList: ["10.0.0.0/33"] }), /adminAllowList is "10\.0\.0\.0\/33"; expected networks in CIDR notation/);
        rejects(() => resolve({ federationPort: 8443 as 8448 }), /federationPort is 8443; expected 8448 .* or 443/);
        rejects(() => resolve({ listenAddresses: ["0.0.0.0"] }), /listenAddresses is "0\.0\.0\.0"; expected specific IP addresses/);
        rejects(
            () => resolve({}, { ...HOMESERVER, publicBaseUrl: "http://matrix.example.com/" }),
            /synapse\.publicBaseUrl is "http:\/\/matrix\.example\.com\/"; the reverse proxy serves https/,
        );
        rejects(() => resolve({}, { ...HOMESERVER, publicBaseUrl: "https://matrix.example.com:8443/" }), /synapse\.publicBaseUrl .*on port 443/);
        rejects(() => resolve({}, HOMESERVER, { domain: "matrix.example.com" }), /element\.domain is "matrix\.example\.com"; Element must have its own domain/);
        rejects(
            () => resolve({ serverNameWellKnown: true }, HOMESERVER, { domain: "example.com" }),
            /element\.domain is "example\.com"; the server_name's domain/,
        );
    });

    it("reports the ACME problems together with the others", () => {
        assert.throws(
            () =>
                resolveReverseProxySettings('ReverseProxy "p"', { acme: { email: "nobody" }, federationPort: 8443 as 8448, adminAllowList: ["x"] }, HOMESERVER),
            (e: Error) => {
                assert.ok(e instanceof ConfigErrors, `${e.name}: ${e.message}`);
                assert.deepEqual(
                    e.errors.map((x) => x.setting),
                    ["acme.email", "federationPort", "adminAllowList"],
                );
                return true;
            },
        );
    });

    it("MatrixStack refuses Element without the proxy, and a missing ACME email, before anything is registered", async () => {
        const { mocks } = await runWithMocks(() => {
            assert.throws(
                () =>
                    new MatrixStack("x", {
                        ...stackArgs(),
                        proxy: false,
                        element: { domain: "element.example.com", version: "1.11.100", sha256: "a".repeat(64) },
                    }),
                /MatrixStack "x": element is set together with proxy: false; Element is served by the stack's nginx/,
            );
            assert.throws(() => new MatrixStack("y", { ...stackArgs(), proxy: { acme: {} as never } }), /ReverseProxy "y-proxy": acme\.email is not set/);
        });
        assert.deepEqual(
            mocks.resources.filter((r) => r.type !== "matrix:index:MatrixStack"),
            [],
        );
    });
});

describe("ReverseProxy: routes from the route table", () => {
    /** Role sets to check: none, the default pool, each role alone, and every role. */
    const sets: WorkerRole[][] = [[], ["federation_reader"], ...REQUEST_ROLES.map((r) => [r]), [...REQUEST_ROLES]];

    it("sends every example path and method where the route table says, whichever roles have workers", () => {
        for (const roles of sets) {
            const present = (r: WorkerRole) => roles.includes(r);
            const locations = proxyLocations(present);
            for (const route of WORKER_ROUTES)
                for (const path of route.examples)
                    for (const method of METHODS) {
                        const expected = routeRequest(path, method, present);
                        const want = expected.role === "main" ? MAIN_UPSTREAM : upstreamName(expected.role, expected.route!.sticky);
                        assert.equal(proxyTarget(locations, path, method), want, `${method} ${path} with [${roles.join(", ")}]`);
                    }
        }
    });

    it("renders only the long-poll locations without workers (to main), and one upstream per role and stickiness that is used", () => {
        const alone = proxyLocations(() => false);
        assert.deepEqual(
            alone.map((l) => [l.pattern, l.upstream, l.longPoll]),
            WORKER_ROUTES.filter((r) => r.longPoll).map((r) => [r.pattern, MAIN_UPSTREAM, true]),
        );
        const locations = proxyLocations((r) => r === "federation_reader" || r === "client_reader");
        const upstreams = proxyUpstreams(locations, [
            { name: "federation_reader1", role: "federation_reader", url: "http://127.0.0.1:8100" },
            { name: "federation_reader2", role: "federation_reader", url: "http://127.0.0.1:8101" },
            { name: "client_reader1", role: "client_reader", url: "http://10.0.0.5:8120" },
            { name: "client_reader2", role: "client_reader", url: "http://10.0.0.5:8121" },
        ]);
        assert.deepEqual(
            upstreams.map((u) => `${u.name} ${u.servers.join(",")}`),
            [
                "pm_federation_reader 127.0.0.1:8100,127.0.0.1:8101",
                "pm_federation_reader_by_ip 127.0.0.1:8100,127.0.0.1:8101",
                "pm_client_reader 10.0.0.5:8120,10.0.0.5:8121",
                "pm_client_reader_by_room 10.0.0.5:8120,10.0.0.5:8121",
                // SSO must finish where it started: one process.
                "pm_client_reader_single 10.0.0.5:8120",
            ],
        );
    });

    it("passes the URI on untouched, refuses the admin API but to the allow-list, and proxies neither metrics nor replication", () => {
        const site = (adminAllowList: string[]) =>
            renderNginxConf({
                proxy: resolve({ adminAllowList }),
                publicBaseUrl: HOMESERVER.publicBaseUrl,
                main: "127.0.0.1:8008",
                workers: REQUEST_ROLES.map((role, i) => ({ name: `${role}1`, role, url: `http://127.0.0.1:${8100 + 20 * i}` })),
                tls: servedCertificate(),
            });
        const conf = site(["198.51.100.0/24"]);
        const passes = conf.split("\n").filter((l) => l.includes("proxy_pass"));
        assert.ok(passes.length > 50);
        // No URI part after the upstream: nginx then passes the request URI as the client sent it (%2F stays %2F).
        for (const l of passes) assert.match(l.trim(), /^proxy_pass http:\/\/\$?[a-z0-9_]+;$/);
        // Every location of an admin path admits the allow-list only.
        const blocks = conf.split(/\n(?= {4}location )/);
        const admin = blocks.filter((b) => /location (~ "\^)?\/_synapse\/admin/.test(b));
        assert.ok(admin.length >= 8, `${admin.length} admin locations`);
        for (const b of admin) assert.match(b, /allow 198\.51\.100\.0\/24;\n\s+deny all;/);
        assert.doesNotMatch(site([]), /allow /);
        // Only these prefixes are proxied; the rest (metrics, replication, /) is a 404.
        const prefixes = [...conf.matchAll(/location (\/[^ ]*) \{/g)].map((m) => m[1]);
        assert.deepEqual(prefixes, ["/" /* port 80: the redirect */, "/_synapse/admin", "/_matrix", "/_synapse/client", "/"]);
        for (const regex of [...conf.matchAll(/location ~ "([^"]+)"/g)].map((m) => new RegExp(m[1])))
            for (const p of ["/_synapse/metrics", "/_synapse/replication/get_repl_stream_updates/events/x"]) assert.doesNotMatch(p, regex);
    });

    it("keeps a location's method map named by its route, so adding a role does not renumber the others", () => {
        const a = proxyLocations((r) => r === "client_reader");
        const b = proxyLocations((r) => r === "client_reader" || r === "typing");
        const ids = (ls: typeof a) => new Map(ls.map((l) => [l.pattern, l.id]));
        for (const [pattern, id] of ids(a)) assert.equal(ids(b).get(pattern), id, pattern);
    });
});

/** The site for these settings (no workers unless given). */
function conf(o: Partial<ReverseProxyOptions> = {}, extra: Partial<NginxSite> = {}, workers: WorkerUpstream[] = []): string {
    return renderNginxConf({ proxy: resolve(o), publicBaseUrl: HOMESERVER.publicBaseUrl, main: "127.0.0.1:8008", workers, tls: servedCertificate(), ...extra });
}

/** The server blocks of a site, each with its leading comment. */
function servers(text: string): string[] {
    return text.split(/\n(?=# )/).filter((b) => /^# .*\nserver \{/.test(b));
}

const ALL_ROLES = (): WorkerUpstream[] => REQUEST_ROLES.map((role, i) => ({ name: `${role}1`, role, url: `http://127.0.0.1:${8100 + i}` }));

describe("ReverseProxy: names nginx does not serve", () => {
    it("port 80: our names get the ACME challenge and the redirect; any other Host (or an IP address) is closed unanswered (444)", () => {
        const text = conf({ serverNameWellKnown: true }, { challengeNames: ["turn.example.com"] });
        const http = servers(text).filter((b) => /listen \S*80( |;)/.test(b));
        assert.equal(http.length, 2);
        const [fallback, named] = http;
        assert.match(fallback, /listen 80 default_server;\n\s+listen \[::\]:80 default_server;\n\s+server_name _;\n\s+return 444;\n\}/);
        assert.doesNotMatch(fallback, /acme-challenge|return 301/);
        assert.match(named, /listen 80;\n\s+listen \[::\]:80;\n\s+server_name matrix\.example\.com example\.com turn\.example\.com;/);
        assert.match(named, /location \^~ \/\.well-known\/acme-challenge\//);
        assert.match(named, /return 301 https:\/\/\$host\$request_uri;/);
        // Exactly one default server per port and address.
        assert.equal(text.match(/default_server/g)!.length, 2 + 4);
    });

    it("443 and 8448: the default server refuses the TLS handshake (no certificate shown) with the named servers' TLS settings", () => {
        const fallback = servers(conf()).find((b) => /ssl default_server/.test(b))!;
        assert.deepEqual(fallback.match(/listen [^;]+;/g), [
            "listen 443 ssl default_server;",
            "listen [::]:443 ssl default_server;",
            "listen 8448 ssl default_server;",
            "listen [::]:8448 ssl default_server;",
        ]);
        assert.match(fallback, /ssl_reject_handshake on;/);
        assert.doesNotMatch(fallback, /ssl_certificate/);
        // nginx negotiates the protocol with the default server's settings.
        assert.match(fallback, /ssl_protocols TLSv1\.2 TLSv1\.3;/);
        assert.match(fallback, /ssl_ciphers ECDHE-/);
        // Federation on 443: no 8448 anywhere; specific addresses: the default server listens on them too.
        const on443 = servers(conf({ federationPort: 443, listenAddresses: ["203.0.113.10"] })).find((b) => /ssl default_server/.test(b))!;
        assert.deepEqual(on443.match(/listen [^;]+;/g), ["listen 203.0.113.10:443 ssl default_server;"]);
    });

    it("nginx 1.18 (Ubuntu 22.04) shows a certificate naming no host and closes; every other supported OS refuses the handshake", () => {
        const fallback = servers(conf({}, { unknownNameCertificate: unknownNameCertificate() })).find((b) => /ssl default_server/.test(b))!;
        assert.ok(
            fallback.includes(`ssl_certificate ${PROXY_FILES.unknownName}/fullchain.pem;\n    ssl_certificate_key ${PROXY_FILES.unknownName}/privkey.pem;`),
            fallback,
        );
        assert.match(fallback, /return 444;/);
        assert.doesNotMatch(fallback, /ssl_reject_handshake/);
        assert.deepEqual(
            SUPPORTED_OS.map((os) => [`${os.id} ${os.versionId}`, nginxRejectsHandshake(os)]),
            [
                ["debian 12", true],
                ["debian 13", true],
                ["ubuntu 22.04", false],
                ["ubuntu 24.04", true],
            ],
        );
        const script = (extra: Partial<NginxSite>) =>
            proxyServerScript(
                { proxy: resolve(), publicBaseUrl: HOMESERVER.publicBaseUrl, main: "127.0.0.1:8008", workers: [], tls: servedCertificate(), ...extra },
                'ReverseProxy "p"',
            );
        assert.match(
            script({ unknownNameCertificate: unknownNameCertificate() }),
            /-subj \/CN=unknown\.invalid -keyout \/etc\/nginx\/pulumi-matrix\/unknown-name\/privkey\.pem/,
        );
        assert.doesNotMatch(script({}), /unknown-name/);
    });
});

describe("ReverseProxy: read timeouts", () => {
    it("only the long-polling routes (/sync and its kin) get the long read timeout, with or without workers; everything else keeps nginx's 60 s", () => {
        for (const workers of [[], goldenWorkerUpstreams(), ALL_ROLES()]) {
            const text = conf({}, {}, workers);
            const blocks = text.split(/\n(?= {4}location )/);
            const long = blocks.filter((b) => /proxy_read_timeout/.test(b));
            assert.deepEqual(
                long.map((b) => /location ~ "([^"]+)"/.exec(b)![1]),
                WORKER_ROUTES.filter((r) => r.longPoll).map((r) => r.pattern),
            );
            for (const b of long) assert.ok(b.includes(`proxy_read_timeout ${LONG_POLL_TIMEOUT};`), b);
            // Nothing at server level (it would be every location's).
            assert.equal(text.match(/proxy_read_timeout|proxy_send_timeout/g)!.length, long.length);
        }
        for (const path of ["/_matrix/client/v3/sync", "/_matrix/client/r0/sync", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"])
            assert.ok(routeRequest(path, "GET", () => false).route?.longPoll, path);
        for (const path of ["/_matrix/client/v3/rooms/!r:example.com/messages", "/_matrix/federation/v1/send/1", "/_matrix/client/v3/login"])
            assert.equal(routeRequest(path, "GET", () => true).route?.longPoll, undefined, path);
    });
});

describe("ReverseProxy: rate limits on log-in and registration", () => {
    /** A zone's map as nginx evaluates it on "$request_method $uri": the key, or "" (not counted). */
    function limitKey(text: string, zone: string, method: string, path: string): string {
        const block = new RegExp(`map "\\$request_method \\$uri" \\$pm_limit_${zone} \\{\\n([^}]*)\\}`).exec(text);
        if (!block) return "";
        for (const m of block[1].matchAll(/"~([^"]+)" (\S+);/g)) if (new RegExp(m[1]).test(`${method} ${path}`)) return m[2];
        return "";
    }

    it("counts each limited request per client address in its zone, whoever serves it, and nothing else", () => {
        for (const workers of [[], ALL_ROLES()]) {
            const text = conf({}, {}, workers);
            for (const r of RATE_LIMITED)
                for (const path of r.examples) {
                    assert.equal(rateLimitZone(r.method, path), r.zone, path);
                    assert.equal(limitKey(text, r.zone, r.method, path), "$binary_remote_addr", `${r.method} ${path}`);
                    const other = r.zone === "login" ? "registration" : "login";
                    assert.equal(limitKey(text, other, r.method, path), "", `${r.method} ${path} in ${other}`);
                }
            // The flows every client reads, a sync, and near misses are not counted.
            for (const [method, path] of [
                ["GET", "/_matrix/client/v3/login"],
                ["GET", "/_matrix/client/v3/sync"],
                ["POST", "/_matrix/client/v3/login/sso/redirect"],
                ["POST", "/_matrix/client/v3/register/available"],
                ["GET", "/_matrix/client/v3/register/available"],
            ])
                for (const zone of ["login", "registration"]) assert.equal(limitKey(text, zone, method, path), "", `${method} ${path}`);
            // No location of its own: the regex locations (and so the upstreams) are the route table's.
            const regex = [...text.matchAll(/location ~ "([^"]+)"/g)].map((m) => m[1]);
            const present = new Set(workers.map((w) => w.role));
            assert.deepEqual(
                regex,
                proxyLocations((role) => present.has(role)).map((l) => l.pattern),
            );
        }
    });

    it("renders the zones with the defaults (30/min burst 10, 10/min burst 5), answers 429 M_LIMIT_EXCEEDED, and `false` removes a zone", () => {
        const text = conf();
        assert.match(text, /limit_req_zone \$pm_limit_login zone=pm_login:10m rate=30r\/m;/);
        assert.match(text, /limit_req_zone \$pm_limit_registration zone=pm_registration:10m rate=10r\/m;/);
        const home = servers(text).find((b) => /The homeserver/.test(b))!;
        assert.match(home, /limit_req zone=pm_login burst=10 nodelay;\n\s+limit_req zone=pm_registration burst=5 nodelay;\n\s+limit_req_status 429;/);
        assert.match(home, /error_page 429 @pm_limited;/);
        assert.match(home, /location @pm_limited \{\n\s+default_type application\/json;\n\s+return 429 '\{"errcode":"M_LIMIT_EXCEEDED",/);
        // limit_req is inherited only by locations without their own: none has one.
        assert.equal(home.match(/limit_req zone=/g)!.length, 2);
        // Element's and the well-known vhost are not limited.
        const others = servers(conf({ serverNameWellKnown: true }, { element: { domain: "element.example.com", webRoot: "/w", configPath: "/c.json" } }));
        for (const b of others) if (!/The homeserver/.test(b)) assert.doesNotMatch(b, /limit_req/);

        const custom = conf({ loginRateLimit: { perMinute: 5 }, registrationRateLimit: false });
        assert.match(custom, /zone=pm_login:10m rate=5r\/m;/);
        assert.match(custom, /limit_req zone=pm_login burst=10 nodelay;/);
        assert.doesNotMatch(custom, /pm_registration|pm_limit_registration/);
        assert.doesNotMatch(conf({ loginRateLimit: false, registrationRateLimit: false }), /limit_req|pm_limited/);
        assert.deepEqual(resolve().rateLimits, { login: { perMinute: 30, burst: 10 }, registration: { perMinute: 10, burst: 5 } });
    });

    it("refuses a bad limit with the setting, the value and what is valid", () => {
        rejects(() => resolve({ loginRateLimit: { perMinute: 0 } }), /loginRateLimit\.perMinute is 0; expected a whole number of requests a minute, 1 or more/);
        rejects(() => resolve({ registrationRateLimit: { burst: -1 } }), /registrationRateLimit\.burst is -1; expected a whole number of requests, 0 or more/);
        rejects(() => resolve({ loginRateLimit: { perMinute: 1.5 } }), /loginRateLimit\.perMinute is 1\.5/);
        rejects(() => resolve({ loginRateLimit: "10r/m" as never }), /loginRateLimit is "10r\/m"; expected \{ perMinute, burst \} or false/);
    });
});

describe("ReverseProxy under Pulumi mocks", () => {
    it("MatrixStack runs nginx's script after the host's bootstrap, then the certificate's; neither carries a secret", async () => {
        const { mocks } = await runWithMocks(() => new MatrixStack("prod", stackArgs()));
        const nginx = mocks.byName("prod-proxy-nginx");
        const certificate = mocks.byName("prod-proxy-certificate");
        assert.ok(certificate.seq > nginx.seq, "the certificate step waits for nginx (it answers the challenge)");
        assert.ok(nginx.seq > mocks.byName("prod-host-bootstrap").seq);
        for (const r of [nginx, certificate])
            assert.deepEqual(
                r.secretInputs.filter((k) => k !== "connection"),
                [],
                r.name,
            );
        assert.match(String(nginx.inputs.stdin), /upstream pm_federation_reader_by_ip \{/, "the default pool's reader gets inbound federation");
        assert.match(String(certificate.inputs.stdin), /certbot certonly .* --cert-name matrix\.example\.com -d matrix\.example\.com /);
    });

    it("`proxy: false` installs no proxy", async () => {
        const { mocks } = await runWithMocks(() => new MatrixStack("prod", { ...stackArgs(), proxy: false }));
        assert.deepEqual(
            mocks.resources.filter((r) => r.name.includes("proxy")),
            [],
        );
    });
});

describe("ReverseProxy: nginx's health check", () => {
    it("asks nginx on the first address it listens on (loopback by default)", () => {
        const script = (listenAddresses?: string[]) =>
            proxyServerScript(
                {
                    proxy: resolve(listenAddresses ? { listenAddresses } : {}),
                    publicBaseUrl: HOMESERVER.publicBaseUrl,
                    main: "127.0.0.1:8008",
                    workers: [],
                    tls: servedCertificate(),
                },
                'ReverseProxy "p"',
            );
        // With the homeserver's name: nginx's default server closes the connection for any other Host (an IP address too).
        assert.match(script(), /curl -s -o \/dev\/null -m 2 -H 'Host: matrix\.example\.com' http:\/\/127\.0\.0\.1\//);
        assert.match(script(["203.0.113.10"]), /curl -s -o \/dev\/null -m 2 -H 'Host: matrix\.example\.com' http:\/\/203\.0\.113\.10\//);
        assert.match(script(["2001:db8::10"]), /curl -s -o \/dev\/null -m 2 -H 'Host: matrix\.example\.com' 'http:\/\/\[2001:db8::10\]\/'/);
    });
});

describe("proxy: golden files (update with `npm run golden:update`, review the diff)", () => {
    const proxy = goldenProxySettings;
    const site = (workers: WorkerUpstream[], extra: Partial<NginxSite> = {}): NginxSite => ({
        proxy: proxy(),
        publicBaseUrl: "https://matrix.example.com/",
        main: "127.0.0.1:8008",
        workers,
        element: {
            domain: goldenElementSettings().domain,
            webRoot: "/var/www/pulumi-matrix-element/current",
            configPath: "/var/www/pulumi-matrix-element/config.json",
        },
        tls: servedCertificate(),
        ...extra,
    });
    // A homeserver whose server_name is its own domain, federation on 443, no Element, loopback only.
    const plain = () =>
        resolveReverseProxySettings(
            'ReverseProxy "golden"',
            { acme: { email: "admin@example.com" }, federationPort: 443, listenAddresses: ["203.0.113.10", "2001:db8::10"] },
            { serverName: "matrix.example.com", publicBaseUrl: "https://matrix.example.com/", maxUploadSize: "100M" },
        );
    const dns01 = () =>
        resolveReverseProxySettings(
            'ReverseProxy "golden"',
            { acme: { email: "admin@example.com", challenge: "dns-01-cloudflare", propagationSeconds: 60 }, extraCertificateNames: ["internal.example.com"] },
            { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", maxUploadSize: "50M" },
        );
    const manyRoles: WorkerUpstream[] = [
        ...["federation_reader", "client_reader", "synchrotron", "event_creator", "media_repository", "typing", "to_device", "account_data"].flatMap(
            (role, i) =>
                [1, 2].slice(0, ["typing", "to_device", "account_data"].includes(role) ? 1 : 2).map((n) => ({
                    name: `${role}${n}`,
                    role: role as WorkerUpstream["role"],
                    url: `http://127.0.0.1:${8100 + 20 * i + n - 1}`,
                })),
        ),
    ];
    golden("proxy", "nginx/no-workers.conf", () => renderNginxConf({ ...site([]), proxy: plain(), element: undefined }));
    golden("proxy", "nginx/default-workers.conf", () => renderNginxConf(site(goldenWorkerUpstreams())));
    golden("proxy", "nginx/many-roles.conf", () => renderNginxConf(site(manyRoles)));
    golden("proxy", "certbot/deploy-hook.sh", () => renderDeployHook(PROXY_FILES.hooksDir));
    golden("proxy", "certbot/certbot.service.d/pulumi-matrix.conf", () => renderCertbotDropIn(PROXY_FILES.caBundle));
    golden("proxy", "scripts/proxy-nginx.sh", () => proxyServerScript(site(goldenWorkerUpstreams()), 'ReverseProxy "golden"'));
    golden("proxy", "scripts/proxy-certificate.sh", () => certificateScript(proxy()));
    golden("proxy", "scripts/proxy-certificate-letsencrypt.sh", () => certificateScript(plain()));
    // DNS-01 through Cloudflare: the certificate step, and the token's own secret step (a placeholder token).
    golden("proxy", "scripts/proxy-certificate-dns01.sh", () => certificateScript(dns01()));
    golden("proxy", "scripts/proxy-acme-credentials.sh", () => acmeCredentialsScript("golden-placeholder-not-a-real-token-0000"));
});
