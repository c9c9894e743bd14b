import * as assert from "node:assert/strict";

import * as pulumi from "@pulumi/pulumi";

import { Host } from "../../components/Host";
import { MatrixStack } from "../../components/MatrixStack";
import { PostgresDatabase } from "../../components/PostgresDatabase";
import { SynapseHomeserver } from "../../components/SynapseHomeserver";
import { ConfigError } from "../../src/model/errors";
import { checkSupportedOs, parseHostKey, PortRegistry, resolveHostSettings } from "../../src/model/host";
import { hostBootstrapScript } from "../../src/provision/host";
import { hostKeyFingerprint, withScriptTarget } from "../../src/provision/target";
import { driftCheckScript } from "../../src/render/drift";
import { renderFirewall, renderFirewallFragment, renderFirewallUnit, renderSshPorts } from "../../src/render/firewall";
import { renderJournald } from "../../src/render/host";
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

describe("the host is authenticated by its SSH host key (issue 19 item 1)", () => {
    before(() => pulumi.runtime.setMocks(new RecordingMocks(), "matrix", "test", false));
    const OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const ECDSA = `ecdsa-sha2-nistp256 ${Buffer.concat([sshString("ecdsa-sha2-nistp256"), sshString("nistp256"), sshString("\x04" + "k".repeat(64))]).toString("base64")}`;

    it("parses one line `<type> <base64> [comment]` of a known type whose data names the same type", () => {
        assert.deepEqual(parseHostKey(TEST_HOST_KEY), { key: TEST_HOST_KEY });
        assert.deepEqual(parseHostKey(`  ${TEST_HOST_KEY} root@vm1\n`), { key: TEST_HOST_KEY }, "a comment and the newline of a .pub file are dropped");
        assert.deepEqual(parseHostKey(ECDSA), { key: ECDSA });
        for (const [bad, why] of [
            [`${TEST_HOST_KEY}\ntouch /tmp/pwned`, /more than one line/],
            [`${TEST_HOST_KEY}\rx`, /more than one line/],
            [`${TEST_HOST_KEY}\n${OTHER}`, /more than one line/],
            ["ssh-ed25519", /not `<type> <base64>`/],
            [`ssh-dss ${TEST_HOST_KEY.split(" ")[1]}`, /unknown key type "ssh-dss"/],
            [`ssh-rsa ${TEST_HOST_KEY.split(" ")[1]}`, /data says "ssh-ed25519", not ssh-rsa/],
            ["ssh-ed25519 AAAA$$$$", /not base64/],
            ["ssh-ed25519 QUJD", /data says nothing of its type/],
            [`${TEST_HOST_KEY} comment\u00e9`, /printable ASCII/],
        ] as const)
            assert.match((parseHostKey(bad) as { error: string }).error ?? "parsed", why, JSON.stringify(bad));
    });

    it("is required: a Host without hostKey fails before anything is created, saying why and how to get it", async () => {
        const { mocks } = await runWithMocks(() =>
            assert.throws(
                () => new Host("h", { host: "203.0.113.10", privateKey: TEST_SSH_KEY }),
                (e: Error) =>
                    e instanceof ConfigError &&
                    /^Host "h": hostKey is not set; expected the host's SSH public key/.test(e.message) &&
                    /whoever sits on the network path .* receives every script/.test(e.message) &&
                    /README's "Host key" section: .*boot log or serial console.*cloud-init/.test(e.message) &&
                    /set acceptAnyHostKey \(the stack's sshAcceptAnyHostKey\): true/.test(e.message),
            ),
        );
        assert.deepEqual(
            mocks.resources.filter((r) => r.type === "command:remote:Command"),
            [],
        );
        assert.throws(() => new Host("h", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: " " }), /hostKey is empty/);
        // Never shown: a value that is not a key may be anything.
        assert.throws(
            () => new Host("h", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: `${TEST_HOST_KEY}\ntouch /tmp/pwned` }),
            (e: Error) => /hostKey is more than one line, or control characters; expected one line/.test(e.message) && !/pwned/.test(e.message),
        );
    });

    it("an Output host key is checked once known, before the probe dials with it", async () => {
        const h = new Host("h", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: pulumi.output(`${TEST_HOST_KEY}\necho injected`) });
        await assert.rejects(valueOf(pulumi.output(h.connection.hostKey)), /Host "h": hostKey is more than one line/);
    });

    it("every connection that carries a script, the probe's too, verifies the key; the bastion verifies its own", async () => {
        const { mocks } = await runWithMocks(() => {
            const host = new Host("vm", {
                host: "10.0.0.5",
                privateKey: TEST_SSH_KEY,
                hostKey: `${TEST_HOST_KEY} root@vm`,
                bastion: { host: "203.0.113.9", hostKey: OTHER },
            });
            new PostgresDatabase("pg", { host });
        });
        const commands = mocks.resources.filter((r) => r.type === "command:remote:Command");
        assert.ok(commands.some((r) => r.name === "vm-probe") && commands.length >= 3, commands.map((r) => r.name).join(", "));
        for (const r of commands) {
            const conn = r.inputs.connection as { hostKey?: string; proxy?: { hostKey?: string } };
            assert.equal(conn.hostKey, TEST_HOST_KEY, `${r.name}: the host is not verified`);
            assert.equal(conn.proxy?.hostKey, OTHER, `${r.name}: the bastion is not verified`);
        }
        assert.throws(
            () => new Host("b", { host: "10.0.0.5", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY, bastion: { host: "203.0.113.9" } }),
            /Host "b": bastion\.hostKey is not set; .*set bastion\.acceptAnyHostKey: true/,
        );
    });

    it("the opt-out, acceptAnyHostKey, connects without a key and warns on every run", async () => {
        const warned: string[] = [];
        const original = pulumi.log.warn;
        pulumi.log.warn = async (m: string) => void warned.push(m);
        try {
            const { mocks } = await runWithMocks(() => {
                new Host("any", {
                    host: "203.0.113.10",
                    privateKey: TEST_SSH_KEY,
                    hostKey: "",
                    acceptAnyHostKey: true,
                    bastion: { host: "203.0.113.9", acceptAnyHostKey: true },
                });
            });
            const conn = mocks.byName("any-probe").inputs.connection as { hostKey?: string; proxy?: { hostKey?: string } };
            assert.equal(conn.hostKey, undefined);
            assert.equal(conn.proxy?.hostKey, undefined);
        } finally {
            pulumi.log.warn = original;
        }
        assert.equal(warned.length, 2);
        assert.match(warned[0], /^Host "any": acceptAnyHostKey is true: the host's SSH key is NOT verified; .*receives every script/);
        assert.match(warned[1], /^Host "any": bastion\.acceptAnyHostKey is true/);
    });

    it("a script's target line is one line whatever the input (a line break cannot start a command run as root)", () => {
        const script = withScriptTarget("echo ok", {
            host: "203.0.113.10\nrm -rf /x",
            port: 22,
            user: "root",
            hostKey: "ssh-ed25519\n; touch /tmp/pwned",
            reapply: "a\nb",
        });
        const lines = script.split("\n");
        assert.equal(lines.at(-1), "echo ok");
        for (const l of lines.slice(0, -1)) assert.match(l, /^# /, JSON.stringify(script));
        assert.doesNotMatch(script, /touch \/tmp\/pwned/, "a value that is not a key is never written, not even commented");
        assert.equal(hostKeyFingerprint(TEST_HOST_KEY), "ssh-ed25519 SHA256:JDIwoXQEmvo8v+gcPbp+Q9pZlOkq5sfKWzKzEGeLjos");
    });
});

describe("the firewall changes without opening (issue 19 item 7)", () => {
    const script = hostBootstrapScript(resolveHostSettings("h", {}), goldenOs());

    it("a changed ruleset is reloaded (one nft transaction), never restarted or stopped", () => {
        assert.match(script, /if pm_changed host-firewall; then[\s\S]*?systemctl reload pulumi-matrix-firewall\.service[\s\S]*?\nfi\n/);
        assert.doesNotMatch(script, /systemctl (restart|stop|try-restart) pulumi-matrix-firewall/);
        assert.doesNotMatch(script, /pm_owe pulumi-matrix-firewall/);
        assert.match(renderFirewallUnit("/r.nft"), /^PartOf=nftables\.service$/m);
        assert.match(renderFirewallUnit("/r.nft"), /^ExecReload=\/usr\/sbin\/nft -f \/r\.nft$/m);
    });

    it("every run loads the table when it is missing, changed or not; the drift check reports it missing", () => {
        const repair =
            /\nif systemctl is-active -q pulumi-matrix-firewall\.service && ! nft list table inet pulumi_matrix >\/dev\/null 2>&1; then\n.*systemctl reload pulumi-matrix-firewall\.service\nfi\n/;
        assert.match(script, repair);
        // Outside the changed-only handlers: after the last `pm_changed`.
        assert.ok(script.search(repair) > script.lastIndexOf("if pm_changed host-firewall"));
        assert.match(driftCheckScript(), /nft list table inet pulumi_matrix .*\n.*is missing/);
    });

    it("accepts DHCPv6 replies from link-local to link-local only, and drops forwarding", () => {
        const nft = renderFirewall([]);
        assert.match(nft, /^ {8}ip6 saddr fe80::\/10 ip6 daddr fe80::\/10 udp sport 547 udp dport 546 accept comment "dhcpv6 replies"$/m);
        assert.match(nft, /chain forward \{\n {8}type filter hook forward priority filter; policy drop;\n {4}\}/);
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
    golden("host", "journald.conf.d/50-pulumi-matrix.conf", () => renderJournald(resolveHostSettings("golden", {}).journal));
    golden("host", "pulumi-matrix-drift", () => driftCheckScript());
    golden("host", "firewall.d/postgres.nft", () => renderFirewallFragment('PostgresDatabase "golden"', [FIREWALL_RULES[0]]));
    golden("host", "pulumi-matrix-firewall.service", () => renderFirewallUnit("/etc/pulumi-matrix/firewall.nft"));
    golden("host", "scripts/host-bootstrap.sh", () =>
        hostBootstrapScript(resolveHostSettings("golden", { firewall: { rules: [FIREWALL_RULES[1]] } }), goldenOs()),
    );
});

/** An SSH wire-format string: 4-byte length, then the bytes. */
function sshString(s: string): Buffer {
    const b = Buffer.from(s, "latin1");
    const n = Buffer.alloc(4);
    n.writeUInt32BE(b.length);
    return Buffer.concat([n, b]);
}

describe("the journal is bounded in size and age (issue 23)", () => {
    it("defaults to 1G and 30 days, rotating files daily so the age bound holds", () => {
        const s = resolveHostSettings("h", {});
        assert.deepEqual(s.journal, { systemMaxUse: "1G", maxRetentionSec: "30d" });
        const conf = renderJournald(s.journal);
        assert.match(conf, /^\[Journal\]\nSystemMaxUse=1G\nMaxRetentionSec=30d\nMaxFileSec=1day\n$/m);
    });

    it("the drop-in is a file set whose change, and only its change, restarts a running journald", () => {
        const script = hostBootstrapScript(resolveHostSettings("h", { journal: { systemMaxUse: "500M", maxRetentionSec: "2w" } }), goldenOs());
        assert.match(script, /\/etc\/systemd\/journald\.conf\.d\/50-pulumi-matrix\.conf/);
        assert.match(script, /SystemMaxUse=500M/);
        assert.match(script, /MaxRetentionSec=2w/);
        const handler =
            /if pm_changed host-journald; then\n {4}if systemctl is-active -q systemd-journald\.service; then\n {8}echo 'restarting systemd-journald\.service'\n {8}systemctl restart systemd-journald\.service\n/;
        assert.match(script, handler);
        // The only restart of journald is inside that handler.
        assert.equal(script.match(/systemctl restart systemd-journald/g)?.length, 1);
    });

    for (const [option, value, expected] of [
        ["journal.systemMaxUse", "2GB", /journal\.systemMaxUse is "2GB"; expected a size: a whole number with K, M, G or T, such as 500M or 2G/],
        ["journal.systemMaxUse", "1024", /journal\.systemMaxUse is "1024"; expected a size/],
        ["journal.maxRetentionSec", "23h", /journal\.maxRetentionSec is "23h"; expected an age of at least one day/],
        ["journal.maxRetentionSec", "0d", /journal\.maxRetentionSec is "0d"; expected an age of at least one day/],
        ["journal.maxRetentionSec", "1month", /journal\.maxRetentionSec is "1month"; expected an age/],
    ] as const) {
        it(`refuses ${option} ${value}, naming the option`, () => {
            const key = option.split(".")[1];
            assert.throws(() => resolveHostSettings("h", { journal: { [key]: value } }), expected);
        });
    }

    it("accepts a day exactly, in hours, days or weeks", () => {
        for (const v of ["24h", "1d", "1w"]) assert.doesNotThrow(() => resolveHostSettings("h", { journal: { maxRetentionSec: v } }));
    });
});
