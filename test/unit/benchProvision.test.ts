import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";

import {
    aptPackagesOf,
    byComponent,
    componentOf,
    floorScript,
    InstallPlan,
    installPlan,
    mergeResults,
    parsePhases,
    ProvisionResults,
    readmeTable,
    stepsOf,
    table,
    TimedEvent,
    workerNamesOf,
} from "../../bench/provision";
import { DEFAULT_SYNAPSE_VERSION, synapseRequirements } from "../../src/model/synapse";

/**
 * `npm run bench:provision` boots VMs and is run by hand: these check its
 * pure parts, so the floor it compares against keeps installing what the
 * library installs, and its timings and tables keep reading right.
 */
describe("bench:provision's pure parts", () => {
    let plan: InstallPlan;

    before(async function () {
        this.timeout(60000);
        plan = await installPlan();
    });

    it("reads pm_apt_install calls, not the function's definition or comments; refuses one it cannot read", () => {
        const script = [
            "# pm_apt_install PKG...: installs the packages that are missing",
            "pm_apt_install() {",
            "    local missing=()",
            "}",
            "pm_apt_install nginx certbot openssl curl",
            "if ! command -v curl >/dev/null; then pm_apt_install curl ca-certificates tar; fi",
            "    pm_apt_install python3-venv && echo done",
        ].join("\n");
        assert.deepEqual(aptPackagesOf(script), ["nginx", "certbot", "openssl", "curl", "ca-certificates", "tar", "python3-venv"]);
        assert.throws(() => aptPackagesOf('pm_apt_install "$pkg"'), /cannot read: pm_apt_install "\$pkg"/);
        assert.deepEqual(workerNamesOf("worker_app: synapse.app.generic_worker\nworker_name: federation_reader1\n"), ["federation_reader1"]);
    });

    it("the plan is what the default stack's own scripts install: the services' packages, the pinned Synapse, the workers", () => {
        for (const p of ["postgresql", "redis-server", "nginx", "certbot", "coturn", "python3-venv", "python3-psycopg2", "nftables"]) {
            assert.ok(plan.packages.includes(p), `${p} is not in the plan: ${plan.packages.join(" ")}`);
        }
        assert.equal(new Set(plan.packages).size, plan.packages.length, "a package is listed twice");
        assert.equal(plan.synapseVersion, DEFAULT_SYNAPSE_VERSION);
        assert.equal(plan.requirements, synapseRequirements(DEFAULT_SYNAPSE_VERSION));
        assert.ok(plan.workers.length >= 2, `workers: ${plan.workers.join(", ")}`);
        assert.ok(
            plan.scripts.some((s) => s.endsWith("-synapse-install")),
            "the Synapse install script was not read",
        );
    });

    it("the floor script installs exactly the plan's packages in one apt-get, Synapse from the same hashes, and starts every worker", () => {
        const script = floorScript(plan);
        const install = /^apt-get install -y -q --no-install-recommends (.*) >\/dev\/null$/m.exec(script);
        assert.ok(install, "no apt-get install line");
        assert.deepEqual(install[1].split(" "), plan.packages);
        assert.ok(script.includes(plan.requirements.trimEnd()), "the requirements file is not the library's");
        assert.match(script, /pip install .*--only-binary=:all: --require-hashes --no-deps -r /);
        for (const w of plan.workers) {
            assert.match(script, new RegExp(`^worker_name: ${w}$`, "m"));
            assert.match(script, new RegExp(`systemd-run -q --unit=floor-synapse-${w} `));
        }
        // Valid bash.
        execFileSync("bash", ["-n"], { input: script });
    });

    it("reads the floor's phase markers and the engine's step events", () => {
        assert.deepEqual(parsePhases("noise\nPHASE start 100.5\nPHASE apt 160.0\nother\nPHASE done 200.5\n"), [
            { name: "start", at: 0 },
            { name: "apt", at: 59.5 },
            { name: "done", at: 100 },
        ]);
        const urn = (chain: string, name: string) => `urn:pulumi:dev::pulumi-matrix::${chain}::${name}`;
        const cmd = (component: string, name: string) => urn(`matrix:index:MatrixStack$matrix:index:${component}$command:remote:Command`, name);
        assert.equal(componentOf(cmd("SynapseHomeserver", "dev-synapse-install")), "SynapseHomeserver");
        assert.equal(componentOf(urn("pulumi:pulumi:Stack", "x")), "-");
        const pre = (u: string, type: string, at: number): TimedEvent => ({ at, resourcePreEvent: { metadata: { urn: u, type, op: "create" } } });
        const out = (u: string, type: string, at: number): TimedEvent => ({ at, resOutputsEvent: { metadata: { urn: u, type, op: "create" } } });
        const C = "command:remote:Command";
        const a = cmd("SynapseHomeserver", "dev-synapse-install");
        const b = cmd("SynapseHomeserver", "dev-synapse-config");
        const pg = cmd("PostgresDatabase", "dev-postgres-server");
        const stack = urn("pulumi:pulumi:Stack", "pulumi-matrix-dev");
        const comp = urn("matrix:index:MatrixStack$matrix:index:SynapseHomeserver", "dev-synapse");
        const steps = stepsOf(
            [
                pre(stack, "pulumi:pulumi:Stack", 1000),
                pre(comp, "matrix:index:SynapseHomeserver", 1000),
                pre(pg, C, 2000),
                pre(a, C, 3000),
                out(pg, C, 12000),
                out(a, C, 63000),
                pre(b, C, 63000),
                out(b, C, 73000),
            ],
            1000,
        );
        assert.equal(steps.length, 4, "the stack itself is not a step");
        const byName = Object.fromEntries(byComponent(steps).map((c) => [c.component, c]));
        assert.deepEqual(Object.keys(byName), ["PostgresDatabase", "SynapseHomeserver"]);
        assert.deepEqual(byName.SynapseHomeserver, {
            component: "SynapseHomeserver",
            steps: 2,
            commands: 2,
            start: 2,
            end: 72,
            commandSeconds: 70,
            slowest: { name: "dev-synapse-install", seconds: 60 },
        });
        assert.equal(byName.PostgresDatabase.commandSeconds, 10);
    });

    it("prints the table and the README's, and merges results.json without touching other benchmarks' keys", () => {
        const r: ProvisionResults = {
            date: "2026-12-02T20:00:00Z",
            machine: "2 x test",
            accel: "tcg",
            engine: "v3",
            synapseVersion: plan.synapseVersion,
            packages: plan.packages,
            workers: plan.workers,
            library: {
                firstUpSeconds: 1300,
                components: [
                    { component: "SynapseHomeserver", steps: 2, commands: 2, start: 2, end: 72, commandSeconds: 70, slowest: { name: "x", seconds: 60 } },
                    { component: "MatrixStack", steps: 3, commands: 0, start: 0, end: 1, commandSeconds: 0 },
                ],
            },
            floor: { seconds: 1000, phases: [{ name: "start", at: 0 }] },
            ratio: 1.3,
            target: 1.3,
            noopUp: { seconds: 40, changes: { same: 30 } },
            drift: { seconds: 5, exitCode: 0 },
            note: "n",
        };
        const t = table(r);
        assert.match(t, /^SynapseHomeserver\s+2\s+2\s+2\.0\s+72\.0\s+70\.0\s+x 60\.0 s$/m);
        assert.match(t, /ratio:\s+1\.30x \(target <= 1\.3x: met\)/);
        assert.match(readmeTable(r), /\| ratio \(target <= 1\.3x\) \| 1\.30x \|/);
        // Each component's steps, those that ran commands on the VM.
        assert.match(readmeTable(r), /^\| SynapseHomeserver \| 2 \| 2\.0 \| 72\.0 \| 70\.0 \| `x` 60\.0 s \|$/m);
        assert.doesNotMatch(readmeTable(r), /^\| MatrixStack /m);
        const merged = JSON.parse(mergeResults(JSON.stringify({ matrix: { p50: 1 }, provision: { old: true } }), "provision", { ratio: 1.3 }));
        assert.deepEqual(merged, { matrix: { p50: 1 }, provision: { ratio: 1.3 } });
        assert.deepEqual(JSON.parse(mergeResults(undefined, "provision", 1)), { provision: 1 });
        assert.throws(() => mergeResults("[1]", "provision", 1), /not a JSON object/);
    });
});
