// The apt install method against a real apt repository, with real apt and
// dpkg, in a throw-away Debian root (see test/support/integration/aptRepo.ts): a signed
// repository on loopback serves a test `matrix-synapse-py3` built with
// debhelper, with matrix.org's layout and maintainer behaviour and a real
// Synapse as its payload. The component's own install, secrets and config
// scripts run in the root as they run on a VM; a systemctl stand-in really
// runs the units and records who started them.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { OsInfo } from "../../src/model/host";
import { resolveSynapseSettings, synapseFiles, SynapseOptions, SynapseSettings } from "../../src/model/synapse";
import { synapseConfigScript, synapseInstallScript, synapseSecretsScript } from "../../src/provision/synapse";
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
import { makeTempDir, RunResult, sleep } from "../support/integration/processes";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

/** Two real releases: the first install, and the upgrade (the library's default). */
const V1 = "1.163.1";
const V2 = "1.163.2";
const deb = (v: string) => `${v}+${ROOT_SUITE}1`;
const COMPONENT = 'SynapseHomeserver "apt"';
const OS: OsInfo = { id: "debian", versionId: "12", codename: ROOT_SUITE, prettyName: "Debian GNU/Linux 12 (bookworm)", architecture: "amd64" };
const random = () => crypto.randomBytes(24).toString("hex");

describe("installMethod apt against a real apt repository (real apt and dpkg in a throw-away Debian root)", function () {
    let root: Chroot;
    let repo: AptTestRepository;
    let key: TestKey;
    let otherKey: TestKey;
    let expiredKey: TestKey;
    let debs: Record<string, string>;
    let keyringDeb: string;
    let port: number;
    const signingKey = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());
    const secrets = { macaroonSecretKey: random(), formSecret: random(), registrationSharedSecret: random(), signingKey: signingKey.fileLine, files: [] };

    const settings = (extra: Partial<SynapseOptions> = {}): SynapseSettings =>
        resolveSynapseSettings(COMPONENT, {
            serverName: "matrix.test",
            publicBaseUrl: `http://127.0.0.1:${port}/`,
            installMethod: "apt",
            aptRepository: { url: repo.url, keyringUrl: `${repo.base}keyring.gpg`, fingerprint: key.fingerprint },
            version: V1,
            httpPort: port,
            metrics: { enabled: false },
            sqlite: {},
            ...extra,
        });

    const install = async (s: SynapseSettings, os: OsInfo = OS) => {
        const r = await root.script(synapseInstallScript(s, os), { allowFailure: true, timeoutMs: 600_000 });
        if (process.env.PULUMI_MATRIX_VERBOSE === "1") process.stderr.write(`--- install ${s.version} exited ${r.code}\n${r.stdout}${r.stderr}`);
        return r;
    };
    const ok = (r: RunResult, what: string) => assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);
    const inRoot = async (cmd: string) => (await root.exec(["sh", "-c", cmd])).stdout.trim();
    const dpkgStatus = () => inRoot("dpkg-query -W -f='${db:Status-Status} ${Version}' matrix-synapse-py3 2>/dev/null || true");
    const owner = (p: string) => inRoot(`stat -c '%a %U %G' ${p}`);
    const serverVersion = async () => {
        const body = (await (await fetch(`http://127.0.0.1:${port}/_matrix/federation/v1/version`)).json()) as { server: { version: string } };
        return body.server.version;
    };
    const libraryStarts = () => root.starts().filter((s) => s.unit === "matrix-synapse.service");

    before(async function () {
        this.timeout(1_800_000);
        const [venv1, venv2, r, k, other, expired] = await Promise.all([
            ensureSynapseVenv(V1),
            ensureSynapseVenv(V2),
            startAptRepository(),
            makeTestKey("repo"),
            makeTestKey("other"),
            makeTestKey("expired", { expireSeconds: 1 }),
        ]);
        [repo, key, otherKey, expiredKey] = [r, k, other, expired];
        const out = makeTempDir("debs");
        const [d1, d2, kd, chroot] = await Promise.all([
            buildSynapsePackage(deb(V1), venv1, out),
            buildSynapsePackage(deb(V2), venv2, out),
            buildKeyringPackage("2026.01.01", key.keyring, out),
            makeChroot(),
        ]);
        debs = { [V1]: d1, [V2]: d2 };
        keyringDeb = kd;
        root = chroot;
        port = await freePort();
        fs.copyFileSync(key.keyring, path.join(repo.dir, "keyring.gpg"));
        fs.copyFileSync(otherKey.keyring, path.join(repo.dir, "other.gpg"));
        fs.copyFileSync(expiredKey.keyring, path.join(repo.dir, "expired.gpg"));
        // Like matrix.org's: the index lists one build of Synapse (the pool may keep others).
        await repo.publish([debs[V1], keyringDeb], key);
        await sleep(1500); // the expired key has expired by now
    });

    after(async function () {
        await root?.stopAll();
    });

    describe("refuses before it changes anything", function () {
        const untouched = () => {
            assert.ok(!fs.existsSync(root.path("etc/apt/sources.list.d/matrix-org.list")), "no apt source was written");
            assert.ok(!fs.existsSync(root.path("usr/share/keyrings/matrix-org-archive-keyring.gpg")), "no keyring was installed");
            assert.ok(!fs.existsSync(root.path("etc/matrix-synapse")), "nothing of Synapse exists");
        };

        it("a keyring that holds another key than aptRepository.fingerprint", async function () {
            const r = await install(settings({ aptRepository: { url: repo.url, keyringUrl: `${repo.base}other.gpg`, fingerprint: key.fingerprint } }));
            assert.notEqual(r.code, 0);
            assert.match(
                r.stderr,
                new RegExp(
                    `refusing the keyring from ${repo.base}other\\.gpg \\(aptRepository\\.keyringUrl\\): it holds the key\\(s\\) ${otherKey.fingerprint}, not exactly the expected ${key.fingerprint}`,
                ),
            );
            assert.match(r.stderr, /aptRepository\.fingerprint/);
            untouched();
        });

        it("an expired keyring, naming the date it expired", async function () {
            const r = await install(settings({ aptRepository: { url: repo.url, keyringUrl: `${repo.base}expired.gpg`, fingerprint: expiredKey.fingerprint } }));
            assert.notEqual(r.code, 0);
            const today = new Date().toISOString().slice(0, 10);
            assert.match(r.stderr, new RegExp(`: its key ${expiredKey.fingerprint} expired on ${today}\\.`));
            untouched();
        });

        it("an OS release the repository does not build for, pointing to pip", async function () {
            const r = await install(settings(), { ...OS, id: "ubuntu", versionId: "22.04", codename: "jammy", prettyName: "Ubuntu 22.04" });
            assert.notEqual(r.code, 0);
            assert.match(
                r.stderr,
                new RegExp(
                    `^${repo.url} serves no packages for jammy \\(${repo.url}dists/jammy/InRelease: HTTP 404\\): installMethod "apt" cannot install Synapse on this OS release\\. Use installMethod "pip"`,
                    "m",
                ),
            );
            untouched();
        });
    });

    describe("the pinned version", function () {
        it("a version the index does not serve fails with what it serves and what to set; nothing of Synapse is installed", async function () {
            const r = await install(settings({ version: "1.160.0" }));
            assert.notEqual(r.code, 0);
            assert.match(
                r.stderr,
                new RegExp(
                    `matrix-synapse-py3 1\\.160\\.0 is not served by ${repo.url} for ${ROOT_SUITE}: its index has ${deb(V1).replace(/[.+]/g, "\\$&")}\\. .*Set the Synapse version \\(component argument version, stack config synapseVersion\\) to a release it serves \\(such as ${V1.replace(/\./g, "\\.")}\\), or use installMethod "pip"`,
                ),
            );
            assert.equal(await dpkgStatus(), "");
            assert.equal(await inRoot("dpkg-statoverride --list || true"), "");
            assert.equal(await inRoot("getent passwd matrix-synapse || true"), "");
        });
    });

    describe("first install", function () {
        let result: RunResult;
        before(async function () {
            result = await install(settings());
            ok(result, "the install script");
        });

        it("installs exactly the pinned build, verified with dpkg, and holds it", async function () {
            assert.equal(await dpkgStatus(), `installed ${deb(V1)}`);
            assert.match(result.stdout, new RegExp(`Synapse ${deb(V1).replace(/[.+]/g, "\\$&")} installed from ${repo.url}`));
            assert.equal(await inRoot("apt-mark showhold"), "matrix-synapse-py3");
            assert.equal(await inRoot("dpkg-query -W -f='${db:Status-Status}' matrix-org-archive-keyring"), "installed");
        });

        it("no Synapse starts: the package's start was refused by policy-rc.d, which is gone again", async function () {
            assert.match(result.stderr, /policy-rc\.d returned 101, not running 'start matrix-synapse\.service'/);
            assert.deepEqual(root.synapsePids(), []);
            assert.deepEqual(root.starts(), []);
            assert.ok(!fs.existsSync(root.path("usr/sbin/policy-rc.d")));
            assert.ok(!fs.existsSync(root.path("etc/matrix-synapse/homeserver.signing.key")), "no key generated by the package's unit");
            assert.ok(!fs.existsSync(root.path("var/lib/matrix-synapse/homeserver.db")), "no SQLite file of the package's default config");
        });

        it("the library's owners and modes, registered as dpkg statoverrides before the postinst's", async function () {
            assert.equal(await owner("/etc/matrix-synapse"), "750 root matrix-synapse");
            assert.equal(await owner("/var/lib/matrix-synapse"), "750 matrix-synapse matrix-synapse");
            assert.equal(
                await inRoot("dpkg-statoverride --list | sort"),
                [
                    "matrix-synapse matrix-synapse 750 /var/lib/matrix-synapse",
                    "matrix-synapse matrix-synapse 755 /var/log/matrix-synapse",
                    "root matrix-synapse 750 /etc/matrix-synapse",
                ].join("\n"),
            );
        });

        it("the package's unit is enabled only through matrix-synapse.target, and its conf.d files are gone", async function () {
            assert.ok(!fs.existsSync(root.path("etc/systemd/system/multi-user.target.wants/matrix-synapse.service")));
            assert.match(result.stdout, /removed \/etc\/systemd\/system\/multi-user\.target\.wants\/matrix-synapse\.service/);
            assert.deepEqual(fs.readdirSync(root.path("etc/matrix-synapse/conf.d")), []);
        });

        it("the secrets and config steps start Synapse once, from the library's step, healthy", async function () {
            const s = settings();
            ok(await root.script(synapseSecretsScript(s, secrets, COMPONENT)), "the secrets script");
            assert.deepEqual(root.synapsePids(), []);
            const r = await root.script(synapseConfigScript(s, {}, COMPONENT), { allowFailure: true, timeoutMs: 600_000 });
            ok(r, `the config script (unit log:\n${root.unitLog("matrix-synapse.service")})`);
            assert.deepEqual(
                libraryStarts().map((x) => x.maintscript),
                [""],
            );
            assert.equal(await serverVersion(), V1);
            assert.equal(await owner("/etc/matrix-synapse"), "750 root matrix-synapse");
        });

        it("a second run with the same settings changes nothing and starts nothing", async function () {
            const before = libraryStarts().length;
            const r = await install(settings());
            ok(r, "the install script");
            assert.doesNotMatch(r.stdout, /installed|removed|updated|statoverride/);
            assert.equal(libraryStarts().length, before);
        });
    });

    describe("upgrade to the next release through a settings change", function () {
        let result: RunResult;
        let startsBefore: number;
        let homeserverYaml: string;
        before(async function () {
            // matrix.org's index moves on to the new build; the old .deb stays in the pool.
            await repo.publish([debs[V2], keyringDeb], key);
            startsBefore = libraryStarts().length;
            homeserverYaml = fs.readFileSync(root.path(synapseFiles(settings().paths).homeserverYaml), "utf8");
            result = await install(settings({ version: V2 }));
            ok(result, "the upgrade");
        });

        it("installs exactly the new build with the package's restart refused; the library restarts Synapse once, onto it", async function () {
            assert.equal(await dpkgStatus(), `installed ${deb(V2)}`);
            assert.match(result.stderr, /policy-rc\.d returned 101, not running 'restart matrix-synapse\.service'/);
            assert.match(result.stdout, new RegExp(`Synapse ${V2.replace(/\./g, "\\.")} accepts the current configuration`));
            assert.match(result.stdout, new RegExp(`Synapse upgraded from ${V1.replace(/\./g, "\\.")} to ${V2.replace(/\./g, "\\.")}`));
            assert.deepEqual(
                libraryStarts()
                    .slice(startsBefore)
                    .map((x) => x.maintscript),
                [""],
            );
            assert.equal(await serverVersion(), V2);
        });

        it("the postinst left homeserver.yaml as the library wrote it (plain server_name and report_stats), and its recreated conf.d files are removed", async function () {
            assert.equal(fs.readFileSync(root.path("etc/matrix-synapse/homeserver.yaml"), "utf8"), homeserverYaml);
            assert.match(homeserverYaml, /^server_name: matrix\.test$/m);
            assert.match(homeserverYaml, /^report_stats: false$/m);
            assert.match(result.stdout, /removed the package's \/etc\/matrix-synapse\/conf\.d\/server_name\.yaml/);
            assert.deepEqual(fs.readdirSync(root.path("etc/matrix-synapse/conf.d")), []);
        });

        it("owners and modes are still the library's", async function () {
            assert.equal(await owner("/etc/matrix-synapse"), "750 root matrix-synapse");
            assert.equal(await owner("/var/lib/matrix-synapse"), "750 matrix-synapse matrix-synapse");
        });

        it("the config step after it restarts nothing", async function () {
            const before = libraryStarts().length;
            const r = await root.script(synapseConfigScript(settings({ version: V2 }), {}, COMPONENT), { allowFailure: true, timeoutMs: 600_000 });
            ok(r, "the config script");
            assert.doesNotMatch(r.stdout, /restarting matrix-synapse\.service/);
            assert.equal(libraryStarts().length, before);
            assert.equal(await serverVersion(), V2);
        });
    });

    describe("what the host already has", function () {
        it("refuses to switch to pip on a host with the package, saying how to migrate", async function () {
            const r = await root.script(synapseInstallScript(settings({ installMethod: "pip", aptRepository: undefined, version: V2 }), OS), {
                allowFailure: true,
            });
            assert.notEqual(r.code, 0);
            assert.match(
                r.stderr,
                new RegExp(
                    `^Synapse is installed on this host with installMethod "apt" \\(the matrix-synapse-py3 package, ${deb(V2).replace(/[.+]/g, "\\$&")}\\)\\. pulumi-matrix does not switch install methods in place; nothing was changed\\.`,
                ),
            );
            assert.match(r.stderr, /apt-get remove matrix-synapse-py3/);
            assert.equal(await dpkgStatus(), `installed ${deb(V2)}`);
        });

        it("a package removed but not purged counts as not installed: the install puts it back", async function () {
            await root.exec(["systemctl", "stop", "matrix-synapse.target"]);
            await root.exec([
                "sh",
                "-c",
                "apt-mark unhold matrix-synapse-py3 >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get remove -y -q matrix-synapse-py3 >/dev/null",
            ]);
            assert.equal(await dpkgStatus(), `config-files ${deb(V2)}`);
            const r = await install(settings({ version: V2 }));
            ok(r, "the install script");
            assert.equal(await dpkgStatus(), `installed ${deb(V2)}`);
            assert.deepEqual(root.synapsePids(), [], "the package's start was refused again");
        });

        it("while the package installs only Synapse's start is refused: other services follow the host's own policy-rc.d, put back afterwards", async function () {
            // The host's own policy: it refuses one unit of its own and allows the rest.
            const hostPolicy = '#!/bin/sh\n# the host\'s own policy\ncase "$1" in hostblocked.service) exit 101 ;; esac\nexit 0\n';
            fs.writeFileSync(root.path("usr/sbin/policy-rc.d"), hostPolicy, { mode: 0o755 });
            // apt runs this hook right before dpkg, while the library's policy-rc.d is in place: it asks the policy as
            // deb-systemd-invoke (a unit) and invoke-rc.d (--quiet, a script name) do.
            const asks = ["other.service start", "hostblocked.service start", "matrix-synapse.service start", "--quiet matrix-synapse start"];
            const hook = `#!/bin/sh\n${asks.map((a) => `/usr/sbin/policy-rc.d ${a}; echo "${a}=$?" >>/run/policy-seen`).join("\n")}\n`;
            fs.writeFileSync(root.path("usr/local/sbin/policy-seen"), hook, { mode: 0o755 });
            fs.writeFileSync(root.path("etc/apt/apt.conf.d/99policy-seen"), 'DPkg::Pre-Invoke { "/usr/local/sbin/policy-seen"; };\n');
            fs.rmSync(root.path("run/policy-seen"), { force: true });
            try {
                await root.exec(["systemctl", "stop", "matrix-synapse.target"]);
                await root.exec([
                    "sh",
                    "-c",
                    "apt-mark unhold matrix-synapse-py3 >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get remove -y -q matrix-synapse-py3 >/dev/null",
                ]);
                fs.rmSync(root.path("run/policy-seen"), { force: true });
                const r = await install(settings({ version: V2 }));
                ok(r, "the install script");
                assert.equal(await dpkgStatus(), `installed ${deb(V2)}`);
                assert.deepEqual(fs.readFileSync(root.path("run/policy-seen"), "utf8").trim().split("\n"), [
                    "other.service start=0",
                    "hostblocked.service start=101",
                    "matrix-synapse.service start=101",
                    "--quiet matrix-synapse start=101",
                ]);
                assert.deepEqual(root.synapsePids(), [], "the package's start of Synapse was refused");
                assert.equal(fs.readFileSync(root.path("usr/sbin/policy-rc.d"), "utf8"), hostPolicy, "the host's own policy-rc.d is back");
                assert.ok(!fs.existsSync(root.path("usr/sbin/policy-rc.d.pulumi-matrix-saved")));
            } finally {
                fs.rmSync(root.path("etc/apt/apt.conf.d/99policy-seen"), { force: true });
                fs.rmSync(root.path("usr/sbin/policy-rc.d"), { force: true });
            }
        });

        it("a policy-rc.d a killed run left behind (it refused every service) is removed by the next run, and the host's own put back", async function () {
            // What a run killed during the install left: the library's old policy (exit 101 for every service), the host's aside.
            const hostPolicy = "#!/bin/sh\n# the host's own policy\nexit 0\n";
            fs.writeFileSync(root.path("usr/sbin/policy-rc.d"), "#!/bin/sh\n# pulumi-matrix: no service starts while Synapse is installed\nexit 101\n", {
                mode: 0o755,
            });
            fs.writeFileSync(root.path("usr/sbin/policy-rc.d.pulumi-matrix-saved"), hostPolicy, { mode: 0o755 });
            try {
                const r = await install(settings({ version: V2 }));
                ok(r, "the install script");
                assert.doesNotMatch(r.stdout, /installed/, "nothing to install: the stale policy goes anyway");
                assert.equal(fs.readFileSync(root.path("usr/sbin/policy-rc.d"), "utf8"), hostPolicy);
                assert.ok(!fs.existsSync(root.path("usr/sbin/policy-rc.d.pulumi-matrix-saved")));
                // Without a saved policy, the stale one is simply removed; a policy-rc.d that is not the library's stays.
                fs.writeFileSync(root.path("usr/sbin/policy-rc.d"), "#!/bin/sh\n# pulumi-matrix: left behind\nexit 101\n", { mode: 0o755 });
                ok(await install(settings({ version: V2 })), "the install script");
                assert.ok(!fs.existsSync(root.path("usr/sbin/policy-rc.d")));
                fs.writeFileSync(root.path("usr/sbin/policy-rc.d"), hostPolicy, { mode: 0o755 });
                ok(await install(settings({ version: V2 })), "the install script");
                assert.equal(fs.readFileSync(root.path("usr/sbin/policy-rc.d"), "utf8"), hostPolicy);
            } finally {
                fs.rmSync(root.path("usr/sbin/policy-rc.d"), { force: true });
                fs.rmSync(root.path("usr/sbin/policy-rc.d.pulumi-matrix-saved"), { force: true });
            }
        });

        it("a newer keyring package in the index is installed on the next run (it brings renewed keys)", async function () {
            const newer = await buildKeyringPackage("2026.06.01", key.keyring, path.dirname(keyringDeb));
            await repo.publish([debs[V2], newer], key);
            try {
                const r = await install(settings({ version: V2 }));
                ok(r, "the install script");
                assert.match(r.stdout, /^matrix-org-archive-keyring 2026\.06\.01 installed \(it renews the repository key\)$/m);
                assert.equal(await inRoot("dpkg-query -W -f='${Version}' matrix-org-archive-keyring"), "2026.06.01");
            } finally {
                await repo.publish([debs[V2], keyringDeb], key);
            }
        });

        it("an index signed by another key fails apt-get update clearly", async function () {
            await repo.publish([debs[V2], keyringDeb], otherKey);
            try {
                const r = await install(settings({ version: V2 }));
                assert.notEqual(r.code, 0);
                assert.match(r.stderr, new RegExp(`apt-get update of ${repo.url} failed \\(above\\): .*does not verify with the key ${key.fingerprint}`));
                assert.match(r.stderr, /NO_PUBKEY|not signed|signatures couldn't be verified/i);
            } finally {
                await repo.publish([debs[V2], keyringDeb], key);
            }
        });

        it("control: without the library's guard the test package starts Synapse itself, as the real one does", async function () {
            const before = root.starts().length;
            await root.exec([
                "sh",
                "-c",
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall --allow-change-held-packages matrix-synapse-py3 >/dev/null",
            ]);
            const started = root.starts().slice(before);
            assert.deepEqual(
                started.map((x) => [x.unit, x.maintscript]),
                [["matrix-synapse.service", "postinst"]],
            );
        });
    });
});
