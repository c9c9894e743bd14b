/** The pip method's requirements files with hashes (issue 19, item 13): one per release it installs, every package pinned and hashed. */
import * as assert from "node:assert/strict";

import { DEFAULT_SYNAPSE_VERSION, resolveSynapseSettings, SYNAPSE_PIP_EXTRAS, synapseRequirements } from "../../src/model/synapse";
import { SYNAPSE_CONSTRAINTS } from "../../src/model/synapse/constraints";
import { synapseInstallScript } from "../../src/provision/synapse";
import { synapseRequirementsPath } from "../../src/provision/synapse/install";

/** A requirements file's entries: `name==version [; marker]` with its hashes (continuation lines joined). */
function entries(text: string): { name: string; version: string; marker: string; hashes: string[] }[] {
    const logical = text
        .replace(/\\\n/g, " ")
        .split("\n")
        .filter((l) => l.trim() !== "" && !l.startsWith("#"));
    return logical.map((l) => {
        const m = /^([a-z0-9-]+)==([0-9A-Za-z.+!-]+)( ; [^-]+?)?((?:\s+--hash=sha256:[0-9a-f]{64})+)\s*$/.exec(l);
        assert.ok(m, `an entry pinned with == and sha256 hashes only: ${l.slice(0, 120)}`);
        return { name: m[1], version: m[2], marker: (m[3] ?? "").replace(/^ ; /, "").trim(), hashes: m[4].trim().split(/\s+/) };
    });
}

describe("Synapse's pinned dependencies for the pip method", () => {
    it("the default release has a requirements file", () => {
        assert.ok(
            synapseRequirements(DEFAULT_SYNAPSE_VERSION),
            `no requirements file for ${DEFAULT_SYNAPSE_VERSION}: npm run synapse:constraints -- ${DEFAULT_SYNAPSE_VERSION}`,
        );
    });

    for (const [version, text] of Object.entries(SYNAPSE_CONSTRAINTS))
        describe(version, () => {
            const list = entries(text);

            it("pins matrix-synapse at exactly this release, for the extras the pip method installs (postgres is Debian's)", () => {
                const extras = SYNAPSE_PIP_EXTRAS.split(",").filter((e) => e !== "postgres");
                assert.match(text, new RegExp(`^# matrix-synapse\\[${extras.join(",")}\\]==${version.replace(/\./g, "\\.")}:`));
                assert.deepEqual(
                    list.filter((e) => e.name === "matrix-synapse").map((e) => [e.version, e.marker]),
                    [[version, ""]],
                );
                assert.ok(!list.some((e) => e.name === "psycopg2"), "psycopg2 is Debian's python3-psycopg2");
            });

            it("every line is pinned with == and carries at least one --hash=sha256:, and only such lines", () => {
                assert.ok(list.length > 30, `${list.length} packages`);
                for (const e of list) assert.ok(e.hashes.length >= 1 && e.hashes.every((h) => /^--hash=sha256:[0-9a-f]{64}$/.test(h)), e.name);
                for (const l of text.split("\n"))
                    if (l !== "" && !l.startsWith("#")) assert.match(l, /^([a-z0-9-]+==\S+.*| {4}--hash=sha256:[0-9a-f]{64}) ?\\?$/);
            });

            it("each package once per supported Python (3.10 to 3.13): pip installs exactly one version of each", () => {
                for (const py of ["3.10", "3.11", "3.12", "3.13"]) {
                    const applies = list.filter((e) => e.marker === "" || e.marker.split(" or ").includes(`python_version == "${py}"`));
                    const names = applies.map((e) => e.name);
                    assert.equal(new Set(names).size, names.length, `Python ${py}: ${names.filter((n, i) => names.indexOf(n) !== i).join(", ")} twice`);
                    for (const dep of ["twisted", "txredisapi", "hiredis", "beautifulsoup4", "pydantic", "cryptography"])
                        assert.ok(names.includes(dep), `Python ${py}: ${dep}`);
                }
            });
        });

    it("the pip install writes the file and installs from it with --require-hashes --no-deps, never by name", () => {
        const s = resolveSynapseSettings("S", { serverName: "example.com" });
        const script = synapseInstallScript(s, { id: "debian", versionId: "12", codename: "bookworm", prettyName: "Debian 12", architecture: "amd64" });
        const path = synapseRequirementsPath(s);
        assert.ok(script.includes(synapseRequirements(s.version)!.split("\n")[2]), "the file's content is in the script");
        assert.match(script, new RegExp(`pip install -q --disable-pip-version-check --no-input --only-binary=:all: --require-hashes --no-deps -r ${path}\\n`));
        assert.doesNotMatch(script, /pip install [^\n]*matrix-synapse\[/);
        assert.match(script, /\/bin\/pip check /);
    });
});
