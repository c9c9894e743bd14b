import * as assert from "node:assert/strict";

import * as pulumi from "@pulumi/pulumi";

import { MatrixStack } from "../../components/MatrixStack";
import { dnsZoneFile } from "../../src/render/dns";
import { stackArgs } from "../support/unit/fixtures";
import { runWithMocks, valueOf } from "../support/unit/mocks";

describe("MatrixStack's zone file from its plan", () => {
    it("is the zone file dnsZoneFile renders from the same settings, addresses known later put in", async () => {
        const element = { domain: "element.example.com", version: "1.11.100", sha256: "a".repeat(64) };
        const turn = { domain: "turn.example.com", port: 3479 };
        const { result } = await runWithMocks(
            () =>
                new MatrixStack("prod", {
                    ...stackArgs(),
                    element,
                    turn,
                    dns: {
                        zone: { name: "example.com" },
                        ipv4: pulumi.output("203.0.113.10"),
                        ipv6: "2001:DB8::10",
                        delegation: "srv",
                        legacySrv: true,
                        zoneFile: { serial: 7 },
                    },
                }),
            (s) => [s.zoneFile!],
        );
        const expected = dnsZoneFile(
            {
                zone: { name: "example.com" },
                serverName: "example.com",
                publicBaseUrl: "https://matrix.example.com/",
                ipv4: "203.0.113.10",
                ipv6: "2001:DB8::10",
                elementDomain: element.domain,
                turnHost: turn.domain,
                turnPort: 3479,
                turnTlsPort: 5349,
                delegation: "srv",
                legacySrv: true,
                federationPort: 8448,
                certificateNames: ["matrix.example.com", "example.com", "element.example.com", "turn.example.com"],
                stack: "test",
            },
            { serial: 7 },
        );
        const zone = await valueOf(result.zoneFile!);
        assert.equal(zone, expected);
        assert.match(zone, /AAAA +2001:db8::10/);
        assert.match(zone, /_turn\._udp +300 IN SRV +10 5 3479 turn\.example\.com\./);
        // CAA: the proxy's CA (Let's Encrypt by default) on each of the stack's names but the apex.
        assert.deepEqual(
            [...zone.matchAll(/^(\S+) +300 IN CAA +(.*) ;/gm)].map((m) => `${m[1]} ${m[2]}`),
            ['matrix 0 issue "letsencrypt.org"', 'element 0 issue "letsencrypt.org"', 'turn 0 issue "letsencrypt.org"'],
        );
    });

    it("names no CA in CAA when the proxy's ACME directory is another CA's and dns.caa is not set; dns.caa names one", async () => {
        const zoneOf = async (caa?: string[]) => {
            const { result } = await runWithMocks(
                () =>
                    new MatrixStack("prod", {
                        ...stackArgs(),
                        proxy: { acme: { email: "admin@example.com", directoryUrl: "https://acme.zerossl.com/v2/DV90" } },
                        dns: { zone: { name: "example.com" }, ipv4: "203.0.113.10", delegation: "srv", ...(caa ? { caa } : {}) },
                    }),
                (s) => [s.zoneFile!],
            );
            return valueOf(result.zoneFile!);
        };
        assert.doesNotMatch(await zoneOf(), / CAA /);
        assert.match(await zoneOf(["sectigo.com"]), /^matrix +300 IN CAA +0 issue "sectigo\.com" ;/m);
    });
});
