/**
 * The real Pulumi engine for the VM suites: the CLI, the Node.js language
 * host and the command/random/tls plugins built by
 * ../shared/pulumi-engine/build.sh (or a `pulumi` already on PATH), driven
 * through the Automation API against a copy of this repository, as a user's
 * clone with its own file backend (`.pulumi-state/`) and a passphrase.
 */
import * as assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { EngineEvent, LocalWorkspace, OpMap, PulumiFn, Stack, UpResult } from "@pulumi/pulumi/automation";

export const ROOT = path.resolve(__dirname, "..", "..", "..");
const ENGINE_BUILD = path.resolve(ROOT, "..", "shared", "pulumi-engine", "build.sh");
/** The passphrase of every stack the suites create (the file backend's secrets provider). */
export const PASSPHRASE = "e2e passphrase, not a secret";

let engine: { version: string; source: string } | undefined;

/**
 * Puts the engine on this process's PATH (build.sh --env builds it when its
 * cache is cold, about 7 minutes) and returns the CLI version. Throws a clear
 * error when there is neither build.sh nor a `pulumi` on PATH.
 */
export function useEngine(log: (s: string) => void): { version: string; source: string } {
    if (engine) return engine;
    let source = "pulumi on PATH";
    if (fs.existsSync(ENGINE_BUILD)) {
        log(`engine: ${ENGINE_BUILD} --env (builds once, then cached)`);
        const t0 = Date.now();
        const out = execFileSync("bash", ["-c", 'eval "$(bash "$0" --env)" && env -0', ENGINE_BUILD], {
            encoding: "utf8",
            stdio: ["ignore", "pipe", "inherit"],
            maxBuffer: 64 * 1024 * 1024,
        });
        for (const entry of out.split("\0")) {
            const eq = entry.indexOf("=");
            if (eq <= 0) continue;
            const [k, v] = [entry.slice(0, eq), entry.slice(eq + 1)];
            if (k === "PATH" || k.startsWith("PULUMI_")) process.env[k] = v;
        }
        source = `${ENGINE_BUILD} (${Math.round((Date.now() - t0) / 1000)} s)`;
    }
    process.env.PULUMI_SKIP_UPDATE_CHECK = "true";
    process.env.PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK = "true";
    let version: string;
    try {
        version = execFileSync("pulumi", ["version"], { encoding: "utf8" }).trim();
    } catch (e) {
        throw new Error(
            `no Pulumi engine: ${ENGINE_BUILD} does not exist and \`pulumi version\` failed (${(e as Error).message.split("\n")[0]}); ` +
                "install the Pulumi CLI (https://www.pulumi.com/docs/install/) or build it with ../shared/pulumi-engine/build.sh",
        );
    }
    engine = { version, source };
    log(`engine: pulumi ${version} from ${source}`);
    return engine;
}

/**
 * A copy of the repository as a user's clone: the files git tracks (and new
 * ones it does not ignore), with node_modules and dist linked to this
 * checkout's. Removed when the process exits.
 */
export function projectCopy(prefix = "pm-e2e-project-"): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" })
        .split("\0")
        // A user's own stack files (Pulumi.dev.yaml...) in this checkout are not part of a clone.
        .filter((f) => f !== "" && fs.existsSync(path.join(ROOT, f)) && (f === "Pulumi.example.yaml" || !/^Pulumi\.[^/]+\.yaml$/.test(f)));
    for (const f of files) {
        fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
        fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
    }
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
    if (fs.existsSync(path.join(ROOT, "dist"))) fs.symlinkSync(path.join(ROOT, "dist"), path.join(dir, "dist"));
    process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
    return dir;
}

/** Builds `dist/` inside a project copy from the copy's own sources (examples import the package from there). */
export function buildDist(dir: string): void {
    fs.rmSync(path.join(dir, "dist"), { recursive: true, force: true });
    execFileSync(path.join(ROOT, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.build.json"], { cwd: dir, stdio: "inherit" });
}

/** What one engine operation did, from its events. */
export interface EngineRun {
    /** The CLI's text output, as a user sees it. */
    stdout: string;
    /** Resource name (last URN part) -> the step's op (same, create, update, replace, delete...). */
    ops: Map<string, string>;
    /** The engine's summary of changes by op. */
    changes: OpMap;
    seconds: number;
}

/**
 * What every stack of the suites does alike: run an engine operation and
 * collect its text, steps and summary; destroy; run the CLI on the stack.
 */
abstract class EngineOps {
    protected constructor(
        readonly stack: Stack,
        /** The workspace directory: `runCli(dir, ["--stack", name, ...])` works there. */
        readonly dir: string,
        protected readonly log: (s: string) => void,
    ) {}

    async destroy(label = "destroy"): Promise<EngineRun> {
        return this.run(label, (onOutput, onEvent) => this.stack.destroy({ onOutput, onEvent, color: "never" }));
    }

    /** What each command printed, by resource name, from the state (the CLI's progress lines may skip some). */
    async commandOutputs(): Promise<Map<string, { stdout: string; stderr: string }>> {
        const r = await this.cli(["stack", "export"]);
        if (r.code !== 0) throw new Error(`pulumi stack export failed: ${r.stderr}`);
        type Exported = { deployment: { resources: { type: string; urn: string; outputs?: { stdout?: unknown; stderr?: unknown } }[] } };
        return new Map(
            (JSON.parse(r.stdout) as Exported).deployment.resources
                .filter((x) => x.type === "command:remote:Command" && typeof x.outputs?.stdout === "string")
                .map((x) => [x.urn.split("::").pop()!, { stdout: String(x.outputs!.stdout), stderr: String(x.outputs!.stderr ?? "") }]),
        );
    }

    /** Runs the CLI itself on this stack, as a user types it, e.g. `["stack", "export"]`. */
    cli(args: string[], opts: { stdin?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
        return runCli(this.dir, ["--stack", this.stack.name, ...args], opts);
    }

    /** Called with each piece of text the engine prints. Default: nothing. */
    protected onText(_text: string): void {}

    protected async run(
        label: string,
        op: (
            onOutput: (s: string) => void,
            onEvent: (e: EngineEvent) => void,
        ) => Promise<{ stdout: string; summary?: { resourceChanges?: OpMap }; changeSummary?: OpMap }>,
        /** Also called with every engine event (the demo prints its progress from them). */
        listen?: (e: EngineEvent) => void,
    ): Promise<EngineRun> {
        const t0 = Date.now();
        const ops = new Map<string, string>();
        let text = "";
        const onOutput = (s: string) => {
            text += s;
            this.onText(s);
        };
        const onEvent = (e: EngineEvent) => {
            const m = e.resourcePreEvent?.metadata;
            if (m && m.type !== "pulumi:pulumi:Stack" && !m.type.startsWith("pulumi:providers:")) ops.set(m.urn.split("::").pop()!, m.op);
            listen?.(e);
        };
        try {
            const r = await op(onOutput, onEvent);
            const seconds = Math.round((Date.now() - t0) / 1000);
            const changes = r.summary?.resourceChanges ?? r.changeSummary ?? {};
            this.log(`${label}: ${seconds} s, ${JSON.stringify(changes)}`);
            return { stdout: r.stdout ?? text, ops, changes, seconds };
        } catch (e) {
            this.log(`${label} failed after ${Math.round((Date.now() - t0) / 1000)} s:\n${text.split("\n").slice(-60).join("\n")}`);
            throw e;
        }
    }
}

/** A stack of a project copy, through the Automation API. */
/** A run the engine found nothing to do in: every resource the same (a second `up` with unchanged settings). */
export function assertNothingChanged(run: { changes: OpMap }): void {
    assert.deepEqual(Object.keys(run.changes), ["same"], JSON.stringify(run.changes));
}

export class EngineStack extends EngineOps {
    private constructor(stack: Stack, dir: string, log: (s: string) => void) {
        super(stack, dir, log);
    }

    static async create(dir: string, name: string, log: (s: string) => void, config: Record<string, string | { secret: string }> = {}): Promise<EngineStack> {
        const stack = await LocalWorkspace.createStack({ stackName: name, workDir: dir }, { envVars: projectEnv(dir) });
        const s = new EngineStack(stack, dir, log);
        await s.setConfig(config);
        return s;
    }

    static async select(dir: string, name: string, log: (s: string) => void): Promise<EngineStack> {
        return new EngineStack(await LocalWorkspace.selectStack({ stackName: name, workDir: dir }, { envVars: projectEnv(dir) }), dir, log);
    }

    /**
     * Sets `key` (without the project prefix) to a value, or `{ secret }` with --secret.
     * A key with a path (`adminAllowList[0]`) is set as `pulumi config set --path` does: list keys are declared arrays.
     */
    async setConfig(config: Record<string, string | { secret: string }>): Promise<void> {
        const project = (await this.stack.workspace.projectSettings()).name;
        for (const [k, v] of Object.entries(config)) {
            const key = k.includes(":") ? k : `${project}:${k}`;
            await this.stack.setConfig(key, typeof v === "string" ? { value: v } : { value: v.secret, secret: true }, /[[.]/.test(k));
        }
    }

    /** Removes keys (without the project prefix), as `pulumi config rm` does. */
    async removeConfig(keys: string[]): Promise<void> {
        const project = (await this.stack.workspace.projectSettings()).name;
        for (const k of keys) await this.stack.removeConfig(k.includes(":") ? k : `${project}:${k}`);
    }

    async up(label: string): Promise<EngineRun> {
        const r = await this.run(label, (onOutput, onEvent) => this.stack.up({ onOutput, onEvent, color: "never" }));
        return r;
    }

    async preview(label: string): Promise<EngineRun> {
        return this.run(label, (onOutput, onEvent) => this.stack.preview({ onOutput, onEvent, color: "never", diff: true }));
    }

    /** The stack outputs, secrets in clear (as `pulumi stack output --show-secrets`). */
    async outputs(): Promise<Record<string, string>> {
        const out = await this.stack.outputs();
        return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, String(v.value)]));
    }
}

/** The environment the engine's commands see: the passphrase, no update checks, the program transpiled only (type-checked by `npm run typecheck`). */
export function engineEnv(): Record<string, string> {
    return {
        PULUMI_CONFIG_PASSPHRASE: PASSPHRASE,
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_NODEJS_TRANSPILE_ONLY: "true",
    };
}

/**
 * The environment for a project in `dir`: a project that names no backend
 * (the examples: their README says `pulumi login --local`) keeps its state in
 * a file backend in its own directory, never Pulumi Cloud.
 */
export function projectEnv(dir: string): Record<string, string> {
    if (/^backend:/m.test(fs.readFileSync(path.join(dir, "Pulumi.yaml"), "utf8"))) return engineEnv();
    const state = path.join(dir, ".pulumi-state");
    fs.mkdirSync(state, { recursive: true });
    return { ...engineEnv(), PULUMI_BACKEND_URL: `file://${state}` };
}

/** Runs `pulumi ARGS` in `dir` with the suites' environment. */
export function runCli(
    dir: string,
    args: string[],
    opts: { stdin?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
    return runShell(dir, ["pulumi", ...args], opts);
}

/** Runs a command line (argv, or one bash string) in `dir` with the suites' environment. */
export function runShell(
    dir: string,
    argv: string[] | string,
    opts: { stdin?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
    const [file, args] = typeof argv === "string" ? ["bash", ["-euo", "pipefail", "-c", argv]] : [argv[0], argv.slice(1)];
    return new Promise((resolve, reject) => {
        const child = spawn(file, args, { cwd: dir, env: { ...process.env, ...engineEnv(), ...opts.env }, stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
        child.stdin.end(opts.stdin ?? "");
    });
}

/** The lines of the README's fenced block that follows `heading` (the first ```sh block after it). */
export function readmeBlock(heading: string): string[] {
    const text = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const at = text.indexOf(heading);
    if (at < 0) throw new Error(`README.md has no "${heading}"`);
    const m = /```(?:sh|text)?\n([\s\S]*?)```/.exec(text.slice(at));
    if (!m) throw new Error(`README.md has no code block after "${heading}"`);
    return m[1].split("\n").filter((l) => l.trim() !== "");
}

/** What an inline program's `up` did: the engine's run, and the stack outputs. */
export interface InlineUp extends EngineRun {
    /** The stack outputs as plain values, secrets in clear. */
    outputs: Record<string, any>;
    /** The names of the outputs the engine holds as secrets. */
    secretOutputs: string[];
}

/**
 * A stack whose program is a function of this process (the Automation API's
 * inline program), with its own file backend: how a harness test runs a few
 * resources through the real engine and providers without a project on disk.
 */
export class InlineStack extends EngineOps {
    private output = "";

    private constructor(stack: Stack, dir: string, log: (s: string) => void) {
        super(stack, dir, log);
    }

    protected override onText(text: string): void {
        this.output += text;
    }

    /**
     * Creates the stack (or selects it, when `opts.dir` already holds it).
     * Without `opts.dir` the workspace and the state live in a temp dir removed
     * when the process exits; with it, in `dir` (state in `dir/state`), kept.
     */
    static async create(
        program: PulumiFn,
        log: (s: string) => void,
        opts: { stackName?: string; projectName?: string; dir?: string } = {},
    ): Promise<InlineStack> {
        const projectName = opts.projectName ?? "e2e-inline";
        const stackName = opts.stackName ?? "e2e";
        let dir = opts.dir;
        if (dir === undefined) {
            const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pm-e2e-inline-"));
            process.once("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
            dir = tmp;
        }
        const state = path.join(dir, "state");
        fs.mkdirSync(state, { recursive: true, mode: 0o700 });
        const stack = await LocalWorkspace.createOrSelectStack(
            { stackName, projectName, program },
            {
                workDir: dir,
                projectSettings: { name: projectName, runtime: "nodejs", backend: { url: `file://${state}` } },
                envVars: engineEnv(),
            },
        );
        return new InlineStack(stack, dir, log);
    }

    /** Everything the engine printed so far (all operations), as a user sees it. */
    get text(): string {
        return this.output;
    }

    /** `listen` is called with every engine event of the run. */
    async up(label = "up", listen?: (e: EngineEvent) => void): Promise<InlineUp> {
        let result: UpResult | undefined;
        const run = await this.run(
            label,
            async (onOutput, onEvent) => {
                result = await this.stack.up({ onOutput, onEvent, color: "never" });
                return result;
            },
            listen,
        );
        const outputs = result!.outputs;
        return {
            ...run,
            outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.value])),
            secretOutputs: Object.keys(outputs).filter((k) => outputs[k].secret),
        };
    }
}

/** `InlineStack.create`: an inline program on its own file backend (a temp dir unless `opts.dir`). */
export function inlineStack(
    program: PulumiFn,
    log: (s: string) => void,
    opts: { stackName?: string; projectName?: string; dir?: string } = {},
): Promise<InlineStack> {
    return InlineStack.create(program, log, opts);
}

/** Seconds of a duration as the CLI prints it after a step (`45s`, `2m3s`, `1h0m5s`). */
function durationSeconds(d: string): number {
    const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(d);
    if (!m || d === "") throw new Error(`not a duration: ${d}`);
    return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

/** How long a command's last step took, from the CLI's line `command:remote:Command <name> created (2m3s)`; undefined when the output has none. */
export function stepSeconds(cliOutput: string, name: string): number | undefined {
    const all = [...cliOutput.matchAll(new RegExp(`command:remote:Command ${name} (?:created|updated) \\(([0-9hms.]+)\\)`, "g"))];
    return all.length ? durationSeconds(all[all.length - 1][1]) : undefined;
}
