import * as assert from "node:assert/strict";

import * as pulumi from "@pulumi/pulumi";

import { Host } from "../../components/Host";
import { MatrixStack } from "../../components/MatrixStack";
import { PostgresDatabase } from "../../components/PostgresDatabase";
import { SynapseHomeserver } from "../../components/SynapseHomeserver";
import { checkSupportedOs, PortRegistry, resolveHostSettings } from "../../src/model/host";
import { hostBootstrapScript } from "../../src/provision/host";
import { driftCheckScript } from "../../src/render/drift";
import { renderFirewall, renderFirewallFragment, renderFirewallUnit, renderSshPorts } from "../../src/render/firewall";
import { golden } from "../support/golden";
import { goldenOs, stackArgs, TEST_HOST_KEY, TEST_SSH_KEY } from "../support/unit/fixtures";
import { RecordedResource, RecordingMocks, runWithMocks, valueOf } from "../support/unit/mocks";
import { deployStack as deploy, rejects, resolveSynapse as synapse } from "../support/unit/stack";

describe("bad input is refused before anything touches a VM", () => {
    before(() => pulumi.runtime.setMocks(new RecordingMocks(), "matrix", "test", false));

    it("ports, and port clashes on one host", () => {
        rejects(synapse({ httpPort: 0 }), "httpPort", "0", /1 to 65535/);
        rejects(synapse({ metrics: { port: 8008 } }), "metrics.port", "8008", /other than httpPort/);
        assert.throws(
            () => new MatrixStack("clash", { ...stackArgs({ httpPort: 5432, httpBindAddresses: ["127.0.0.1"] }) }),
            /SynapseHomeserver "clash-synapse": synapse\.httpPort is 5432; PostgresDatabase "clash-postgres" \(postgresql\) already uses tcp port 5432 on 127.0.0.1 of Host "clash-host"; choose another port/,
        );
        const ports = () => new PortRegistry('Host "h"');
        const r = ports();
        r.claim("A", [{ port: 80, protocol: "tcp", address: "*", owner: "a" }]);
        assert.throws(
            () => r.claim("B", [{ port: 80, protocol: "tcp", address: "10.0.0.1", owner: "b" }]),
            /B: b port is 80; A \(a\) already uses tcp port 80 on all addresses of Host "h"/,
        );
        const u = ports();
        u.claim("A", [{ port: 80, protocol: "tcp", address: "*", owner: "a" }]);
        assert.doesNotThrow(() => u.claim("B", [{ port: 80, protocol: "udp", address: "*", owner: "b" }]));
        const v = ports();
        v.claim("A", [{ port: 80, protocol: "tcp", address: "10.0.0.1", owner: "a" }]);
        assert.doesNotThrow(() => v.claim("B", [{ port: 80, protocol: "tcp", address: "10.0.0.2", owner: "b" }]));
    });

    it("host settings: SSH address, user, boot timeout, firewall rules", async () => {
        assert.throws(
            () => new Host("h", { host: "1.2.3.4", privateKey: "k", hostKey: TEST_HOST_KEY, bootTimeout: "soon" }),
            /bootTimeout is "soon"; expected a duration/,
        );
        assert.throws(
            () => new Host("h", { host: "1.2.3.4", privateKey: "k", firewall: { rules: [{ port: 10, toPort: 5, protocol: "udp", owner: "x" }] } }),
            /toPort is 5; expected a port >= 10/,
        );
        assert.throws(
            () => new Host("h", { host: "1.2.3.4", privateKey: "k", firewall: { rules: [{ port: 10, protocol: "tcp", sources: ["everyone"], owner: "x" }] } }),
            /sources is "everyone"/,
        );
        assert.throws(() => new Host("h", { host: "1.2.3.4", privateKey: "k", hostKey: TEST_HOST_KEY, user: "Bad User" }), /user is "Bad User"/);
        assert.throws(
            () => checkSupportedOs('Host "h"', 'PRETTY_NAME="Ubuntu 20.04.6 LTS"\nID=ubuntu\nVERSION_ID="20.04"'),
            /the host's operating system is "Ubuntu 20.04.6 LTS"; supported are .*Ubuntu 24.04/,
        );
        assert.equal(checkSupportedOs("h", 'ID=ubuntu\nVERSION_ID="24.04"\nPRETTY_NAME="Ubuntu 24.04.1 LTS"').codename, "noble");
    });

    it("an SSH address from an Output is checked when it is known", async () => {
        const h = new Host("h", { host: pulumi.output("bad host name!"), privateKey: "k", hostKey: TEST_HOST_KEY });
        await assert.rejects(valueOf(pulumi.output(h.connection.host)), /Host "h": host is "bad host name!"; expected an IP address or a DNS host name/);
    });
});

export type { RecordedResource };

describe("MatrixStack under Pulumi mocks", () => {
    it("waits for a booting VM: the probe dials forever within a bounded create timeout", async () => {
        const { mocks } = await deploy();
        const conn = mocks.byName("prod-host-probe").inputs.connection as Record<string, unknown>;
        assert.equal(conn.dialErrorLimit, -1);
        assert.equal(conn.host, "203.0.113.10");
        assert.equal(conn.user, "root");
    });

    it("uses sudo for a non-root SSH user", async () => {
        const args = stackArgs();
        args.host.user = "debian";
        const { mocks } = await deploy(args);
        assert.equal(mocks.byName("prod-synapse-config").inputs.create, "sudo -n bash -s");
        assert.equal(mocks.byName("prod-host-bootstrap").inputs.create, "sudo -n bash -s");
    });

    it("refuses an unsupported OS at first contact, naming what it found", async () => {
        const mocks = new RecordingMocks();
        mocks.osRelease = 'PRETTY_NAME="CentOS Stream 9"\nID=centos\nVERSION_ID="9"';
        await pulumi.runtime.setMocks(mocks, "matrix", "test", false);
        const stack = new MatrixStack("prod", stackArgs());
        await assert.rejects(valueOf(stack.host.os), /CentOS Stream 9.*supported are Debian 12/);
    });
});

describe("the component platform", () => {
    it("two components claiming one port on one Host fail with both names and the port", async () => {
        await runWithMocks(() => {
            const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const db = new PostgresDatabase("pg", { host });
            assert.throws(
                () => new SynapseHomeserver("synapse", { host, database: db, serverName: "example.com", httpPort: 5432 }),
                /SynapseHomeserver "synapse": httpPort is 5432; PostgresDatabase "pg" \(postgresql\) already uses tcp port 5432 on 127\.0\.0\.1 of Host "vm"; choose another port/,
            );
            assert.throws(
                () => new PostgresDatabase("pg2", { host }),
                /PostgresDatabase "pg2": port is 5432; PostgresDatabase "pg" \(postgresql\) already uses/,
            );
            assert.doesNotThrow(() => new PostgresDatabase("pg3", { host, port: 5433 }));
        });
    });
});

/** The golden host's firewall openings: PostgreSQL to a private network, nginx to everyone. */
const FIREWALL_RULES = [
    { port: 5432, protocol: "tcp" as const, sources: ["10.0.0.0/24", "fd00::/8"], owner: "postgresql" },
    { port: 443, protocol: "tcp" as const, owner: "nginx" },
];

describe("host: golden files (update with `npm run golden:update`, review the diff)", () => {
    golden("host", "firewall.nft", () => renderFirewall(FIREWALL_RULES));
    golden("host", "ssh-ports.nft", () => renderSshPorts("22, 2222"));
    golden("host", "pulumi-matrix-drift", () => driftCheckScript());
    golden("host", "firewall.d/postgres.nft", () => renderFirewallFragment('PostgresDatabase "golden"', [FIREWALL_RULES[0]]));
    golden("host", "pulumi-matrix-firewall.service", () => renderFirewallUnit("/etc/pulumi-matrix/firewall.nft"));
    golden("host", "scripts/host-bootstrap.sh", () =>
        hostBootstrapScript(resolveHostSettings("golden", { firewall: { rules: [FIREWALL_RULES[1]] } }), goldenOs()),
    );
});
