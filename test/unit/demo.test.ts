import * as assert from "node:assert/strict";

import {
    clock,
    endLine,
    engineEventsTo,
    estimateLines,
    HOSTS_BEGIN,
    HOSTS_END,
    Progress,
    startLine,
    stepLabel,
    withHostsEntry,
    withoutHostsEntry,
} from "../../scripts/demoProgress";

const URN = "urn:pulumi:demo::matrix-demo::matrix:index:MatrixStack$matrix:index:SynapseHomeserver$command:remote:Command::demo-synapse-install";

describe("npm run demo: progress", () => {
    it("prints the time since the start as m:ss, aligned, and h:mm:ss from an hour", () => {
        assert.equal(clock(0), " 0:00");
        assert.equal(clock(192_000), " 3:12");
        assert.equal(clock(34 * 60_000 + 5_999), "34:05");
        assert.equal(clock(3_725_000), "1:02:05");
        assert.equal(clock(-5), " 0:00");
    });

    it("a step's start line, and its end line with how long it took", () => {
        assert.equal(startLine(192_000, "deploying: SynapseHomeserver synapse-install"), "[ 3:12] deploying: SynapseHomeserver synapse-install ...");
        assert.equal(
            endLine(352_000, "deploying: SynapseHomeserver synapse-install", 160_000),
            "[ 5:52] deploying: SynapseHomeserver synapse-install ... done (2:40)",
        );
        assert.equal(endLine(61_000, "booting the VM", 1_000, "failed"), "[ 1:01] booting the VM ... failed (0:01)");
    });

    it("labels the commands that run on the VM by their component and step, and nothing else", () => {
        assert.equal(stepLabel({ op: "create", type: "command:remote:Command", urn: URN }, "demo-"), "deploying: SynapseHomeserver synapse-install");
        assert.equal(stepLabel({ op: "delete", type: "command:remote:Command", urn: URN }, "demo-"), "removing: SynapseHomeserver synapse-install");
        assert.equal(stepLabel({ op: "same", type: "command:remote:Command", urn: URN }, "demo-"), undefined, "a step with nothing to do");
        const key =
            "urn:pulumi:demo::matrix-demo::matrix:index:MatrixStack$matrix:index:SynapseHomeserver$tls:index/privateKey:PrivateKey::demo-synapse-signing-key";
        assert.equal(stepLabel({ op: "create", type: "tls:index/privateKey:PrivateKey", urn: key }, "demo-"), undefined, "instant resources");
        const top = "urn:pulumi:demo::matrix-demo::command:remote:Command::probe";
        assert.equal(stepLabel({ op: "create", type: "command:remote:Command", urn: top }, "demo-"), "deploying: probe");
    });

    it("engine events start a step and end it, done or failed, on one clock", () => {
        let now = 1000;
        const lines: string[] = [];
        const p = new Progress(
            (l) => lines.push(l),
            () => now,
        );
        const feed = engineEventsTo(p, "demo-");
        const metadata = { op: "create", type: "command:remote:Command", urn: URN };
        feed({ resourcePreEvent: { metadata } });
        now += 160_000;
        p.tick();
        feed({ resOutputsEvent: { metadata } });
        feed({ resourcePreEvent: { metadata: { ...metadata, op: "update" } } });
        now += 2_000;
        feed({ resOpFailedEvent: { metadata: { ...metadata, op: "update" } } });
        feed({ resOutputsEvent: { metadata: { ...metadata, op: "same" } } });
        p.tick();
        assert.deepEqual(lines, [
            "[ 0:00] deploying: SynapseHomeserver synapse-install ...",
            "[ 2:40] still running: deploying: SynapseHomeserver synapse-install (2:40)",
            "[ 2:40] deploying: SynapseHomeserver synapse-install ... done (2:40)",
            "[ 2:40] deploying: SynapseHomeserver synapse-install ...",
            "[ 2:42] deploying: SynapseHomeserver synapse-install ... failed (0:02)",
        ]);
    });

    it("a step run through step() ends as failed when it throws", async () => {
        const lines: string[] = [];
        const p = new Progress(
            (l) => lines.push(l),
            () => 0,
        );
        await assert.rejects(
            p.step("booting the VM", () => Promise.reject(new Error("no qemu"))),
            /no qemu/,
        );
        assert.deepEqual(lines, ["[ 0:00] booting the VM ...", "[ 0:00] booting the VM ... failed (0:00)"]);
    });

    it("estimates what was measured: 34 minutes of deployment under emulation, plus the first run's engine and image", () => {
        const cold = estimateLines({ engineCached: false, imageCached: false, accel: "tcg" });
        assert.match(cold.join("\n"), /engine.*7 min/);
        assert.match(cold.join("\n"), /deploying the stack.*34 min/);
        assert.equal(cold[cold.length - 1], "  in all: about 43 minutes on a 2-core machine");
        const warm = estimateLines({ engineCached: true, imageCached: true, accel: "unknown" });
        assert.equal(warm[warm.length - 1], "  in all: about 35 minutes on a 2-core machine");
        assert.match(estimateLines({ engineCached: true, imageCached: true, accel: "kvm" }).join("\n"), /under 34 min/);
    });
});

describe("npm run demo: the /etc/hosts entry", () => {
    const hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n";
    const block = `${HOSTS_BEGIN}\n127.0.0.1 matrix.demo.localhost\n${HOSTS_END}\n`;

    it("is added at the end between markers, once, and removed leaving the file as it was", () => {
        const added = withHostsEntry(hosts, "127.0.0.1", ["matrix.demo.localhost"]);
        assert.equal(added, hosts + block);
        assert.equal(withHostsEntry(added, "127.0.0.1", ["matrix.demo.localhost"]), added, "adding twice changes nothing");
        assert.equal(withoutHostsEntry(added), hosts);
        assert.equal(withoutHostsEntry(hosts), hosts, "a file without the block is left as it is");
    });

    it("keeps the lines around it, and a file without a final newline", () => {
        const mid = `${hosts}${block}10.0.0.1 other\n`;
        assert.equal(withoutHostsEntry(mid), `${hosts}10.0.0.1 other\n`);
        assert.equal(
            withHostsEntry("127.0.0.1 localhost", "127.0.0.1", ["a.localhost"]),
            `127.0.0.1 localhost\n${HOSTS_BEGIN}\n127.0.0.1 a.localhost\n${HOSTS_END}\n`,
        );
        assert.equal(
            withoutHostsEntry(`${hosts}${HOSTS_BEGIN}\n127.0.0.1 x\n`),
            `${hosts}${HOSTS_BEGIN}\n127.0.0.1 x\n`,
            "an unterminated block is not touched",
        );
    });
});
