import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { parse } from "yaml";

/**
 * The release each action of the pull-request preview example is pinned to,
 * and that release's commit (read from each action's repository, late 2026:
 * pulumi/actions 7.0.0 of 2026-05, actions/checkout 7.0.1 of 2026-07 and
 * actions/setup-node 7.0.0 of 2026-07, all on Node 24). A tag can be moved to
 * other code; a commit cannot, so the workflow names the commit and the
 * version beside it, and both are checked here.
 */
const PINNED: Record<string, { version: string; commit: string }> = {
    "actions/checkout": { version: "v7.0.1", commit: "3d3c42e5aac5ba805825da76410c181273ba90b1" },
    "actions/setup-node": { version: "v7.0.0", commit: "820762786026740c76f36085b0efc47a31fe5020" },
    "pulumi/actions": { version: "v7.0.0", commit: "8e5e406f4007fca908480587cb9893c07090f58d" },
};

interface Step {
    name?: string;
    uses?: string;
    run?: string;
    with?: Record<string, unknown>;
    env?: Record<string, string>;
}
interface Job {
    environment?: string | { name: string };
    permissions?: Record<string, string>;
    env?: Record<string, string>;
    steps: Step[];
}
interface Workflow {
    on: Record<string, unknown>;
    permissions?: Record<string, string>;
    concurrency?: { group: string; "cancel-in-progress": boolean };
    env?: Record<string, string>;
    jobs: Record<string, Job>;
}

describe("the pull-request preview example (examples/github-actions/pulumi-preview.yml)", () => {
    const text = fs.readFileSync(path.join(__dirname, "..", "..", "examples", "github-actions", "pulumi-preview.yml"), "utf8");
    const wf = parse(text) as Workflow;
    const jobs = Object.values(wf.jobs);
    const steps = jobs.flatMap((j) => j.steps);
    const preview = steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
    /** The comment block that opens the file, as one line of text. */
    const header = text
        .split("\n")
        .filter((l, i, all) => all.slice(0, i + 1).every((x) => x.startsWith("#")))
        .map((l) => l.replace(/^#\s?(!!!\s?)?/, ""))
        .join(" ")
        .replace(/\s+/g, " ");

    it("pins every action by its release's full commit, the version in a comment beside it", () => {
        const uses = [...text.matchAll(/^\s*-?\s*uses:\s*([^\s@]+)@(\S+)[ \t]*(?:#[ \t]*(\S+))?/gm)].map((m) => ({
            action: m[1],
            ref: m[2],
            comment: m[3],
        }));
        assert.equal(uses.length, steps.filter((s) => s.uses !== undefined).length, "a `uses:` the pattern missed");
        assert.deepEqual(uses.map((u) => u.action).sort(), Object.keys(PINNED).sort());
        for (const u of uses) {
            assert.match(u.ref, /^[0-9a-f]{40}$/, `${u.action}@${u.ref}: not a full commit`);
            assert.equal(u.ref, PINNED[u.action].commit, `${u.action}: the commit of ${PINNED[u.action].version}`);
            assert.equal(u.comment, PINNED[u.action].version, `${u.action}: the version comment`);
        }
    });

    it("runs on `pull_request` only, and says prominently never to run it on `pull_request_target`", () => {
        assert.deepEqual(Object.keys(wf.on), ["pull_request"]);
        assert.doesNotMatch(text.replace(/^\s*#.*$/gm, ""), /pull_request_target/);
        assert.match(header, /NEVER change it to `pull_request_target`/);
        assert.match(header, /secrets/);
    });

    it("grants nothing by default; the job only reads the code and writes its comment", () => {
        assert.deepEqual(wf.permissions, {});
        for (const j of jobs) assert.deepEqual(j.permissions, { contents: "read", "pull-requests": "write" });
    });

    it("runs one preview per pull request at a time: a new push cancels the previous run", () => {
        assert.ok(wf.concurrency, "no concurrency");
        assert.match(wf.concurrency.group, /\$\{\{ github\.event\.pull_request\.number \}\}/);
        assert.equal(wf.concurrency["cancel-in-progress"], true);
    });

    it("gives secrets only to a job behind an environment, whose required reviewers the comment says where to set", () => {
        for (const j of jobs) {
            if (!JSON.stringify(j).includes("secrets.")) continue;
            assert.equal(typeof j.environment === "string" ? j.environment : j.environment?.name, "pulumi-preview");
        }
        assert.match(header, /Required reviewers/);
        assert.match(header, /Settings -> Environments/);
        assert.match(header, /The reviewers are configured there, not in this file/);
    });

    it("checks out without leaving the token in .git/config", () => {
        const checkout = steps.find((s) => s.uses?.startsWith("actions/checkout@"));
        assert.equal(checkout?.with?.["persist-credentials"], false);
    });

    it("selects the backend with PULUMI_BACKEND_URL, which wins over Pulumi.yaml's backend.url (a login or `cloud-url` does not)", () => {
        assert.ok(preview, "no pulumi/actions step");
        for (const j of jobs) assert.equal(j.env?.PULUMI_BACKEND_URL, "${{ vars.PULUMI_BACKEND_URL }}");
        assert.equal(preview.with?.["cloud-url"], undefined);
        assert.doesNotMatch(JSON.stringify(steps), /pulumi login/);
        // A first step refuses an unset variable or a path in the checkout, which would preview against an empty state.
        const check = steps[0];
        assert.equal(check.uses, undefined);
        assert.doesNotMatch(String(check.run), /\$\{\{/, "no expression expanded into the script");
        const guard = (url: string) =>
            spawnSync("bash", ["-e", "-c", String(check.run)], { env: { PATH: process.env.PATH, PULUMI_BACKEND_URL: url }, encoding: "utf8" });
        for (const bad of ["", "file://", "file://./.pulumi-state", "file://.pulumi-state", "file://."]) {
            const r = guard(bad);
            assert.equal(r.status, 1, `accepted ${JSON.stringify(bad)}`);
            assert.match(r.stdout, /^::error::set the variable PULUMI_BACKEND_URL of the pulumi-preview environment/);
        }
        for (const good of ["s3://my-bucket/pulumi-matrix", "file:///srv/pulumi-state", "file://~/state", "https://api.pulumi.com", "gs://b"])
            assert.equal(guard(good).status, 0, `refused ${good}`);
    });

    it("reads the passphrase and the backend's credentials from secrets, in the preview step only (not in `npm ci`)", () => {
        assert.ok(preview, "no pulumi/actions step");
        assert.equal(preview.env?.PULUMI_CONFIG_PASSPHRASE, "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}");
        for (const v of Object.values(preview.env ?? {})) assert.match(v, /^\$\{\{ secrets\.[A-Z_]+ \}\}$/);
        for (const s of steps.filter((x) => x !== preview)) assert.doesNotMatch(JSON.stringify(s), /secrets\./, JSON.stringify(s));
        for (const j of jobs) assert.doesNotMatch(JSON.stringify(j.env ?? {}), /secrets\./);
        assert.doesNotMatch(JSON.stringify(wf.env ?? {}), /secrets\./);
        assert.match(header, /PULUMI_CONFIG_PASSPHRASE secret: the stack's passphrase, its secrets provider/);
    });

    it("runs `pulumi preview --diff` on Node.js 22 and comments on the pull request, the summary always included", () => {
        assert.ok(preview, "no pulumi/actions step");
        assert.equal(preview.with?.command, "preview");
        assert.equal(preview.with?.diff, true);
        assert.equal(preview.with?.["comment-on-pr"], true);
        assert.equal(preview.with?.["edit-pr-comment"], true);
        // pulumi/actions cuts a comment over 64,000 characters from the end (the summary) unless told to cut from the front.
        assert.equal(preview.with?.["always-include-summary"], true);
        const setupNode = steps.find((s) => s.uses?.startsWith("actions/setup-node@"));
        assert.equal(setupNode?.with?.["node-version"], 22);
    });
});
