// Upgrades that can be undone with installMethod "apt", for real: the
// component's install script runs in a throw-away Debian root
// (test/support/integration/aptRepo.ts) against a signed apt repository on
// loopback serving test `matrix-synapse-py3` builds with a real Synapse, with
// real apt and dpkg. Like matrix.org's, the index lists one build at a time,
// so the running build's .deb is gone from it when the upgrade runs: a switch
// back works only with the .deb the library kept when it installed that
// build. The failures are what the step meets in the field:
// - a configuration the new release refuses: a conf.d fragment Synapse
//   refuses, written while the old release runs;
// - a new release that fails to start: a build of it without the module its
//   unit runs (synapse.app.homeserver), so it dies on start and never answers
//   /health (the two releases share a schema: "before the database
//   migrated", a switch back).

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { OsInfo } from "../../src/model/host";
import { resolveSynapseSettings, synapseFiles, SynapseOptions, SynapseSettings } from "../../src/model/synapse";
import { synapseConfigScript, synapseInstallScript, synapseSecretsScript } from "../../src/provision/synapse";
import { keptDeb } from "../../src/provision/synapse/aptUpgrade";
import { KEPT_DEBS_DIR } from "../../src/provision/synapse/upgrade";
import { signingKeyFromPem } from "../../src/render/synapse/signingKey";
import {
    AptTestRepository,
    buildKeyringPackage,
    buildSynapsePackage,
    Chroot,
    makeChroot,
    makeTestKey,
    ROOT_SUITE,
    startAptRepository,
    TestKey,
} from "../support/integration/aptRepo";
import { freePort } from "../support/integration/net";
import { makeTempDir, run, RunResult } from "../support/integration/processes";
import { clientApi, roomTexts, sendText, serverVersion } from "../support/integration/roomHistory";
import { registerWithSharedSecret } from "../support/integration/synapse";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const OLD = "1.163.1";
const NEW = "1.163.2";
/** The builds: the running one, a broken build of the new release, and a good one (a later build number). */
const OLD_BUILD = `${OLD}+${ROOT_SUITE}1`;
const BROKEN_BUILD = `${NEW}+${ROOT_SUITE}1`;
const NEW_BUILD = `${NEW}+${ROOT_SUITE}2`;
const COMPONENT = 'SynapseHomeserver "aptupgrade"';
const OS: OsInfo = { id: "debian", versionId: "12", codename: ROOT_SUITE, prettyName: "Debian GNU/Linux 12 (bookworm)", architecture: "amd64" };
const random = () => crypto.randomBytes(24).toString("hex");
const re = (text: string) => text.replace(/[.+*?^$()[\]{}|\\]/g, "\\$&");

describe("upgrades that can be undone with installMethod apt: 1.163.1 -> 1.163.2 builds from a real apt repository (in a throw-away Debian root)", function () {
    let root: Chroot;
    let repo: AptTestRepository;
    let key: TestKey;
    let debs: Record<string, string>;
    let keyringDeb: string;
    let port: number;
    let baseUrl: string;
    const registrationSharedSecret = random();
    const signingKey = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());
    const secrets = { macaroonSecretKey: random(), formSecret: random(), registrationSharedSecret, signingKey: signingKey.fileLine, files: [] };
    const alicePassword = random();
    let aliceToken: string;
    let roomId: string;
    const messages: string[] = [];

    const settings = (version: string, extra: Partial<SynapseOptions> = {}): SynapseSettings =>
        resolveSynapseSettings(COMPONENT, {
            serverName: "matrix.test",
            publicBaseUrl: `${baseUrl}/`,
            installMethod: "apt",
            aptRepository: { url: repo.url, keyringUrl: `${repo.base}keyring.gpg`, fingerprint: key.fingerprint },
            version,
            httpPort: port,
            metrics: { enabled: false },
            sqlite: {},
            ...extra,
        });
    const install = async (s: SynapseSettings) => {
        const r = await root.script(synapseInstallScript(s, OS), { allowFailure: true, timeoutMs: 1_200_000 });
        if (process.env.PULUMI_MATRIX_VERBOSE === "1") process.stderr.write(`--- install ${s.version} exited ${r.code}\n${r.stdout}${r.stderr}`);
        return r;
    };
    const ok = (r: RunResult, what: string) => assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);
    const inRoot = async (cmd: string) => (await root.exec(["sh", "-c", cmd])).stdout.trim();
    const dpkgStatus = () => inRoot("dpkg-query -W -f='${db:Status-Status} ${Version}' matrix-synapse-py3 2>/dev/null || true");
    const kept = () => fs.readdirSync(root.path(KEPT_DEBS_DIR.slice(1))).sort();
    const version = () => serverVersion(baseUrl);
    const libraryStarts = () => root.starts().filter((s) => s.unit === "matrix-synapse.service");
    const api = (method: string, p: string, body?: unknown) => clientApi(baseUrl, aliceToken, method, p, body);
    const send = async (text: string) => {
        await sendText(baseUrl, aliceToken, roomId, text);
        messages.push(text);
    };
    /** A fresh login (the password still works) reads the whole history. */
    const history = () => roomTexts(baseUrl, roomId, "alice", alicePassword);
    const badFragment = () => root.path(`${synapseFiles(settings(OLD).paths).confD.slice(1)}/zz-refused.yaml`);

    before(async function () {
        this.timeout(1_800_000);
        const [venvOld, venvNew, r, k] = await Promise.all([ensureSynapseVenv(OLD), ensureSynapseVenv(NEW), startAptRepository(), makeTestKey("repo")]);
        [repo, key] = [r, k];
        // The broken build: the new release without the module its unit runs.
        const brokenVenv = path.join(makeTempDir("broken-venv"), "venv");
        await run("cp", ["-a", venvNew, brokenVenv], { timeoutMs: 300_000 });
        const module = (await run("sh", ["-c", `ls -d ${brokenVenv}/lib/python3*/site-packages/synapse/app/homeserver.py`])).stdout.trim();
        assert.ok(module.endsWith("homeserver.py"), module);
        fs.rmSync(module);
        const out = makeTempDir("debs");
        const [dOld, dBroken, dNew, kd, chroot] = await Promise.all([
            buildSynapsePackage(OLD_BUILD, venvOld, out),
            buildSynapsePackage(BROKEN_BUILD, brokenVenv, out),
            buildSynapsePackage(NEW_BUILD, venvNew, out),
            buildKeyringPackage("2026.01.01", key.keyring, out),
            makeChroot(),
        ]);
        debs = { [OLD_BUILD]: dOld, [BROKEN_BUILD]: dBroken, [NEW_BUILD]: dNew };
        keyringDeb = kd;
        root = chroot;
        port = await freePort();
        baseUrl = `http://127.0.0.1:${port}`;
        fs.copyFileSync(key.keyring, path.join(repo.dir, "keyring.gpg"));
        await repo.publish([debs[OLD_BUILD], keyringDeb], key);

        // The previous release, running, with a user and a room's history.
        const s = settings(OLD);
        ok(await install(s), `the install of ${OLD}`);
        ok(await root.script(synapseSecretsScript(s, secrets, COMPONENT)), "the secrets script");
        const c = await root.script(synapseConfigScript(s, {}, COMPONENT), { allowFailure: true, timeoutMs: 600_000 });
        ok(c, `the config script (unit log:\n${root.unitLog("matrix-synapse.service")})`);
        assert.equal(await version(), OLD);
        aliceToken = (await registerWithSharedSecret(baseUrl, registrationSharedSecret, "alice", alicePassword, false)).access_token;
        roomId = (await api("POST", "/createRoom", { name: "before the upgrade" })).room_id as string;
        for (let i = 0; i < 5; i++) await send(`message ${i} under ${OLD}`);
    });

    after(async function () {
        this.timeout(300_000);
        await root?.stopAll();
        await repo?.stop();
    });

    it("the install keeps the build's .deb in a root-only directory", async function () {
        assert.equal(await inRoot(`stat -c '%a %U' ${KEPT_DEBS_DIR}`), "700 root");
        assert.deepEqual(kept(), [path.basename(keptDeb(OLD_BUILD))]);
        assert.equal(await inRoot(`dpkg-deb -f ${keptDeb(OLD_BUILD)} Version`), OLD_BUILD);
    });

    it("a configuration the new release refuses: nothing is installed, the old process keeps running", async function () {
        // The index moves on (the good build): without the check, this upgrade would succeed.
        await repo.publish([debs[NEW_BUILD], keyringDeb], key);
        fs.writeFileSync(badFragment(), "max_upload_size: lots\n", { mode: 0o640 });
        await inRoot(`chgrp ${settings(OLD).paths.user} /${path.relative(root.path("/"), badFragment())}`);
        const pids = root.synapsePids();
        const starts = libraryStarts().length;
        try {
            const r = await install(settings(NEW));
            assert.notEqual(r.code, 0, r.stdout);
            assert.match(
                r.stderr,
                new RegExp(`Synapse ${re(NEW)} refuses the current configuration \\(above\\): nothing was switched, Synapse ${re(OLD)} keeps running`),
            );
            assert.match(r.stderr, /max_upload_size/);
            assert.equal(await dpkgStatus(), `installed ${OLD_BUILD}`);
            assert.equal(await inRoot("apt-mark showhold"), "matrix-synapse-py3");
            assert.deepEqual(root.synapsePids(), pids, "the old process never stopped");
            assert.equal(libraryStarts().length, starts);
            assert.equal(await version(), OLD);
            assert.deepEqual(await history(), messages);
            assert.ok(!fs.existsSync(root.path("usr/sbin/policy-rc.d")));
            assert.deepEqual(
                fs.readdirSync(root.path("var/tmp")).filter((n) => n.startsWith("pulumi-matrix-synapse")),
                [],
                "the unpacked build is gone",
            );
        } finally {
            fs.rmSync(badFragment(), { force: true });
        }
    });

    it("a new release that fails to start: the kept .deb of the old build is reinstalled, healthy, with its data", async function () {
        // The index serves only the broken build now: the old build can come back only from the kept .deb.
        await repo.publish([debs[BROKEN_BUILD], keyringDeb], key);
        const r = await install(settings(NEW));
        assert.notEqual(r.code, 0, r.stdout);
        assert.match(r.stdout, new RegExp(`Synapse ${re(NEW)} accepts the current configuration`));
        assert.match(r.stdout, new RegExp(`Synapse ${re(BROKEN_BUILD)} installed from ${re(repo.url)}`));
        assert.match(r.stderr, /did not answer \/health/);
        assert.match(r.stderr, new RegExp(`the database was not migrated .*: switching back to Synapse ${re(OLD)}`));
        assert.match(r.stdout, new RegExp(`Synapse ${re(OLD_BUILD)} reinstalled from ${re(keptDeb(OLD_BUILD))}`));
        assert.match(r.stderr, new RegExp(`the upgrade to ${re(NEW)} failed before the database migrated; Synapse ${re(OLD)} runs again`));
        assert.equal(await dpkgStatus(), `installed ${OLD_BUILD}`);
        assert.equal(await inRoot("apt-mark showhold"), "matrix-synapse-py3");
        assert.equal(await version(), OLD);
        assert.deepEqual(await history(), messages);
        await send(`message after the failed upgrade, under ${OLD}`);
        assert.ok(!fs.existsSync(root.path("usr/sbin/policy-rc.d")));
        assert.deepEqual(fs.readdirSync(root.path("etc/matrix-synapse/conf.d")), [], "the package's conf.d files are gone again");
    });

    it("the upgrade with data: users and history kept, the new build serves, the old build's .deb is kept", async function () {
        await repo.publish([debs[NEW_BUILD], keyringDeb], key);
        const starts = libraryStarts().length;
        const r = await install(settings(NEW));
        ok(r, "the upgrade");
        assert.match(r.stdout, new RegExp(`Synapse ${re(NEW)} accepts the current configuration`));
        assert.match(r.stdout, /no backup before the upgrade \(upgradeBackup is off\)/);
        assert.match(r.stdout, new RegExp(`Synapse upgraded from ${re(OLD)} to ${re(NEW)}`));
        assert.match(r.stderr, /policy-rc\.d returned 101, not running 'restart matrix-synapse\.service'/, "the package's own restart was refused");
        assert.equal(await dpkgStatus(), `installed ${NEW_BUILD}`);
        assert.equal(await inRoot("apt-mark showhold"), "matrix-synapse-py3");
        assert.equal(await version(), NEW);
        assert.deepEqual(
            libraryStarts()
                .slice(starts)
                .map((x) => x.maintscript),
            [""],
            "one restart, the library's",
        );
        assert.deepEqual(await history(), messages);
        await send(`message under ${NEW}`);
        assert.deepEqual(await history(), messages);
        // Kept: the build before (a switch back) and this one; the broken build is gone.
        assert.deepEqual(kept(), [path.basename(keptDeb(OLD_BUILD)), path.basename(keptDeb(NEW_BUILD))].sort());
        assert.deepEqual(fs.readdirSync(root.path("etc/matrix-synapse/conf.d")), []);
        // The config step after it has nothing to restart.
        const c = await root.script(synapseConfigScript(settings(NEW), {}, COMPONENT), { allowFailure: true, timeoutMs: 600_000 });
        ok(c, "the config script");
        assert.doesNotMatch(c.stdout, /restarting matrix-synapse\.service/);
        const again = await install(settings(NEW));
        ok(again, "a second run");
        assert.doesNotMatch(again.stdout, /installed|kept|removed|upgrad/);
    });
});
