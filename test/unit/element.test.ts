import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";

import { ElementWeb } from "../../components/ElementWeb";
import { Host } from "../../components/Host";
import { SynapseHomeserver } from "../../components/SynapseHomeserver";
import { elementFiles, ElementWebOptions, ElementWebSettings, resolveElementWebSettings } from "../../src/model/element";
import { ConfigError, ConfigErrors } from "../../src/model/errors";
import { elementInstallScript } from "../../src/provision/element";
import { elementConfig, renderElementConfig } from "../../src/render/element";
import { golden } from "../support/golden";
import { goldenCustomElementSettings, TEST_HOST_KEY, TEST_SSH_KEY } from "../support/unit/fixtures";
import { goldenElementSettings } from "../support/unit/fixtures";
import { runWithMocks } from "../support/unit/mocks";

/** A made-up checksum: these tests never download anything. */
const SHA = "0123456789abcdef".repeat(4);
const HOMESERVER = { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/" };
const BASE: ElementWebOptions = { domain: "element.example.com", version: "1.11.100", sha256: SHA };

const resolve = (o: Partial<ElementWebOptions> & Record<string, unknown> = {}, hs = HOMESERVER): ElementWebSettings =>
    resolveElementWebSettings('ElementWeb "web"', { ...BASE, ...o } as ElementWebOptions, hs);

/** The error names the component, the setting, the value and what is valid. */
function rejects(o: Record<string, unknown>, setting: string, value: string, valid: RegExp, hs = HOMESERVER): void {
    assert.throws(
        () => resolve(o, hs),
        (e: Error) => {
            assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e.name}: ${e.message}`);
            assert.ok(e.message.startsWith('ElementWeb "web": '), e.message);
            const escaped = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
            assert.match(e.message, new RegExp(`${escaped(setting)} is ${escaped(value)}; `));
            assert.match(e.message, valid);
            return true;
        },
    );
}

const customSettings = goldenCustomElementSettings;

describe("ElementWeb: settings", () => {
    it("fills every default", () => {
        assert.deepEqual(resolve(), {
            domain: "element.example.com",
            version: "1.11.100",
            sha256: SHA,
            downloadUrl: "https://github.com/element-hq/element-web/releases/download/v1.11.100/element-v1.11.100.tar.gz",
            brand: "Element",
            defaultTheme: "light",
            disableGuests: true,
            disableCustomUrls: false,
            roomDirectoryServers: ["example.com"],
            keepVersions: 2,
            extraConfig: {},
            paths: { root: "/var/www/pulumi-matrix-element" },
            serverName: "example.com",
            homeserverUrl: "https://matrix.example.com",
        });
    });

    it("normalises: checksum and domain to lower case, no trailing slash on the root", () => {
        const s = resolve({ sha256: SHA.toUpperCase(), domain: "Element.Example.COM.", paths: { root: "/srv/element/" } });
        assert.equal(s.sha256, SHA);
        assert.equal(s.domain, "element.example.com");
        assert.equal(s.paths.root, "/srv/element");
    });

    it("derives the paths a web server needs; config.json is outside every version", () => {
        assert.deepEqual(elementFiles({ root: "/srv/element" }), {
            root: "/srv/element",
            versions: "/srv/element/versions",
            current: "/srv/element/current",
            config: "/srv/element/config.json",
        });
    });
});

describe("ElementWeb: bad input is refused before anything runs", () => {
    it("domain: a DNS name, and not the homeserver's own host", () => {
        rejects({ domain: "not a domain" }, "domain", '"not a domain"', /expected the DNS name Element is served on/);
        rejects({ domain: "localhost" }, "domain", '"localhost"', /DNS name/);
        rejects({ domain: undefined }, "domain", "not set", /DNS name/);
        rejects({ domain: "matrix.example.com" }, "domain", '"matrix.example.com"', /homeserver's own host .*domain of its own, such as element\.example\.com/);
        rejects({ domain: "Matrix.Example.com." }, "domain", '"Matrix.Example.com."', /homeserver's own host/);
        // The server name's domain is not the homeserver's host here: allowed.
        assert.doesNotThrow(() => resolve({ domain: "example.com" }));
    });

    it("version: a release number; the message says how to pin it", () => {
        for (const v of ["v1.11.100", "1.11", "latest", "1.11.100 ", "1.11.100;rm"])
            rejects({ version: v }, "version", JSON.stringify(v), /expected an Element release such as 1\.11\.100.*sha256sum/);
        rejects({ version: undefined }, "version", "not set", /gpg --verify/);
        assert.doesNotThrow(() => resolve({ version: "1.11.100-rc.0" }));
    });

    it("sha256: required, 64 hex digits; the message says how to get it", () => {
        rejects({ sha256: undefined }, "sha256", "not set", /there is no default: download element-v<version>\.tar\.gz and its \.asc .*release key.*sha256sum/);
        rejects({ sha256: "abc" }, "sha256", '"abc"', /64 hex digits/);
        rejects({ sha256: SHA.slice(1) }, "sha256", JSON.stringify(SHA.slice(1)), /64 hex digits/);
        rejects({ sha256: `${SHA.slice(1)}g` }, "sha256", JSON.stringify(`${SHA.slice(1)}g`), /64 hex digits/);
    });

    it("downloadUrl: an http(s) URL without spaces, quotes or credentials", () => {
        for (const u of [
            "ftp://mirror.example.com/e.tar.gz",
            "mirror.example.com/e.tar.gz",
            "https://mirror.example.com/a b.tar.gz",
            "https://u:p@mirror.example.com/e.tgz",
            "https://x/'$(id)'",
        ])
            rejects(
                { downloadUrl: u },
                "downloadUrl",
                JSON.stringify(u),
                /expected an https:\/\/ or http:\/\/ URL of the tarball, \{version\} standing for the version/,
            );
        assert.equal(resolve({ downloadUrl: "http://10.0.0.2:8080/element-{version}.tgz" }).downloadUrl, "http://10.0.0.2:8080/element-1.11.100.tgz");
    });

    it("keepVersions: a whole number from 1", () => {
        for (const k of [0, -1, 1.5, 21]) rejects({ keepVersions: k }, "keepVersions", String(k), /expected a whole number from 1 to 20/);
        rejects({ keepVersions: "2" }, "keepVersions", '"2"', /whole number/);
    });

    it("extraConfig: a plain JSON object that leaves the homeserver alone", () => {
        const plain = /expected a plain JSON object of config\.json keys/;
        rejects({ extraConfig: ["a"] }, "extraConfig", '["a"]', plain);
        rejects({ extraConfig: "{}" }, "extraConfig", '"{}"', plain);
        rejects({ extraConfig: { at: new Date(0) } }, "extraConfig", '{"at":"1970-01-01T00:00:00.000Z"}', plain);
        rejects({ extraConfig: { n: NaN } }, "extraConfig", '{"n":null}', plain);
        rejects({ extraConfig: { f: () => 1 } }, "extraConfig", "{}", plain);
        rejects({ extraConfig: { u: undefined } }, "extraConfig", "{}", plain);
        rejects(
            { extraConfig: { default_server_config: { "m.homeserver": { base_url: "https://other.example" } } } },
            "extraConfig",
            '{"default_server_config":{"m.homeserver":{"base_url":"https://other.example"}}}',
            /default_server_config cannot be set here: the homeserver Element uses comes from the Synapse settings/,
        );
        rejects({ extraConfig: { default_server_name: "x.org" } }, "extraConfig", '{"default_server_name":"x.org"}', /default_server_name cannot be set here/);
        assert.doesNotThrow(() => resolve({ extraConfig: { integrations_ui_url: "https://scalar.vector.im/", features: { feature_x: true }, n: null } }));
    });

    it("the other options", () => {
        rejects({ brand: "" }, "brand", '""', /1 to 100 characters/);
        rejects({ brand: "a\nb" }, "brand", '"a\\nb"', /1 to 100 characters/);
        rejects({ defaultTheme: "blue" }, "defaultTheme", '"blue"', /expected one of "light", "dark"/);
        rejects({ disableGuests: "yes" }, "disableGuests", '"yes"', /true or false/);
        rejects({ disableCustomUrls: 1 }, "disableCustomUrls", "1", /true or false/);
        rejects({ roomDirectoryServers: ["not a server"] }, "roomDirectoryServers", '"not a server"', /server names/);
        rejects({ roomDirectoryServers: "matrix.org" }, "roomDirectoryServers", '"matrix.org"', /a list of server names/);
        rejects({ paths: { root: "relative/dir" } }, "paths.root", '"relative/dir"', /absolute directory/);
        rejects({ paths: { root: "/" } }, "paths.root", '"/"', /not \//);
        rejects({ paths: { root: "/var/www/../etc" } }, "paths.root", '"/var/www/../etc"', /absolute directory/);
    });

    it("the homeserver it is given", () => {
        rejects({}, "synapse.publicBaseUrl", '"matrix.example.com"', /http\(s\) URL/, { serverName: "example.com", publicBaseUrl: "matrix.example.com" });
        rejects({}, "synapse.serverName", '"not valid"', /server name/, { serverName: "not valid", publicBaseUrl: "https://matrix.example.com/" });
    });

    it("reports every problem at once", () => {
        assert.throws(
            () => resolve({ domain: "bad domain", version: "x", sha256: undefined, keepVersions: 0 }),
            (e: Error) => {
                assert.ok(e instanceof ConfigErrors);
                assert.deepEqual(
                    e.errors.map((x) => x.setting),
                    ["domain", "version", "sha256", "keepVersions"],
                );
                return true;
            },
        );
    });
});

describe("ElementWeb: config.json", () => {
    it("points at the homeserver, integrations and bug reports off, guests off", () => {
        const config = JSON.parse(renderElementConfig(resolve()));
        assert.deepEqual(config.default_server_config, { "m.homeserver": { base_url: "https://matrix.example.com", server_name: "example.com" } });
        assert.equal(config.disable_guests, true);
        assert.equal(config.disable_custom_urls, false);
        assert.equal(config.brand, "Element");
        assert.equal(config.default_theme, "light");
        assert.deepEqual(config.room_directory, { servers: ["example.com"] });
        // Element's docs: integrations are disabled by setting these to null (absent, Element uses its built-in manager).
        for (const k of ["integrations_ui_url", "integrations_rest_url", "integrations_widgets_urls"]) assert.equal(config[k], null, k);
        assert.ok(!("bug_report_endpoint_url" in config));
    });

    it("merges extraConfig last, at the top level", () => {
        const config = elementConfig(
            resolve({ extraConfig: { integrations_ui_url: "https://dimension.example.com/element", room_directory: { servers: ["matrix.org"] } } }),
        );
        assert.equal(config.integrations_ui_url, "https://dimension.example.com/element");
        assert.equal(config.integrations_rest_url, null);
        assert.deepEqual(config.room_directory, { servers: ["matrix.org"] });
    });

    it("is deterministic: sorted keys at every depth whatever order extraConfig has, 4-space indent, final newline", () => {
        const a = renderElementConfig(resolve({ extraConfig: { b: 1, a: { y: 1, x: 2 } } }));
        const b = renderElementConfig(resolve({ extraConfig: { a: { x: 2, y: 1 }, b: 1 } }));
        assert.equal(a, b);
        assert.ok(a.endsWith("}\n") && !a.endsWith("\n\n"));
        assert.match(a, /^\{\n {4}"a": \{\n {8}"x": 2,/);
        const keys = Object.keys(JSON.parse(a));
        assert.deepEqual(keys, [...keys].sort());
    });
});

describe("ElementWeb: install script", () => {
    it("parses (bash -n) and quotes every value", () => {
        for (const s of [resolve(), customSettings()]) {
            execFileSync("bash", ["-n"], { input: elementInstallScript(s), stdio: ["pipe", "pipe", "pipe"] });
        }
        const text = elementInstallScript(customSettings());
        assert.match(
            text,
            /-o "\$pm_element_tmp\/element\.tar\.gz" 'https:\/\/mirror\.example\.net\/element\/v1\.11\.100\/element-v1\.11\.100\.tar\.gz\?src=pulumi&x=1'; then/,
        );
    });

    it("verifies before use and fails closed, switches by renaming a new link, keeps keepVersions besides the current", () => {
        const text = elementInstallScript(resolve());
        const check = text.indexOf(`if [ "$pm_element_sum" != ${SHA} ]`);
        const unpack = text.indexOf("tar -xzf");
        assert.ok(check > 0 && check < unpack, "the checksum is checked before the tarball is unpacked");
        assert.match(
            text,
            /checksum mismatch for .*expected SHA-256 0123456789abcdef.* \(the sha256 setting\), got' "\$pm_element_sum"'; refusing to use it, nothing was changed' >&2\n\s+exit 1/,
        );
        assert.match(
            text,
            /ln -sfn versions\/1\.11\.100 \/var\/www\/pulumi-matrix-element\/current\.pm-tmp\n\s+mv -T \/var\/www\/pulumi-matrix-element\/current\.pm-tmp \/var\/www\/pulumi-matrix-element\/current/,
        );
        assert.match(text, /grep -vxF -- 1\.11\.100 \| sort -rV \| tail -n \+3\)/);
        // apt only when a tool is missing.
        assert.match(text, /if ! command -v curl >\/dev\/null \|\| ! command -v tar >\/dev\/null; then pm_apt_install curl ca-certificates tar; fi/);
    });

    it("writes config.json through the file set of its root", () => {
        const text = elementInstallScript(customSettings());
        assert.match(text, /pm_write element-web-srv-element \/srv\/element\/config\.json 0644 root root readable <<'PM_EOF'\n\{\n/);
        assert.match(text, /pm_prune element-web-srv-element\n/);
    });
});

describe("ElementWeb under Pulumi mocks", () => {
    it("creates one install command on the host, after its bootstrap, with a readable script and no secret", async () => {
        const { mocks, result } = await runWithMocks(() => {
            const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            return new ElementWeb("web", { host, synapse: HOMESERVER, ...BASE });
        });
        const commands = mocks.resources.filter((r) => r.type === "command:remote:Command" && r.name.startsWith("web"));
        assert.deepEqual(
            commands.map((r) => r.name),
            ["web-install"],
        );
        assert.ok(mocks.resources.some((r) => r.type === "matrix:index:ElementWeb" && r.name === "web"));
        const install = commands[0];
        const stdin = String(install.inputs.stdin);
        assert.match(stdin, /^# target: root@203\.0\.113\.10:22, host key ssh-ed25519 SHA256:\S+\n/);
        assert.match(stdin, /# pulumi-matrix Element Web 1\.11\.100\n/);
        assert.doesNotMatch(stdin, /SECRET/);
        assert.ok(!install.secretInputs.includes("stdin"), "the script is readable in a preview");
        assert.notEqual(install.inputs.logging, "none");
        assert.equal(install.inputs.create, "bash -s");
        assert.ok(mocks.byName("vm-bootstrap").seq < install.seq, "runs after the host's bootstrap");
        assert.equal(result.webRoot, "/var/www/pulumi-matrix-element/current");
        assert.equal(result.configPath, "/var/www/pulumi-matrix-element/config.json");
        assert.equal(result.domain, "element.example.com");
        assert.equal(result.settings.homeserverUrl, "https://matrix.example.com");
    });

    it("reads the homeserver from a SynapseHomeserver's settings", async () => {
        const { result } = await runWithMocks(() => {
            const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const synapse = new SynapseHomeserver("synapse", { host, sqlite: {}, serverName: "example.org", publicBaseUrl: "https://hs.example.org/" });
            return new ElementWeb("web", { host, synapse, ...BASE, domain: "app.example.org" });
        });
        assert.equal(result.settings.serverName, "example.org");
        assert.equal(result.settings.homeserverUrl, "https://hs.example.org");
        assert.deepEqual(result.settings.roomDirectoryServers, ["example.org"]);
    });

    it("refuses Element on the homeserver's host when the component is built", async () => {
        await runWithMocks(() => {
            const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            assert.throws(
                () => new ElementWeb("web", { host, synapse: HOMESERVER, ...BASE, domain: "matrix.example.com" }),
                /ElementWeb "web": domain is "matrix\.example\.com"; it is the homeserver's own host/,
            );
        });
    });
});

describe("element: golden files (update with `npm run golden:update`, review the diff)", () => {
    golden("element", "config.json", () => renderElementConfig(goldenElementSettings()));
    golden("element", "config-custom.json", () => renderElementConfig(goldenCustomElementSettings()));
    golden("element", "scripts/element-install.sh", () => elementInstallScript(goldenElementSettings()));
    golden("element", "scripts/element-install-custom.sh", () => elementInstallScript(goldenCustomElementSettings()));
});
