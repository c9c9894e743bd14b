// The pip install method for real: the component's install script runs in a
// throw-away Debian root (see test/support/integration/aptRepo.ts) that has no compiler, and
// installs Synapse from PyPI into a virtualenv from wheels, with Debian's
// python3-psycopg2 for PostgreSQL. The secrets and config scripts then start
// that Synapse on a real PostgreSQL (on loopback, outside the root).

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";

import { OsInfo } from "../../src/model/host";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { resolveSynapseSettings, SynapseOptions, SynapsePeers, synapseRequirements, SynapseSettings } from "../../src/model/synapse";
import { synapseConfigScript, synapseInstallScript, synapseSecretsScript } from "../../src/provision/synapse";
import { synapseRequirementsPath } from "../../src/provision/synapse/install";
import { pgpassSecretFile } from "../../src/render/synapse/homeserver";
import { signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { Chroot, makeChroot, ROOT_SUITE } from "../support/integration/aptRepo";
import { freePort } from "../support/integration/net";
import { createDatabaseSql, type PgServer, startPostgres } from "../support/integration/postgres";
import { RunResult } from "../support/integration/processes";

/** An older release first, then the library's default: the upgrade path too. */
const V1 = "1.163.1";
const V2 = "1.163.2";
const COMPONENT = 'SynapseHomeserver "pip"';
const OS: OsInfo = { id: "debian", versionId: "12", codename: ROOT_SUITE, prettyName: "Debian GNU/Linux 12 (bookworm)", architecture: "amd64" };
const random = () => crypto.randomBytes(24).toString("hex");
const VENV = "/opt/venvs/matrix-synapse";

describe("installMethod pip, for real: wheels from PyPI and Debian's psycopg2, no compiler (in a throw-away Debian root)", function () {
    let root: Chroot;
    let pg: PgServer;
    let port: number;
    let peers: SynapsePeers;
    const dbPassword = random();
    const signingKey = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());

    const settings = (extra: Partial<SynapseOptions> = {}): SynapseSettings =>
        resolveSynapseSettings(COMPONENT, {
            serverName: "matrix.test",
            publicBaseUrl: `http://127.0.0.1:${port}/`,
            version: V1,
            httpPort: port,
            metrics: { enabled: false },
            ...extra,
        });
    // The root reaches PyPI as this machine does (its resolver and CA bundle, pip's settings from the environment).
    const pipEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("PIP_") && k !== "PIP_FIND_LINKS")) as Record<string, string>;
    const install = async (s: SynapseSettings) => {
        const r = await root.script(synapseInstallScript(s, OS), { allowFailure: true, timeoutMs: 900_000, env: pipEnv });
        if (process.env.PULUMI_MATRIX_VERBOSE === "1") process.stderr.write(`--- install ${s.version} exited ${r.code}\n${r.stdout}${r.stderr}`);
        return r;
    };
    const ok = (r: RunResult, what: string) => assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);
    const inRoot = async (cmd: string) => (await root.exec(["sh", "-c", cmd])).stdout.trim();
    const py = (code: string) => inRoot(`cd / && ${VENV}/bin/python -c '${code}'`);
    const serverVersion = async () => {
        const body = (await (await fetch(`http://127.0.0.1:${port}/_matrix/federation/v1/version`)).json()) as { server: { version: string } };
        return body.server.version;
    };

    before(async function () {
        this.timeout(900_000);
        [root, pg] = await Promise.all([makeChroot(), startPostgres()]);
        fs.copyFileSync("/etc/resolv.conf", root.path("etc/resolv.conf"));
        fs.copyFileSync("/etc/ssl/certs/ca-certificates.crt", root.path("etc/ssl/certs/ca-certificates.crt"));
        port = await freePort();
        const pgSettings = resolvePostgresSettings("test", { port: pg.port });
        await pg.runAsSuperuser(createDatabaseSql(pgSettings, dbPassword));
        peers = { database: { host: "127.0.0.1", port: pg.port, database: pgSettings.database, user: pgSettings.user } };
    });

    after(async function () {
        await root?.stopAll();
        await pg?.stop();
    });

    it("the root has no compiler and no Python headers: nothing can be compiled", async function () {
        assert.equal(await inRoot("command -v cc gcc x86_64-linux-gnu-gcc || true"), "");
        assert.equal(await inRoot("ls /usr/include/python3* 2>/dev/null || true"), "");
    });

    describe("first install", function () {
        let result: RunResult;
        before(async function () {
            result = await install(settings());
            ok(result, "the install script");
        });

        it("installs exactly the pinned release, as Synapse itself reports it", async function () {
            assert.match(result.stdout, new RegExp(`^Synapse ${V1.replace(/\./g, "\\.")} installed from PyPI into ${VENV}-${V1.replace(/\./g, "\\.")}$`, "m"));
            assert.equal(await py("import synapse; print(synapse.__version__)"), V1);
        });

        it("exactly the packages of the release's requirements file with hashes, kept on the host (nothing resolved beyond it)", async function () {
            const path = synapseRequirementsPath(settings());
            const shipped = fs.readFileSync(root.path(path.slice(1)), "utf8");
            assert.equal(shipped, synapseRequirements(V1));
            // The entries for the root's Python (3.11): name==version, markers evaluated as pip does.
            const wanted = shipped
                .replace(/\\\n\s*--hash=sha256:[0-9a-f]{64}/g, "")
                .split("\n")
                .filter((l) => /^[a-z0-9-]+==/.test(l))
                .filter((l) => !l.includes(";") || l.includes('python_version == "3.11"'))
                .map((l) => l.split(" ")[0])
                .sort();
            const norm = (l: string) => l.toLowerCase().replace(/[_.]+(?=[^=]*==)/g, "-");
            const frozen = (await inRoot(`cd / && ${VENV}/bin/pip freeze --local --all --disable-pip-version-check | grep -v '^pip=='`))
                .split("\n")
                .map(norm)
                .sort();
            assert.deepEqual(frozen, wanted);
        });

        it("psycopg2 is Debian's; every other dependency is the virtualenv's own, even where Debian has one (PyYAML)", async function () {
            assert.equal(await py("import psycopg2; print(psycopg2.__file__)"), "/usr/lib/python3/dist-packages/psycopg2/__init__.py");
            assert.ok(fs.existsSync(root.path("usr/lib/python3/dist-packages/yaml/__init__.py")), "the root has Debian's python3-yaml");
            assert.equal(await py("import yaml; print(yaml.__file__)"), `${VENV}/lib/python3.11/site-packages/yaml/__init__.py`);
            assert.match(fs.readFileSync(root.path(`${VENV}/pyvenv.cfg`), "utf8"), /^include-system-site-packages = true$/m);
        });

        it("Synapse's own dependency check passes for postgres, redis and url-preview", async function () {
            const out = await py(
                'from synapse.util.check_dependencies import check_requirements; [check_requirements(e) for e in (None, "postgres", "redis", "url-preview")]; print("ok")',
            );
            assert.equal(out, "ok");
        });

        it("Synapse runs from it on PostgreSQL, started once by the config step", async function () {
            const s = settings();
            const secrets = {
                macaroonSecretKey: random(),
                formSecret: random(),
                registrationSharedSecret: random(),
                signingKey: signingKey.fileLine,
                files: [pgpassSecretFile(peers.database!, dbPassword)],
            };
            ok(await root.script(synapseSecretsScript(s, secrets, COMPONENT)), "the secrets script");
            const r = await root.script(synapseConfigScript(s, peers, COMPONENT), { allowFailure: true, timeoutMs: 600_000 });
            ok(r, `the config script (unit log:\n${root.unitLog("matrix-synapse.service")})`);
            assert.equal(await serverVersion(), V1);
            assert.deepEqual(
                root.starts().map((x) => [x.unit, x.maintscript]),
                [["matrix-synapse.service", ""]],
            );
        });

        it("a second run installs nothing", async function () {
            const r = await install(settings());
            ok(r, "the install script");
            assert.equal(r.stdout, "");
        });
    });

    describe("upgrade and downgrade", function () {
        it("a new version is installed beside the old one and switched to by the install step (test/integration/upgrade.test.ts: the rest)", async function () {
            const r = await install(settings({ version: V2 }));
            ok(r, "the upgrade");
            assert.equal(await py("import synapse; print(synapse.__version__)"), V2);
            assert.match(r.stdout, new RegExp(`Synapse upgraded from ${V1.replace(/\./g, "\\.")} to ${V2.replace(/\./g, "\\.")}`));
            assert.equal(await serverVersion(), V2);
            const c = await root.script(synapseConfigScript(settings({ version: V2 }), peers, COMPONENT), { allowFailure: true, timeoutMs: 600_000 });
            ok(c, "the config script");
            assert.doesNotMatch(c.stdout, /restarting matrix-synapse\.service/);
            assert.equal(await serverVersion(), V2);
        });

        it("an older version is refused", async function () {
            const r = await install(settings({ version: V1 }));
            assert.notEqual(r.code, 0);
            assert.match(r.stderr, new RegExp(`Synapse ${V2.replace(/\./g, "\\.")} is installed; refusing to downgrade to ${V1.replace(/\./g, "\\.")}`));
            assert.equal(await py("import synapse; print(synapse.__version__)"), V2);
        });
    });

    describe("switching methods", function () {
        it("refuses to switch to apt on a host installed with pip, saying how to migrate", async function () {
            const r = await root.script(synapseInstallScript(settings({ installMethod: "apt", version: V2 }), OS), { allowFailure: true });
            assert.notEqual(r.code, 0);
            assert.match(
                r.stderr,
                /^Synapse was installed on this host with installMethod "pip" \(a virtualenv in \/opt\/venvs\/matrix-synapse, no matrix-synapse-py3 package\)\. pulumi-matrix does not switch install methods in place; nothing was changed\./,
            );
            assert.match(r.stderr, /mv \/opt\/venvs\/matrix-synapse \/opt\/venvs\/matrix-synapse\.pip/);
            assert.ok(!fs.existsSync(root.path("etc/apt/sources.list.d/matrix-org.list")));
        });
    });
});
