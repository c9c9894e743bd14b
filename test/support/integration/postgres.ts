// A throw-away PostgreSQL cluster from Debian's server binaries, run as the
// `postgres` OS user (PostgreSQL refuses to run as root), in a temp dir:
// TCP on 127.0.0.1 only (scram-sha-256), unix socket in the temp dir (trust
// for the `postgres` superuser only).
//
// initdb uses the machine's default locale (C.UTF-8 on a stock Debian 12),
// NOT "C": template1 is then not C-collated, so a database created with
// `ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0` (what
// Synapse requires) really has to ask for it.

import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { renderCreateDatabaseSql, scramSha256Verifier } from "../../../src/render/postgres";
import { freePort } from "./net";
import { makeTempDir, removeTempDir, requireUser, run, sleep, spawnDaemon, type SpawnedDaemon } from "./processes";

export const PG_OS_USER = "postgres";
export const PG_SUPERUSER = "postgres";

export interface PsqlOptions {
    /** Database to connect to (default "postgres"). */
    db?: string;
    /** Role to connect as (default the superuser "postgres", trusted over the socket). */
    user?: string;
    /** Password for `user` (roles other than postgres need one: scram-sha-256). */
    password?: string;
}

export interface PgServer {
    /** Always "127.0.0.1" (TCP). */
    readonly host: string;
    readonly port: number;
    /** Directory of the unix socket (use as PGHOST / libpq `host` for socket connections). */
    readonly socketDir: string;
    readonly dataDir: string;
    /** PostgreSQL major version of the binaries (e.g. 15). */
    readonly major: number;
    readonly binDir: string;
    /** Locale initdb used for template0/template1 (e.g. "C.UTF-8"). */
    readonly locale: string;
    /**
     * Runs SQL (fed on stdin, `-v ON_ERROR_STOP=1`) and returns psql's
     * unaligned, tuples-only output (`-A -t`), trailing newline trimmed:
     * `await pg.psql("SELECT 1")` is "1". Throws with stderr on failure.
     */
    psql(sql: string, opts?: PsqlOptions): Promise<string>;
    /**
     * Runs a whole SQL script (psql meta-commands such as \gexec allowed) as
     * the superuser over the unix socket, ON_ERROR_STOP; returns psql's normal output.
     */
    runAsSuperuser(script: string, opts?: { db?: string }): Promise<string>;
    /** pg_dump of `db` into `file` (custom format by default). */
    dump(db: string, file: string, opts?: { format?: "custom" | "plain" }): Promise<void>;
    /** libpq environment for superuser socket connections (PGHOST, PGPORT, PGUSER). */
    env(): Record<string, string>;
    /** Server log so far. */
    log(): string;
    /** Fast shutdown, then removes the temp dir. Idempotent. */
    stop(): Promise<void>;
    /** Fast shutdown, then starts again on the same data directory; resolves once it accepts connections. */
    restart(): Promise<void>;
}

/** Highest /usr/lib/postgresql/<major>/bin that has a postgres binary. */
export function findPgBinDir(): { binDir: string; major: number } {
    const root = "/usr/lib/postgresql";
    const majors = fs.existsSync(root)
        ? fs
              .readdirSync(root)
              .filter((d) => /^\d+$/.test(d) && fs.existsSync(path.join(root, d, "bin", "postgres")))
              .map(Number)
              .sort((a, b) => b - a)
        : [];
    if (majors.length === 0) {
        throw new Error("no PostgreSQL server binaries under /usr/lib/postgresql (run scripts/integration-deps.sh)");
    }
    return { binDir: path.join(root, String(majors[0]), "bin"), major: majors[0]! };
}

/** The machine's default locale if it is an installed UTF-8 one, else C.UTF-8. */
function defaultLocale(): string {
    const wanted = process.env.LC_ALL || process.env.LC_CTYPE || process.env.LANG || "";
    const r = spawnSync("locale", ["-a"], { encoding: "utf8" });
    const have = new Set((r.stdout ?? "").split("\n").map((l) => l.trim().toLowerCase().replace(/utf-8/, "utf8")));
    const norm = wanted.toLowerCase().replace(/utf-8/, "utf8");
    if (wanted && /utf-?8/i.test(wanted) && have.has(norm)) return wanted;
    return "C.UTF-8";
}

export async function startPostgres(
    opts: { port?: number; timeoutMs?: number; listenAddresses?: string[]; /** Run in this network namespace (its loopback). */ netns?: string } = {},
): Promise<PgServer> {
    const { binDir, major } = findPgBinDir();
    requireUser(PG_OS_USER);
    const tmp = makeTempDir("pg", { owner: PG_OS_USER });
    fs.chmodSync(tmp, 0o700);
    const dataDir = path.join(tmp, "data");
    const socketDir = tmp;
    const host = "127.0.0.1";
    const port = opts.port ?? (await freePort());
    const locale = defaultLocale();
    const env = { ...process.env, LANG: locale, LC_ALL: locale };

    try {
        await run(
            path.join(binDir, "initdb"),
            ["-D", dataDir, "-U", PG_SUPERUSER, "--encoding=UTF8", `--locale=${locale}`, "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"],
            { user: PG_OS_USER, env, cwd: tmp },
        );
    } catch (err) {
        removeTempDir(tmp);
        throw err;
    }
    // Trust only the superuser on the socket; everyone else (and all TCP) uses passwords.
    fs.writeFileSync(
        path.join(dataDir, "pg_hba.conf"),
        [
            "# written by test/support/integration/postgres.ts",
            "# TYPE  DATABASE  USER      ADDRESS        METHOD",
            `local   all       ${PG_SUPERUSER}                  trust`,
            "local   all       all                      scram-sha-256",
            "host    all       all       127.0.0.1/32   scram-sha-256",
            "",
        ].join("\n"),
    );
    const pgUser = requireUser(PG_OS_USER);
    fs.chownSync(path.join(dataDir, "pg_hba.conf"), pgUser.uid, pgUser.gid);

    const launch = (): SpawnedDaemon =>
        spawnDaemon(
            path.join(binDir, "postgres"),
            [
                "-D",
                dataDir,
                "-p",
                String(port),
                "-c",
                `listen_addresses=${(opts.listenAddresses ?? [host]).join(",")}`,
                "-c",
                `unix_socket_directories=${socketDir}`,
                "-c",
                "logging_collector=off",
                "-c",
                "password_encryption=scram-sha-256",
                // throw-away cluster: durability is not needed, speed is
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            { name: `postgres:${port}`, user: PG_OS_USER, env, cwd: tmp, logFile: path.join(tmp, "postgres.log"), exitSignal: "SIGQUIT", netns: opts.netns },
        );
    let daemon = launch();

    const stop = async (): Promise<void> => {
        await daemon.stop("SIGINT", 30_000); // SIGINT = fast shutdown
        removeTempDir(tmp);
    };

    // Wait until it accepts connections on the socket.
    const ready = async (): Promise<void> => {
        const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
        for (;;) {
            if (daemon.hasExited()) {
                const out = daemon.tail(60);
                removeTempDir(tmp);
                throw new Error(`PostgreSQL exited during startup:\n${out}`);
            }
            const r = await run(path.join(binDir, "pg_isready"), ["-q", "-h", socketDir, "-p", String(port), "-U", PG_SUPERUSER], {
                allowFailure: true,
            });
            if (r.code === 0) break;
            if (Date.now() > deadline) {
                const out = daemon.tail(60);
                await stop();
                throw new Error(`PostgreSQL did not become ready:\n${out}`);
            }
            await sleep(100);
        }
    };
    await ready();

    const psqlArgs = (db: string, user: string): string[] => [
        "-X", // no ~/.psqlrc
        "-h",
        socketDir,
        "-p",
        String(port),
        "-U",
        user,
        "-d",
        db,
        "-v",
        "ON_ERROR_STOP=1",
        "--no-password",
    ];
    const psqlEnv = (password?: string): NodeJS.ProcessEnv => {
        const e: NodeJS.ProcessEnv = { ...process.env, PGCONNECT_TIMEOUT: "10" };
        delete e.PGPASSWORD;
        delete e.PGSERVICE;
        if (password !== undefined) e.PGPASSWORD = password;
        return e;
    };

    return {
        host,
        port,
        socketDir,
        dataDir,
        major,
        binDir,
        locale,
        async psql(sql, o = {}) {
            const r = await run(path.join(binDir, "psql"), [...psqlArgs(o.db ?? "postgres", o.user ?? PG_SUPERUSER), "-q", "-A", "-t"], {
                input: sql,
                env: psqlEnv(o.password),
            });
            return r.stdout.replace(/\n$/, "");
        },
        async runAsSuperuser(script, o = {}) {
            const r = await run(path.join(binDir, "psql"), psqlArgs(o.db ?? "postgres", PG_SUPERUSER), {
                input: script,
                env: psqlEnv(),
            });
            return r.stdout;
        },
        async dump(db, file, o = {}) {
            await run(
                path.join(binDir, "pg_dump"),
                ["-h", socketDir, "-p", String(port), "-U", PG_SUPERUSER, `--format=${o.format ?? "custom"}`, "-f", file, db],
                { env: psqlEnv(), timeoutMs: 600_000 },
            );
        },
        env() {
            return { PGHOST: socketDir, PGPORT: String(port), PGUSER: PG_SUPERUSER };
        },
        log: () => daemon.log(),
        stop,
        async restart() {
            await daemon.stop("SIGINT", 30_000);
            daemon = launch();
            await ready();
        },
    };
}

/** The library's role and database SQL for `password`, as its database step sends it: the password as a SCRAM verifier (random salt). */
export function createDatabaseSql(db: { database: string; user: string }, password: string): string {
    return renderCreateDatabaseSql(db, scramSha256Verifier(password, randomBytes(16)));
}
