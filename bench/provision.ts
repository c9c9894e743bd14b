/**
 * The pure parts of `npm run bench:provision` (bench/provision.bench.ts):
 * what the library installs (read from the scripts its own program renders,
 * so the floor cannot drift from it), the floor script built from that, the
 * timings read from the engine's events and the floor's markers, the table,
 * and the merge into bench/results.json. test/unit/benchProvision.test.ts
 * checks each of them.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

import * as pulumi from "@pulumi/pulumi";

import { DEFAULT_SYNAPSE_VERSION, synapseRequirements } from "../src/model/synapse";
import { TEST_HOST_KEY, TEST_SSH_KEY } from "../test/support/unit/fixtures";
import { RecordingMocks } from "../test/support/unit/mocks";

/** What the default stack installs and starts, as its own scripts say. */
export interface InstallPlan {
    /** Every package a `pm_apt_install` of any script names, in first-seen order. */
    packages: string[];
    /** The Synapse release the pip install pins, and its requirements file (with hashes). */
    synapseVersion: string;
    requirements: string;
    /** The workers of the default pool (`worker_name:` in the pool's config script). */
    workers: string[];
    /** The commands (resource names) whose scripts were read. */
    scripts: string[];
}

/**
 * The stack config the bench deploys, as the README quickstart sets it
 * (bench/provision.bench.ts sets the same through the quickstart's own lines;
 * here for the program under mocks, with placeholder keys).
 */
export function mockStackConfig(): Record<string, string> {
    return {
        "matrix:sshHost": "203.0.113.10",
        "matrix:sshPrivateKey": TEST_SSH_KEY,
        "matrix:sshHostKey": TEST_HOST_KEY,
        "matrix:serverName": "matrix.test",
        "matrix:publicBaseUrl": "https://matrix.test/",
        "matrix:adminUser": "admin",
        "matrix:acmeEmail": "admin@example.com",
        "matrix:elementDomain": "element.test",
        "matrix:turnDomain": "turn.test",
        "matrix:elementVersion": "1.11.999",
        "matrix:elementSha256": "0".repeat(64),
        "matrix:rtc": "none",
    };
}

/**
 * The packages named by the `pm_apt_install` calls of a script (not its
 * definition or a comment). A call whose arguments are not plain package
 * names (a variable, a substitution) throws: the floor must not miss one.
 */
export function aptPackagesOf(script: string): string[] {
    const out: string[] = [];
    for (const line of script.split("\n")) {
        const code = line.replace(/^\s*#.*$/, "");
        for (const at of [...code.matchAll(/\bpm_apt_install\b(?!\(\))/g)].map((m) => m.index)) {
            const m = /^pm_apt_install((?:[ \t]+[a-z0-9][a-z0-9+.-]*)+)[ \t]*(?:$|;|&&|\|\||\bfi\b)/.exec(code.slice(at));
            if (!m) throw new Error(`a pm_apt_install call the bench cannot read: ${line.trim()}`);
            for (const p of m[1].trim().split(/\s+/)) if (!out.includes(p)) out.push(p);
        }
    }
    return out;
}

/** The workers a pool's config script configures, by `worker_name:`. */
export function workerNamesOf(script: string): string[] {
    return [...script.matchAll(/^\s*worker_name:\s*"?([A-Za-z0-9_]+)"?\s*$/gm)].map((m) => m[1]);
}

/**
 * Runs the stack program (src/program.ts) under mocks with `config` and reads
 * every command's script: the packages they install, the workers, and the
 * Synapse release. Call in a fresh process (it sets Pulumi's mocks).
 */
export async function installPlan(config: Record<string, string> = mockStackConfig()): Promise<InstallPlan> {
    const mocks = new RecordingMocks();
    await pulumi.runtime.setMocks(mocks, "matrix", "bench", false);
    pulumi.runtime.setAllConfig(config, ["matrix:sshPrivateKey"]);
    const program = require.resolve("../src/program");
    delete require.cache[program];
    require(program);
    for (let quiet = 0, seen = -1; quiet < 20;) {
        await new Promise((r) => setTimeout(r, 10));
        quiet = mocks.resources.length === seen ? quiet + 1 : 0;
        seen = mocks.resources.length;
    }
    const commands = mocks.resources.filter((r) => r.type === "command:remote:Command");
    const packages: string[] = [];
    let workers: string[] = [];
    for (const c of commands) {
        const text = String(c.inputs.stdin ?? "");
        for (const p of aptPackagesOf(text)) if (!packages.includes(p)) packages.push(p);
        if (c.name.endsWith("-workers-config")) workers = workerNamesOf(text);
    }
    const install = commands.find((c) => c.name.endsWith("-synapse-install"));
    const pinned = /Synapse (\d+\.\d+\.\d+(?:rc\d+)?) \(pip\)/.exec(String(install?.inputs.stdin ?? ""));
    const synapseVersion = pinned?.[1] ?? DEFAULT_SYNAPSE_VERSION;
    const requirements = synapseRequirements(synapseVersion);
    if (!requirements) throw new Error(`no requirements file for Synapse ${synapseVersion}`);
    if (!packages.length) throw new Error("the program's scripts install no package: the pm_apt_install pattern no longer matches them");
    return { packages, synapseVersion, requirements, workers, scripts: commands.map((c) => c.name) };
}

/** Ports of the floor's Synapse: main's client listener, its replication listener, then one per worker. */
const FLOOR_PORTS = { main: 8008, replication: 9093, firstWorker: 8101 };

/**
 * The floor: a plain bash script that installs the same packages (one
 * `apt-get install`), Synapse into a virtualenv from the same pinned
 * requirements with hashes, creates its database and starts PostgreSQL,
 * Redis, nginx (their packages start them), Synapse and the same workers.
 * No certificates, firewall, secrets handling, drift records or checks:
 * what anyone has to do at least. Prints `PHASE <name> <unix time>` markers.
 */
export function floorScript(plan: InstallPlan): string {
    const venv = "/opt/floor-synapse";
    const etc = "/etc/floor-synapse";
    const data = "/var/lib/floor-synapse";
    const user = "floor-synapse";
    const workerYaml = plan.workers.map((w, i) => {
        const port = FLOOR_PORTS.firstWorker + i;
        const resource = /^federation_reader/.test(w) ? "federation" : "client";
        return [
            `cat >${etc}/workers/${w}.yaml <<'EOF'`,
            "worker_app: synapse.app.generic_worker",
            `worker_name: ${w}`,
            "worker_listeners:",
            "  - type: http",
            `    port: ${port}`,
            "    bind_addresses: ['127.0.0.1']",
            `    resources: [{names: [${resource}]}]`,
            "EOF",
        ].join("\n");
    });
    const senders = plan.workers.filter((w) => /^federation_sender/.test(w));
    const pushers = plan.workers.filter((w) => /^pusher/.test(w));
    return `set -euo pipefail
phase() { echo "PHASE $1 $(date +%s.%N)"; }
phase start
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends ${plan.packages.join(" ")} >/dev/null
phase apt
useradd --system --home-dir ${data} --no-create-home --shell /usr/sbin/nologin ${user}
install -d -m 0750 -o ${user} -g ${user} ${data} ${data}/media
install -d -m 0755 ${etc} ${etc}/workers
cat >${etc}/requirements.txt <<'EOF'
${plan.requirements.trimEnd()}
EOF
python3 -m venv --system-site-packages ${venv}
# As the library does: pip sees only the virtualenv while it installs, Debian's python3-psycopg2 afterwards.
sed -i "s/^include-system-site-packages = .*/include-system-site-packages = false/" ${venv}/pyvenv.cfg
${venv}/bin/pip install -q --disable-pip-version-check --no-input --only-binary=:all: --require-hashes --no-deps -r ${etc}/requirements.txt
sed -i "s/^include-system-site-packages = .*/include-system-site-packages = true/" ${venv}/pyvenv.cfg
phase pip
runuser -u postgres -- psql -q -c "CREATE ROLE synapse LOGIN PASSWORD 'floor-only'"
runuser -u postgres -- createdb --encoding=UTF8 --locale=C --template=template0 --owner=synapse synapse
phase database
cat >${etc}/homeserver.yaml <<'EOF'
server_name: matrix.test
public_baseurl: https://matrix.test/
pid_file: ${data}/homeserver.pid
listeners:
  - port: ${FLOOR_PORTS.main}
    bind_addresses: ['127.0.0.1']
    type: http
    x_forwarded: true
    resources: [{names: [client, federation], compress: false}]
  - port: ${FLOOR_PORTS.replication}
    bind_addresses: ['127.0.0.1']
    type: http
    resources: [{names: [replication]}]
database:
  name: psycopg2
  args: {user: synapse, password: floor-only, dbname: synapse, host: 127.0.0.1, cp_min: 5, cp_max: 10}
redis: {enabled: true}
instance_map:
  main: {host: 127.0.0.1, port: ${FLOOR_PORTS.replication}}
federation_sender_instances: [${senders.join(", ")}]
pusher_instances: [${pushers.join(", ")}]
media_store_path: ${data}/media
signing_key_path: ${data}/signing.key
report_stats: false
macaroon_secret_key: floor-only-not-a-secret
form_secret: floor-only-not-a-secret
worker_replication_secret: floor-only-not-a-secret
trusted_key_servers: []
EOF
${workerYaml.join("\n")}
chmod -R a+rX ${etc}
runuser -u ${user} -- ${venv}/bin/python -m synapse.app.homeserver -c ${etc}/homeserver.yaml --generate-keys
systemd-run -q --unit=floor-synapse -p User=${user} ${venv}/bin/python -m synapse.app.homeserver -c ${etc}/homeserver.yaml
pm_wait() { for _ in $(seq 1 2400); do if curl -fsS "http://127.0.0.1:$1/health" >/dev/null 2>&1; then return 0; fi; sleep 0.5; done; echo "nothing answers on $1" >&2; exit 1; }
pm_wait ${FLOOR_PORTS.main}
phase synapse
${plan.workers.map((w) => `systemd-run -q --unit=floor-synapse-${w} -p User=${user} ${venv}/bin/python -m synapse.app.generic_worker -c ${etc}/homeserver.yaml -c ${etc}/workers/${w}.yaml`).join("\n")}
${plan.workers.map((_, i) => `pm_wait ${FLOOR_PORTS.firstWorker + i}`).join("\n")}
phase workers
for u in postgresql redis-server nginx; do systemctl is-active -q "$u" || { echo "$u is not running" >&2; exit 1; }; done
phase done
`;
}

/** The `PHASE name time` markers a floor run printed, as seconds since its first. */
export function parsePhases(stdout: string): { name: string; at: number }[] {
    const marks = [...stdout.matchAll(/^PHASE (\S+) (\d+(?:\.\d+)?)$/gm)].map((m) => ({ name: m[1], t: Number(m[2]) }));
    if (!marks.length) return [];
    return marks.map((m) => ({ name: m.name, at: m.t - marks[0].t }));
}

/** One step the engine ran: its resource, component, op and when it started and ended (seconds from the run's start). */
export interface Step {
    name: string;
    type: string;
    /** The type of the component it belongs to (its parent), e.g. `SynapseHomeserver`; `-` at the top. */
    component: string;
    op: string;
    start: number;
    end?: number;
}

/** The parts of an engine event the timing reads (the Automation API's EngineEvent has them). */
export interface TimedEvent {
    /** ms since the epoch when the event was received. */
    at: number;
    resourcePreEvent?: { metadata: { urn: string; type: string; op: string } };
    resOutputsEvent?: { metadata: { urn: string; type: string; op: string } };
    resOpFailedEvent?: { metadata: { urn: string; type: string; op: string } };
}

/** The component a URN's resource sits in: the type before its own in the URN's type chain. */
export function componentOf(urn: string): string {
    const types = urn.split("::")[2]?.split("$") ?? [];
    const parent = types.length >= 2 ? types[types.length - 2] : "-";
    return parent.split(":").pop() ?? parent;
}

/** The steps of a run from its events (t0: the run's start, ms); providers and the stack itself are left out. */
export function stepsOf(events: TimedEvent[], t0: number): Step[] {
    const steps = new Map<string, Step>();
    for (const e of events) {
        const pre = e.resourcePreEvent?.metadata;
        if (pre && pre.type !== "pulumi:pulumi:Stack" && !pre.type.startsWith("pulumi:providers:")) {
            steps.set(pre.urn, { name: pre.urn.split("::").pop()!, type: pre.type, component: componentOf(pre.urn), op: pre.op, start: (e.at - t0) / 1000 });
        }
        const done = e.resOutputsEvent?.metadata ?? e.resOpFailedEvent?.metadata;
        const s = done && steps.get(done.urn);
        if (s) s.end = (e.at - t0) / 1000;
    }
    return [...steps.values()];
}

/** Per component: its steps, when the first started and the last ended, and the sum of its steps' own times. */
export interface ComponentTiming {
    component: string;
    steps: number;
    /** Commands run on the VM (the other steps are keys, passwords and the components themselves). */
    commands: number;
    start: number;
    end: number;
    /** Sum of the durations of its command steps (they may overlap other components'). */
    commandSeconds: number;
    /** The slowest command and its time. */
    slowest?: { name: string; seconds: number };
}

export function byComponent(steps: Step[]): ComponentTiming[] {
    const groups = new Map<string, Step[]>();
    for (const s of steps) {
        if (s.type.startsWith("matrix:")) continue; // the component resources themselves: their children say more
        groups.set(s.component, [...(groups.get(s.component) ?? []), s]);
    }
    const out: ComponentTiming[] = [];
    for (const [component, list] of groups) {
        const commands = list.filter((s) => s.type === "command:remote:Command" && s.end !== undefined);
        const slowest = commands.reduce<Step | undefined>((a, s) => (!a || s.end! - s.start > a.end! - a.start ? s : a), undefined);
        out.push({
            component,
            steps: list.length,
            commands: commands.length,
            start: Math.min(...list.map((s) => s.start)),
            end: Math.max(...list.map((s) => s.end ?? s.start)),
            commandSeconds: commands.reduce((a, s) => a + (s.end! - s.start), 0),
            slowest: slowest && { name: slowest.name, seconds: slowest.end! - slowest.start },
        });
    }
    return out.sort((a, b) => a.start - b.start);
}

/** What bench/results.json holds under `provision`. */
export interface ProvisionResults {
    date: string;
    machine: string;
    accel: string;
    engine: string;
    synapseVersion: string;
    packages: string[];
    workers: string[];
    library: { firstUpSeconds: number; components: ComponentTiming[] };
    floor: { seconds: number; phases: { name: string; at: number }[] };
    ratio: number;
    target: number;
    noopUp: { seconds: number; changes: Record<string, number> };
    drift: { seconds: number; exitCode: number };
    note: string;
}

const f1 = (n: number) => n.toFixed(1);

/** The console table: each component's steps, then the totals and the ratio. */
export function table(r: ProvisionResults): string {
    const rows = [
        `${"component".padEnd(22)} ${"steps".padStart(5)} ${"cmds".padStart(4)} ${"from s".padStart(7)} ${"to s".padStart(7)} ${"cmd s".padStart(7)}  slowest command`,
        ...r.library.components.map(
            (c) =>
                `${c.component.padEnd(22)} ${String(c.steps).padStart(5)} ${String(c.commands).padStart(4)} ${f1(c.start).padStart(7)} ${f1(c.end).padStart(7)} ${f1(c.commandSeconds).padStart(7)}  ${c.slowest ? `${c.slowest.name} ${f1(c.slowest.seconds)} s` : "-"}`,
        ),
        "",
        `library, first up:  ${f1(r.library.firstUpSeconds)} s`,
        `floor (plain bash): ${f1(r.floor.seconds)} s (${r.floor.phases.map((p) => `${p.name} at ${f1(p.at)}`).join(", ")})`,
        `ratio:              ${r.ratio.toFixed(2)}x (target <= ${r.target}x: ${r.ratio <= r.target ? "met" : "missed"})`,
        `no-op up:           ${f1(r.noopUp.seconds)} s ${JSON.stringify(r.noopUp.changes)}`,
        `drift check:        ${f1(r.drift.seconds)} s (exit ${r.drift.exitCode})`,
    ];
    return rows.join("\n");
}

/** The README's table of a run (markdown). */
export function readmeTable(r: ProvisionResults): string {
    return [
        "| measured | seconds |",
        "| --- | ---: |",
        `| library: first \`pulumi up\` of the default stack | ${f1(r.library.firstUpSeconds)} |`,
        `| floor: the same packages, Synapse and workers by a plain script | ${f1(r.floor.seconds)} |`,
        `| ratio (target <= ${r.target}x) | ${r.ratio.toFixed(2)}x |`,
        `| no-op \`pulumi up\` | ${f1(r.noopUp.seconds)} |`,
        `| drift check of the full stack (\`pulumi-matrix-drift\`) | ${f1(r.drift.seconds)} |`,
        "",
        "| component (first `up`) | commands | from s | to s | its commands' s | slowest command |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
        ...r.library.components
            .filter((c) => c.commands > 0)
            .map(
                (c) =>
                    `| ${c.component} | ${c.commands} | ${f1(c.start)} | ${f1(c.end)} | ${f1(c.commandSeconds)} | ${c.slowest ? `\`${c.slowest.name}\` ${f1(c.slowest.seconds)} s` : "-"} |`,
            ),
    ].join("\n");
}

/** bench/results.json with `key` set to `value`; every other key (other benchmarks') kept as it was. */
export function mergeResults(existing: string | undefined, key: string, value: unknown): string {
    let all: Record<string, unknown> = {};
    if (existing && existing.trim() !== "") {
        const parsed = JSON.parse(existing) as unknown;
        if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("bench/results.json is not a JSON object; not overwriting it");
        all = parsed as Record<string, unknown>;
    }
    return `${JSON.stringify({ ...all, [key]: value }, null, 4)}\n`;
}

/**
 * `tsx bench/provision.ts plan`: prints the install plan as JSON (the bench
 * runs it in a fresh process); `tsx bench/provision.ts readme`: the README's
 * table from bench/results.json's `provision`.
 */
if (require.main === module && process.argv[2] === "plan")
    installPlan()
        .then((p) => process.stdout.write(`${JSON.stringify(p)}\n`))
        .catch((e) => {
            console.error(e);
            process.exit(1);
        });
if (require.main === module && process.argv[2] === "readme") {
    const all = JSON.parse(readFileSync(join(__dirname, "results.json"), "utf8")) as { provision?: ProvisionResults };
    if (!all.provision?.library?.components) throw new Error("bench/results.json has no complete provision run yet");
    process.stdout.write(`${readmeTable(all.provision)}\n\n${all.provision.date}, ${all.provision.machine}, VMs under ${all.provision.accel}\n`);
}
