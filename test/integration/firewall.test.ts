// The rendered firewall is checked by nftables itself (nft -c parses and
// validates against the kernel's grammar without loading anything).
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";

import { FIREWALL_FRAGMENT_DIR, renderFirewall, renderFirewallFragment, renderSshPorts, SSH_PORTS_FILE } from "../../src/render/firewall";
import { makeTempDir, run } from "../support/integration/processes";

describe("firewall ruleset", function () {
    it("is accepted by nft with single ports, ranges, IPv4 and IPv6 sources", async function () {
        const dir = makeTempDir("nft");
        fs.writeFileSync(path.join(dir, "ssh-ports.nft"), renderSshPorts("22, 2222"));
        const ruleset = renderFirewall([
            { port: 443, protocol: "tcp", owner: "nginx" },
            { port: 3478, protocol: "udp", owner: "coturn" },
            { port: 49152, toPort: 49999, protocol: "udp", owner: "coturn relay" },
            { port: 5432, protocol: "tcp", sources: ["10.0.0.0/24", "fd00::/8"], owner: "postgresql" },
        ]).replace(SSH_PORTS_FILE, path.join(dir, "ssh-ports.nft"));
        fs.writeFileSync(path.join(dir, "firewall.nft"), ruleset);
        const r = await run("nft", ["-c", "-f", path.join(dir, "firewall.nft")], { allowFailure: true });
        assert.equal(r.code, 0, r.stderr);
    });

    it("includes the components' fragments: accepted when valid, the whole load refused when one is broken", async function () {
        const dir = makeTempDir("nft");
        fs.mkdirSync(path.join(dir, "firewall.d"));
        fs.writeFileSync(path.join(dir, "ssh-ports.nft"), renderSshPorts("22"));
        const ruleset = renderFirewall([])
            .replace(SSH_PORTS_FILE, path.join(dir, "ssh-ports.nft"))
            .replace(FIREWALL_FRAGMENT_DIR, path.join(dir, "firewall.d"));
        fs.writeFileSync(path.join(dir, "firewall.nft"), ruleset);
        const check = () => run("nft", ["-c", "-f", path.join(dir, "firewall.nft")], { allowFailure: true });
        assert.equal((await check()).code, 0, "no fragment yet");
        fs.writeFileSync(
            path.join(dir, "firewall.d", "postgres.nft"),
            renderFirewallFragment('PostgresDatabase "pg"', [{ port: 5432, protocol: "tcp", sources: ["10.0.0.4/32", "fd00::4/128"], owner: "postgresql" }]),
        );
        fs.writeFileSync(path.join(dir, "firewall.d", "empty.nft"), renderFirewallFragment('SynapseHomeserver "s"', []));
        const ok = await check();
        assert.equal(ok.code, 0, ok.stderr);
        fs.writeFileSync(path.join(dir, "firewall.d", "broken.nft"), "add rule inet pulumi_matrix input tcp dport 80 acept\n");
        const bad = await check();
        assert.notEqual(bad.code, 0);
        assert.match(bad.stderr, /broken\.nft/);
    });

    it("is refused by nft when broken (the check can fail)", async function () {
        const dir = makeTempDir("nft");
        fs.writeFileSync(path.join(dir, "firewall.nft"), renderFirewall([]).replace(`include "${SSH_PORTS_FILE}"`, ""));
        const r = await run("nft", ["-c", "-f", path.join(dir, "firewall.nft")], { allowFailure: true });
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /ssh_ports/);
    });
});
