import { BACKUP_FILES } from "../../model/backup";
import { synapseFiles, SynapseSettings } from "../../model/synapse";
import { handlerStep } from "../apply";
import { heredocVar, indent, lines, raw, Sh, sh } from "../sh";
import { STATE_DIR } from "../shell";

/**
 * A change of Synapse's release that can be undone, the same for both install
 * methods but for the switch itself (the apt method's: aptUpgrade.ts). With
 * pip, the new release is installed beside the old one (`<venvDir>-<version>`, with
 * `venvDir` a symlink to the one that runs), then, while the old release
 * keeps running: the new code loads the current config (stop if it
 * refuses), the database's schema is read, a backup tagged with the old
 * release is taken (with `upgrade.backup`); then the workers stop, the
 * symlink switches, the main process restarts (Synapse migrates the schema)
 * and must answer /health, and the workers start again. On a failure the
 * schema is read again and Synapse's own rule decides: the old release runs
 * on any database whose `schema_compat_version` is at most the old code's
 * `SCHEMA_VERSION`, so the symlink switches back; beyond it, the tagged
 * backup is restored with `rollback: "restore"`, else Synapse stays stopped
 * and the archive to restore is named.
 */

/** Where the apt method keeps the .debs of the running build and the one before it (root only). */
export const KEPT_DEBS_DIR = `${STATE_DIR}/synapse-debs`;

/** Seconds the main process may take to answer /health after the switch (a schema migration runs first). */
export const UPGRADE_HEALTH_SECONDS = 1800;

/** The directory of one release's virtualenv, beside the symlink `venvDir`. */
export function versionedVenv(s: SynapseSettings, version: string = s.version): string {
    return `${s.paths.venvDir}-${version}`;
}

/** The restic tag of the backup taken before an upgrade from `version`. */
export function upgradeBackupTag(version: string): string {
    return `synapse-${version}`;
}

/**
 * What a change of version will do, as comment lines of the install script:
 * the script is the command's input, so `pulumi preview --diff` of a version
 * change shows them.
 */
export function upgradePlan(s: SynapseSettings): string[] {
    const u = s.upgrade;
    const backup = u.backup
        ? `a backup (pulumi-matrix-backup run --tag synapse-<old version>), before anything stops`
        : "no backup (upgradeBackup is off: no SynapseBackup)";
    const beyond =
        u.rollback === "restore"
            ? "restore the pre-upgrade backup (the migrated database kept, renamed) and start the old release"
            : "stop Synapse and name the pre-upgrade backup to restore (rollback: stop)";
    const apt = s.installMethod === "apt";
    return [
        `# Upgrade plan, when the host runs an older Synapse than ${s.version}:`,
        apt
            ? `#  1. download the build of ${s.version} into ${KEPT_DEBS_DIR} and unpack it in a temporary directory; the running build's .deb is kept there for a switch back (without it there is none${u.rollback === "restore" ? ", and the upgrade stops here" : ""}); the old release keeps running`
            : `#  1. install ${s.version} beside it (${versionedVenv(s)}); the old release keeps running`,
        `#  2. ${s.version} loads the current configuration (python -m synapse.config); a refusal stops here`,
        `#  3. ${backup}`,
        apt
            ? `#  4. stop the workers, install the build of ${s.version} (Synapse's start refused), restart the main process (the schema migrates), wait for /health, start the workers`
            : `#  4. stop the workers, switch ${s.paths.venvDir} to ${s.version}, restart the main process (the schema migrates), wait for /health, start the workers`,
        `#  5. on a failure: the database not migrated, or still readable by the old release (schema_compat_version): ${apt ? "reinstall the kept build" : "switch back"};`,
        `#     beyond that: ${beyond}`,
        `# A lower version than the host runs is refused before anything changes.`,
    ];
}

/**
 * Prints `<schema_version> <schema_compat_version> <applied deltas>` of the
 * database the config names (0 for what is missing). Run as Synapse's user
 * with any release's python: it reads the config as Synapse does.
 */
const SCHEMA_PY = `import sys
from synapse.config.homeserver import HomeServerConfig
args = []
for p in sys.argv[1:]:
    args += ["-c", p]
cfg = HomeServerConfig.load_config("", args)
db = cfg.database.databases[0].config
conn_args = {k: v for k, v in db.get("args", {}).items() if not k.startswith("cp_")}
if db["name"] == "psycopg2":
    import psycopg2
    conn = psycopg2.connect(**conn_args)
else:
    import sqlite3
    conn = sqlite3.connect(conn_args["database"])
def one(q):
    cur = conn.cursor()
    try:
        cur.execute(q)
        row = cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0
    except Exception:
        conn.rollback()
        return 0
print(one("SELECT version FROM schema_version"), one("SELECT compat_version FROM schema_compat_version"), one("SELECT count(*) FROM applied_schema_deltas"))
`;

/**
 * The shell functions an upgrade uses, at the top level of the script (a
 * heredoc cannot be indented): `pm_schema VENV`, `pm_switch TARGET`,
 * `pm_healthy UNIT URL SECONDS`, `pm_as_synapse CMD...`.
 */
export function upgradeFunctions(s: SynapseSettings): Sh {
    const v = s.paths.venvDir;
    const f = synapseFiles(s.paths);
    return lines([
        sh`pm_as_synapse() { (cd / && runuser -u ${s.paths.user} -- "$@"); }`,
        sh`pm_cfg=(${f.homeserverYaml}); if [ -d ${f.confD} ]; then pm_cfg+=(${`${f.confD}/`}); fi`,
        heredocVar("pm_schema_py", SCHEMA_PY.trimEnd()),
        sh`pm_schema() { pm_as_synapse "$1/bin/python" -c "$pm_schema_py" "${raw("${pm_cfg[@]}")}"; }`,
        // The switch itself: a new symlink renamed over the old one, so venvDir is never missing.
        sh`pm_switch() { ln -sfn "$1" ${`${v}.pm-new`} && mv -T ${`${v}.pm-new`} ${v}; }`,
        // UNIT URL SECONDS: healthy within SECONDS. systemctl restart of a Type=notify unit returns once it is ready or
        // failed, so a unit that is not active (failed, or waiting to be restarted after a crash) is not healthy.
        sh`pm_healthy() {`,
        sh`    local i`,
        sh`    for i in $(seq 1 "$3"); do`,
        sh`        if curl -fsS -m 2 -o /dev/null "$2"; then return 0; fi`,
        sh`        if ! systemctl is-active -q "$1"; then return 1; fi`,
        sh`        sleep 1`,
        sh`    done`,
        sh`    return 1`,
        sh`}`,
    ]);
}

/**
 * How an install method puts a release in place and back; the checks, the
 * backup, the workers and the schema's decision are `releaseUpgrade`'s, the
 * same for both methods.
 */
export interface ReleaseSwitch {
    /** The new release's virtualenv (a shell word): its python loads the config and reads the schema before the switch. */
    newVenv: Sh;
    /** The running release's virtualenv (a shell word): its `SCHEMA_VERSION` is the newest schema it reads. */
    oldVenv: Sh;
    /** One command: puts the new release in place (it prints what it did); non-zero when it could not. */
    switchTo: Sh;
    /** One command: puts the old release back, Synapse stopped; non-zero when it could not. */
    switchBack: Sh;
    /** A test that is true when `switchBack` can work; undefined: always. */
    canSwitchBack?: Sh;
    /** Says why there is no switch back (stderr), when `canSwitchBack` is false. */
    noSwitchBack?: Sh;
    /** After a healthy upgrade: what of older releases goes. */
    prune: Sh;
}

/** The pip method's switch: versioned virtualenvs behind the symlink `venvDir`. */
export function pipSwitch(s: SynapseSettings): ReleaseSwitch {
    const v = s.paths.venvDir;
    const next = versionedVenv(s);
    return {
        newVenv: sh`${next}`,
        oldVenv: raw('"$pm_old_dir"'),
        switchTo: sh`{ pm_switch ${next.slice(next.lastIndexOf("/") + 1)} && echo "switched "${v}" to "${s.version}; }`,
        switchBack: raw('pm_switch "$pm_old_link"'),
        // Kept: the release before (a switch back), and this one.
        prune: lines([
            sh`for pm_d in ${v}-*; do`,
            sh`    if [ -d "$pm_d" ] && [ "$pm_d" != ${next} ] && [ "$pm_d" != "$pm_old_dir" ]; then rm -rf -- "$pm_d"; echo "removed the virtualenv $pm_d"; fi`,
            sh`done`,
        ]),
    };
}

/** The pip method's upgrade from `$installed` (whose virtualenv `venvDir` points to) to `versionedVenv(s)`. */
export function pipUpgrade(s: SynapseSettings, mainUnit: string): Sh {
    const v = s.paths.venvDir;
    return lines([sh`pm_old_link=$(readlink ${v}); pm_old_dir=$(readlink -f ${v})`, releaseUpgrade(s, mainUnit, pipSwitch(s))]);
}

/**
 * The switch from the release `$installed` to `s.version`, whose code is at
 * `m.newVenv` already, with the method's own switch `m`. Exits non-zero
 * whenever the new release is not the one running healthy.
 */
export function releaseUpgrade(s: SynapseSettings, mainUnit: string, m: ReleaseSwitch): Sh {
    const f = synapseFiles(s.paths);
    const health = `http://127.0.0.1:${s.httpPort}/health`;
    const b = BACKUP_FILES;
    const restore = s.upgrade.rollback === "restore";
    const startWorkers = lines([
        sh`for pm_w in "${raw("${pm_stopped[@]}")}"; do`,
        sh`    pm_unit=${raw("${pm_w%% *}")}; pm_url=${raw("${pm_w#* }")}`,
        sh`    systemctl start "$pm_unit" || true`,
        sh`    if ! pm_healthy "$pm_unit" "$pm_url" 300; then echo "worker $pm_unit did not answer $pm_url after the upgrade" >&2; journalctl -u "$pm_unit" -n 40 --no-pager -o cat >&2 || true; exit 1; fi`,
        sh`    echo "started $pm_unit"`,
        sh`done`,
    ]);
    const back = lines([
        ...(m.canSwitchBack
            ? [
                  sh`if ! ${m.canSwitchBack}; then ${m.noSwitchBack ?? raw("true")}; echo "Synapse is stopped: fix the cause and deploy "${s.version}" again, or put Synapse $installed back by hand." >&2; exit 1; fi`,
              ]
            : []),
        sh`if ! ${m.switchBack}; then echo "putting Synapse $installed back failed (above); Synapse is stopped" >&2; exit 1; fi`,
        sh`systemctl start ${mainUnit} || true`,
        sh`if ! pm_healthy ${mainUnit} ${health} 600; then echo "Synapse $installed did not answer /health after the rollback either; see journalctl -u "${mainUnit} >&2; exit 1; fi`,
        sh`pm_take ${mainUnit} || true`,
        startWorkers,
    ]);
    return lines([
        sh`echo "upgrading Synapse from $installed to "${s.version}`,
        // 1. The new code reads the configuration the old one runs with.
        sh`if ! pm_out=$(pm_as_synapse ${m.newVenv}/bin/python -m synapse.config "${raw("${pm_cfg[@]/#/--config-path=}")}" 2>&1); then`,
        sh`    printf '%s\n' "$pm_out" | tail -n 25 >&2`,
        sh`    echo "Synapse "${s.version}" refuses the current configuration (above): nothing was switched, Synapse $installed keeps running. Change the configuration so that both releases accept it (or keep synapseVersion at $installed), then deploy again." >&2`,
        sh`    exit 1`,
        sh`fi`,
        sh`echo "Synapse "${s.version}" accepts the current configuration"`,
        ...(m.canSwitchBack
            ? [
                  sh`if ! ${m.canSwitchBack}; then`,
                  sh`    ${m.noSwitchBack ?? raw("true")}`,
                  restore
                      ? sh`    echo "rollback: restore needs the running release to switch back to: nothing was switched, Synapse $installed keeps running." >&2; exit 1`
                      : sh`    echo "the upgrade goes on without a switch back: if "${s.version}" fails, Synapse stays stopped (rollback: stop)." >&2`,
                  sh`fi`,
              ]
            : []),
        // 2. The schema before, and the newest schema the old code reads.
        sh`pm_before=$(pm_schema ${m.newVenv}) || { echo "the database's schema version cannot be read (above): nothing was switched, Synapse $installed keeps running" >&2; exit 1; }`,
        sh`pm_old_schema=$(cd / && ${m.oldVenv}/bin/python -c 'from synapse.storage.schema import SCHEMA_VERSION; print(SCHEMA_VERSION)')`,
        sh`pm_new_schema=$(cd / && ${m.newVenv}/bin/python -c 'from synapse.storage.schema import SCHEMA_VERSION; print(SCHEMA_VERSION)')`,
        sh`echo "database schema (version, compat, deltas): $pm_before; Synapse $installed reads up to schema $pm_old_schema, "${s.version}" migrates to $pm_new_schema"`,
        // 3. The backup, tagged with the release it was taken under.
        sh`pm_snapshot=""`,
        s.upgrade.backup
            ? lines([
                  sh`if [ -x ${b.backupCommand} ]; then`,
                  sh`    pm_tag=synapse-$installed`,
                  sh`    if ! pm_out=$(${b.backupCommand} run --tag "$pm_tag" 2>&1); then`,
                  sh`        printf '%s\n' "$pm_out" | tail -n 25 >&2`,
                  sh`        echo "the backup before the upgrade failed (above): nothing was switched, Synapse $installed keeps running" >&2; exit 1`,
                  sh`    fi`,
                  sh`    pm_snapshot=$(printf '%s\n' "$pm_out" | sed -n 's/^snapshot \([0-9a-f]\{8,\}\) tagged .*/\1/p' | tail -n 1)`,
                  sh`    echo "backup before the upgrade: snapshot $pm_snapshot (tag $pm_tag)"`,
                  sh`else`,
                  restore
                      ? sh`    echo "rollback: restore needs a backup before the upgrade, and "${b.backupCommand}" is not on this host yet (its SynapseBackup is new in this deployment): nothing was switched. Deploy once with synapseVersion $installed, then change the version." >&2; exit 1`
                      : sh`    echo "no backup before the upgrade: "${b.backupCommand}" is not on this host yet (its SynapseBackup is new in this deployment)"`,
                  sh`fi`,
              ])
            : sh`echo "no backup before the upgrade (upgradeBackup is off)"`,
        // 4. Workers stop (they must not run code older than the schema), the switch, the main process migrates.
        sh`pm_stopped=()`,
        sh`if [ -f ${f.workerList} ]; then`,
        sh`    while read -r pm_unit pm_url <&3; do`,
        sh`        if [ -n "$pm_unit" ] && systemctl is-active -q "$pm_unit"; then systemctl stop "$pm_unit"; pm_stopped+=("$pm_unit $pm_url"); echo "stopped $pm_unit"; fi`,
        sh`    done 3<${f.workerList}`,
        sh`fi`,
        sh`pm_upgraded=0`,
        sh`if ${m.switchTo}; then`,
        sh`    systemctl restart ${mainUnit} || true`,
        sh`    if pm_healthy ${mainUnit} ${health} ${UPGRADE_HEALTH_SECONDS}; then pm_upgraded=1; else echo "Synapse "${s.version}" did not answer /health. Last log lines:" >&2; journalctl -u ${mainUnit} -n 40 --no-pager -o cat >&2 || true; fi`,
        sh`else`,
        sh`    echo "putting Synapse "${s.version}" in place failed (above)" >&2`,
        sh`fi`,
        sh`if [ "$pm_upgraded" = 1 ]; then`,
        // The restart covered whatever restart the main process was owed.
        sh`    pm_take ${mainUnit} || true`,
        indent(startWorkers),
        indent(m.prune),
        sh`    echo "Synapse upgraded from $installed to "${s.version}`,
        sh`else`,
        // 5. It failed: where the database is decides.
        sh`    systemctl stop ${mainUnit} || true`,
        sh`    pm_after=$(pm_schema ${m.newVenv} 2>/dev/null || pm_schema ${m.oldVenv} 2>/dev/null || echo unknown)`,
        sh`    read -r pm_a_version pm_a_compat pm_a_deltas <<<"$pm_after" || true`,
        sh`    if [ "$pm_after" = "$pm_before" ]; then`,
        sh`        echo "the database was not migrated ($pm_after): switching back to Synapse $installed" >&2`,
        indent(back, "        "),
        sh`        echo "the upgrade to "${s.version}" failed before the database migrated; Synapse $installed runs again" >&2; exit 1`,
        sh`    elif [ "$pm_after" != unknown ] && [ "${raw("${pm_a_compat:-0}")}" -le "$pm_old_schema" ]; then`,
        sh`        echo "the database was migrated ($pm_before -> $pm_after); its compat version $pm_a_compat is within what Synapse $installed reads (schema $pm_old_schema): switching back" >&2`,
        indent(back, "        "),
        sh`        echo "the upgrade to "${s.version}" failed; Synapse $installed runs again on the migrated database (within its schema compatibility)" >&2; exit 1`,
        restore
            ? lines([
                  sh`    elif [ -n "$pm_snapshot" ]; then`,
                  sh`        echo "the database was migrated beyond what Synapse $installed reads ($pm_before -> $pm_after, old schema $pm_old_schema): restoring snapshot $pm_snapshot (rollback restore)" >&2`,
                  sh`        if ! ${b.restoreCommand} --snapshot "$pm_snapshot" --replace-database --no-start >&2; then`,
                  sh`            echo "the restore of snapshot $pm_snapshot failed (above); Synapse is stopped. Restore by hand: "${b.restoreCommand}" --snapshot $pm_snapshot --replace-database" >&2; exit 1`,
                  sh`        fi`,
                  indent(back, "        "),
                  sh`        echo "the upgrade to "${s.version}" failed after migrating the database; snapshot $pm_snapshot was restored and Synapse $installed runs again (the migrated database is kept, renamed: see above)" >&2; exit 1`,
              ])
            : raw(""),
        sh`    else`,
        // The old release goes back in place (stopped), so a restore and a start are all that is left to do by hand.
        m.canSwitchBack ? sh`        if ${m.canSwitchBack}; then ${m.switchBack} || true; fi` : sh`        ${m.switchBack}`,
        sh`        echo "the upgrade to "${s.version}" failed after migrating the database beyond what Synapse $installed reads ($pm_before -> $pm_after, old schema $pm_old_schema). Synapse and its workers are stopped." >&2`,
        sh`        if [ -n "$pm_snapshot" ]; then echo "To go back to $installed: "${b.restoreCommand}" --snapshot $pm_snapshot --replace-database, then systemctl start matrix-synapse.target (or set rollback: restore to have this done). To go forward: fix the cause, deploy "${s.version}" again." >&2`,
        sh`        else echo "No backup was taken before the upgrade: go forward (fix the cause, deploy "${s.version}" again) or restore a backup of your own made under $installed." >&2; fi`,
        sh`        exit 1`,
        sh`    fi`,
        sh`fi`,
    ]);
}

/**
 * On a host of a WorkerPool's own (no main process, no database step): the
 * switch, then its workers restart one by one onto the new release. The main
 * process's host does the checks, the backup and the migration.
 */
export function workersOnlySwitch(s: SynapseSettings): Sh {
    const f = synapseFiles(s.paths);
    const next = versionedVenv(s);
    return lines([
        sh`pm_switch ${next.slice(next.lastIndexOf("/") + 1)}`,
        sh`echo "switched "${s.paths.venvDir}" to "${s.version}" (workers only on this host)"`,
        handlerStep({ kind: "rolling-restart-listed", list: f.workerList }),
    ]);
}
