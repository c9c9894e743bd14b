import { AdoptFiles, AdoptSettings } from "../model/adopt";
import { synapseFiles, SynapsePeers, SynapseSettings } from "../model/synapse";
import { databaseBlock } from "./synapse/homeserver";
import { renderYaml } from "./yaml";

/**
 * The adoption's programs and files. The preflight is Python run with the
 * existing Synapse's own interpreter (its virtualenv has PyYAML, signedjson
 * and, for PostgreSQL, psycopg2): it only reads (the SQLite file through a
 * read-only URI) and prints shell assignments, or the problems found.
 */

/**
 * argv: a JSON of what the stack expects, then the config paths (a path
 * ending in / is a directory of *.yaml, read sorted, as Synapse reads
 * conf.d). Exit 3 with the problems on stdout, one per line; exit 0 with
 * `pm_<name>=<quoted value>` lines.
 */
const READ_CONFIG_PY = `import glob, os, sys
import yaml

files = []
for p in sys.argv[2:]:
    files += sorted(glob.glob(os.path.join(p, "*.yaml"))) if p.endswith("/") else [p]
config = {}
for f in files:
    with open(f) as fh:
        config.update(yaml.safe_load(fh) or {})
db = config.get("database") or {"name": "sqlite3", "args": {"database": "homeserver.db"}}
args = db.get("args") or {}
`;

export const ADOPT_PREFLIGHT_PY = `import json, shlex, shutil, sqlite3, urllib.parse, urllib.request
${READ_CONFIG_PY}from signedjson.key import encode_verify_key_base64, get_verify_key, read_signing_keys

want = json.loads(sys.argv[1])
problems = []
out = {}

name = config.get("server_name")
if name != want["serverName"]:
    problems.append(f"its server_name is {name!r}, but the stack's serverName is {want['serverName']!r}; server_name can never change: set serverName to {name!r}, or point the adoption at the right server")

key_path = config.get("signing_key_path") or os.path.join(os.path.dirname(files[0]), f"{name}.signing.key")
key_id = pub = None
try:
    with open(key_path) as fh:
        keys = read_signing_keys(fh.read().splitlines())
    if len(keys) != 1:
        problems.append(f"{key_path} holds {len(keys)} keys; the adoption imports exactly one (the key Synapse signs with): move the others into old_signing_keys")
    else:
        key_id = f"{keys[0].alg}:{keys[0].version}"
        pub = encode_verify_key_base64(get_verify_key(keys[0]))
        out.update(key_file=key_path, key_id=keys[0].version)
except (OSError, ValueError) as e:
    problems.append(f"its signing key {key_path} cannot be read ({e.__class__.__name__})")

def key_url():
    for l in config.get("listeners") or []:
        names = {n for r in l.get("resources") or [] for n in r.get("names") or []}
        if l.get("type", "http") == "http" and not l.get("tls") and "port" in l and names & {"federation", "keys"}:
            host = (l.get("bind_addresses") or ["127.0.0.1"])[0]
            host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            return f"http://{'[' + host + ']' if ':' in host else host}:{l['port']}/_matrix/key/v2/server"
    return None

url = want.get("keyUrl") or key_url()
if url is None:
    problems.append("it has no plain HTTP listener serving federation or keys to ask for the key it publishes: give the adoption's keyUrl")
elif pub is not None:
    try:
        published = json.load(urllib.request.urlopen(url, timeout=30))
    except Exception as e:
        problems.append(f"it does not answer {url} ({e}); the preflight compares the key on disk with the key the running server publishes, so it must be running: systemctl start {want['unit']}")
    else:
        verify = published.get("verify_keys") or {}
        if published.get("server_name") != want["serverName"]:
            problems.append(f"{url} answers for {published.get('server_name')!r}, not {want['serverName']!r}")
        if (verify.get(key_id) or {}).get("key") != pub:
            problems.append(f"the key on disk ({key_path}, {key_id}) is not the key the server publishes at {url} ({', '.join(sorted(verify)) or 'none'}): adopting it would change the server's identity")

old = config.get("old_signing_keys") or {}
missing = {k: {"key": v.get("key"), "expiredTs": v.get("expired_ts")} for k, v in old.items() if want["oldSigningKeys"].get(k) != {"key": v.get("key"), "expiredTs": v.get("expired_ts")}}
if missing:
    problems.append(f"its old_signing_keys are not all in the stack: set synapse oldSigningKeys to include {json.dumps(missing, sort_keys=True)}")

media = config.get("media_store_path", "media_store")
if not os.path.isabs(media):
    problems.append(f"its media_store_path {media!r} is relative: write it as an absolute path in its config first")
elif os.path.realpath(media) != os.path.realpath(want["mediaStorePath"]):
    problems.append(f"its media store is {media}, the stack's is {want['mediaStorePath']}: set synapse paths.mediaStorePath to {media} (the files stay where they are)")
else:
    out["media"] = media

schema = None
mode = want["postgres"]
if db.get("name") in ("sqlite3", "sqlite") and mode == "in-place":
    problems.append("the adoption's postgres is in-place, but it runs on SQLite (its SQLite database is ported into the stack's PostgreSQL): remove the adoption's postgres setting (adoptPostgres)")
elif db.get("name") in ("sqlite3", "sqlite"):
    path = args.get("database", "")
    if not os.path.isabs(path) or not os.path.isfile(path):
        problems.append(f"its SQLite database {path!r} is not an absolute path to a file")
    else:
        conn = sqlite3.connect("file:" + urllib.parse.quote(path) + "?mode=ro", uri=True)
        schema = conn.execute("SELECT version FROM schema_version").fetchone()[0]
        conn.close()
        size = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
        work = want["workDir"]
        while not os.path.exists(work):
            work = os.path.dirname(work)
        st = os.statvfs(work)
        free = st.f_bavail * st.f_frsize
        if free < 2 * size:
            problems.append(f"{want['workDir']} has {free} bytes free; the port needs twice the SQLite file ({2 * size} bytes): a snapshot copy and the data in PostgreSQL")
        out.update(db_kind="sqlite", sqlite=path, source=f"SQLite {path} ({size} bytes), ported", free=free)
elif db.get("name") == "psycopg2":
    import psycopg2
    conn_args = {k: v for k, v in args.items() if not k.startswith("cp_")}
    try:
        conn = psycopg2.connect(**conn_args)
    except psycopg2.Error as e:
        conn = None
        problems.append(f"its PostgreSQL database cannot be reached with the database args of its config ({str(e).strip()})")
    if conn is not None:
        cur = conn.cursor()
        cur.execute("SELECT current_database(), current_user, pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype, pg_database_size(current_database()) FROM pg_database WHERE datname = current_database()")
        dbname, user, owner, encoding, collate, ctype, size = cur.fetchone()
        cur.execute("SHOW port")
        port = int(cur.fetchone()[0])
        cur.execute("SELECT version FROM schema_version")
        schema = cur.fetchone()[0]
        conn.close()
        host = str(args.get("host") or "")
        stack = want.get("database")
        # On the stack's own server: this host's PostgreSQL (loopback or its socket) on the stack's port.
        same_server = stack is not None and (host in ("", "localhost", "127.0.0.1", "::1") or host.startswith("/")) and port == stack["port"]
        c_locale = (encoding, collate, ctype) == ("UTF8", "C", "C")
        where = f"database {dbname!r} (role {user!r}) on {host or 'the local socket'} port {port}"
        if mode == "in-place":
            if not same_server:
                problems.append(f"its {where} is not on the stack's PostgreSQL (this host, port {stack['port'] if stack else '-'}): in-place takes over a database of the stack's own server; set the adoption's postgres to dump (adoptPostgres dump) to restore a dump of it instead")
            else:
                if dbname != stack["database"]:
                    problems.append(f"its database is {dbname!r}, the stack's is {stack['database']!r}: set postgres database (postgresDatabase) to {dbname!r}; in-place never renames or recreates a database")
                if owner != stack["user"] or user != owner:
                    problems.append(f"its database is owned by {owner!r} and it connects as {user!r}; in-place needs both to be the stack's role {stack['user']!r}: set postgres user (postgresUser) to {owner!r} when it connects as the owner, else use dump (adoptPostgres dump)")
            if not c_locale:
                problems.append(f"its PostgreSQL database has encoding {encoding}, LC_COLLATE {collate} and LC_CTYPE {ctype}; Synapse needs UTF8 and C for both, and in-place keeps the database as it is: set the adoption's postgres to dump (adoptPostgres dump), which restores it into a new UTF8/C database; or by hand: stop Synapse, pg_dump -Fc it, create a database with ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0, pg_restore into it, point its config at it, start it, then run again")
            out.update(db_kind="postgres", source=f"PostgreSQL {where}, taken over in place")
        else:
            if same_server and dbname == stack["database"]:
                problems.append(f"its database {dbname!r} is the stack's database: a dump is restored into a new, empty database: set postgres database (postgresDatabase) to another name, such as {dbname + '_adopted'!r}, or take it over in place (adoptPostgres in-place)")
            if same_server and user == stack["user"]:
                problems.append(f"it connects as {user!r}, the stack's role, whose password the stack sets before the dump (the running server would lose its database): set postgres user (postgresUser) to another name, such as {user + '_adopted'!r}, or take it over in place (adoptPostgres in-place)")
            missing = [p for p in ("pg_dump", "pg_restore") if shutil.which(p) is None]
            if missing:
                problems.append(f"{' and '.join(missing)} not found: install postgresql-client")
            work = want["workDir"]
            while not os.path.exists(work):
                work = os.path.dirname(work)
            st = os.statvfs(work)
            free = st.f_bavail * st.f_frsize
            if free < size:
                problems.append(f"{want['workDir']} has {free} bytes free; the dump needs up to the database's size ({size} bytes)")
            if not c_locale:
                print(f"note: its database has encoding {encoding}, LC_COLLATE {collate}, LC_CTYPE {ctype}: the dump is restored into the stack's UTF8/C database", file=sys.stderr)
            out.update(db_kind="postgres", source=f"PostgreSQL {where} ({size} bytes), dumped", free=free)
else:
    problems.append(f"its database engine {db.get('name')!r} is neither sqlite3 nor psycopg2")
if schema is not None:
    out["schema"] = schema
    if schema > want["schemaVersion"]:
        problems.append(f"its database schema is version {schema}, newer than Synapse {want['version']} runs (schema {want['schemaVersion']}): set synapse version to the release it runs, or a newer one")

if problems:
    print("\\n".join("  - " + p for p in problems))
    sys.exit(3)
for k, v in out.items():
    print(f"pm_{k}={shlex.quote(str(v))}")
`;

/** A consistent copy of a live SQLite file (SQLite's online backup, the source opened read only): argv source, copy. */
export const ADOPT_SNAPSHOT_PY = `import sqlite3, sys, urllib.parse
src = sqlite3.connect("file:" + urllib.parse.quote(sys.argv[1]) + "?mode=ro", uri=True)
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.close()
src.close()
`;

/**
 * What the target database holds (argv: the port's config): `empty`, `resume`
 * (an earlier port of this adoption stopped midway: synapse_port_db goes on
 * where it stopped) or `tables <n>` (another server's data: refused).
 */
export const ADOPT_TARGET_PY = `import sys, psycopg2, yaml
args = yaml.safe_load(open(sys.argv[1]))["database"]["args"]
conn = psycopg2.connect(**{k: v for k, v in args.items() if not k.startswith("cp_")})
cur = conn.cursor()
cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
tables = {r[0] for r in cur.fetchall()}
print("empty" if not tables else "resume" if "port_from_sqlite3" in tables else f"tables {len(tables)}")
`;

/** The snapshot copy the passes port from. */
export function adoptSnapshotPath(f: AdoptFiles): string {
    return `${f.stateDir}/snapshot.db`;
}

/**
 * The two configs Synapse's tools read: `update_synapse_database` the
 * snapshot's (SQLite), `synapse_port_db` the target's (the stack's
 * PostgreSQL, its password in the passfile Synapse's secrets step wrote).
 * Both carry what Synapse's config parser insists on; their media directory
 * is the adoption's own, so parsing them creates nothing elsewhere.
 */
export function renderAdoptConfigs(s: AdoptSettings, synapse: SynapseSettings, peers: SynapsePeers, f: AdoptFiles): { sqlite: string; postgres: string } {
    const base = {
        server_name: s.synapse.serverName,
        report_stats: false,
        signing_key_path: synapseFiles(synapse.paths).signingKey,
        media_store_path: `${f.stateDir}/media_store`,
    };
    const header = "The adoption's port (pulumi-matrix): read by update_synapse_database and synapse_port_db only.";
    return {
        sqlite: renderYaml({ ...base, database: { name: "sqlite3", args: { database: adoptSnapshotPath(f) } } }, header),
        postgres: renderYaml({ ...base, database: databaseBlock(synapse, peers) }, header),
    };
}

/**
 * The old server's database as pg_dump reaches it (argv: a passfile to
 * write, then the config paths): the database args of its config, their
 * password (if any) written to the passfile (0600) and never printed;
 * prints a libpq connection string naming the passfile.
 */
export const ADOPT_OLD_DATABASE_PY = `${READ_CONFIG_PY}from psycopg2.extensions import make_dsn

conn_args = {k: v for k, v in args.items() if not k.startswith("cp_") and k not in ("password", "passfile")}
if "password" in args:
    esc = lambda v: str(v).replace("\\\\", "\\\\\\\\").replace(":", "\\\\:")
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("*:*:*:*:" + esc(args["password"]) + "\\n")
    conn_args["passfile"] = sys.argv[1]
elif "passfile" in args:
    conn_args["passfile"] = args["passfile"]
print(make_dsn(**conn_args))
`;

/** Where the dump mode keeps its files in the adoption's root-only directory. */
export function adoptDumpFiles(f: AdoptFiles): { dump: string; passfile: string; restored: string } {
    return { dump: `${f.stateDir}/old-database.dump`, passfile: `${f.stateDir}/old-database.pgpass`, restored: `${f.stateDir}/dump-restored` };
}

/** A libpq connection string (keyword=value, each value quoted as libpq reads it) of the stack's database block: pg_restore's --dbname. */
export function libpqConninfo(args: Record<string, unknown>): string {
    return Object.entries(args)
        .filter(([k]) => !k.startsWith("cp_"))
        .map(([k, v]) => `${k}='${String(v).replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`)
        .join(" ");
}
