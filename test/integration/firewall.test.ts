// The rendered firewall is checked by nftables itself (nft -c parses and
// validates against the kernel's grammar without loading anything).
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { HOST_FILES, resolveHostSettings } from "../../src/model/host";
import { hostBootstrapScript } from "../../src/provision/host";
import { driftCheckScript, WRITTEN_DIR } from "../../src/render/drift";
import {
    FIREWALL_FRAGMENT_DIR,
    FIREWALL_TABLE,
    renderFirewall,
    renderFirewallFragment,
    renderFirewallUnit,
    renderSshPorts,
    SSH_PORTS_FILE,
} from "../../src/render/firewall";
import { makeTempDir, registerCleanup, run, sleep, spawnDaemon } from "../support/integration/processes";
import { goldenOs } from "../support/unit/fixtures";

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

/**
 * The firewall as the host runs it, in two network namespaces joined by a
 * veth pair: `fw` holds the table (loaded with the commands of the rendered
 * unit, as systemd would run them), `client` probes a port of `fw` that no
 * ruleset opens.
 */
describe("firewall changes on a running host (network namespaces)", function () {
    const id = `${process.pid % 10000}`;
    const fw = `pm-fw-${id}`;
    const client = `pm-fwc-${id}`;
    const FW_ADDR = "10.213.7.1";
    let dir: string;
    let unit: { start: string[]; reload: string[]; stop: string[] };
    const inFw = (cmd: string, args: string[], allowFailure = true) => run("ip", ["netns", "exec", fw, cmd, ...args], { allowFailure });
    const tableExists = async () => (await inFw("nft", ["list", "table", "inet", FIREWALL_TABLE])).code === 0;
    /** The ruleset with this test's paths; `opened` are ports it opens besides SSH. */
    const writeRuleset = (opened: number[]) =>
        fs.writeFileSync(
            path.join(dir, "firewall.nft"),
            renderFirewall(opened.map((port) => ({ port, protocol: "tcp" as const, owner: `test ${port}` })))
                .replace(SSH_PORTS_FILE, path.join(dir, "ssh-ports.nft"))
                .replace(FIREWALL_FRAGMENT_DIR, path.join(dir, "firewall.d")),
        );
    /** An Exec line of the rendered unit as argv; systemd's `-` prefix (failure ignored) dropped. */
    const execLine = (text: string, key: string) => {
        const line = text.split("\n").find((l) => l.startsWith(`${key}=`));
        assert.ok(line, `the unit has no ${key}`);
        return line
            .slice(key.length + 1)
            .replace(/^-/, "")
            .split(" ");
    };
    const runUnit = (argv: string[]) => inFw(argv[0], argv.slice(1));

    before(async function () {
        dir = makeTempDir("nft-live");
        fs.mkdirSync(path.join(dir, "firewall.d"));
        fs.writeFileSync(path.join(dir, "ssh-ports.nft"), renderSshPorts("22"));
        const text = renderFirewallUnit(path.join(dir, "firewall.nft"));
        unit = { start: execLine(text, "ExecStart"), reload: execLine(text, "ExecReload"), stop: execLine(text, "ExecStop") };
        registerCleanup({ name: `netns ${fw} ${client}`, run: () => removeNamespaces(), runSync: () => void removeNamespacesSync() });
        for (const ns of [fw, client]) {
            await run("ip", ["netns", "add", ns]);
            await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
        }
        await run("ip", ["link", "add", `pmv${id}a`, "netns", fw, "type", "veth", "peer", "name", `pmv${id}b`, "netns", client]);
        await run("ip", ["-n", fw, "addr", "add", `${FW_ADDR}/24`, "dev", `pmv${id}a`]);
        await run("ip", ["-n", client, "addr", "add", "10.213.7.2/24", "dev", `pmv${id}b`]);
        await run("ip", ["-n", fw, "link", "set", `pmv${id}a`, "up"]);
        await run("ip", ["-n", client, "link", "set", `pmv${id}b`, "up"]);
    });

    after(async function () {
        await removeNamespaces();
    });

    async function removeNamespaces() {
        for (const ns of [fw, client]) await run("ip", ["netns", "del", ns], { allowFailure: true });
    }
    function removeNamespacesSync() {
        for (const ns of [fw, client]) spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
    }

    /** Generations (`nft monitor`'s transactions) after which the table was absent; `events` is the monitor's text. */
    function generationsWithoutTable(events: string): string[] {
        const bad: string[] = [];
        let present = true;
        for (const line of events.split("\n")) {
            if (line === `add table inet ${FIREWALL_TABLE}`) present = true;
            else if (line === `delete table inet ${FIREWALL_TABLE}`) present = false;
            else if (line.startsWith("# new generation") && !present) bad.push(line);
        }
        return bad;
    }

    /** Runs `changes` while `nft monitor` watches the fw namespace and the client probes `port` every few ms. */
    async function watched(port: number, changes: () => Promise<void>) {
        const monitor = spawnDaemon("ip", ["netns", "exec", fw, "nft", "monitor"], { name: "nft monitor" });
        const probe = spawnDaemon(
            "ip",
            [
                "netns",
                "exec",
                client,
                "python3",
                "-c",
                // Connects until stdin closes... or until killed; prints OPEN for every connection that got through.
                `import socket, time\nend = time.time() + 120\nwhile time.time() < end:\n    s = socket.socket(); s.settimeout(0.05)\n    try:\n        s.connect(("${FW_ADDR}", ${port})); print("OPEN", flush=True)\n    except OSError:\n        pass\n    finally:\n        s.close()\n`,
            ],
            { name: "probe" },
        );
        await sleep(500);
        try {
            await changes();
            await sleep(300);
        } finally {
            await probe.stop("SIGKILL");
            await monitor.stop("SIGTERM");
        }
        return {
            events: monitor.log(),
            opened: probe
                .log()
                .split("\n")
                .filter((l) => l === "OPEN").length,
        };
    }

    it("a reload with a changed ruleset replaces the table in one transaction: never absent, a closed port never reachable", async function () {
        // Something listens on 8766 in fw; no ruleset opens it.
        const listener = spawnDaemon("ip", ["netns", "exec", fw, "python3", "-m", "http.server", "8766", "--bind", FW_ADDR], { name: "listener" });
        try {
            await sleep(1000);
            // Without the table the probe gets through: it can see an opening.
            const open = await watched(8766, async () => sleep(500));
            assert.ok(open.opened > 0, "the probe never reached the listener without a firewall");

            writeRuleset([443]);
            assert.equal((await runUnit(unit.start)).code, 0);
            assert.ok(await tableExists());
            const reloads = await watched(8766, async () => {
                for (let i = 0; i < 20; i++) {
                    writeRuleset(i % 2 ? [443, 8448] : [443]);
                    const r = await runUnit(unit.reload);
                    assert.equal(r.code, 0, r.stderr);
                }
            });
            assert.equal(reloads.opened, 0, "a probe got through during the reloads");
            assert.equal((reloads.events.match(/^# new generation/gm) ?? []).length, 20, reloads.events);
            assert.deepEqual(generationsWithoutTable(reloads.events), [], reloads.events);
            assert.match((await inFw("nft", ["list", "table", "inet", FIREWALL_TABLE])).stdout, /tcp dport 8448 accept/);

            // What a restart does (stop, then start), as the unit was changed before: the detector sees the gap.
            const restart = await watched(8766, async () => {
                await runUnit(unit.stop);
                await runUnit(unit.start);
            });
            assert.equal(generationsWithoutTable(restart.events).length, 1, restart.events);
        } finally {
            await listener.stop();
        }
    });

    it("a failing load (a broken fragment) leaves the old rules active", async function () {
        writeRuleset([443]);
        assert.equal((await runUnit(unit.reload)).code, 0);
        const before = (await inFw("nft", ["list", "table", "inet", FIREWALL_TABLE])).stdout;
        writeRuleset([443, 5349]);
        fs.writeFileSync(path.join(dir, "firewall.d", "broken.nft"), `add rule inet ${FIREWALL_TABLE} input tcp dport 80 acept\n`);
        try {
            const r = await runUnit(unit.reload);
            assert.notEqual(r.code, 0);
            assert.match(r.stderr, /broken\.nft/);
        } finally {
            fs.rmSync(path.join(dir, "firewall.d", "broken.nft"));
        }
        assert.equal((await inFw("nft", ["list", "table", "inet", FIREWALL_TABLE])).stdout, before);
        assert.doesNotMatch(before, /5349/);
    });

    it("after `nft flush ruleset` the drift check reports the table missing, and the Host's next run loads it again", async function () {
        writeRuleset([443]);
        assert.equal((await runUnit(unit.reload)).code, 0);
        // A systemctl that knows only this unit, enabled and active (as after `nft flush ruleset`), whose reload runs ExecReload.
        const bin = path.join(dir, "bin");
        fs.mkdirSync(bin, { recursive: true });
        fs.writeFileSync(
            path.join(bin, "systemctl"),
            `#!/bin/bash\nunit=\${@: -1}\n[ "$unit" = pulumi-matrix-firewall.service ] || exit 1\ncase $1 in\nis-enabled|is-active) exit 0 ;;\nreload) exec ${unit.reload.join(" ")} ;;\n*) exit 1 ;;\nesac\n`,
            { mode: 0o755 },
        );
        // The drift check, its records in this test's directory: the ruleset pulumi-matrix wrote.
        const written = path.join(dir, "written");
        fs.mkdirSync(path.join(written, "records", path.dirname(HOST_FILES.firewallRuleset)), { recursive: true });
        fs.mkdirSync(path.join(written, "files", path.dirname(HOST_FILES.firewallRuleset)), { recursive: true });
        const ruleset = fs.readFileSync(path.join(dir, "firewall.nft"), "utf8");
        fs.writeFileSync(path.join(written, "files", HOST_FILES.firewallRuleset), ruleset);
        const drift = path.join(dir, "drift");
        fs.writeFileSync(drift, driftCheckScript().split(WRITTEN_DIR).join(written), { mode: 0o700 });
        // Only the table is checked here: the host's own file is not this test's.
        const check = () =>
            run("ip", ["netns", "exec", fw, "env", `PATH=${bin}:${process.env.PATH}`, "bash", drift, HOST_FILES.firewallRuleset], { allowFailure: true });
        fs.writeFileSync(path.join(written, "records", HOST_FILES.firewallRuleset), `readable 644 root root x host-firewall\n`);
        // The repair of every Host run, as the bootstrap script has it.
        const script = hostBootstrapScript(resolveHostSettings("h", {}), goldenOs());
        const lines = script.split("\n");
        const first = lines.findIndex((l) => l.startsWith("if systemctl is-active -q pulumi-matrix-firewall.service && ! nft list table"));
        assert.ok(first >= 0, "the bootstrap has no repair of a missing table");
        const repair = lines.slice(first, first + 3).join("\n");
        assert.match(repair, /\nfi$/);

        await inFw("nft", ["flush", "ruleset"], false);
        assert.equal(await tableExists(), false);
        const missing = await check();
        assert.equal(missing.code, 1, missing.stdout + missing.stderr);
        assert.match(missing.stdout, /firewall: the nftables table inet pulumi_matrix is missing/);
        const repaired = await run("ip", ["netns", "exec", fw, "env", `PATH=${bin}:${process.env.PATH}`, "bash", "-euc", repair], { allowFailure: true });
        assert.equal(repaired.code, 0, repaired.stderr);
        assert.match(repaired.stdout, /table inet pulumi_matrix was missing/);
        assert.equal(await tableExists(), true);
        const again = await check();
        assert.doesNotMatch(again.stdout, /pulumi_matrix is missing/);
        // With the table there, the repair does nothing.
        const quiet = await run("ip", ["netns", "exec", fw, "env", `PATH=${bin}:${process.env.PATH}`, "bash", "-euc", repair]);
        assert.equal(quiet.stdout, "");
    });
});
