/**
 * E2E apt (by hand, `npm run test:e2e:full`; not in CI): installMethod "apt"
 * on a fresh VM through the real engine. CI proves the same package
 * behaviour with real apt and dpkg in test/integration/apt.test.ts; this
 * suite adds the VM's own systemd and the engine, at about 35 minutes of
 * emulated VM time on a 2-core machine, more than CI can give it.
 * A signed apt repository on this machine's loopback (the apt integration
 * test's builders: a test `matrix-synapse-py3` made with debhelper, with
 * matrix.org's maintainer behaviour and a real Synapse virtualenv as its
 * payload) is reached from the VM at 10.0.2.2, qemu's alias of this
 * machine's loopback. An inline program deploys Host, PostgresDatabase,
 * SynapseHomeserver, RedisServer and a WorkerPool (a federation reader and a
 * sender, run from the package's code); then the package, Synapse's starts
 * (the journal against dpkg's log), owners and modes, the unit's enablement,
 * a second `up` that changes nothing, and an upgrade to the next build
 * through a version change: the workers stop before dpkg upgrades the code
 * they run and start again after the main process migrated and answers.
 *
 * Run alone: E2E_FULL=1 npx mocha --config test/e2e/.mocharc.json test/e2e/apt.test.ts
 * (as root; needs scripts/e2e-deps.sh and scripts/integration-deps.sh).
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { Host, PostgresDatabase, RedisServer, SynapseHomeserver, WorkerPool } from "../../src";
import { AptRepository } from "../../src/model/synapse/install";
import {
    AptTestRepository,
    buildKeyringPackage,
    buildSynapsePackage,
    makeTestKey,
    ROOT_SUITE,
    startAptRepository,
    TestKey,
} from "../support/integration/aptRepo";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";
import { bootVm, ensureBaseImage, Vm } from "../support/vm";
import { startTimestamps } from "../support/vm/deploy";
import { assertNothingChanged, InlineStack, inlineStack, InlineUp, stepSeconds, useEngine } from "../support/vm/engine";

const log = (s: string) => process.stderr.write(`      [e2e] ${s}\n`);
/** The first install, and the upgrade (the library's default release): both cached virtualenvs of the apt integration test. */
const V1 = "1.163.1";
const V2 = "1.163.2";
const build = (v: string) => `${v}+${ROOT_SUITE}1`;
const PKG = "matrix-synapse-py3";
/** The guest reaches this machine's 127.0.0.1 at 10.0.2.2 (qemu user networking). */
const HOST_FROM_GUEST = "10.0.2.2";
/** The pool's workers (WorkerPool's default instances: a federation reader and a sender). */
const WORKERS = ["matrix-synapse-worker@federation_reader1.service", "matrix-synapse-worker@federation_sender1.service"];
const UNITS = ["matrix-synapse.service", "postgresql@15-main.service", "redis-server.service", ...WORKERS];
/** systemd's message ids of a unit's start and stop jobs ("Starting ..."/"Stopping ..."), logged for every start, restart and stop. */
const UNIT_STARTING = "7d4958e842da4a758f6c1cdc7b36dcc5";
const UNIT_STOPPING = "de5b426a63be47a7b6ac3eaac82e2f6f";
/** Resource names of the inline program (`<component>-<role>`). */
const INSTALL = "apt-synapse-install";
const CONFIG = "apt-synapse-config";
const WORKERS_CONFIG = "apt-workers-config";
/** What conf.d holds: the pool's files, none of the package's (its postinst writes server_name.yaml and report_stats.yaml). */
const CONF_D = "40-workers.yaml\n41-federation-senders.yaml\n";

/** How long a command's step took in an operation (it must have one). */
function stepTime(up: InlineUp, name: string): number {
    const t = stepSeconds(up.stdout, name);
    assert.ok(t !== undefined, `the CLI's output has no finished step of ${name}`);
    return t;
}

/** Runs only under E2E_FULL=1 (npm run test:e2e:full). */
const byHand = process.env.E2E_FULL === "1" ? describe : describe.skip;

byHand("e2e apt: installMethod apt from a signed repository on this machine, fresh VM through the real engine", function () {
    this.timeout(60 * 60_000);
    let vm: Vm;
    let repo: AptTestRepository;
    let key: TestKey;
    let debs: Record<string, string>;
    let keyringDeb: string;
    let aptRepository: AptRepository;
    let stack: InlineStack;
    let first: InlineUp;
    /** The install step's output after the first up. */
    let installed: { stdout: string; stderr: string };
    /** How many apt runs history.log had before the first up, and after it. */
    const aptRunsBefore = { first: 0, upgrade: 0 };
    /** The version the program deploys: the upgrade changes it. */
    let version = V1;
    /** The federation reader's HTTP port (the pool's settings). */
    let readerPort: number;
    const timings: string[] = [];

    /** dpkg's runs of the package: [first line, `status installed` line] in epoch seconds (dpkg's log has whole seconds). */
    const dpkgWindows = async (): Promise<{ from: number; to: number; version: string }[]> => {
        const r = await vm.exec(`grep -E ' ${PKG}(:amd64)? ' /var/log/dpkg.log | while read -r d t rest; do echo "$(date -d "$d $t" +%s) $rest"; done`);
        const out: { from: number; to: number; version: string }[] = [];
        let from: number | undefined;
        for (const line of r.stdout.trim().split("\n")) {
            const [ts, action, ...rest] = line.split(" ");
            if (action === "install" || action === "upgrade") from = Number(ts);
            if (action === "status" && rest[0] === "installed" && from !== undefined) {
                out.push({ from, to: Number(ts), version: rest[2] });
                from = undefined;
            }
        }
        return out;
    };
    /** systemd's start and stop jobs of a unit (Synapse's main process by default), in epoch seconds (fractional). */
    const unitJobs = async (unit = "matrix-synapse.service"): Promise<{ kind: "start" | "stop"; at: number; message: string }[]> => {
        const r = await vm.exec(`journalctl -o json --no-pager --output-fields=MESSAGE_ID,MESSAGE UNIT=${unit}`);
        assert.equal(r.code, 0, r.stderr);
        return r.stdout
            .trim()
            .split("\n")
            .filter((l) => l.trim())
            .map((l) => JSON.parse(l) as { MESSAGE_ID?: string; MESSAGE?: string; __REALTIME_TIMESTAMP: string })
            .filter((e) => e.MESSAGE_ID === UNIT_STARTING || e.MESSAGE_ID === UNIT_STOPPING)
            .map((e) => ({
                kind: e.MESSAGE_ID === UNIT_STARTING ? ("start" as const) : ("stop" as const),
                at: Number(e.__REALTIME_TIMESTAMP) / 1e6,
                message: String(e.MESSAGE),
            }));
    };
    /** No start or stop of Synapse while dpkg worked on its package. */
    const assertNoJobDuringDpkg = (jobs: { kind: string; at: number; message: string }[], windows: { from: number; to: number }[]) => {
        for (const j of jobs)
            for (const w of windows)
                assert.ok(
                    Math.floor(j.at) < w.from || Math.floor(j.at) > w.to,
                    `${j.kind} of matrix-synapse.service at ${j.at} while dpkg worked on ${PKG} (${w.from}..${w.to}): ${j.message}`,
                );
    };
    /** How many runs apt's history.log has. */
    const aptRunCount = async () => Number((await vm.exec("grep -c '^End-Date:' /var/log/apt/history.log || true")).stdout.trim() || 0);
    /** apt's runs on the VM (history.log) from the `since`th on: start offset, duration and what they installed, for the timings. */
    const aptRuns = async (since: number): Promise<string> => {
        const r = await vm.exec(
            'awk \'/^Start-Date:/ { s = $2 " " $3 } /^Commandline:/ { sub(/^Commandline: /, ""); c = $0 } /^End-Date:/ { print s "|" $2 " " $3 "|" c }\' /var/log/apt/history.log',
        );
        const runs = r.stdout
            .trim()
            .split("\n")
            .filter((l) => l)
            .map((l) => {
                const [start, end, cmd] = l.split("|");
                const words = cmd.split(" ");
                const what = words.filter((w, i) => i > words.indexOf("install") && !w.startsWith("-") && words[i - 1] !== "-o");
                return { start: Date.parse(start.replace(" ", "T")) / 1000, end: Date.parse(end.replace(" ", "T")) / 1000, what: what.join(" ") };
            })
            .slice(since);
        const t0 = runs[0]?.start ?? 0;
        return runs.map((x) => `+${x.start - t0} s ${x.end - x.start} s ${x.what}`).join("; ");
    };
    /** What dpkg and the maintainer scripts printed during apt's runs (apt runs dpkg on a pseudo-terminal and logs it here). */
    const termLog = async () => (await vm.exec("cat /var/log/apt/term.log")).stdout.replace(/\r/g, "");
    const dpkgStatus = async () => (await vm.exec(`dpkg-query -W -f='\${Status} \${Version}' ${PKG}`)).stdout.trim();
    /** What a Synapse process reports through the federation version endpoint: the main process's, or the federation reader's port. */
    const serverVersion = async (port = 8008) => {
        const r = await vm.exec(`curl -fsS http://127.0.0.1:${port}/_matrix/federation/v1/version`);
        assert.equal(r.code, 0, r.stderr);
        return (JSON.parse(r.stdout) as { server: { name: string; version: string } }).server;
    };

    before(async function () {
        for (const tool of ["dpkg-buildpackage", "dh", "apt-ftparchive", "gpg"]) {
            try {
                execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
            } catch {
                throw new Error(`${tool} is missing: this suite builds its apt repository like the apt integration test (run scripts/integration-deps.sh)`);
            }
        }
        useEngine(log);
        const t0 = Date.now();
        const img = await ensureBaseImage(log);
        timings.push(`image: ${img.cached ? "cached" : `built in ${img.buildSeconds} s`} (${Math.round((Date.now() - t0) / 1000)} s)`);
        // The repository is built on this machine while the VM boots.
        const t1 = Date.now();
        const prepared = (async () => {
            const [venv1, venv2, r, k] = await Promise.all([ensureSynapseVenv(V1), ensureSynapseVenv(V2), startAptRepository(), makeTestKey("repo")]);
            [repo, key] = [r, k];
            const [d1, d2, kd] = await Promise.all([
                buildSynapsePackage(build(V1), venv1, repo.pool),
                buildSynapsePackage(build(V2), venv2, repo.pool),
                buildKeyringPackage("2026.01.01", key.keyring, repo.pool),
            ]);
            debs = { [V1]: d1, [V2]: d2 };
            keyringDeb = kd;
            fs.copyFileSync(key.keyring, path.join(repo.dir, "keyring.gpg"));
            // Like matrix.org's: the index lists one build of Synapse.
            await repo.publish([debs[V1], keyringDeb], key);
            const mb = Math.round(fs.statSync(d1).size / 1e6);
            timings.push(`repository (2 Synapse builds of ${mb} MB, keyring, signed index): ${Math.round((Date.now() - t1) / 1000)} s`);
        })();
        const booted = bootVm({ name: "apt", memoryMb: 3072, log }).then((v) => {
            vm = v;
            timings.push(`boot to SSH: ${v.bootSeconds} s (${v.accel})`);
        });
        await Promise.all([prepared, booted]);
        const base = repo.base.replace("127.0.0.1", HOST_FROM_GUEST);
        aptRepository = { url: repo.url.replace(repo.base, base), keyringUrl: `${base}keyring.gpg`, fingerprint: key.fingerprint };
        aptRunsBefore.first = await aptRunCount();
        const c = vm.connection();
        stack = await inlineStack(async () => {
            const host = new Host("apt-host", {
                host: c.host,
                port: c.port,
                user: c.user,
                privateKey: c.privateKey,
                hostKey: c.hostKey,
                ntpServers: [HOST_FROM_GUEST],
                // The smoke suite covers it; here it would only cost minutes of emulation.
                unattendedUpgrades: false,
            });
            const database = new PostgresDatabase("apt-postgres", { host });
            const synapse = new SynapseHomeserver("apt-synapse", {
                host,
                database,
                serverName: "matrix.test",
                installMethod: "apt",
                aptRepository,
                version,
                replication: {},
            });
            const redis = new RedisServer("apt-redis", { host });
            const pool = new WorkerPool("apt-workers", { synapse, redis });
            const reader = pool.settings.workers.find((w) => w.role === "federation_reader")!;
            return { serverName: synapse.serverName, version: synapse.version, signingKeyId: synapse.signingKeyId, readerPort: reader.port };
        }, log);
    });

    after(async function () {
        for (const t of timings) log(`timing: ${t}`);
        await vm?.stop();
        await repo?.stop();
    });

    it(`deploys Host, PostgreSQL and Synapse ${V1} with installMethod "apt" from the repository at ${HOST_FROM_GUEST}`, async function () {
        first = await stack.up(`first up (apt, ${V1})`);
        timings.push(`first up: ${first.seconds} s`);
        timings.push(`Synapse install step (apt, first install): ${stepTime(first, INSTALL)} s`);
        for (const name of ["apt-host-bootstrap", "apt-postgres-server", CONFIG]) timings.push(`${name}: ${stepTime(first, name)} s`);
        const [w] = await dpkgWindows();
        timings.push(`dpkg unpack + configure of ${PKG} ${w.version}: ${w.to - w.from} s`);
        timings.push(`apt-get install runs of the first up (start, duration, packages): ${await aptRuns(aptRunsBefore.first)}`);
        aptRunsBefore.upgrade = await aptRunCount();
        assert.equal(first.outputs.version, V1);
        readerPort = first.outputs.readerPort as number;
        installed = (await stack.commandOutputs()).get(INSTALL)!;
        assert.match(
            installed.stdout,
            new RegExp(`^Synapse ${build(V1).replace(/[.+]/g, "\\$&")} installed from ${aptRepository.url.replace(/[.:/]/g, "\\$&")} `, "m"),
        );
    });

    it("dpkg has exactly the pinned build, installed and held; the keyring package too", async function () {
        assert.equal(await dpkgStatus(), `hold ok installed ${build(V1)}`);
        assert.equal((await vm.exec("apt-mark showhold")).stdout.trim(), PKG);
        assert.equal((await vm.exec("dpkg-query -W -f='${db:Status-Status} ${Version}' matrix-org-archive-keyring")).stdout, "installed 2026.01.01");
        const source = await vm.exec("cat /etc/apt/sources.list.d/matrix-org.list");
        assert.equal(source.stdout, `deb [signed-by=/usr/share/keyrings/matrix-org-archive-keyring.gpg] ${aptRepository.url} ${ROOT_SUITE} main\n`);
    });

    it(`answers /health; the federation version endpoint reports ${V1}, on the main process and on the federation reader`, async function () {
        assert.equal((await vm.exec("curl -fsS http://127.0.0.1:8008/health")).stdout, "OK");
        assert.deepEqual(await serverVersion(), { name: "Synapse", version: V1 });
        assert.deepEqual((await vm.exec(`systemctl is-active ${WORKERS.join(" ")}`)).stdout.trim().split("\n"), ["active", "active"]);
        assert.deepEqual(await serverVersion(readerPort), { name: "Synapse", version: V1 });
        // The workers run the package's code, as the main process does.
        const cmd = await vm.exec(
            `for u in matrix-synapse.service ${WORKERS.join(" ")}; do tr '\\0' ' ' </proc/$(systemctl show -p MainPID --value $u)/cmdline; echo; done`,
        );
        assert.deepEqual(
            cmd.stdout
                .trim()
                .split("\n")
                .map((x) => x.startsWith("/opt/venvs/matrix-synapse/bin/python")),
            [true, true, true],
            cmd.stdout,
        );
    });

    it("the package's maintainer scripts started nothing: their start was refused; Synapse started from the library's steps only, after dpkg", async function () {
        // apt runs dpkg on a terminal of its own: the maintainer scripts' output is in apt's terminal log.
        assert.match(await termLog(), /^\/usr\/sbin\/policy-rc\.d returned 101, not running 'start matrix-synapse\.service'$/m);
        assert.equal((await vm.exec("test -e /usr/sbin/policy-rc.d")).code, 1, "policy-rc.d was left behind");
        const jobs = await unitJobs();
        const windows = await dpkgWindows();
        assert.equal(windows.length, 1, JSON.stringify(windows));
        // Synapse's config step starts it; the pool's config step restarts it when it says so (the workers' shared config is the main process's too).
        const restarts = ((await stack.commandOutputs()).get(WORKERS_CONFIG)!.stdout.match(/^restarting matrix-synapse\.service$/gm) ?? []).length;
        assert.ok(restarts <= 1, `the pool's config step restarted Synapse ${restarts} times`);
        assert.deepEqual(
            jobs.map((j) => j.kind),
            restarts ? ["start", "stop", "start"] : ["start"],
            jobs.map((j) => j.message).join("\n"),
        );
        assert.ok(jobs[0].at > windows[0].to, "Synapse started before dpkg had finished");
        assertNoJobDuringDpkg(jobs, windows);
        assert.equal((await vm.exec("systemctl show -p NRestarts --value matrix-synapse.service")).stdout.trim(), "0");
        // What a start on the package's default config would have left.
        assert.equal((await vm.exec("test -e /var/lib/matrix-synapse/homeserver.db")).code, 1, "a SQLite file of the package's default config");
        assert.equal((await vm.exec("ls -A /etc/matrix-synapse/conf.d")).stdout, CONF_D, "conf.d holds the package's files");
    });

    it("/etc/matrix-synapse is root:matrix-synapse 0750, /var/lib/matrix-synapse matrix-synapse 0750 (dpkg statoverrides)", async function () {
        const r = await vm.exec("stat -c '%U:%G %a' /etc/matrix-synapse /var/lib/matrix-synapse");
        assert.equal(r.stdout, "root:matrix-synapse 750\nmatrix-synapse:matrix-synapse 750\n");
        const overrides = await vm.exec("dpkg-statoverride --list /etc/matrix-synapse /var/lib/matrix-synapse | sort");
        assert.equal(overrides.stdout, "matrix-synapse matrix-synapse 750 /var/lib/matrix-synapse\nroot matrix-synapse 750 /etc/matrix-synapse\n");
    });

    it("the package's unit is not enabled under multi-user.target; Synapse is wanted by matrix-synapse.target only", async function () {
        assert.equal((await vm.exec("test -e /etc/systemd/system/multi-user.target.wants/matrix-synapse.service")).code, 1);
        assert.equal((await vm.exec("systemctl show -p WantedBy --value matrix-synapse.service")).stdout.trim(), "matrix-synapse.target");
        assert.match(installed.stdout, /removed \/etc\/systemd\/system\/multi-user\.target\.wants\/matrix-synapse\.service/);
    });

    it("a second `up` reports no change, runs no command and restarts nothing", async function () {
        const before = await startTimestamps(vm, UNITS);
        const again = await stack.up("second up (no change)");
        timings.push(`second up (no change): ${again.seconds} s`);
        assertNothingChanged(again);
        assert.deepEqual(
            [...again.ops].filter(([, op]) => op !== "same"),
            [],
        );
        assert.deepEqual(await startTimestamps(vm, UNITS), before);
    });

    it(`the next build published and version ${V2}: the install checks the config, stops the workers, upgrades the package (its restart refused), restarts Synapse once onto ${V2}, then starts the workers`, async function () {
        // matrix.org's index moves on to the new build; the old .deb stays in the pool.
        await repo.publish([debs[V2], keyringDeb], key);
        version = V2;
        const before = await startTimestamps(vm, UNITS);
        const jobsBefore = (await unitJobs()).length;
        const workerJobsBefore = await Promise.all(WORKERS.map(async (w) => (await unitJobs(w)).length));
        const up = await stack.up(`up version ${V1} -> ${V2}`);
        timings.push(`up of the upgrade: ${up.seconds} s`);
        timings.push(`Synapse install step (apt, upgrade): ${stepTime(up, INSTALL)} s`);
        assert.deepEqual(
            [...up.ops].filter(([, op]) => op !== "same").map(([name, op]) => `${op} ${name}`),
            [`update ${INSTALL}`, `update ${CONFIG}`],
        );
        assert.equal(await dpkgStatus(), `hold ok installed ${build(V2)}`);
        const outputs = await stack.commandOutputs();
        assert.match(await termLog(), /^\/usr\/sbin\/policy-rc\.d returned 101, not running 'restart matrix-synapse\.service'$/m);
        assert.match(outputs.get(INSTALL)!.stdout, new RegExp(`^Synapse ${build(V2).replace(/[.+]/g, "\\$&")} installed from `, "m"));
        assert.match(outputs.get(INSTALL)!.stdout, new RegExp(`^Synapse ${V2.replace(/\./g, "\\.")} accepts the current configuration$`, "m"));
        assert.match(outputs.get(INSTALL)!.stdout, new RegExp(`^Synapse upgraded from ${V1.replace(/\./g, "\\.")} to ${V2.replace(/\./g, "\\.")}$`, "m"));
        assert.equal((outputs.get(CONFIG)!.stdout.match(/^restarting matrix-synapse\.service$/gm) ?? []).length, 0, "the install step restarted Synapse, once");
        assert.deepEqual(await serverVersion(), { name: "Synapse", version: V2 });

        const windows = await dpkgWindows();
        assert.deepEqual(
            windows.map((w) => w.version),
            [build(V1), build(V2)],
        );
        timings.push(`dpkg unpack + configure of the upgrade: ${windows[1].to - windows[1].from} s`);
        timings.push(`apt-get install runs of the upgrade: ${await aptRuns(aptRunsBefore.upgrade)}`);
        const jobs = await unitJobs();
        const upgradeJobs = jobs.slice(jobsBefore);
        assert.deepEqual(
            upgradeJobs.map((j) => j.kind),
            ["stop", "start"],
            jobs.map((j) => j.message).join("\n"),
        );
        assert.ok(upgradeJobs[0].at > windows[1].to, "Synapse was stopped before dpkg had finished the upgrade");
        assertNoJobDuringDpkg(jobs, windows);
        // The workers stopped before dpkg replaced the code they run, and started once the main process had migrated and restarted.
        for (const [i, w] of WORKERS.entries()) {
            const wj = (await unitJobs(w)).slice(workerJobsBefore[i]);
            assert.deepEqual(
                wj.map((j) => j.kind),
                ["stop", "start"],
                `${w}: ${wj.map((j) => j.message).join("; ")}`,
            );
            // dpkg's log has whole seconds.
            assert.ok(Math.floor(wj[0].at) <= windows[1].from, `${w} still ran while dpkg upgraded ${PKG}`);
            assert.ok(wj[1].at > upgradeJobs[1].at, `${w} started before the main process restarted`);
        }
        const install = outputs.get(INSTALL)!.stdout;
        for (const w of WORKERS) {
            assert.ok(install.indexOf(`stopped ${w}`) >= 0 && install.indexOf(`stopped ${w}`) < install.indexOf(`started ${w}`), install);
            assert.ok(install.indexOf(`started ${w}`) < install.indexOf(`Synapse upgraded from ${V1}`), install);
        }
        assert.deepEqual((await vm.exec(`systemctl is-active ${WORKERS.join(" ")}`)).stdout.trim().split("\n"), ["active", "active"]);
        assert.deepEqual(await serverVersion(readerPort), { name: "Synapse", version: V2 });
        const after = await startTimestamps(vm, UNITS);
        assert.notEqual(after["matrix-synapse.service"], before["matrix-synapse.service"]);
        assert.equal(after["postgresql@15-main.service"], before["postgresql@15-main.service"], "PostgreSQL restarted");
        assert.equal(after["redis-server.service"], before["redis-server.service"], "Redis restarted");

        const owners = await vm.exec("stat -c '%U:%G %a' /etc/matrix-synapse /var/lib/matrix-synapse");
        assert.equal(owners.stdout, "root:matrix-synapse 750\nmatrix-synapse:matrix-synapse 750\n");
        assert.equal((await vm.exec("test -e /etc/systemd/system/multi-user.target.wants/matrix-synapse.service")).code, 1);
        assert.equal((await vm.exec("ls -A /etc/matrix-synapse/conf.d")).stdout, CONF_D, "conf.d holds the package's files");
    });

    it("leaves no failed systemd unit", async function () {
        const r = await vm.exec("systemctl --failed --no-legend --plain");
        assert.equal(r.stdout.trim(), "");
    });
});
