// The zone file, served for real: BIND's named loads what renderZoneFile
// wrote (named-checkzone first), and dig asks it for every record the model
// produced. Each record must come back exactly as rendered (A, AAAA, SRV
// with its four fields, CAA, the TTL), and the zone must hold nothing else.
import { strict as assert } from "node:assert";

import { DnsOptions, DnsRecord, dnsRecords, resolveDnsSettings, resolveZoneFileSettings, ZoneFileOptions } from "../../src/model/dns";
import { dnsZoneFile } from "../../src/render/dns";
import { type NamedServer, startNamed } from "../support/integration/named";
import { pendingCleanups } from "../support/integration/processes";

const ZONE = "example.com";

/** What dig prints for a record (whitespace collapsed): owner, TTL, class, type, data; SRV targets absolute. */
function expectedAnswer(r: DnsRecord, ttl: number): string {
    const data = r.type === "SRV" ? `${r.data.priority} ${r.data.weight} ${r.data.port} ${r.data.target}.` : r.content;
    return `${r.name}. ${ttl} IN ${r.type} ${data}`;
}

/** Renders the zone file with the public function, serves it, and checks every record; returns the server for more checks. */
async function serveAndCheck(o: DnsOptions, z: ZoneFileOptions = {}): Promise<{ named: NamedServer; records: DnsRecord[] }> {
    const s = resolveDnsSettings("dns test", o);
    const ttl = resolveZoneFileSettings("dns test", s, z).ttl;
    const records = dnsRecords(s);
    const named = await startNamed(ZONE, dnsZoneFile(o, z, "dns test"));

    // Each name and type answers exactly the records rendered for it.
    const groups = new Map<string, DnsRecord[]>();
    for (const r of records) groups.set(`${r.name} ${r.type}`, [...(groups.get(`${r.name} ${r.type}`) ?? []), r]);
    for (const [key, rs] of groups) {
        const [name, type] = key.split(" ");
        assert.deepEqual((await named.dig(name, type)).sort(), rs.map((r) => expectedAnswer(r, ttl)).sort(), `dig ${name} ${type}`);
    }
    // And the zone holds nothing but them (besides its SOA and NS).
    const all = (await named.transfer()).filter((l) => !/^\S+ \d+ IN (SOA|NS) /.test(l));
    assert.deepEqual(all.sort(), records.map((r) => expectedAnswer(r, ttl)).sort());
    return { named, records };
}

async function stopped(named: NamedServer): Promise<void> {
    await named.stop();
    assert.ok(named.daemon.hasExited(), "named still runs");
    assert.ok(!pendingCleanups().some((n) => n.includes(`pid ${named.daemon.pid}`)), "named is still registered for cleanup");
}

describe("DNS zone file served by BIND (named) on loopback", function () {
    it("srv mode: A/AAAA, _matrix-fed._tcp and legacy _matrix._tcp with priority, weight, port and target, Element", async function () {
        const { named, records } = await serveAndCheck({
            zone: { name: ZONE },
            serverName: "example.com",
            publicBaseUrl: "https://matrix.example.com/",
            ipv4: "203.0.113.10",
            ipv6: "2001:db8::10",
            elementDomain: "element.example.com",
            elementProxied: true,
            delegation: "srv",
            legacySrv: true,
            federationPort: 443,
            srvPriority: 0,
            srvWeight: 10,
            ttl: 3600,
            stack: "integration",
        });
        try {
            assert.deepEqual(await named.dig("_matrix-fed._tcp.example.com", "SRV"), [
                "_matrix-fed._tcp.example.com. 3600 IN SRV 0 10 443 matrix.example.com.",
            ]);
            assert.deepEqual(await named.dig("_matrix._tcp.example.com", "SRV"), ["_matrix._tcp.example.com. 3600 IN SRV 0 10 443 matrix.example.com."]);
            assert.deepEqual(await named.dig("matrix.example.com", "AAAA"), ["matrix.example.com. 3600 IN AAAA 2001:db8::10"]);
            // Proxying is Cloudflare's: in a zone file Element is a plain record.
            assert.deepEqual(await named.dig("element.example.com", "A"), ["element.example.com. 3600 IN A 203.0.113.10"]);
            // The server_name's domain keeps its own address records (none here): only SOA and NS.
            assert.deepEqual(await named.dig("example.com", "A"), []);
            assert.equal(await named.status("turn.example.com", "A"), "NXDOMAIN");
            // CAA: Let's Encrypt only, on the homeserver; none on the apex (it would hold for the whole zone) nor on the proxied Element.
            assert.deepEqual(await named.dig("matrix.example.com", "CAA"), ['matrix.example.com. 3600 IN CAA 0 issue "letsencrypt.org"']);
            assert.deepEqual(await named.dig("example.com", "CAA"), []);
            assert.deepEqual(await named.dig("element.example.com", "CAA"), []);
            assert.equal(records.length, 7);
        } finally {
            await stopped(named);
        }
    });

    it("well-known mode (nginx) with TURN: the server_name's domain points here, TURN's A/AAAA and its three SRV records", async function () {
        const { named } = await serveAndCheck(
            {
                zone: { name: ZONE },
                serverName: "example.com",
                publicBaseUrl: "https://matrix.example.com/",
                ipv4: "198.51.100.20",
                ipv6: "2001:db8:1::20",
                turnHost: "turn.example.com",
                delegation: "well-known",
                caa: ["letsencrypt.org", "sectigo.com"],
                stack: "integration",
            },
            { nameServers: ["ns1.example.net", "ns2.example.net"], hostmaster: "dns.admin@example.net", serial: 2026113001 },
        );
        try {
            assert.deepEqual(await named.dig("example.com", "A"), ["example.com. 300 IN A 198.51.100.20"]);
            assert.deepEqual(await named.dig("example.com", "AAAA"), ["example.com. 300 IN AAAA 2001:db8:1::20"]);
            assert.deepEqual(await named.dig("turn.example.com", "A"), ["turn.example.com. 300 IN A 198.51.100.20"]);
            assert.deepEqual(await named.dig("_turn._udp.example.com", "SRV"), ["_turn._udp.example.com. 300 IN SRV 10 5 3478 turn.example.com."]);
            assert.deepEqual(await named.dig("_turn._tcp.example.com", "SRV"), ["_turn._tcp.example.com. 300 IN SRV 10 5 3478 turn.example.com."]);
            assert.deepEqual(await named.dig("_turns._tcp.example.com", "SRV"), ["_turns._tcp.example.com. 300 IN SRV 10 5 5349 turn.example.com."]);
            // One CAA record per issuer on each name but the apex.
            for (const name of ["matrix.example.com", "turn.example.com"])
                assert.deepEqual((await named.dig(name, "CAA")).sort(), [
                    `${name}. 300 IN CAA 0 issue "letsencrypt.org"`,
                    `${name}. 300 IN CAA 0 issue "sectigo.com"`,
                ]);
            assert.deepEqual(await named.dig("example.com", "CAA"), []);
            // No SRV delegation in this mode.
            assert.equal(await named.status("_matrix-fed._tcp.example.com", "SRV"), "NXDOMAIN");
            // SOA and NS as the settings said.
            assert.deepEqual(await named.dig("example.com", "SOA"), [
                "example.com. 300 IN SOA ns1.example.net. dns\\.admin.example.net. 2026113001 7200 3600 1209600 300",
            ]);
            assert.deepEqual((await named.dig("example.com", "NS")).sort(), [
                "example.com. 300 IN NS ns1.example.net.",
                "example.com. 300 IN NS ns2.example.net.",
            ]);
        } finally {
            await stopped(named);
        }
    });

    it("well-known mode (Worker) with TURN on the homeserver host, IPv4 only, default SOA and NS: loads as rendered", async function () {
        const { named } = await serveAndCheck({
            zone: { name: ZONE },
            serverName: "example.com",
            publicBaseUrl: "https://matrix.example.com/",
            ipv4: "192.0.2.30",
            turnHost: "matrix.example.com",
            turnPort: 3479,
            delegation: "well-known",
            wellKnownVia: "worker",
            accountId: "0123456789abcdef0123456789abcdef",
            ttl: 1,
            stack: "integration",
        });
        try {
            assert.deepEqual(await named.dig("matrix.example.com", "A"), ["matrix.example.com. 300 IN A 192.0.2.30"]);
            assert.deepEqual(await named.dig("matrix.example.com", "AAAA"), []);
            assert.deepEqual(await named.dig("example.com", "A"), []);
            assert.deepEqual(await named.dig("_turn._udp.example.com", "SRV"), ["_turn._udp.example.com. 300 IN SRV 10 5 3479 matrix.example.com."]);
        } finally {
            await stopped(named);
        }
    });
});
