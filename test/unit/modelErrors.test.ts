import * as assert from "node:assert/strict";
import { ConfigError, ConfigErrors } from "../../src/model/errors";
import { resolveElementWebSettings } from "../../src/model/element";
import { resolveSynapseSettings } from "../../src/model/synapse";

/** The errors a call throws, flattened (a ConfigErrors holds several). */
function errorsOf(fn: () => unknown): ConfigError[] {
    try {
        fn();
    } catch (e) {
        if (e instanceof ConfigErrors) return e.errors;
        if (e instanceof ConfigError) return [e];
        throw e;
    }
    return [];
}

/** Every versioned option: how it is set, what the projects really tag, and forms no release has. */
const VERSIONED: { name: string; set: (v: unknown) => unknown; valid: string[]; invalid: unknown[] }[] = [
    {
        name: "SynapseHomeserver version",
        set: (version) => resolveSynapseSettings("SynapseHomeserver", { serverName: "example.com", version: version as string }),
        valid: ["1.163.2", "1.164.0rc1", "1.0.0", "2.0.0rc12"],
        invalid: ["latest", "1.163", "v1.163.2", "1.163.2-rc1", "1.163.2rc", "01.163.2", "1.163.2 ", "1.163.2.1", "", 1.163, "1.164.0rc0"],
    },
    {
        name: "ElementWeb version",
        set: (version) =>
            resolveElementWebSettings(
                "ElementWeb",
                { domain: "element.example.com", version: version as string, sha256: "0".repeat(64) },
                { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/" },
            ),
        valid: ["1.11.100", "1.12.8", "1.11.101-rc.0", "2.0.0"],
        invalid: ["latest", "1.11", "v1.11.100", "1.11.100rc1", "1.11.100-rc1", "01.11.100", "1.11.100.1", "", 1.11],
    },
];

describe("versions: a form no release can have is refused, saying what a valid one looks like", () => {
    for (const v of VERSIONED)
        it(v.name, () => {
            for (const good of v.valid) assert.doesNotThrow(() => v.set(good), `${v.name} ${good}`);
            for (const bad of v.invalid) {
                const errs = errorsOf(() => v.set(bad)).filter((e) => e.setting === "version");
                assert.equal(errs.length, 1, `${v.name} ${JSON.stringify(bad)} is refused`);
                assert.match(errs[0].message, /version is .*; expected .* release such as \d+\.\d+\.\d+ .*MAJOR\.MINOR\.PATCH/);
            }
        });
});
