import * as assert from "node:assert/strict";

import { PortClaim, PortRegistry, Protocol } from "../../src/model/host";
import { postgresPortClaims, resolvePostgresSettings } from "../../src/model/postgres";
import { redisPortClaims, resolveRedisSettings } from "../../src/model/redis";
import { resolveSynapseSettings, synapsePortClaims } from "../../src/model/synapse";
import { resolveTurnSettings, turnPortClaims } from "../../src/model/turn";

const V4 = ["127.0.0.1", "10.0.0.5"];
const V6 = ["::1", "fd00::5"];

/** Whether the kernel refuses the second bind, written out per case (Linux, bindv6only=0). */
function kernelRefuses(a: string, b: string): boolean {
    if (a === b || a === "*" || b === "*") return true;
    if (a === "::" || b === "::") return true; // every IPv6 address, and IPv4 as well (dual-stack)
    if (a === "0.0.0.0") return !b.includes(":");
    if (b === "0.0.0.0") return !a.includes(":");
    return false;
}

/** Whether a claim of one list and one of the other on the same port and protocol make the kernel refuse. */
const anyRefused = (x: PortClaim[], y: PortClaim[]) =>
    x.some((c) => y.some((d) => c.port === d.port && c.protocol === d.protocol && kernelRefuses(c.address, d.address)));

const ADDRESSES = ["*", "0.0.0.0", "::", ...V4, ...V6];
const claim = (address: string, port: number, protocol: Protocol, toPort?: number): PortClaim => ({
    port,
    ...(toPort !== undefined ? { toPort } : {}),
    protocol,
    address,
    owner: "x",
    setting: "x",
});

describe("PortRegistry: a wildcard address clashes with every address it covers", () => {
    it("for every pair of addresses, protocol, single port and range, in both orders, across components", () => {
        for (const a of ADDRESSES)
            for (const b of ADDRESSES)
                for (const protocol of ["tcp", "udp"] as const)
                    for (const second of [claim(b, 5000, protocol), claim(b, 4990, protocol, 5010)]) {
                        const r = new PortRegistry("h");
                        r.claim("A", [claim(a, 5000, protocol)]);
                        const attempt = () => r.claim("B", [second]);
                        if (kernelRefuses(a, b)) assert.throws(attempt, /B: x is .*; A \(x\) already uses/, `${a} then ${b} ${protocol}`);
                        else assert.doesNotThrow(attempt, `${a} then ${b} ${protocol}`);
                        // Another port or the other protocol never clashes.
                        const r2 = new PortRegistry("h");
                        r2.claim("A", [claim(a, 5000, protocol)]);
                        r2.claim("B", [claim(b, 5001, protocol), claim(b, 5000, protocol === "tcp" ? "udp" : "tcp")]);
                    }
    });

    it("names both addresses when a wildcard covers the other, and says what to change", () => {
        const r = new PortRegistry('Host "vm"');
        r.claim("A", [claim("::", 5000, "tcp")]);
        assert.throws(
            () => r.claim("B", [claim("127.0.0.1", 5000, "tcp")]),
            /A \(x\) already uses tcp port 5000 on every address \(::, which Linux binds dual-stack: IPv6 and IPv4\) of Host "vm", which x on 127\.0\.0\.1 overlaps; choose another port, or addresses that do not overlap/,
        );
    });

    it("within one component, 0.0.0.0 beside :: is allowed (the daemons bind :: IPv6-only or skip 0.0.0.0); a specific address under a wildcard is not", () => {
        new PortRegistry("h").claim("A", [claim("0.0.0.0", 5000, "tcp"), claim("::", 5000, "tcp")]);
        new PortRegistry("h").claim("A", [claim("::", 5000, "tcp"), claim("0.0.0.0", 5000, "tcp")]);
        assert.throws(() => new PortRegistry("h").claim("A", [claim("0.0.0.0", 5000, "tcp"), claim("127.0.0.1", 5000, "tcp")]), /A \(x\) already uses/);
        assert.throws(() => new PortRegistry("h").claim("A", [claim("::", 5000, "tcp"), claim("::1", 5000, "tcp")]), /A \(x\) already uses/);
    });
});

/** Every listener whose address a user sets, as its component claims it: a wildcard it accepts, and the port. */
const KINDS: { name: string; wildcards: string[]; claims: (address: string, port: number) => PortClaim[] }[] = [
    {
        name: "SynapseHomeserver httpBindAddresses",
        wildcards: [], // refused: the listener trusts X-Forwarded-For
        claims: (a, port) =>
            synapsePortClaims(resolveSynapseSettings("s", { serverName: "example.com", httpPort: port, httpBindAddresses: [a] })).filter(
                (c) => c.port === port,
            ),
    },
    {
        name: "SynapseHomeserver replication.bindAddresses",
        wildcards: [], // refused: replication must never be reachable from the internet
        claims: (a, port) =>
            synapsePortClaims(resolveSynapseSettings("s", { serverName: "example.com", httpPort: 1, replication: { port, bindAddresses: [a] } })).filter(
                (c) => c.port === port,
            ),
    },
    {
        name: "PostgresDatabase listenAddresses",
        wildcards: ["0.0.0.0", "::"],
        claims: (a, port) => postgresPortClaims(resolvePostgresSettings("pg", { port, listenAddresses: [a] })),
    },
    {
        name: "RedisServer bindAddresses",
        wildcards: [], // refused: Redis must not listen on every address
        claims: (a, port) => redisPortClaims(resolveRedisSettings("r", { port, bindAddresses: [a] })),
    },
    {
        name: "TurnServer listeningIps",
        wildcards: ["*"],
        claims: (a, port) =>
            turnPortClaims(resolveTurnSettings("t", { domain: "turn.example.com", port, ...(a === "*" ? {} : { listeningIps: [a] }) })).filter(
                (c) => c.port === port && c.protocol === "tcp",
            ),
    },
];

describe("every listener kind: a wildcard one and a specific one on the same port clash, in either order", () => {
    const PORT = 7000;
    for (const wild of KINDS.filter((k) => k.wildcards.length))
        for (const specific of KINDS)
            it(`${wild.name} on a wildcard, ${specific.name} on one address`, () => {
                for (const w of wild.wildcards)
                    for (const s of [...V4, ...V6]) {
                        const first = wild.claims(w, PORT);
                        const second = specific.claims(s, PORT);
                        assert.ok(first.length && second.length);
                        for (const [x, y] of [
                            [first, second],
                            [second, first],
                        ]) {
                            const r = new PortRegistry('Host "vm"');
                            r.claim("first", x);
                            const attempt = () => r.claim("second", y);
                            if (anyRefused(x, y)) assert.throws(attempt, /second: .* is 7000; first \(.*\) already uses tcp port 7000/, `${w} / ${s}`);
                            else assert.doesNotThrow(attempt, `${w} / ${s}`);
                        }
                    }
            });
});

describe("a port clash names the option the user set, not the listener's label", () => {
    const taken = (port: number) => {
        const r = new PortRegistry('Host "vm"');
        r.claim("Other", [{ port, protocol: "tcp", address: "*", owner: "other" }]);
        return r;
    };
    const CASES: [string, number, () => PortClaim[]][] = [
        ["metrics.port", 9100, () => synapsePortClaims(resolveSynapseSettings("s", { serverName: "example.com", metrics: { enabled: true, port: 9100 } }))],
        ["replication.port", 9093, () => synapsePortClaims(resolveSynapseSettings("s", { serverName: "example.com", replication: { port: 9093 } }))],
        ["port", 6380, () => redisPortClaims(resolveRedisSettings("r", { port: 6380 }))],
    ];
    for (const [setting, port, claims] of CASES)
        it(setting, () => {
            const mine = claims().filter((c) => c.port === port);
            assert.ok(mine.length);
            assert.throws(
                () => taken(port).claim("Mine", mine),
                new RegExp(`^ConfigError: Mine: ${setting.replace(".", "\\.")} is ${port}; Other \\(other\\) already uses`),
            );
        });
});
