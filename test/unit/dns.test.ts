import * as assert from "node:assert/strict";

import * as pulumi from "@pulumi/pulumi";

import { CloudflareDns, CloudflareDnsArgs } from "../../components/CloudflareDns";
import { MatrixStack } from "../../components/MatrixStack";
import {
    AUTO_TTL,
    CaaRecord,
    certificateNamesFor,
    DnsOptions,
    DnsRecord,
    dnsRecords,
    resolveDnsSettings,
    resolveZoneFileSettings,
    serverNameWellKnownFor,
    SrvRecord,
    wellKnownServerFor,
    wellKnownWorker,
} from "../../src/model/dns";
import { ConfigError, ConfigErrors } from "../../src/model/errors";
import { resolveReverseProxySettings, wellKnownClient, wellKnownServer } from "../../src/model/proxy";
import { planStack } from "../../src/model/stack";
import { dnsZoneFile, renderWellKnownWorker, renderZoneFile } from "../../src/render/dns";
import { golden } from "../support/golden";
import { stackArgs } from "../support/unit/fixtures";
import { RecordedResource, RecordingMocks, runWithMocks, valueOf } from "../support/unit/mocks";

const C = 'CloudflareDns "dns"';
const ACCOUNT = "0123456789abcdef0123456789abcdef";
const ZONE_ID = "023e105f4ecef8ad9ca31a8372d0c353";

/** A homeserver at matrix.example.com for users @x:example.com, IPv4 and IPv6. */
function options(o: Partial<DnsOptions> = {}): DnsOptions {
    return {
        zone: { name: "example.com" },
        serverName: "example.com",
        publicBaseUrl: "https://matrix.example.com/",
        ipv4: "203.0.113.10",
        ipv6: "2001:db8::10",
        stack: "prod",
        ...o,
    };
}
const settings = (o: Partial<DnsOptions> = {}) => resolveDnsSettings(C, options(o));
/** The records but CAA (whose own tests are below: "CAA"). */
const records = (o: Partial<DnsOptions> = {}) => withoutCaa(dnsRecords(settings(o)));
const withoutCaa = <T extends { type: string }>(rs: T[]): T[] => rs.filter((r) => r.type !== "CAA");
/** `type name content` per record, the way a reader compares record sets. */
const summary = (rs: DnsRecord[]) => withoutCaa(rs).map((r) => `${r.type} ${r.name} ${r.content}`);
const srvs = (rs: DnsRecord[]) => rs.filter((r): r is SrvRecord => r.type === "SRV");

/** Runs `f` and returns the ConfigError it throws (the single one, or the one for `setting` among several). */
function configError(f: () => unknown, setting?: string): ConfigError {
    try {
        f();
    } catch (e) {
        const all = e instanceof ConfigErrors ? e.errors : e instanceof ConfigError ? [e] : [];
        const found = setting === undefined ? all[0] : all.find((x) => x.setting === setting);
        if (found) return found;
        throw new Error(`expected a ConfigError${setting ? ` for ${setting}` : ""}, got ${String(e)}`);
    }
    throw new Error("expected a ConfigError, nothing was thrown");
}

/** Every record that carries federation or TURN (anything but Element's own name). */
function matrixOrTurn(rs: DnsRecord[], elementDomain?: string): DnsRecord[] {
    return rs.filter((r) => r.type === "SRV" || r.name !== elementDomain);
}

describe("DNS record set (src/model/dns.ts)", () => {
    describe('delegation "none"', () => {
        it("is the default when the server_name is the homeserver host: A and AAAA for it, nothing else", () => {
            const s = settings({ serverName: "matrix.example.com" });
            assert.equal(s.delegation, "none");
            assert.deepEqual(summary(dnsRecords(s)), ["A matrix.example.com 203.0.113.10", "AAAA matrix.example.com 2001:db8::10"]);
            assert.deepEqual(certificateNamesFor(s), []);
            assert.equal(serverNameWellKnownFor(s), false);
        });

        it("accepts a server_name with the homeserver's host and an explicit port", () => {
            assert.equal(settings({ serverName: "matrix.example.com:8448", delegation: "none" }).delegation, "none");
        });

        it("writes IPv6 addresses in their canonical form (Cloudflare's: no change on every update)", () => {
            assert.deepEqual(summary(records({ serverName: "matrix.example.com", ipv6: "2001:0DB8:0000:0000:0000:0000:0000:0010" })), [
                "A matrix.example.com 203.0.113.10",
                "AAAA matrix.example.com 2001:db8::10",
            ]);
        });

        it("leaves AAAA out without an IPv6 address", () => {
            assert.deepEqual(summary(records({ serverName: "matrix.example.com", ipv6: undefined })), ["A matrix.example.com 203.0.113.10"]);
        });
    });

    describe('delegation "well-known"', () => {
        it("via nginx (the default): the server_name's domain points here too, and the certificate must cover it", () => {
            const s = settings({ delegation: "well-known" });
            assert.equal(s.wellKnownVia, "nginx");
            assert.deepEqual(summary(dnsRecords(s)), [
                "A matrix.example.com 203.0.113.10",
                "AAAA matrix.example.com 2001:db8::10",
                "A example.com 203.0.113.10",
                "AAAA example.com 2001:db8::10",
            ]);
            assert.equal(serverNameWellKnownFor(s), true);
            assert.deepEqual(certificateNamesFor(s), ["example.com"]);
            assert.equal(wellKnownWorker(s), undefined);
        });

        it("via a Worker: no record on the server_name's domain, a route there, the ReverseProxy's documents", () => {
            const s = settings({ delegation: "well-known", wellKnownVia: "worker", accountId: ACCOUNT, federationPort: 443 });
            assert.deepEqual(summary(dnsRecords(s)), ["A matrix.example.com 203.0.113.10", "AAAA matrix.example.com 2001:db8::10"]);
            assert.equal(serverNameWellKnownFor(s), false);
            assert.deepEqual(certificateNamesFor(s), []);
            const w = wellKnownWorker(s)!;
            assert.equal(w.accountId, ACCOUNT);
            assert.equal(w.routePattern, "example.com/.well-known/matrix/*");
            assert.equal(w.scriptName, "matrix-well-known-example-com");
            // The same documents nginx serves for the same homeserver.
            const proxy = resolveReverseProxySettings(
                "p",
                { acme: { email: "admin@example.com" }, federationPort: 443 },
                { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", maxUploadSize: "50M" },
            );
            assert.deepEqual(w.documents, {
                "/.well-known/matrix/server": wellKnownServer(proxy),
                "/.well-known/matrix/client": wellKnownClient("https://matrix.example.com/"),
            });
            assert.deepEqual(wellKnownServerFor(s), { "m.server": "matrix.example.com:443" });
        });

        it("the Worker answers both documents as JSON open to every origin, and passes other paths to the site", async () => {
            const w = wellKnownWorker(settings({ delegation: "well-known", wellKnownVia: "worker", accountId: ACCOUNT }))!;
            const source = renderWellKnownWorker(w);
            const worker = (await import(`data:text/javascript;base64,${Buffer.from(source).toString("base64")}`)) as {
                default: { fetch(r: Request): Promise<Response> };
            };
            const get = (path: string, method = "GET") => worker.default.fetch(new Request(`https://example.com${path}`, { method }));
            for (const [path, doc] of Object.entries(w.documents)) {
                const res = await get(path);
                assert.equal(res.status, 200, path);
                assert.equal(res.headers.get("content-type"), "application/json");
                assert.equal(res.headers.get("access-control-allow-origin"), "*");
                assert.deepEqual(await res.json(), doc);
            }
            assert.deepEqual(await (await get("/.well-known/matrix/server")).json(), { "m.server": "matrix.example.com:8448" });
            assert.deepEqual(await (await get("/.well-known/matrix/client")).json(), { "m.homeserver": { base_url: "https://matrix.example.com" } });
            const preflight = await get("/.well-known/matrix/client", "OPTIONS");
            assert.equal(preflight.status, 204);
            assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
            assert.equal((await get("/.well-known/matrix/server", "POST")).status, 405);
            // Anything else under the route is the website's: the Worker hands it to the origin.
            const original = globalThis.fetch;
            const seen: string[] = [];
            globalThis.fetch = (async (r: Request) => {
                seen.push(r.url);
                return new Response("origin", { status: 200 });
            }) as typeof fetch;
            try {
                assert.equal(await (await get("/.well-known/matrix/support")).text(), "origin");
                assert.equal(await (await get("/.well-known/matrix/constructor")).text(), "origin");
            } finally {
                globalThis.fetch = original;
            }
            assert.deepEqual(seen, ["https://example.com/.well-known/matrix/support", "https://example.com/.well-known/matrix/constructor"]);
        });
    });

    describe('delegation "srv"', () => {
        it("_matrix-fed._tcp.<server_name> to the homeserver host on 8448, priority 10 weight 5; the certificate must cover the server_name", () => {
            const s = settings({ delegation: "srv" });
            const rs = dnsRecords(s);
            assert.deepEqual(summary(rs), [
                "A matrix.example.com 203.0.113.10",
                "AAAA matrix.example.com 2001:db8::10",
                "SRV _matrix-fed._tcp.example.com 10 5 8448 matrix.example.com",
            ]);
            assert.deepEqual(srvs(rs)[0].data, { priority: 10, weight: 5, port: 8448, target: "matrix.example.com" });
            assert.deepEqual(certificateNamesFor(s), ["example.com"]);
            assert.equal(serverNameWellKnownFor(s), false);
        });

        it("legacy _matrix._tcp only on request; the federation port, priority and weight are settings", () => {
            assert.equal(
                records({ delegation: "srv" }).some((r) => r.name.startsWith("_matrix._tcp")),
                false,
            );
            const rs = srvs(records({ delegation: "srv", legacySrv: true, federationPort: 443, srvPriority: 0, srvWeight: 100 }));
            assert.deepEqual(
                rs.map((r) => [r.name, r.data]),
                [
                    ["_matrix-fed._tcp.example.com", { priority: 0, weight: 100, port: 443, target: "matrix.example.com" }],
                    ["_matrix._tcp.example.com", { priority: 0, weight: 100, port: 443, target: "matrix.example.com" }],
                ],
            );
        });

        it("every SRV target is a name with our own A record (never a CNAME)", () => {
            const rs = records({ delegation: "srv", legacySrv: true, turnHost: "turn.example.com" });
            const addressed = new Set(rs.filter((r) => r.type === "A").map((r) => r.name));
            for (const r of srvs(rs)) assert.ok(addressed.has(r.data.target), `${r.name} -> ${r.data.target}`);
        });

        it("accepts certificate names that include the server_name", () => {
            assert.equal(settings({ delegation: "srv", certificateNames: ["matrix.example.com", "example.com"] }).delegation, "srv");
        });
    });

    describe("TURN", () => {
        it("A/AAAA for the TURN host and _turn._udp, _turn._tcp (3478), _turns._tcp (5349) on the server_name's domain", () => {
            const rs = records({ delegation: "well-known", turnHost: "turn.example.com" });
            assert.deepEqual(summary(rs).slice(4), [
                "A turn.example.com 203.0.113.10",
                "AAAA turn.example.com 2001:db8::10",
                "SRV _turn._udp.example.com 10 5 3478 turn.example.com",
                "SRV _turn._tcp.example.com 10 5 3478 turn.example.com",
                "SRV _turns._tcp.example.com 10 5 5349 turn.example.com",
            ]);
            assert.deepEqual(
                srvs(rs).map((r) => r.data),
                [
                    { priority: 10, weight: 5, port: 3478, target: "turn.example.com" },
                    { priority: 10, weight: 5, port: 3478, target: "turn.example.com" },
                    { priority: 10, weight: 5, port: 5349, target: "turn.example.com" },
                ],
            );
        });

        it("its ports are settings", () => {
            const rs = srvs(records({ serverName: "matrix.example.com", turnHost: "turn.example.com", turnPort: 3480, turnTlsPort: 443 }));
            assert.deepEqual(
                rs.map((r) => r.data.port),
                [3480, 3480, 443],
            );
        });

        it("a TURN host that is the homeserver host gets one A record with both purposes", () => {
            const rs = records({ serverName: "matrix.example.com", turnHost: "matrix.example.com", ipv6: undefined });
            const a = rs.filter((r) => r.type === "A");
            assert.deepEqual(
                a.map((r) => [r.name, r.comment]),
                [["matrix.example.com", "pulumi-matrix stack prod: homeserver, TURN"]],
            );
        });
    });

    describe("proxying, TTL and comments", () => {
        it("only Element's own records can sit behind Cloudflare's proxy, with the automatic TTL it forces", () => {
            const rs = records({ delegation: "srv", elementDomain: "element.example.com", elementProxied: true, turnHost: "turn.example.com", ttl: 600 });
            const element = rs.filter((r) => r.name === "element.example.com");
            assert.deepEqual(
                element.map((r) => [r.type, (r.type === "A" || r.type === "AAAA") && r.proxied, r.ttl]),
                [
                    ["A", true, AUTO_TTL],
                    ["AAAA", true, AUTO_TTL],
                ],
            );
            for (const r of matrixOrTurn(rs, "element.example.com")) {
                if (r.type === "A" || r.type === "AAAA") assert.equal(r.proxied, false, `${r.type} ${r.name} is proxied`);
                assert.equal(r.ttl, 600);
            }
        });

        it("no matrix or TURN record is ever proxied, in any mode", () => {
            for (const o of [
                { serverName: "matrix.example.com" },
                { delegation: "well-known" as const },
                { delegation: "well-known" as const, wellKnownVia: "worker" as const, accountId: ACCOUNT },
                { delegation: "srv" as const, legacySrv: true },
            ]) {
                const rs = records({ ...o, turnHost: "turn.example.com", elementDomain: "element.example.com", elementProxied: true });
                for (const r of matrixOrTurn(rs, "element.example.com"))
                    if (r.type === "A" || r.type === "AAAA") assert.equal(r.proxied, false, `${r.name} in ${JSON.stringify(o)}`);
            }
        });

        it("Element without elementProxied is a plain record", () => {
            const el = records({ serverName: "matrix.example.com", elementDomain: "element.example.com" }).filter((r) => r.name === "element.example.com");
            assert.deepEqual(
                el.map((r) => (r.type === "A" || r.type === "AAAA") && r.proxied),
                [false, false],
            );
        });

        it("every record's comment names the stack and fits Cloudflare's 100 characters", () => {
            const rs = records({
                delegation: "srv",
                legacySrv: true,
                turnHost: "turn.example.com",
                elementDomain: "element.example.com",
                stack: "acme-org/pulumi-matrix/production-eu-west-1",
            });
            for (const r of rs) {
                assert.match(r.comment, /^pulumi-matrix stack acme-org\/pulumi-matrix\/production-eu-west-1: /);
                assert.ok(r.comment.length <= 100, `${r.comment.length}: ${r.comment}`);
            }
        });

        it("TTL: 300 by default, 1 (automatic) and 60 to 86400 accepted", () => {
            assert.deepEqual([...new Set(records({ delegation: "srv" }).map((r) => r.ttl))], [300]);
            for (const ttl of [1, 60, 3600, 86400]) assert.equal(settings({ serverName: "matrix.example.com", ttl }).ttl, ttl);
        });

        it("names are compared and written lower case", () => {
            const s = settings({ serverName: "Example.COM", publicBaseUrl: "https://Matrix.Example.com/", delegation: "srv", turnHost: "TURN.example.com" });
            assert.deepEqual(
                srvs(dnsRecords(s)).map((r) => `${r.name} ${r.data.target}`),
                [
                    "_matrix-fed._tcp.example.com matrix.example.com",
                    "_turn._udp.example.com turn.example.com",
                    "_turn._tcp.example.com turn.example.com",
                    "_turns._tcp.example.com turn.example.com",
                ],
            );
        });
    });
});

describe("DNS settings: bad input is a ConfigError naming setting, value and what is valid", () => {
    const cases: [string, Partial<DnsOptions>, string, RegExp][] = [
        ["no zone", { zone: undefined }, "zone", /zone is not set; expected the zone's name .* or its Cloudflare id/],
        ["an empty zone", { zone: {} }, "zone", /expected the zone's name/],
        ["a zone id that is not one", { zone: { id: "example.com" } }, "zone.id", /zone.id is "example.com"; expected the zone's Cloudflare id: 32 hex digits/],
        ["a zone name that is not one", { zone: { name: "not a zone" } }, "zone.name", /expected a DNS zone such as example.com/],
        ["no IPv4 address", { ipv4: undefined }, "ipv4", /ipv4 is not set; expected the VM's public IPv4 address/],
        ["an IPv6 address as ipv4", { ipv4: "2001:db8::10", ipv6: undefined }, "ipv4", /ipv4 is "2001:db8::10"; this is an IPv6 address: give it as ipv6/],
        ["an IPv4 address as ipv6", { ipv6: "203.0.113.11" }, "ipv6", /ipv6 is "203.0.113.11"; this is an IPv4 address: give it as ipv4/],
        ["a host name as ipv4", { ipv4: "vm.example.com" }, "ipv4", /expected the VM's public IPv4 address/],
        ["the any address", { ipv4: "0.0.0.0" }, "ipv4", /expected the VM's public IPv4 address/],
        ["TTL 0", { ttl: 0 }, "ttl", /ttl is 0; expected 1 \(automatic\) or a whole number of seconds from 60 to 86400/],
        ["TTL 59", { ttl: 59 }, "ttl", /ttl is 59/],
        ["TTL 86401", { ttl: 86401 }, "ttl", /ttl is 86401/],
        ["TTL 300.5", { ttl: 300.5 }, "ttl", /ttl is 300.5/],
        [
            "a TURN host that is the proxied Element domain",
            { serverName: "matrix.example.com", elementDomain: "chat.example.com", elementProxied: true, turnHost: "chat.example.com" },
            "turnHost",
            /turnHost is "chat.example.com"; it is Element's domain, which elementProxied puts behind Cloudflare's proxy/,
        ],
        ["elementProxied without Element", { serverName: "matrix.example.com", elementProxied: true }, "elementProxied", /set elementDomain/],
        ["Element on the homeserver host", { serverName: "matrix.example.com", elementDomain: "matrix.example.com" }, "elementDomain", /its own domain/],
        [
            "differing names without a delegation",
            {},
            "delegation",
            /delegation is not set; the server_name example.com is not the homeserver host matrix.example.com: choose "well-known" .* or "srv"/,
        ],
        ["none with differing names", { delegation: "none" }, "delegation", /"none" needs the server_name to be the homeserver host/],
        ["an unknown mode", { delegation: "cname" as never }, "delegation", /expected one of "none", "well-known", "srv"/],
        ["well-known with the same names", { serverName: "matrix.example.com", delegation: "well-known" }, "delegation", /use "none"/],
        ["srv with a server_name port", { serverName: "example.com:8448", delegation: "srv" }, "serverName", /without a port/],
        [
            "a Worker without an account id",
            { delegation: "well-known", wellKnownVia: "worker" },
            "accountId",
            /accountId is not set; the Worker .* is deployed to a Cloudflare account/,
        ],
        ["a malformed account id", { delegation: "well-known", wellKnownVia: "worker", accountId: "acct" }, "accountId", /32 hex digits/],
        [
            "an account id without a Worker",
            { delegation: "well-known", accountId: ACCOUNT },
            "accountId",
            /only used with delegation "well-known" and wellKnownVia "worker"/,
        ],
        ["wellKnownVia in srv mode", { delegation: "srv", wellKnownVia: "worker" }, "wellKnownVia", /only used with delegation "well-known"/],
        ["an unknown wellKnownVia", { delegation: "well-known", wellKnownVia: "apache" as never }, "wellKnownVia", /expected one of "nginx", "worker"/],
        ["legacySrv outside srv mode", { delegation: "well-known", legacySrv: true }, "legacySrv", /only used with delegation "srv"/],
        [
            "srv without the server_name on the certificate",
            { delegation: "srv", certificateNames: ["matrix.example.com"] },
            "certificateNames",
            /the homeserver's certificate lacks example.com: SRV delegation .* checks? the certificate against the server_name/,
        ],
        [
            "Element on the apex in worker mode",
            { delegation: "well-known", wellKnownVia: "worker", accountId: ACCOUNT, elementDomain: "example.com" },
            "elementDomain",
            /stays with its own website/,
        ],
        [
            "a TURN host outside the zone",
            { serverName: "matrix.example.com", turnHost: "turn.example.org" },
            "turnHost",
            /expected a name in the zone example.com/,
        ],
        ["a homeserver outside the zone", { publicBaseUrl: "https://matrix.example.org/", delegation: "srv" }, "publicBaseUrl", /in the zone example.com/],
        ["turnPort without a TURN host", { serverName: "matrix.example.com", turnPort: 3478 }, "turnPort", /only used with turnHost/],
        ["a TURN port out of range", { serverName: "matrix.example.com", turnHost: "turn.example.com", turnTlsPort: 70000 }, "turnTlsPort", /1 to 65535/],
        ["an SRV weight out of range", { serverName: "matrix.example.com", srvWeight: -1 }, "srvWeight", /0 to 65535/],
        ["no stack", { stack: undefined }, "stack", /expected the Pulumi stack's name/],
        ["an http base URL", { publicBaseUrl: "http://matrix.example.com/" }, "publicBaseUrl", /public base URL on a DNS name/],
    ];
    for (const [what, o, setting, message] of cases) {
        it(what, () => {
            const e = configError(() => settings(o), setting);
            assert.equal(e.component, C);
            assert.match(e.message, message);
        });
    }

    it("reports every problem at once", () => {
        assert.throws(
            () => settings({ ipv4: "2001:db8::10", ttl: 5, zone: undefined }),
            (e: unknown) => e instanceof ConfigErrors && ["zone", "ipv4", "ttl"].every((k) => e.errors.some((x) => x.setting === k)),
        );
    });
});

describe("CAA records (src/model/dns.ts)", () => {
    const caa = (o: Partial<DnsOptions> = {}) => dnsRecords(settings({ delegation: "srv", ...o })).filter((r): r is CaaRecord => r.type === "CAA");

    it("Let's Encrypt by default: one issue record on every address name but the zone's apex, after the others", () => {
        const rs = dnsRecords(settings({ delegation: "well-known", elementDomain: "element.example.com", turnHost: "turn.example.com" }));
        assert.deepEqual(
            rs.filter((r) => r.type === "CAA").map((r) => `${r.name} ${r.content}`),
            ['matrix.example.com 0 issue "letsencrypt.org"', 'element.example.com 0 issue "letsencrypt.org"', 'turn.example.com 0 issue "letsencrypt.org"'],
        );
        // The apex (example.com points here for the well-known documents) has none: it would hold for every name of the zone.
        assert.ok(rs.some((r) => r.type === "A" && r.name === "example.com"));
        assert.ok(!rs.some((r) => r.type === "CAA" && r.name === "example.com"));
        assert.deepEqual(
            rs.slice(-3).map((r) => r.type),
            ["CAA", "CAA", "CAA"],
        );
        const r = caa()[0]!;
        assert.deepEqual(r.data, { flags: 0, tag: "issue", value: "letsencrypt.org" });
        assert.equal(r.comment, "pulumi-matrix stack prod: certificate authority");
        // Its staging directory is Let's Encrypt too.
        assert.equal(caa({ acmeDirectoryUrl: "https://acme-staging-v02.api.letsencrypt.org/directory" }).length, 1);
    });

    it("names the CAs given (lower case), none with [], none for a proxied Element, and a zone given by id leaves the server_name out", () => {
        assert.deepEqual(
            caa({ caa: ["Sectigo.com", "letsencrypt.org"] }).map((r) => r.content),
            ['0 issue "sectigo.com"', '0 issue "letsencrypt.org"'],
        );
        assert.deepEqual(caa({ caa: [] }), []);
        assert.deepEqual(
            caa({ elementDomain: "element.example.com", elementProxied: true }).map((r) => r.name),
            ["matrix.example.com"],
        );
        // The homeserver at the server_name itself, in a zone known by id only: its apex is unknown, the server_name (the usual apex) is left out.
        assert.deepEqual(caa({ zone: { id: ZONE_ID }, serverName: "matrix.example.com", delegation: "none" }), []);
        assert.deepEqual(
            caa({ zone: { name: "matrix.example.com" }, serverName: "matrix.example.com", delegation: "none", turnHost: "turn.matrix.example.com" }).map(
                (r) => r.name,
            ),
            ["turn.matrix.example.com"],
        );
    });

    it("another ACME CA: none unless its issuer is named (a wrong default would make it refuse our names); a bad issuer is refused", () => {
        const other = "https://acme.zerossl.com/v2/DV90";
        assert.deepEqual(caa({ acmeDirectoryUrl: other }), []);
        assert.deepEqual(
            caa({ acmeDirectoryUrl: other, caa: ["sectigo.com"] }).map((r) => r.content),
            ['0 issue "sectigo.com"'],
        );
        assert.deepEqual(caa({ acmeDirectoryUrl: other, caa: [] }), []);
        assert.match(configError(() => settings({ delegation: "srv", caa: ["not a domain"] }), "caa").expected, /expected the issuer domains of the CAs/);
        assert.match(configError(() => settings({ delegation: "srv", caa: 'letsencrypt.org"' as never }), "caa").expected, /expected the issuer domains/);
    });
});

describe("zone file (src/render/dns.ts)", () => {
    const file = (o: Partial<DnsOptions> = {}, z = {}) => {
        const s = settings(o);
        return renderZoneFile(s, resolveZoneFileSettings(C, s, z));
    };

    it("writes $ORIGIN, $TTL, SOA, NS and every record relative to the origin, SRV targets absolute", () => {
        const text = file({ delegation: "srv", turnHost: "turn.example.com" });
        const lines = text.split("\n");
        assert.ok(lines.includes("$ORIGIN example.com."));
        assert.ok(lines.includes("$TTL 300"));
        const data = lines.filter((l) => !l.startsWith(";") && !l.startsWith("$") && l !== "").map((l) => l.replace(/ *;.*$/, "").split(/\s+/));
        assert.deepEqual(data, [
            ["@", "300", "IN", "SOA", "ns1.dns-host.invalid.", "hostmaster.example.com.", "(1", "7200", "3600", "1209600", "300)"],
            ["@", "300", "IN", "NS", "ns1.dns-host.invalid."],
            ["matrix", "300", "IN", "A", "203.0.113.10"],
            ["matrix", "300", "IN", "AAAA", "2001:db8::10"],
            ["turn", "300", "IN", "A", "203.0.113.10"],
            ["turn", "300", "IN", "AAAA", "2001:db8::10"],
            ["_matrix-fed._tcp", "300", "IN", "SRV", "10", "5", "8448", "matrix.example.com."],
            ["_turn._udp", "300", "IN", "SRV", "10", "5", "3478", "turn.example.com."],
            ["_turn._tcp", "300", "IN", "SRV", "10", "5", "3478", "turn.example.com."],
            ["_turns._tcp", "300", "IN", "SRV", "10", "5", "5349", "turn.example.com."],
            ["matrix", "300", "IN", "CAA", "0", "issue", '"letsencrypt.org"'],
            ["turn", "300", "IN", "CAA", "0", "issue", '"letsencrypt.org"'],
        ]);
        // The record's comment rides along.
        assert.match(text, /_matrix-fed\._tcp +300 IN SRV +10 5 8448 matrix\.example\.com\. ; pulumi-matrix stack prod: federation SRV$/m);
    });

    it("the apex is @ in well-known mode via nginx; SOA and NS from the settings; a dotted mailbox is escaped", () => {
        const text = file(
            { delegation: "well-known", ipv6: undefined },
            { nameServers: ["ns1.example.net", "ns2.example.net."], hostmaster: "dns.admin@example.net", serial: 2026010101, negativeTtl: 60 },
        );
        assert.match(text, /^@ +300 IN SOA +ns1\.example\.net\. dns\\\.admin\.example\.net\. \(2026010101 7200 3600 1209600 60\)$/m);
        assert.match(text, /^@ +300 IN NS +ns1\.example\.net\.$/m);
        assert.match(text, /^@ +300 IN NS +ns2\.example\.net\.$/m);
        assert.match(text, /^@ +300 IN A +203\.0\.113\.10 ; pulumi-matrix stack prod: Matrix well-known$/m);
    });

    it("is deterministic, and Cloudflare's automatic TTL becomes the default TTL", () => {
        const o = { delegation: "srv" as const, ttl: 1, elementDomain: "element.example.com", elementProxied: true };
        assert.equal(file(o), file(o));
        assert.ok(file(o).includes("$TTL 300"));
        assert.doesNotMatch(file(o), / 1 IN /);
        assert.match(file(o), /On Cloudflare, element\.example\.com sits behind its proxy/);
    });

    it("says that a Worker answers the well-known documents in worker mode", () => {
        assert.match(file({ delegation: "well-known", wellKnownVia: "worker", accountId: ACCOUNT }), /Cloudflare Worker matrix-well-known-example-com/);
    });

    it("needs the zone's name: by id only it is an error unless the origin is given", () => {
        const s = settings({ zone: { id: ZONE_ID }, serverName: "matrix.example.com" });
        assert.match(configError(() => resolveZoneFileSettings(C, s)).message, /zone file needs the zone's name/);
        assert.match(renderZoneFile(s, resolveZoneFileSettings(C, s, { origin: "example.com" })), /^\$ORIGIN example\.com\.$/m);
        assert.match(configError(() => resolveZoneFileSettings(C, s, { origin: "example.org" })).message, /matrix\.example\.com is outside the zone/);
    });

    it("refuses bad SOA settings", () => {
        const s = settings({ serverName: "matrix.example.com" });
        assert.equal(configError(() => resolveZoneFileSettings(C, s, { nameServers: [] })).setting, "nameServers");
        assert.equal(configError(() => resolveZoneFileSettings(C, s, { hostmaster: "nobody" })).setting, "hostmaster");
        assert.equal(configError(() => resolveZoneFileSettings(C, s, { serial: 0 })).setting, "serial");
    });

    it("dnsZoneFile: the file alone from the user's settings, nothing else needed", () => {
        const o = options({ delegation: "srv" });
        assert.equal(dnsZoneFile(o), renderZoneFile(settings({ delegation: "srv" }), resolveZoneFileSettings(C, settings({ delegation: "srv" }))));
        assert.equal(configError(() => dnsZoneFile({ ...o, zone: undefined })).component, "dnsZoneFile");
    });
});

describe("CloudflareDns under Pulumi mocks", () => {
    const DNS = "cloudflare:index/dnsRecord:DnsRecord";
    const SCRIPT = "cloudflare:index/workersScript:WorkersScript";
    const ROUTE = "cloudflare:index/workersRoute:WorkersRoute";
    const args = (o: Partial<CloudflareDnsArgs> = {}): CloudflareDnsArgs => ({
        zone: { name: "example.com" },
        synapse: { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/" },
        ipv4: "203.0.113.10",
        ipv6: "2001:db8::10",
        stack: "prod",
        ...o,
    });
    const deploy = (o: Partial<CloudflareDnsArgs> = {}) =>
        runWithMocks(
            () => new CloudflareDns("dns", args(o)),
            (d) => [d.records, d.zoneFile, d.zoneId],
        );
    const of = (mocks: RecordingMocks, type: string): RecordedResource[] => mocks.resources.filter((r) => r.type === type);
    /** The DNS records but CAA (see "CAA records on Cloudflare" below). */
    const addressAndSrv = (mocks: RecordingMocks): RecordedResource[] => of(mocks, DNS).filter((r) => r.inputs.type !== "CAA");

    it("srv mode: one DnsRecord per record in the looked-up zone, SRV with data and top-level priority, nothing proxied", async () => {
        const { mocks, result } = await deploy({ delegation: "srv", turnHost: "turn.example.com" });
        assert.ok(mocks.resources.some((r) => r.type === "matrix:index:CloudflareDns" && r.name === "dns"));
        const zoneCalls = mocks.calls.filter((c) => c.token === "cloudflare:index/getZone:getZone");
        assert.deepEqual(
            zoneCalls.map((c) => c.inputs.filter),
            [{ name: "example.com" }],
        );
        const created = addressAndSrv(mocks);
        const expected = records({ delegation: "srv", turnHost: "turn.example.com" });
        // The mock sees each record once its inputs resolve (SRV before A): compare by name.
        assert.deepEqual(created.map((r) => r.name).sort(), expected.map((r) => `dns-${r.type.toLowerCase()}-${r.name}`).sort());
        for (const r of created) {
            const want = expected.find((x) => `dns-${x.type.toLowerCase()}-${x.name}` === r.name)!;
            assert.equal(r.inputs.zoneId, ZONE_ID);
            assert.equal(r.inputs.name, want.name);
            assert.equal(r.inputs.type, want.type);
            assert.equal(r.inputs.ttl, 300);
            assert.equal(r.inputs.comment, want.comment);
            assert.match(String(r.inputs.comment), /^pulumi-matrix stack prod: /);
            if (want.type === "SRV") {
                assert.deepEqual(r.inputs.data, want.data);
                assert.equal(r.inputs.priority, want.data.priority);
                assert.equal(r.inputs.content, undefined);
                assert.notEqual(r.inputs.proxied, true);
            } else {
                assert.equal(r.inputs.content, want.content);
                assert.equal(r.inputs.proxied, false);
            }
        }
        const fed = created.find((r) => r.inputs.name === "_matrix-fed._tcp.example.com")!;
        assert.deepEqual(fed.inputs.data, { priority: 10, weight: 5, port: 8448, target: "matrix.example.com" });
        assert.equal(fed.inputs.priority, 10);
        const turns = created.find((r) => r.inputs.name === "_turns._tcp.example.com")!;
        assert.deepEqual(turns.inputs.data, { priority: 10, weight: 5, port: 5349, target: "turn.example.com" });
        assert.equal(of(mocks, SCRIPT).length + of(mocks, ROUTE).length, 0);

        assert.equal(await valueOf(result.zoneId), ZONE_ID);
        assert.deepEqual(
            withoutCaa(await valueOf(result.records)),
            expected.map((r) => ({ name: r.name, type: r.type, content: r.content, ttl: r.ttl, proxied: false })),
        );
        const s = settings({ delegation: "srv", turnHost: "turn.example.com" });
        assert.equal(await valueOf(result.zoneFile), renderZoneFile(s, resolveZoneFileSettings(C, s)));
        assert.deepEqual(result.certificateNames, ["example.com"]);
        assert.equal(result.serverNameWellKnown, false);
    });

    it("worker mode: the Worker script with both documents and its route on the server_name's domain", async () => {
        const { mocks } = await deploy({ delegation: "well-known", wellKnownVia: "worker", accountId: ACCOUNT, ipv6: undefined });
        assert.deepEqual(
            addressAndSrv(mocks).map((r) => `${r.inputs.type} ${r.inputs.name}`),
            ["A matrix.example.com"],
        );
        const [script] = of(mocks, SCRIPT);
        const [route] = of(mocks, ROUTE);
        const w = wellKnownWorker(settings({ delegation: "well-known", wellKnownVia: "worker", accountId: ACCOUNT, ipv6: undefined }))!;
        assert.equal(script.name, "dns-well-known-worker");
        assert.equal(script.inputs.accountId, ACCOUNT);
        assert.equal(script.inputs.scriptName, "matrix-well-known-example-com");
        assert.equal(script.inputs.content, renderWellKnownWorker(w));
        assert.equal(script.inputs.mainModule, "worker.js");
        assert.equal(route.inputs.pattern, "example.com/.well-known/matrix/*");
        assert.equal(route.inputs.zoneId, ZONE_ID);
        assert.equal(route.inputs.script, "matrix-well-known-example-com");
    });

    it("cloudflareIds: each resource's id as Pulumi imports it, by key; another stack's takeOver imports those it names and creates the rest", async () => {
        const worker = { delegation: "well-known", wellKnownVia: "worker", accountId: ACCOUNT, ipv6: undefined } as const;
        const first = await runWithMocks(
            () => new CloudflareDns("dns", args(worker)),
            (d) => [d.cloudflareIds],
        );
        const ids = await valueOf(first.result.cloudflareIds);
        assert.deepEqual(ids, {
            "a-matrix.example.com": `${ZONE_ID}/dns-a-matrix.example.com-id`,
            "caa-matrix.example.com-letsencrypt.org": `${ZONE_ID}/dns-caa-matrix.example.com-letsencrypt.org-id`,
            "well-known-worker": `${ACCOUNT}/matrix-well-known-example-com`,
            "well-known-route": `${ZONE_ID}/dns-well-known-route-id`,
        });
        assert.ok(first.mocks.resources.every((r) => r.importId === undefined));

        const record = `${ZONE_ID}/${"a".repeat(32)}`;
        const route = `${ZONE_ID}/${"b".repeat(32)}`;
        const takeOver = { "a-matrix.example.com": record, "well-known-worker": `${ACCOUNT}/matrix-well-known-example-com`, "well-known-route": route };
        const next = await runWithMocks(
            () => new CloudflareDns("dns", args({ ...worker, stack: "prod-new", takeOver })),
            (d) => [d.cloudflareIds],
        );
        const imported = Object.fromEntries(next.mocks.resources.filter((r) => r.importId !== undefined).map((r) => [r.name, r.importId]));
        assert.deepEqual(imported, {
            "dns-a-matrix.example.com": record,
            "dns-well-known-worker": takeOver["well-known-worker"],
            "dns-well-known-route": route,
        });
        // Not named: created, as in any stack.
        assert.equal(of(next.mocks, DNS).find((r) => r.inputs.type === "CAA")!.importId, undefined);
        // The new stack hands on the same ids.
        const again = await valueOf(next.result.cloudflareIds);
        assert.equal(again["a-matrix.example.com"], record);
        assert.equal(again["well-known-route"], route);
    });

    it("takeOver: a key this record set lacks, or an id not of its kind's form, is refused at construction", async () => {
        await assert.rejects(
            runWithMocks(() => new CloudflareDns("dns", args({ delegation: "srv", takeOver: { "a-www.example.com": `${ZONE_ID}/${"a".repeat(32)}` } }))),
            (e: unknown) =>
                e instanceof ConfigError &&
                e.setting === "takeOver.a-www.example.com" &&
                /this record set has no such resource; its keys are a-matrix\.example\.com, aaaa-matrix\.example\.com, srv-_matrix-fed\._tcp\.example\.com/.test(
                    e.message,
                ),
        );
        await assert.rejects(
            runWithMocks(() => new CloudflareDns("dns", args({ delegation: "srv", takeOver: { "srv-_matrix-fed._tcp.example.com": "42" } }))),
            (e: unknown) =>
                e instanceof ConfigError && e.setting === "takeOver.srv-_matrix-fed._tcp.example.com" && /expected <zone id>\/<record id>/.test(e.message),
        );
        await assert.rejects(
            runWithMocks(
                () =>
                    new CloudflareDns(
                        "dns",
                        args({
                            delegation: "well-known",
                            wellKnownVia: "worker",
                            accountId: ACCOUNT,
                            takeOver: { "well-known-worker": "matrix-well-known-example-com" },
                        }),
                    ),
            ),
            (e: unknown) => e instanceof ConfigError && /expected <account id>\/<script name>/.test(e.message),
        );
    });

    it("retain: every Cloudflare resource is left in Cloudflare when it leaves the stack (retainOnDelete); not by default", async () => {
        const seen = (retain?: boolean) => {
            const opts: Record<string, boolean | undefined> = {};
            const transformations = [
                (a: pulumi.ResourceTransformationArgs) =>
                    void (a.type.startsWith("cloudflare:index/d") || a.type.startsWith("cloudflare:index/w")
                        ? (opts[a.name] = a.opts.retainOnDelete)
                        : undefined),
            ];
            const worker = { delegation: "well-known", wellKnownVia: "worker", accountId: ACCOUNT } as const;
            return runWithMocks(() => new CloudflareDns("dns", args({ ...worker, ...(retain !== undefined ? { retain } : {}) }), { transformations })).then(
                () => opts,
            );
        };
        const retained = await seen(true);
        assert.deepEqual(Object.keys(retained).sort(), [
            "dns-a-matrix.example.com",
            "dns-aaaa-matrix.example.com",
            "dns-caa-matrix.example.com-letsencrypt.org",
            "dns-well-known-route",
            "dns-well-known-worker",
        ]);
        assert.ok(
            Object.values(retained).every((v) => v === true),
            JSON.stringify(retained),
        );
        assert.ok(Object.values(await seen()).every((v) => v === false));
    });

    it("a proxied Element is the only proxied record, with the automatic TTL", async () => {
        const { mocks } = await deploy({
            synapse: { serverName: "matrix.example.com", publicBaseUrl: "https://matrix.example.com/" },
            elementDomain: "element.example.com",
            elementProxied: true,
            turnHost: "turn.example.com",
        });
        const proxied = of(mocks, DNS).filter((r) => r.inputs.proxied === true);
        assert.deepEqual(
            proxied.map((r) => [r.inputs.name, r.inputs.ttl]),
            [
                ["element.example.com", 1],
                ["element.example.com", 1],
            ],
        );
    });

    it("a zone given by id: no lookup for the records; the zone file learns the zone's name by id", async () => {
        const { mocks, result } = await deploy({
            zone: { id: ZONE_ID },
            synapse: { serverName: "matrix.example.com", publicBaseUrl: "https://matrix.example.com/" },
        });
        assert.ok(of(mocks, DNS).every((r) => r.inputs.zoneId === ZONE_ID));
        assert.deepEqual(
            mocks.calls.map((c) => c.inputs.zoneId),
            [ZONE_ID],
        );
        assert.match(await valueOf(result.zoneFile), /^\$ORIGIN example\.com\.$/m);
        const both = await deploy({
            zone: { id: ZONE_ID, name: "example.com" },
            synapse: { serverName: "matrix.example.com", publicBaseUrl: "https://matrix.example.com/" },
        });
        assert.equal(both.mocks.calls.length, 0);
    });

    it("CAA records on Cloudflare: one per name and issuer, as structured data", async () => {
        const { mocks, result } = await deploy({ delegation: "srv", turnHost: "turn.example.com", caa: ["letsencrypt.org", "sectigo.com"] });
        const caas = of(mocks, DNS).filter((r) => r.inputs.type === "CAA");
        assert.deepEqual(caas.map((r) => r.name).sort(), [
            "dns-caa-matrix.example.com-letsencrypt.org",
            "dns-caa-matrix.example.com-sectigo.com",
            "dns-caa-turn.example.com-letsencrypt.org",
            "dns-caa-turn.example.com-sectigo.com",
        ]);
        const r = caas.find((x) => x.name === "dns-caa-matrix.example.com-sectigo.com")!;
        assert.deepEqual(r.inputs.data, { flags: 0, tag: "issue", value: "sectigo.com" });
        assert.equal(r.inputs.content, undefined);
        assert.equal(r.inputs.proxied, undefined);
        assert.equal(r.inputs.ttl, 300);
        assert.match(await valueOf(result.zoneFile), /^matrix +300 IN CAA +0 issue "sectigo\.com" ; pulumi-matrix stack prod: certificate authority$/m);
    });

    it("the stack plan hands DNS the proxy's ACME directory: Let's Encrypt's issuer by default, none for another CA unless named", () => {
        const other = "https://acme.zerossl.com/v2/DV90";
        const args = (directoryUrl?: string, caa?: string[]) => ({
            ...stackArgs(),
            proxy: { acme: { email: "admin@example.com", ...(directoryUrl ? { directoryUrl } : {}) } },
            dns: { zone: { name: "example.com" }, ipv4: "203.0.113.10", delegation: "srv" as const, ...(caa ? { caa } : {}) },
        });
        const caaOf = (a: ReturnType<typeof args>) => planStack("x", a, { stack: "prod" }).dns!.settings.caa;
        assert.deepEqual(caaOf(args()), ["letsencrypt.org"]);
        assert.deepEqual(caaOf(args(other)), []);
        assert.deepEqual(caaOf(args(other, ["sectigo.com"])), ["sectigo.com"]);
    });

    it("addresses from Outputs (a cloud VM's IPs) become the records' contents, and are checked", async () => {
        const { mocks, result } = await deploy({
            synapse: { serverName: "matrix.example.com", publicBaseUrl: "https://matrix.example.com/" },
            ipv4: pulumi.output("198.51.100.7"),
            ipv6: pulumi.output("2001:db8::7"),
        });
        assert.deepEqual(
            addressAndSrv(mocks).map((r) => `${r.inputs.type} ${r.inputs.content}`),
            ["A 198.51.100.7", "AAAA 2001:db8::7"],
        );
        assert.match(await valueOf(result.zoneFile), /A +198\.51\.100\.7/);

        const bad = await runWithMocks(() => new CloudflareDns("dns", args({ ipv4: pulumi.output("2001:db8::7"), ipv6: undefined, delegation: "srv" })));
        await assert.rejects(valueOf(bad.result.zoneFile), /ipv4 is "2001:db8::7"; this is an IPv6 address: give it as ipv6/);
    });

    it("bad settings fail at construction with the component's name", async () => {
        await assert.rejects(
            runWithMocks(() => new CloudflareDns("dns", args({ zone: undefined as never, delegation: "srv" }))),
            (e: unknown) => e instanceof ConfigError && e.component === C && e.setting === "zone",
        );
        await assert.rejects(
            runWithMocks(() => new CloudflareDns("dns", args({ delegation: "well-known", wellKnownVia: "worker" }))),
            (e: unknown) => e instanceof ConfigError && e.setting === "accountId",
        );
    });

    it("takes the federation port and certificate names from a ReverseProxy, and checks SRV against them", async () => {
        const { result } = await runWithMocks(
            () => {
                const stack = new MatrixStack("prod", stackArgs());
                return new CloudflareDns("dns", args({ delegation: "srv", proxy: stack.proxy, synapse: stack.synapse }));
            },
            () => [],
        ).catch((e: unknown) => ({ result: e }));
        // The stack's certificate covers matrix.example.com only: SRV for example.com cannot be served.
        assert.ok(result instanceof ConfigError, String(result));
        assert.equal(result.setting, "certificateNames");
        const ok = await runWithMocks(
            () => {
                const stack = new MatrixStack("prod", { ...stackArgs(), proxy: { acme: { email: "admin@example.com" }, federationPort: 443 } });
                return new CloudflareDns(
                    "dns",
                    args({ delegation: "well-known", wellKnownVia: "worker", accountId: ACCOUNT, proxy: stack.proxy, synapse: stack.synapse }),
                );
            },
            (d) => [d.records],
        );
        const w = of(ok.mocks, SCRIPT)[0];
        assert.match(String(w.inputs.content), /"m\.server": "matrix\.example\.com:443"/);
        await assert.rejects(
            runWithMocks(() => {
                const stack = new MatrixStack("prod", stackArgs());
                return new CloudflareDns("dns", args({ delegation: "well-known", proxy: stack.proxy, synapse: stack.synapse, federationPort: 8448 }));
            }),
            (e: unknown) => e instanceof ConfigError && e.setting === "federationPort" && /it comes from proxy/.test(e.message),
        );
    });
});

describe("MatrixStack's dns: the proxy follows the delegation mode", () => {
    const args = (dns: Record<string, unknown>) => ({ ...stackArgs(), dns: { zone: { name: "example.com" }, ipv4: "203.0.113.10", ...dns } });

    it("srv: the server_name joins the certificate and the homeserver's vhost; only the zone file, no Cloudflare resource", async () => {
        const { mocks, result } = await runWithMocks(() => new MatrixStack("prod", args({ delegation: "srv" })));
        assert.deepEqual(result.proxy!.certificateNames, ["matrix.example.com", "example.com"]);
        assert.match(String(mocks.byName("prod-proxy-nginx").inputs.stdin), /server_name matrix\.example\.com example\.com;/);
        const zone = await valueOf(result.zoneFile!);
        assert.match(zone, /^_matrix-fed\._tcp +300 IN SRV +10 5 8448 matrix\.example\.com\. /m);
        assert.deepEqual(
            mocks.resources.filter((r) => r.type.startsWith("cloudflare:")),
            [],
        );
    });

    it("well-known via nginx: the proxy serves it on the server_name's domain; with cloudflare, the records are Cloudflare's", async () => {
        const { mocks, result } = await runWithMocks(() => new MatrixStack("prod", args({ delegation: "well-known", cloudflare: true })));
        assert.equal(result.proxy!.settings.serverNameVhost, true);
        assert.deepEqual(result.proxy!.certificateNames, ["matrix.example.com", "example.com"]);
        const records = mocks.resources.filter((r) => r.type === "cloudflare:index/dnsRecord:DnsRecord");
        assert.ok(records.length >= 2, `${records.length} records`);
        assert.ok(records.every((r) => r.inputs.proxied !== true));
        assert.match(await valueOf(result.zoneFile!), /^@ +300 IN A +203\.0\.113\.10 /m);
    });

    it("refuses serverNameWellKnown: false against well-known via nginx", async () => {
        await runWithMocks(() =>
            assert.throws(
                () =>
                    new MatrixStack("x", {
                        ...args({ delegation: "well-known" }),
                        proxy: { acme: { email: "admin@example.com" }, serverNameWellKnown: false },
                    }),
                /MatrixStack "x": proxy\.serverNameWellKnown is false; dns\.delegation "well-known" served by nginx needs it/,
            ),
        );
    });
});

describe("DNS settings: an option at its default says nothing in another mode", () => {
    it("wellKnownVia nginx and legacySrv false pass in any mode (the stack config fills declared defaults in)", () => {
        const s = resolveDnsSettings("t", {
            zone: { name: "example.com" },
            serverName: "example.com",
            publicBaseUrl: "https://matrix.example.com/",
            ipv4: "203.0.113.10",
            delegation: "well-known",
            wellKnownVia: "nginx",
            legacySrv: false,
            stack: "dev",
        });
        assert.equal(s.delegation, "well-known");
    });
});

describe("dns: golden files (update with `npm run golden:update`, review the diff)", () => {
    const dns = {
        zone: { name: "example.com" },
        serverName: "example.com",
        publicBaseUrl: "https://matrix.example.com/",
        ipv4: "203.0.113.10",
        ipv6: "2001:db8::10",
        stack: "golden",
    };
    golden("dns", "srv.zone", () =>
        dnsZoneFile({ ...dns, delegation: "srv", legacySrv: true, elementDomain: "element.example.com", turnHost: "turn.example.com" }),
    );
    golden("dns", "well-known-nginx.zone", () =>
        dnsZoneFile(
            { ...dns, delegation: "well-known", turnHost: "turn.example.com", ttl: 3600 },
            { nameServers: ["ns1.example.net", "ns2.example.net"], hostmaster: "hostmaster@example.net", serial: 2026010101 },
        ),
    );
    golden("dns", "none-proxied-element.zone", () =>
        dnsZoneFile({ ...dns, serverName: "matrix.example.com", elementDomain: "element.example.com", elementProxied: true, ttl: 1 }),
    );
    golden("dns", "well-known-worker.js", () =>
        renderWellKnownWorker(
            wellKnownWorker(
                resolveDnsSettings("golden", { ...dns, delegation: "well-known", wellKnownVia: "worker", accountId: "0123456789abcdef0123456789abcdef" }),
            )!,
        ),
    );
});
