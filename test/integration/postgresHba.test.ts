// The managed pg_hba.conf block as the database host's install script writes
// it (pgHbaSteps, pgReloadIfOwed from src/provision/postgres.ts), run as on
// a VM against a real PostgreSQL (issue 19, Low): a change of pg_hba.conf
// reloads the server, whose postmaster keeps its PID (no restart, no
// dropped connection); a BEGIN marker without its END stops the run with
// a clear error and leaves the file exactly as it was.

import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";

import { resolvePostgresSettings } from "../../src/model/postgres";
import { pgHbaSteps, pgReloadIfOwed } from "../../src/provision/postgres";
import { sh } from "../../src/provision/sh";
import { script } from "../../src/provision/shell";
import { STATE_DIR } from "../../src/render/drift";
import { type PgServer, startPostgres } from "../support/integration/postgres";
import { makeTempDir } from "../support/integration/processes";
import { ServiceSandbox } from "../support/integration/serviceSandbox";

describe("the managed pg_hba.conf block, against a real PostgreSQL", function () {
    let pg: PgServer;
    let sandbox: ServiceSandbox;
    let hba: string;

    before(async function () {
        pg = await startPostgres();
        sandbox = new ServiceSandbox(makeTempDir("pg-hba"), [{ real: STATE_DIR, name: "state" }], 60_000);
        hba = path.join(pg.dataDir, "pg_hba.conf");
    });

    after(async function () {
        await pg?.stop();
    });

    /** The block's steps for `allowedClients`, as the install script runs them; psql reaches the test cluster's socket. */
    const apply = (allowedClients: string[]) => {
        const s = resolvePostgresSettings("PostgresDatabase", {
            port: pg.port,
            listenAddresses: allowedClients.length ? ["127.0.0.1", "10.9.0.1"] : ["127.0.0.1"],
            allowedClients,
        });
        const text = script("test pg_hba", [sh`hba=${hba}`, ...pgHbaSteps(s), pgReloadIfOwed(s.port, "pg_hba.conf")]);
        return sandbox.tryRun(text, { env: { PGHOST: pg.socketDir, PATH: `${pg.binDir}:${process.env.PATH}` } });
    };
    const postmasterPid = () => fs.readFileSync(path.join(pg.dataDir, "postmaster.pid"), "utf8").split("\n")[0];
    const reloads = () => (pg.log().match(/received SIGHUP, reloading configuration files/g) ?? []).length;

    it("a change of the block reloads PostgreSQL: the postmaster keeps its PID, the new rules are in force", async function () {
        const first = await apply([]);
        assert.equal(first.code, 0, first.stderr);
        const pid = postmasterPid();
        const before = reloads();
        const r = await apply(["10.9.0.0/24"]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /PostgreSQL reloaded \(pg_hba\.conf\)/);
        for (let i = 0; i < 50 && reloads() === before; i++) await new Promise((res) => setTimeout(res, 100));
        assert.ok(reloads() > before, "the server logged no reload");
        assert.equal(postmasterPid(), pid, "the postmaster was restarted");
        assert.match(fs.readFileSync(hba, "utf8"), /^hostnossl all +all +10\.9\.0\.0\/24 +reject$/m);
        // The server's own view of the file: no line it could not parse.
        // (ssl is off in this test cluster: PostgreSQL notes that its hostssl line cannot match, which on a host it can.)
        assert.equal(
            await pg.psql(
                "SELECT string_agg(error, '; ') FROM pg_hba_file_rules WHERE error IS NOT NULL AND error NOT LIKE 'hostssl record cannot match because SSL is disabled%'",
            ),
            "",
        );
        // The rest of the file (the test cluster's own lines) is kept.
        assert.match(fs.readFileSync(hba, "utf8"), /^local +all +postgres +trust$/m);
        // Unchanged settings: nothing is owed, nothing reloads.
        const again = await apply(["10.9.0.0/24"]);
        assert.doesNotMatch(again.stdout, /reloaded/);
    });

    it("a BEGIN marker without its END stops the run and leaves the file as it was", async function () {
        const broken = fs
            .readFileSync(hba, "utf8")
            .split("\n")
            .filter((l) => l !== "# END pulumi-matrix")
            .join("\n");
        fs.writeFileSync(hba, broken);
        const r = await apply([]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /'# BEGIN pulumi-matrix' and '# END pulumi-matrix' lines do not pair up/);
        assert.equal(fs.readFileSync(hba, "utf8"), broken);
        assert.match(broken, /^local +all +postgres +trust$/m);
    });
});
