/**
 * Where a stack's state lives, through the real Pulumi CLI, no VM needed.
 *
 * Pulumi.yaml sets `backend.url: file://./.pulumi-state`, which wins over
 * `pulumi login`; only PULUMI_BACKEND_URL wins over it. This suite moves a
 * stack made as the quickstart makes it into a second file backend with the
 * README's own block ("Where the state lives"), previews it from a fresh
 * clone the way the pull-request workflow does (PULUMI_BACKEND_URL from the
 * environment, then the action's bare `pulumi login`), checks that the
 * clone's own `.pulumi-state/` is never used, and shows that a `pulumi login`
 * alone leaves the state in the checkout (what the README used to say).
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { parse } from "yaml";

import { TEST_SSH_KEY } from "../support/unit/fixtures";
import { readmeBlock, ROOT, runCli, runShell, useEngine } from "../support/vm/engine";

const log = (s: string) => process.stderr.write(`      [e2e] ${s}\n`);
/** The backend URL the README's examples use; the suite puts its second file backend in its place. */
const README_URL = "s3://my-bucket/pulumi-matrix";

function tempDir(prefix: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
    return dir;
}

/** A `git clone` of this checkout's HEAD, as a user or a CI runner gets it, with node_modules linked (no install). */
function freshClone(prefix: string): string {
    const dir = tempDir(prefix);
    execFileSync("git", ["clone", "--quiet", ROOT, dir], { stdio: ["ignore", "ignore", "inherit"] });
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
    return dir;
}

/** Every file under `dir`, relative, sorted. */
function filesUnder(dir: string): string[] {
    return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
        .filter((e) => !e.isDirectory())
        .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
        .sort();
}

/** The "Resources:" summary at the end of a preview, e.g. "+ 34 to create / 4 unchanged". */
function summary(out: string): string {
    const at = out.lastIndexOf("\nResources:\n");
    assert.ok(at >= 0, `no summary in:\n${out.slice(-2000)}`);
    return out
        .slice(at + 12)
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => /^[+~-]? ?\d+ /.test(l))
        .join(" / ");
}

describe("the stack's backend through the real Pulumi CLI (README: Where the state lives)", function () {
    this.timeout(5 * 60_000);
    /** The second file backend (in place of the README's bucket). */
    let backend: string;
    let backendUrl: string;
    /** The operator's clone: the quickstart's stack, moved from its .pulumi-state/ to the second backend. */
    let operator: string;
    /** A PULUMI_HOME per "machine", so a `pulumi login` here never touches this user's ~/.pulumi. */
    let operatorHome: string;
    const stackFile = (dir: string) => path.join(dir, ".pulumi", "stacks", "matrix", "dev.json");

    before(function () {
        useEngine(log);
        backend = tempDir("pm-e2e-backend-");
        backendUrl = `file://${backend}`;
        operator = freshClone("pm-e2e-operator-");
        operatorHome = tempDir("pm-e2e-home-");
    });

    it("the README's block moves a quickstart stack, with a secret in its state, out of .pulumi-state/", async function () {
        const env = { PULUMI_HOME: operatorHome, PULUMI_BACKEND_URL: "" };
        // The quickstart's stack (its config from Pulumi.example.yaml, which sets the keys the quickstart sets), in .pulumi-state/.
        fs.copyFileSync(path.join(operator, "Pulumi.example.yaml"), path.join(operator, "Pulumi.dev.yaml"));
        const init = await runCli(operator, ["stack", "init", "dev"], { env });
        assert.equal(init.code, 0, init.stderr);
        const key = await runCli(operator, ["config", "set", "--secret", "sshPrivateKey", "--stack", "dev"], { env, stdin: TEST_SSH_KEY });
        assert.equal(key.code, 0, key.stderr);
        // State with a secret in it, without a VM: create one generated password (and its parents) only.
        const plan = await runCli(operator, ["preview", "--stack", "dev", "--json"], { env });
        assert.equal(plan.code, 0, plan.stderr);
        type Step = { urn: string; newState?: { parent?: string } };
        const steps = new Map((JSON.parse(plan.stdout).steps as Step[]).map((s) => [s.urn, s]));
        const targets: string[] = [];
        for (let u = [...steps.keys()].find((k) => k.endsWith("::dev-synapse-macaroon-secret-key")); u; u = steps.get(u)?.newState?.parent) targets.push(u);
        assert.ok(targets.length >= 3, targets.join("\n"));
        const up = await runCli(operator, ["up", "--stack", "dev", "--yes", "--color", "never", ...targets.map((t) => `--target=${t}`)], { env });
        assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
        assert.ok(fs.existsSync(stackFile(path.join(operator, ".pulumi-state"))), "the quickstart's stack is in the checkout's .pulumi-state/");
        const before = await runCli(operator, ["preview", "--stack", "dev", "--color", "never"], { env });
        assert.equal(before.code, 0, before.stderr);
        assert.match(summary(before.stdout), /\b4 unchanged\b/);

        // The README's move block, the bucket replaced by the second file backend.
        const block = readmeBlock("To move a stack made by the quickstart there");
        assert.ok(
            block.some((l) => l.includes(README_URL)),
            "the block names the README's bucket",
        );
        const moved = await runShell(operator, block.join("\n").replaceAll(README_URL, backendUrl), { env });
        assert.equal(moved.code, 0, `${moved.stdout}\n${moved.stderr}`);
        assert.ok(fs.existsSync(stackFile(backend)), "the stack is in the second backend");
        // The block's preview (from the second backend) sees the same stack as before the move.
        assert.equal(summary(moved.stdout), summary(before.stdout));

        // The README's removal of the stale copy (with --yes for its prompt), run with PULUMI_BACKEND_URL still exported:
        // it removes the copy in .pulumi-state/ only.
        const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
        const rmLine = /`(env -u PULUMI_BACKEND_URL pulumi stack rm [^`]+)`/.exec(readme.replace(/\s*\n\s*/g, " "))?.[1];
        assert.ok(rmLine, "the README says how to remove the stale copy");
        const rm = await runShell(operator, `export PULUMI_BACKEND_URL=${backendUrl}\n${rmLine} --yes`, { env });
        assert.equal(rm.code, 0, rm.stderr);
        assert.ok(!fs.existsSync(stackFile(path.join(operator, ".pulumi-state"))), "the stale copy is gone");
        assert.ok(fs.existsSync(stackFile(backend)), "the moved stack is kept");
        assert.ok(fs.existsSync(path.join(operator, "Pulumi.dev.yaml")), "the stack's config file is kept");
    });

    it("a fresh clone previews the moved stack the way the workflow selects it, and never uses its own .pulumi-state/", async function () {
        // The workflow's job environment names the backend; the action then runs a bare `pulumi login`.
        const workflow = parse(fs.readFileSync(path.join(ROOT, "examples", "github-actions", "pulumi-preview.yml"), "utf8")) as {
            jobs: { preview: { env: Record<string, string> } };
        };
        assert.equal(workflow.jobs.preview.env.PULUMI_BACKEND_URL, "${{ vars.PULUMI_BACKEND_URL }}");
        const ci = freshClone("pm-e2e-ci-");
        // The stack's config file, committed by the operator.
        fs.copyFileSync(path.join(operator, "Pulumi.dev.yaml"), path.join(ci, "Pulumi.dev.yaml"));
        const env = { PULUMI_HOME: tempDir("pm-e2e-home-"), PULUMI_BACKEND_URL: backendUrl };
        const login = await runCli(ci, ["--non-interactive", "--cwd", ci, "login"], { env });
        assert.equal(login.code, 0, login.stderr);
        const preview = await runCli(ci, ["preview", "--stack", "dev", "--diff", "--color", "never"], { env });
        assert.equal(preview.code, 0, `${preview.stdout}\n${preview.stderr}`);
        // The stack's state was found: the password made before the move is unchanged, not to be created.
        assert.match(summary(preview.stdout), /\b4 unchanged\b/);
        const exported = await runCli(ci, ["stack", "export", "--stack", "dev", "--show-secrets"], { env });
        assert.equal(exported.code, 0, exported.stderr);
        type Exported = { deployment: { resources: { urn: string; outputs?: { result?: string | { plaintext?: string } } }[] } };
        const result = (JSON.parse(exported.stdout) as Exported).deployment.resources.find((r) => r.urn.endsWith("::dev-synapse-macaroon-secret-key"))?.outputs
            ?.result;
        // `--show-secrets` gives a secret as its JSON-encoded plaintext.
        const secret = typeof result === "string" ? result : result?.plaintext === undefined ? undefined : String(JSON.parse(result.plaintext));
        assert.ok(secret && secret.length >= 16, "the moved state holds the generated secret");
        assert.ok(!(preview.stdout + preview.stderr).includes(secret), "the preview shows no secret");
        assert.deepEqual(filesUnder(path.join(ci, ".pulumi-state")), [".gitkeep"], "the clone's .pulumi-state/ is untouched");
    });

    it("`pulumi login` alone does not move anything: Pulumi.yaml's backend.url wins, and the stack is not found", async function () {
        const user = freshClone("pm-e2e-login-");
        const env = { PULUMI_HOME: tempDir("pm-e2e-home-"), PULUMI_BACKEND_URL: "" };
        const login = await runCli(user, ["login", backendUrl], { env });
        assert.equal(login.code, 0, login.stderr);
        const who = await runCli(user, ["whoami", "-v"], { env });
        assert.match(who.stdout, /^Backend URL: file:\/\/\.\/\.pulumi-state$/m);
        // The preview's failure before this fix: the stack is in the backend logged in to, but the project's backend is searched.
        const select = await runCli(user, ["stack", "select", "dev"], { env });
        assert.notEqual(select.code, 0);
        assert.match(select.stderr, /no stack named 'dev' found/);
        // And a stack "moved" by logging in is still made in the checkout.
        const init = await runCli(user, ["stack", "init", "after-login"], { env });
        assert.equal(init.code, 0, init.stderr);
        assert.ok(fs.existsSync(path.join(user, ".pulumi-state", ".pulumi", "stacks", "matrix", "after-login.json")));
        assert.ok(!fs.existsSync(path.join(backend, ".pulumi", "stacks", "matrix", "after-login.json")));
    });
});
