import * as assert from "node:assert/strict";

import { MatrixStack } from "../../components/MatrixStack";
import { ConfigError, ConfigErrors } from "../../src/model/errors";
import { PROXY_FILES } from "../../src/model/proxy";
import { resolveReverseProxySettings, ReverseProxyOptions } from "../../src/model/proxy";
import { MAIN_UPSTREAM, proxyLocations, proxyTarget, proxyUpstreams, upstreamName } from "../../src/model/proxy/routes";
import { servesRequests, WORKER_ROLES, WorkerRole } from "../../src/model/workers";
import { WorkerUpstream } from "../../src/model/workers";
import { RouteMethod, routeRequest, WORKER_ROUTES } from "../../src/model/workers/routes";
import { proxyServerScript, servedCertificate } from "../../src/provision/proxy";
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

    it("renders no worker location without workers, and one upstream per role and stickiness that is used", () => {
        assert.deepEqual(
            proxyLocations(() => false),
            [],
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
        assert.match(script(), /curl -s -o \/dev\/null -m 2 http:\/\/127\.0\.0\.1\//);
        assert.match(script(["203.0.113.10"]), /curl -s -o \/dev\/null -m 2 http:\/\/203\.0\.113\.10\//);
        assert.match(script(["2001:db8::10"]), /curl -s -o \/dev\/null -m 2 'http:\/\/\[2001:db8::10\]\/'/);
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
