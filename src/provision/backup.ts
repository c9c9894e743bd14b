import { BACKUP_FILES, BackupFiles, BackupSettings } from "../model/backup";
import { BackupSecrets, renderBackupCommand, renderMatrixBackupUnits, renderResticEnv, renderRestoreCommand } from "../render/backup";
import { applyFileSet, ensureRunning, ensureStopped, ManagedFile } from "./apply";
import { sh } from "./sh";
import { script } from "./shell";
import { STANDBY_REASON } from "./synapse";

const TIMERS = ["pulumi-matrix-backup.timer", "pulumi-matrix-backup-check.timer"];

function ensureNewline(text: string): string {
    return text.endsWith("\n") ? text : `${text}\n`;
}

/**
 * Writes the repository password and the target's credentials into
 * root-only files (secret stdin): restic's password file, the units'
 * EnvironmentFile= (S3 keys), the SFTP key and the pinned host keys.
 */
export function backupSecretsScript(s: BackupSettings, secrets: BackupSecrets): string {
    const f = BACKUP_FILES;
    const files: ManagedFile[] = [
        { path: f.passwordFile, content: ensureNewline(secrets.password), mode: "0600" },
        { path: f.envFile, content: renderResticEnv(s, secrets), mode: "0600" },
    ];
    if (s.target.kind === "sftp") {
        if (!secrets.sftpPrivateKey) throw new Error("backupSecretsScript: an SFTP repository needs its private key");
        files.push(
            { path: f.sshKey, content: ensureNewline(secrets.sftpPrivateKey.trim()), mode: "0600" },
            { path: f.knownHosts, content: ensureNewline(s.sftpKnownHosts!.trim()), mode: "0600" },
        );
    }
    return script("pulumi-matrix backup secrets", [
        sh`install -d -m 0700 -o root -g root ${f.configDir}`,
        applyFileSet({ name: "backup-secrets", secret: true, files }),
    ]);
}

/**
 * Installs restic (Debian's package; OpenSSH's client for an SFTP target),
 * the two commands, the units and timers, and starts the timers. Nothing
 * runs a backup here: the timer does (Persistent=true catches up a run
 * missed while the host was down). Prints the last good backup's time.
 * In standby the timers stay stopped (a held server's backup would be
 * stale, or a copy's); out of it, the next standby takes a final backup again.
 */
export function backupScript(s: BackupSettings): string {
    const f = BACKUP_FILES;
    const units = renderMatrixBackupUnits(s);
    return script("pulumi-matrix backup", [
        sh`pm_apt_install restic ${s.target.kind === "sftp" ? ["openssh-client"] : []}`,
        sh`install -d -m 0700 -o root -g root ${[f.stateDir, f.cacheDir, s.directory]}`,
        applyFileSet({
            name: "backup",
            files: [
                { path: f.backupCommand, content: renderBackupCommand(s), mode: "0700" },
                { path: f.restoreCommand, content: renderRestoreCommand(s), mode: "0700" },
                { path: f.service, content: units.service },
                { path: f.timer, content: units.timer },
                { path: f.checkService, content: units.checkService },
                { path: f.checkTimer, content: units.checkTimer },
                { path: f.failedService, content: units.failedService },
            ],
            onChange: [{ kind: "daemon-reload" }],
        }),
        ...(s.synapse.standby
            ? [ensureStopped(TIMERS, STANDBY_REASON)]
            : [ensureRunning(TIMERS.map((name) => ({ name }))), sh`rm -f -- ${f.finalBackupMarker}`]),
        sh`${f.backupCommand} status`,
    ]);
}

/**
 * Restores `restoreFrom` on a fresh host, before Synapse's config step first
 * starts it: `pulumi-matrix-restore --once` (nothing when the host already
 * had a restore), with the stack's signing key id to compare the archive's
 * with. Refuses (and changes nothing) on a database with tables, another
 * server_name or another key. `f`: the host's layout (a test's own).
 */
export function restoreScript(s: BackupSettings, keyId: string, f: BackupFiles = BACKUP_FILES): string {
    if (s.restoreFrom === undefined) throw new Error("restoreScript: restoreFrom is not set");
    // In standby the restore is a standby's copy: refreshed from a newer snapshot (the final one) when standby ends.
    const flags = ["--once", ...(s.synapse.standby ? ["--standby"] : []), "--no-start"];
    return script(`pulumi-matrix restore of ${s.restoreFrom}`, [sh`${f.restoreCommand} --snapshot ${s.restoreFrom} --key-id ${keyId} ${flags}`]);
}

/**
 * The move's final backup, in standby, once Synapse's config step stopped
 * it: `pulumi-matrix-backup final` (once per standby; nothing on a host
 * that holds a restored standby copy). `f`: the host's layout (a test's own).
 */
export function finalBackupScript(s: BackupSettings, f: BackupFiles = BACKUP_FILES): string {
    if (!s.synapse.standby) throw new Error("finalBackupScript: Synapse is not in standby");
    return script("pulumi-matrix final backup", [sh`${f.backupCommand} final`]);
}

/**
 * Takes away the backup a SynapseBackup set up (what a stack without
 * `backup` runs): the timers are stopped and disabled, the commands, units
 * and root-only credentials removed, and the metric file too (a stale gauge
 * would page for backups nobody asked for any more). The repository off the
 * host, an on-host archive and the restore marker are kept. On a host that
 * never had backups it changes nothing.
 */
export function backupRemovalScript(): string {
    const f = BACKUP_FILES;
    return script("pulumi-matrix backup removed", [
        ensureStopped(TIMERS, "backups are no longer part of this deployment"),
        applyFileSet({ name: "backup", files: [], onChange: [{ kind: "daemon-reload" }] }),
        applyFileSet({ name: "backup-secrets", secret: true, files: [] }),
        sh`if [ -e ${f.metricsFile} ]; then rm -f -- ${f.metricsFile}; echo ${`removed ${f.metricsFile}`}; fi`,
    ]);
}
