import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { checkSupportedOs, resolveHostSettings } from "../../src/model/host";
import { HOST_FILES } from "../../src/model/host";
import { applyFileSet } from "../../src/provision/apply";
import { hostBootstrapScript } from "../../src/provision/host";
import { synapseSecretsScript } from "../../src/provision/synapse";
import { DRIFT_CHECK_PATH, driftCheckScript, MANAGED_HEADER } from "../../src/render/drift";
import { emailSecretFile, pgpassSecretFile } from "../../src/render/synapse/homeserver";
import { GOLDEN_PEERS, goldenSynapseSettings } from "../support/unit/fixtures";

const pmWrites = (text: string) => text.split("\n").filter((l) => /(^|\| )pm_write /.test(l));

describe("drift: records, the check, the header", () => {
    it("a file set tells pm_write whether a file is readable or secret (readable unless the set, its *-secrets name or the file says secret)", () => {
        const file = { path: "/etc/x", content: "x\n" };
        assert.match(applyFileSet({ name: "a", files: [file] }).text, /^pm_write a \/etc\/x 0644 root root readable <</);
        assert.match(applyFileSet({ name: "a", secret: true, files: [file] }).text, /^pm_write a \/etc\/x 0644 root root secret <</);
        assert.match(applyFileSet({ name: "a", files: [{ ...file, secret: true }] }).text, / secret <</);
        // A set named *-secrets is secret unless it says otherwise: forgetting the flag cannot leak a copy.
        assert.match(applyFileSet({ name: "svc-secrets", files: [file] }).text, / secret <</);
        assert.match(applyFileSet({ name: "svc-secrets", secret: false, files: [file] }).text, / readable <</);
    });

    it("every file of Synapse's secrets script is recorded as secret (hash only, never copied)", () => {
        const s = goldenSynapseSettings();
        const text = synapseSecretsScript(s, {
            macaroonSecretKey: "m",
            formSecret: "f",
            registrationSharedSecret: "r",
            signingKey: "ed25519 a_abcd seed",
            files: [pgpassSecretFile(GOLDEN_PEERS.database!, "pw"), emailSecretFile(s, "smtp")],
        });
        const writes = pmWrites(text);
        assert.equal(writes.length, 6);
        for (const w of writes) assert.match(w, / secret( <<'PM_EOF')?$/, w);
    });

    it("the Host bootstrap installs the drift check root-only, first, from a file set (so it updates itself)", () => {
        const os = checkSupportedOs("t", 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nARCH=amd64');
        const text = hostBootstrapScript(resolveHostSettings("t", {}), os);
        assert.equal(HOST_FILES.driftCheck, "/usr/local/sbin/pulumi-matrix-drift");
        assert.equal(pmWrites(text)[0], `pm_write host-drift ${DRIFT_CHECK_PATH} 0700 root root readable <<'PM_EOF'`);
        assert.ok(text.includes(driftCheckScript()));
    });

    it("the drift check is valid bash, deterministic, and says how to re-apply", () => {
        const text = driftCheckScript();
        assert.equal(text, driftCheckScript());
        assert.ok(text.startsWith("#!/bin/bash\n"));
        execFileSync("bash", ["-n"], { input: text });
        assert.match(text, /pulumi config set reapply <any new value> && pulumi up/);
    });

    it("no rendered file promises to be overwritten on every `pulumi up`; readable files carry the header that says what is true", () => {
        const golden = path.join(__dirname, "golden");
        const files = fs.readdirSync(golden, { recursive: true, encoding: "utf8" }).filter((f) => fs.statSync(path.join(golden, f)).isFile());
        for (const f of files) assert.doesNotMatch(fs.readFileSync(path.join(golden, f), "utf8"), /overwritten on the next/, f);
        const first = MANAGED_HEADER.split("\n")[0];
        for (const f of ["synapse/homeserver.yaml", "synapse/matrix-synapse.service", "postgres/50-pulumi-matrix.conf"]) {
            assert.ok(fs.readFileSync(path.join(golden, f), "utf8").startsWith(`# ${first}\n`), f);
        }
    });
});
