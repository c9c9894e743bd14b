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
    });
});
