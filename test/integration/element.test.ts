// Element Web's install script run for real, as root, against small
// fixture releases (element-v<version>/ with index.html, i18n/ and
// config.sample.json, as Element's tarballs are laid out) served by a local
// HTTP server that counts requests. The script runs in a mount namespace of
// its own where the state directory is a temp dir, and installs into a temp
// root; real curl, tar and sha256sum, no apt (they are present).

import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";

import { elementFiles, ElementWebOptions, ElementWebSettings, resolveElementWebSettings } from "../../src/model/element";
import { elementInstallScript } from "../../src/provision/element";
import { STATE_DIR, WRITTEN_DIR } from "../../src/render/drift";
import { renderElementConfig } from "../../src/render/element";
import { ReleaseServer } from "../support/integration/elementReleases";
import { freePort } from "../support/integration/net";
import { makeTempDir, type RunResult } from "../support/integration/processes";
import { ServiceSandbox } from "../support/integration/serviceSandbox";

const VERSIONS = ["1.11.997", "1.11.998", "1.11.999"];
const HOMESERVER = { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/" };

function expectSuccess(r: RunResult): string[] {
    assert.equal(r.code, 0, `script failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    return r.stdout.trim().split("\n");
}

/**
 * mtimes (of the entries themselves, links not followed) of everything under
 * an Element root but the root itself and the staging directory: pm_write
 * compares config.json through a temp file beside it, which touches the
 * root's mtime even when nothing is written.
 */
function mtimes(dir: string): Record<string, number> {
    const out: Record<string, number> = {};
    const walk = (p: string): void => {
        const rel = path.relative(dir, p) || ".";
        if (rel === ".incoming") return;
        const st = fs.lstatSync(p);
        if (rel !== ".") out[rel] = st.mtimeMs;
        if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    };
    walk(dir);
    return out;
}

describe("Element Web installed by its script: verified download, atomic switch, pruning, config.json", function () {
    let releases: ReleaseServer;
    let sandbox: ServiceSandbox;
    let root: string;

    before(async function () {
        const dir = makeTempDir("element");
        releases = new ReleaseServer();
        await releases.start(path.join(dir, "releases"), VERSIONS);
        // Scripts run as root in a mount namespace where the state directory is a temp dir (kept across runs).
        sandbox = new ServiceSandbox(dir, [{ real: STATE_DIR, name: "state" }], 120_000);
        root = path.join(dir, "www", "element");
    });

    const settings = (version: string, o: Partial<ElementWebOptions> = {}): ElementWebSettings =>
        resolveElementWebSettings(
            "test",
            {
                domain: "element.example.com",
                version,
                sha256: releases.sha256.get(version) ?? "0".repeat(64),
                downloadUrl: `http://127.0.0.1:${releases.port}/element-v{version}.tar.gz`,
                keepVersions: 1,
                paths: { root },
                ...o,
            },
            HOMESERVER,
        );
    const current = () => fs.readlinkSync(path.join(root, "current"));
    const installed = () =>
        fs
            .readdirSync(path.join(root, "versions"))
            .filter((e) => !e.endsWith(".sha256"))
            .sort();

    it("installs a release: verified, unpacked as root's, current links to it, config.json beside it", async function () {
        const s = settings("1.11.997");
        const out = expectSuccess(await sandbox.tryRun(elementInstallScript(s)));
        assert.equal(out[out.length - 1], "installed Element 1.11.997 (SHA-256 verified), now current");
        assert.equal(releases.requests.get("/element-v1.11.997.tar.gz"), 1);

        const f = elementFiles(s.paths);
        assert.equal(current(), "versions/1.11.997");
        assert.equal(fs.readFileSync(path.join(f.current, "index.html"), "utf8"), "<!doctype html><title>Element 1.11.997</title>\n");
        assert.ok(fs.statSync(path.join(f.current, "i18n", "en_EN.json")).isFile());
        assert.ok(fs.statSync(path.join(f.current, "config.sample.json")).isFile());
        for (const p of [path.join(f.versions, "1.11.997"), path.join(f.versions, "1.11.997", "index.html"), path.join(f.versions, "1.11.997", "i18n")]) {
            const st = fs.statSync(p);
            assert.equal(st.uid, 0, `${p} is root's`);
            assert.equal(st.gid, 0, `${p} is root's`);
        }
        assert.equal(fs.statSync(path.join(f.versions, "1.11.997")).mode & 0o777, 0o755);

        // The config: rendered, readable by the web server, and served from inside the version through its link.
        assert.equal(fs.readFileSync(f.config, "utf8"), renderElementConfig(s));
        assert.equal(fs.statSync(f.config).mode & 0o777, 0o644);
        assert.equal(fs.readlinkSync(path.join(f.versions, "1.11.997", "config.json")), f.config);
        assert.equal(fs.readFileSync(path.join(f.current, "config.json"), "utf8"), renderElementConfig(s));
        assert.equal(JSON.parse(fs.readFileSync(f.config, "utf8")).default_server_config["m.homeserver"].base_url, "https://matrix.example.com");

        assert.equal(fs.readFileSync(path.join(f.versions, "1.11.997.sha256"), "utf8"), `${releases.sha256.get("1.11.997")}\n`);
        // Written through the file set: the drift record knows the config (in the sandboxed state directory).
        assert.ok(fs.existsSync(sandbox.hostPath(`${WRITTEN_DIR}/records${f.config}`)));
        // Nothing left of the download.
        assert.deepEqual(fs.readdirSync(path.join(root, ".incoming")), []);
    });

    it("a second run with the same settings changes nothing: no download, no write", async function () {
        const s = settings("1.11.997");
        const before = mtimes(root);
        const requests = releases.total();
        const out = expectSuccess(await sandbox.tryRun(elementInstallScript(s)));
        assert.deepEqual(out, ["Element 1.11.997 already installed"]);
        assert.equal(releases.total(), requests);
        assert.deepEqual(mtimes(root), before);
    });

    it("a new version is installed beside the old one and current switches to it; the config survives the switch", async function () {
        const configMtime = fs.statSync(path.join(root, "config.json")).mtimeMs;
        const out = expectSuccess(await sandbox.tryRun(elementInstallScript(settings("1.11.998"))));
        assert.equal(out[out.length - 1], "installed Element 1.11.998 (SHA-256 verified), now current");
        assert.equal(current(), "versions/1.11.998");
        assert.deepEqual(installed(), ["1.11.997", "1.11.998"]);
        assert.equal(fs.statSync(path.join(root, "config.json")).mtimeMs, configMtime, "the same settings render the same config: not rewritten");
        assert.match(fs.readFileSync(path.join(root, "current", "config.json"), "utf8"), /"server_name": "example.com"/);
    });

    it("keeps keepVersions besides the current one and prunes the rest, never the current", async function () {
        const out = expectSuccess(await sandbox.tryRun(elementInstallScript(settings("1.11.999"))));
        assert.ok(out.includes("removed Element 1.11.997"), out.join("\n"));
        assert.equal(current(), "versions/1.11.999");
        assert.deepEqual(installed(), ["1.11.998", "1.11.999"]);
        assert.ok(!fs.existsSync(path.join(root, "versions", "1.11.997.sha256")));

        // Back to the version kept: no download, only the link moves; the newer one is kept in turn.
        const requests = releases.total();
        const back = expectSuccess(await sandbox.tryRun(elementInstallScript(settings("1.11.998"))));
        assert.deepEqual(back, ["Element 1.11.998 (installed before) is now current"]);
        assert.equal(releases.total(), requests);
        assert.equal(current(), "versions/1.11.998");
        assert.deepEqual(installed(), ["1.11.998", "1.11.999"]);
    });

    it("a changed setting rewrites config.json, and only that", async function () {
        const s = settings("1.11.998", { brand: "Example Chat", defaultTheme: "dark" });
        const out = expectSuccess(await sandbox.tryRun(elementInstallScript(s)));
        assert.deepEqual(out, [`updated ${path.join(root, "config.json")}`, "Element 1.11.998 already installed"]);
        assert.equal(fs.readFileSync(path.join(root, "current", "config.json"), "utf8"), renderElementConfig(s));
    });

    it("a checksum mismatch fails the script with a clear message and changes nothing", async function () {
        const wrong = "f".repeat(64);
        const s = settings("1.11.999", { sha256: wrong });
        // 1.11.999 is installed from the right tarball; pinned to another checksum it is fetched again, and refused.
        const before = mtimes(root);
        const requests = releases.requests.get("/element-v1.11.999.tar.gz") ?? 0;
        const r = await sandbox.tryRun(elementInstallScript(s));
        assert.notEqual(r.code, 0);
        assert.equal(releases.requests.get("/element-v1.11.999.tar.gz"), requests + 1);
        assert.ok(
            r.stderr.includes(
                `Element 1.11.999: checksum mismatch for http://127.0.0.1:${releases.port}/element-v1.11.999.tar.gz: expected SHA-256 ${wrong} (the sha256 setting), got ${releases.sha256.get("1.11.999")}; refusing to use it, nothing was changed`,
            ),
            r.stderr,
        );
        assert.equal(current(), "versions/1.11.998");
        assert.deepEqual(mtimes(root), before);

        // A version not installed yet, with a wrong checksum: nothing of it lands.
        const fresh = await sandbox.tryRun(elementInstallScript(settings("1.11.997", { sha256: wrong })));
        assert.notEqual(fresh.code, 0);
        assert.match(fresh.stderr, /checksum mismatch/);
        assert.equal(current(), "versions/1.11.998");
        assert.deepEqual(installed(), ["1.11.998", "1.11.999"]);
        assert.deepEqual(mtimes(root), before);
    });

    it("a download that fails (not found, nothing listening) fails the script and changes nothing", async function () {
        const before = mtimes(root);
        const missing = await sandbox.tryRun(elementInstallScript(settings("1.11.996", { sha256: "a".repeat(64) })));
        assert.notEqual(missing.code, 0);
        assert.match(missing.stderr, /404/);
        assert.match(
            missing.stderr,
            /Element 1\.11\.996: the download from http:\/\/127\.0\.0\.1:\d+\/element-v1\.11\.996\.tar\.gz failed .*nothing was changed/,
        );

        const closed = await freePort();
        const unreachable = await sandbox.tryRun(
            elementInstallScript(settings("1.11.996", { sha256: "a".repeat(64), downloadUrl: `http://127.0.0.1:${closed}/element-v{version}.tar.gz` })),
        );
        assert.notEqual(unreachable.code, 0);
        assert.match(unreachable.stderr, /Element 1\.11\.996: the download from http:\/\/127\.0\.0\.1:\d+\/element-v1\.11\.996\.tar\.gz failed/);
        assert.equal(current(), "versions/1.11.998");
        assert.deepEqual(mtimes(root), before);
    });
});
