import { ADOPT_FILES, AdoptFiles, AdoptSettings } from "../model/adopt";
import { synapseFiles, SynapsePeers, SynapseSettings } from "../model/synapse";
import {
    ADOPT_OLD_DATABASE_PY,
    ADOPT_PREFLIGHT_PY,
    ADOPT_SNAPSHOT_PY,
    ADOPT_TARGET_PY,
    adoptDumpFiles,
    adoptSnapshotPath,
    libpqConninfo,
    renderAdoptConfigs,
} from "../render/adopt";
import { databaseBlock } from "../render/synapse/homeserver";
import { heredoc, heredocVar, indent, lines, Sh, sh } from "./sh";
import { script, STATE_DIR } from "./shell";

/** The line the preflight prints on fd 4 (the command's own stdout in a secret step) with the key file's line: the component keeps it as a secret. */
export const ADOPTED_KEY_PREFIX = "pm-adopted-signing-key: ";

/** What the preflight expects of the server, as the Python reads it. */
function expectations(s: AdoptSettings, f: AdoptFiles): string {
    return JSON.stringify({
        serverName: s.synapse.serverName,
        version: s.synapse.version,
        schemaVersion: s.synapse.schemaVersion,
        mediaStorePath: s.synapse.paths.mediaStorePath,
        oldSigningKeys: s.synapse.oldSigningKeys,
        unit: s.unit,
        workDir: f.stateDir,
        postgres: s.postgres,
        ...(s.database ? { database: s.database } : {}),
        ...(s.keyUrl !== undefined ? { keyUrl: s.keyUrl } : {}),
    });
}

/**
 * The preflight's checks, reading only: on a mismatch the operator reads the
 * problems (pm_tell) and the step stops; otherwise `pm_key_file`,
 * `pm_key_id`, `pm_schema`, `pm_db_kind` (sqlite or postgres), `pm_source`
 * (what is adopted, in words) and, for SQLite, `pm_sqlite` are set.
 */
function preflightChecks(s: AdoptSettings, f: AdoptFiles, what: string): Sh {
    const python = `${s.venvDir}/bin/python`;
    return lines([
        sh`if [ ! -x ${python} ]; then pm_tell ${`adoption: ${python} is missing: the adoption's venvDir must be the virtualenv the existing Synapse runs from; nothing was changed`}; exit 1; fi`,
        heredocVar("pm_preflight_py", ADOPT_PREFLIGHT_PY),
        sh`pm_rc=0; pm_out=$(cd / && ${python} -c "$pm_preflight_py" ${expectations(s, f)} ${s.configPaths}) || pm_rc=$?`,
        sh`if [ "$pm_rc" = 3 ]; then pm_tell ${`adoption of the Synapse configured in ${s.configDir} refused by the preflight; ${what}:`}; pm_tell "$pm_out"; exit 1; fi`,
        sh`if [ "$pm_rc" != 0 ]; then pm_tell ${`adoption: the preflight could not read the Synapse configured in ${s.configDir} (exit status`}" $pm_rc); "${what}; exit 1; fi`,
        sh`eval "$pm_out"`,
    ]);
}

/**
 * The read-only preflight, the adoption's first step: the existing server's
 * server_name is the stack's serverName, the key on disk is the key it
 * publishes, its schema is not newer than the pinned Synapse's, its
 * database is SQLite with twice its size free, or PostgreSQL that the
 * adoption's `postgres` mode can take (in-place: the stack's own database
 * and role, UTF8/C; dump: not the stack's database or role, pg_dump at
 * hand), its media store and old keys are the stack's. It prints the key file's line on fd 4 (the stack keeps it as
 * a secret output, so Synapse uses the adopted key). After the adoption it
 * checks nothing and prints the key kept then.
 */
export function adoptPreflightScript(s: AdoptSettings, f: AdoptFiles = ADOPT_FILES): string {
    return script(`pulumi-matrix adoption preflight (${s.configDir})`, [
        sh`if [ -e ${f.adoptedMarker} ]; then`,
        sh`    pm_marker=$(cat ${f.adoptedMarker}); pm_key_line=$(head -n 1 ${f.signingKey})`,
        sh`    echo "adopted already ($pm_marker): the preflight checks nothing"`,
        sh`    printf '%s%s\n' ${ADOPTED_KEY_PREFIX} "$pm_key_line" >&4`,
        sh`    exit 0`,
        sh`fi`,
        preflightChecks(s, f, "nothing was changed"),
        sh`echo "preflight passed: server_name "${s.synapse.serverName}", key ed25519:$pm_key_id (the key the server publishes), schema $pm_schema (Synapse "${s.synapse.version}" runs up to "${String(s.synapse.schemaVersion)}"), $pm_source"`,
        sh`printf '%s%s\n' ${ADOPTED_KEY_PREFIX} "$(head -n 1 "$pm_key_file")" >&4`,
    ]);
}

/** One pass of the port as a shell function: a fresh snapshot copy, its background updates run, then synapse_port_db (which goes on where the last pass stopped). */
function portPassFunction(s: AdoptSettings, synapse: SynapseSettings, f: AdoptFiles): Sh {
    const venv = synapse.paths.venvDir;
    const copy = adoptSnapshotPath(f);
    return lines([
        sh`pm_port_pass() {`,
        sh`    rm -f -- ${copy}`,
        sh`    ${`${s.venvDir}/bin/python`} -c "$pm_snapshot_py" "$pm_sqlite" ${copy} || return 1`,
        sh`    (cd ${f.stateDir} && ${`${venv}/bin/update_synapse_database`} --database-config ${`${f.stateDir}/snapshot.yaml`} --run-background-updates) || return 1`,
        sh`    (cd ${f.stateDir} && ${`${venv}/bin/synapse_port_db`} --sqlite-database ${copy} --postgres-config ${`${f.stateDir}/postgres.yaml`}) || return 1`,
        sh`}`,
    ]);
}

/** Runs one pass; when it fails, `onFailure` and a stop with what to do. */
function portPass(pass: string, onFailure: Sh): Sh {
    return lines([
        sh`echo ${`adoption: ${pass}: port from a snapshot of`}" $pm_sqlite"`,
        sh`if ! pm_port_pass; then`,
        onFailure,
        sh`    pm_tell ${`adoption: ${pass} of the port failed (its output is above); the SQLite file was not modified; running the step again goes on where it stopped`}`,
        sh`    exit 1`,
        sh`fi`,
    ]);
}

/** The old installation set aside once its data is taken: the config kept whole, the package's files moved aside, the unit disabled, the key kept, the marker. */
function finishAdoption(s: AdoptSettings, synapse: SynapseSettings, f: AdoptFiles): Sh[] {
    const hsYaml = `${s.configDir}/homeserver.yaml`;
    const confD = `${s.configDir}/conf.d`;
    const ours = synapseFiles(synapse.paths);
    return [
        // The config as it was, whole (it holds the key: root only), then the package's files out of Synapse's way.
        sh`if [ ! -e ${f.keptConfig} ]; then`,
        sh`    cp -a -- ${s.configDir} ${`${f.keptConfig}.tmp`}`,
        sh`    if [ -f ${`/etc/systemd/system/${s.unit}`} ]; then cp -a -- ${`/etc/systemd/system/${s.unit}`} ${`${f.keptConfig}.tmp/${s.unit}`}; fi`,
        sh`    mv -T -- ${`${f.keptConfig}.tmp`} ${f.keptConfig}`,
        sh`fi`,
        sh`if [ -f ${hsYaml} ] && [ ! -e ${`${hsYaml}.pre-adoption`} ]; then mv -- ${hsYaml} ${`${hsYaml}.pre-adoption`}; echo ${`adoption: the old ${hsYaml} is now ${hsYaml}.pre-adoption`}; fi`,
        sh`if [ -d ${confD} ]; then`,
        sh`    for pm_f in ${confD}/*.yaml; do`,
        sh`        [ -f "$pm_f" ] || continue`,
        // A fragment the stack's steps wrote (listed in a file set) stays; the package's and the user's are moved aside.
        sh`        if cat ${`${STATE_DIR}/filesets/`}*.list 2>/dev/null | grep -qxF -- "$pm_f"; then continue; fi`,
        sh`        install -d -m 0755 ${`${confD}.pre-adoption`}`,
        sh`        mv -- "$pm_f" ${`${confD}.pre-adoption/`}; echo "adoption: moved $pm_f to "${`${confD}.pre-adoption/`}`,
        sh`    done`,
        sh`fi`,
        sh`if systemctl is-enabled -q ${s.unit} 2>/dev/null; then systemctl disable -q ${s.unit}; echo ${`adoption: ${s.unit} disabled (its unit file is kept)`}; fi`,
        sh`install -m 0600 -- "$pm_key_file" ${f.signingKey}`,
        sh`printf '%s %s ed25519:%s from %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" ${s.synapse.serverName} "$pm_key_id" "$pm_source" >${`${f.adoptedMarker}.tmp`}`,
        sh`mv -f -- ${`${f.adoptedMarker}.tmp`} ${f.adoptedMarker}`,
        sh`echo ${`adoption done: ${s.synapse.serverName} now runs on the stack's PostgreSQL database; its old database, the media store and the old config are kept (see ${f.keptConfig}); the stack's Synapse uses ${ours.homeserverYaml}`}`,
    ];
}

/** The SQLite flow: a first pass while the old server runs, the old unit stopped, a final pass (the old unit started again when it fails). */
function sqlitePort(s: AdoptSettings, f: AdoptFiles, startOld: Sh): Sh[] {
    return [
        sh`if systemctl is-active -q ${s.unit}; then`,
        portPass("first pass (the old server still runs)", sh``),
        sh`    echo ${`adoption: stopping ${s.unit} for the final pass`}`,
        sh`    systemctl stop ${s.unit}`,
        sh`fi`,
        portPass("final pass (the old server stopped)", startOld),
        sh`rm -f -- ${adoptSnapshotPath(f)}`,
    ];
}

/**
 * The dump flow: the old unit stopped (a dump of a running server misses
 * what it writes afterwards), `pg_dump -Fc` of its database with its own
 * credentials, restored in one transaction into the stack's empty database
 * as the stack's role (owner and grants of the old role left out), the old
 * unit started again when either fails. The old database is only read.
 * A mark in the state directory lets a later run that stopped after the
 * restore go on to the end.
 */
function dumpRestore(s: AdoptSettings, synapse: SynapseSettings, peers: SynapsePeers, f: AdoptFiles, startOld: Sh): Sh[] {
    const d = adoptDumpFiles(f);
    const target = libpqConninfo((databaseBlock(synapse, peers) as { args: Record<string, unknown> }).args);
    return [
        sh`if [ -e ${d.restored} ]; then echo "adoption: the dump was restored by an earlier run ($(cat ${d.restored}))"; else`,
        indent(
            lines([
                sh`pm_old_db=$(cd / && ${`${s.venvDir}/bin/python`} -c "$pm_old_db_py" ${d.passfile} ${s.configPaths})`,
                sh`if systemctl is-active -q ${s.unit}; then echo ${`adoption: stopping ${s.unit} for the dump`}; systemctl stop ${s.unit}; fi`,
                sh`echo "adoption: pg_dump of $pm_source"`,
                sh`rm -f -- ${d.dump}`,
                sh`if ! (cd / && pg_dump --format=custom --file=${d.dump} --dbname="$pm_old_db"); then`,
                startOld,
                sh`    rm -f -- ${d.dump} ${d.passfile}`,
                sh`    pm_tell ${"adoption: pg_dump of the old database failed (its output is above); nothing was changed; running the step again starts over"}`,
                sh`    exit 1`,
                sh`fi`,
                sh`rm -f -- ${d.passfile}`,
                sh`echo ${`adoption: restoring the dump into the stack's database as ${peers.database?.user ?? "its role"}`}`,
                sh`if ! (cd / && pg_restore --no-owner --no-privileges --exit-on-error --single-transaction --dbname=${target} ${d.dump}); then`,
                startOld,
                sh`    pm_tell ${"adoption: pg_restore into the stack's database failed (its output is above); it was restored in one transaction, so the database is empty again, and the old database was only read; running the step again starts over"}`,
                sh`    exit 1`,
                sh`fi`,
                sh`date -u +%Y-%m-%dT%H:%M:%SZ >${d.restored}`,
                sh`rm -f -- ${d.dump}`,
            ]),
        ),
        sh`fi`,
    ];
}

/**
 * The adoption, once, before Synapse's config step first starts the stack's
 * Synapse; the preflight runs again first. For a SQLite server or a
 * PostgreSQL one in `dump` mode it runs after Synapse's secrets (the
 * adopted key and the database passfile are on disk) and the stack's
 * database: that database must be empty (or hold an earlier, unfinished
 * port of this adoption), then the SQLite file is ported from snapshot
 * copies (a first pass while the old server runs, a final one once its unit
 * is stopped) or the PostgreSQL database dumped and restored (see
 * dumpRestore). In `in-place` mode it runs before the stack's
 * PostgresDatabase steps, which take over the database and role: it only
 * stops the old unit. Then the config directory is kept whole in a
 * root-only copy, the package's homeserver.yaml and conf.d files moved
 * aside (renamed, not deleted), the old unit disabled, the key kept, and
 * the marker written. Never writes to the old database or the media store.
 */
export function adoptScript(s: AdoptSettings, synapse: SynapseSettings, peers: SynapsePeers, f: AdoptFiles = ADOPT_FILES): string {
    const configs = renderAdoptConfigs(s, synapse, peers, f);
    const venv = synapse.paths.venvDir;
    const startOld = sh`    systemctl start ${s.unit} || true; echo ${`adoption: ${s.unit} started again`}`;
    const head = [
        sh`if [ -e ${f.adoptedMarker} ]; then pm_marker=$(cat ${f.adoptedMarker}); echo "adopted already ($pm_marker): nothing to do"; exit 0; fi`,
        preflightChecks(s, f, "nothing was changed"),
        sh`install -d -m 0700 -o root -g root ${f.stateDir}`,
    ];
    if (s.postgres === "in-place")
        return script(`pulumi-matrix adoption (${s.configDir}, PostgreSQL in place)`, [
            ...head,
            // The preflight refused anything but PostgreSQL; the stack's PostgresDatabase steps that follow set the role's password, pg_hba and tuning.
            sh`if systemctl is-active -q ${s.unit}; then echo ${`adoption: stopping ${s.unit}: the stack's PostgreSQL steps take over its database and role next`}; systemctl stop ${s.unit}; fi`,
            ...finishAdoption(s, synapse, f),
        ]);
    return script(`pulumi-matrix adoption (${s.configDir})`, [
        ...head,
        heredoc(sh`install -m 0600 /dev/stdin ${`${f.stateDir}/snapshot.yaml`}`, configs.sqlite),
        heredoc(sh`install -m 0600 /dev/stdin ${`${f.stateDir}/postgres.yaml`}`, configs.postgres),
        heredocVar("pm_target_py", ADOPT_TARGET_PY),
        heredocVar("pm_snapshot_py", ADOPT_SNAPSHOT_PY),
        heredocVar("pm_old_db_py", ADOPT_OLD_DATABASE_PY),
        portPassFunction(s, synapse, f),
        sh`pm_target=$(cd / && ${`${venv}/bin/python`} -c "$pm_target_py" ${`${f.stateDir}/postgres.yaml`}) || { pm_tell ${`adoption: the stack's database cannot be reached with ${f.stateDir}/postgres.yaml; nothing was changed`}; exit 1; }`,
        sh`if [ -e ${adoptDumpFiles(f).restored} ]; then pm_target=restored; fi`,
        sh`case "$pm_target" in`,
        sh`    empty) echo "adoption: the stack's database is empty" ;;`,
        sh`    restored) ;;`,
        sh`    resume) echo "adoption: the stack's database holds an unfinished port of this adoption: going on where it stopped" ;;`,
        sh`    *) pm_tell ${`adoption refused: the stack's database already holds another server's data`}" ($pm_target); "${`nothing was changed (it is never overwritten)`}; exit 1 ;;`,
        sh`esac`,
        sh`if [ "$pm_db_kind" = sqlite ]; then`,
        indent(lines(sqlitePort(s, f, startOld))),
        sh`else`,
        indent(lines(dumpRestore(s, synapse, peers, f, startOld))),
        sh`fi`,
        ...finishAdoption(s, synapse, f),
    ]);
}
