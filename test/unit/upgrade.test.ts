import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { resolveBackupSettings } from "../../src/model/backup";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { postgresInstallScript } from "../../src/provision/postgres";
import { synapseInstallScript } from "../../src/provision/synapse";
import { keptDeb } from "../../src/provision/synapse/aptUpgrade";
import { KEPT_DEBS_DIR, upgradeBackupTag, upgradePlan, versionedVenv } from "../../src/provision/synapse/upgrade";
import { renderBackupCommand, renderRestoreCommand } from "../../src/render/backup";
import { golden } from "../support/golden";
import { goldenOs, goldenSynapseSettings } from "../support/unit/fixtures";
import { rejects, resolveSynapse as synapse } from "../support/unit/stack";

const bashSyntax = (text: string) => execFileSync("bash", ["-n"], { input: text });

describe("upgrades that can be undone (issue 23, section 3)", () => {
    it("rollback and upgradeBackup: defaults and bad input", () => {
        const s = synapse({})();
        assert.deepEqual(s.upgrade, { rollback: "stop", backup: false });
        assert.deepEqual(synapse({ rollback: "restore", upgradeBackup: true })().upgrade, { rollback: "restore", backup: true });
        rejects(synapse({ rollback: "undo" as never }), "rollback", '"undo"', /expected one of "stop", "restore"/);
        rejects(synapse({ rollback: "restore" }), "rollback", '"restore"', /restores the backup taken before the upgrade: it needs upgradeBackup/);
        rejects(synapse({ upgradeBackup: "yes" as never }), "upgradeBackup", '"yes"', /expected true or false/);
    });

    it("the pip install script carries the upgrade plan, so a preview of a version change shows it", () => {
        const stop = synapseInstallScript(goldenSynapseSettings(), goldenOs());
        for (const line of upgradePlan(goldenSynapseSettings())) assert.ok(stop.includes(line), line);
        assert.match(stop, /# {2}3\. no backup \(upgradeBackup is off: no SynapseBackup\)/);
        assert.match(stop, /stop Synapse and name the pre-upgrade backup to restore \(rollback: stop\)/);
        assert.doesNotMatch(stop, /pulumi-matrix-restore --snapshot/);
        const restore = synapseInstallScript({ ...goldenSynapseSettings(), upgrade: { rollback: "restore", backup: true } }, goldenOs());
        assert.match(restore, /# {2}3\. a backup \(pulumi-matrix-backup run --tag synapse-<old version>\)/);
        assert.match(restore, /\/usr\/local\/sbin\/pulumi-matrix-restore --snapshot "\$pm_snapshot" --replace-database --no-start/);
        assert.match(restore, /\/usr\/local\/sbin\/pulumi-matrix-backup run --tag "\$pm_tag"/);
        bashSyntax(stop);
        bashSyntax(restore);
        // A changed version changes the plan's lines: the diff of the command's input names the new release.
        const next = synapseInstallScript({ ...goldenSynapseSettings(), version: "1.163.1" }, goldenOs());
        assert.match(next, /# Upgrade plan, when the host runs an older Synapse than 1\.163\.1:/);
    });

    it("apt: the same plan and steps, with the kept .deb of the running build as the switch back", () => {
        const s = { ...goldenSynapseSettings(), installMethod: "apt" as const };
        const stop = synapseInstallScript(s, goldenOs());
        for (const line of upgradePlan(s)) assert.ok(stop.includes(line), line);
        assert.match(stop, /# {2}1\. download the build of 1\.163\.2 into \/var\/lib\/pulumi-matrix\/synapse-debs and unpack it/);
        assert.match(stop, /# {2}5\. on a failure: .*: reinstall the kept build;/);
        assert.equal(KEPT_DEBS_DIR, "/var/lib/pulumi-matrix/synapse-debs");
        assert.equal(keptDeb("1.163.2+bookworm1"), "/var/lib/pulumi-matrix/synapse-debs/matrix-synapse-py3_1.163.2+bookworm1.deb");
        // The new code loads the config from the unpacked .deb, before anything of the running build changes.
        const check = stop.indexOf('pm_as_synapse "$pm_unpack"/opt/venvs/matrix-synapse/bin/python -m synapse.config');
        const install = stop.indexOf('if { pm_deb_install "$pm_new_deb" "$pm_exact"');
        assert.ok(check > 0 && install > check, "the config check comes before the install");
        assert.ok(stop.indexOf("pm_stopped=()") < install, "the workers stop before the install");
        assert.match(stop, /pm_deb_install "\$pm_old_deb" "\$pm_old_build"/);
        assert.match(stop, /the upgrade goes on without a switch back/);
        // The same decision code as pip's.
        assert.match(stop, /elif \[ "\$pm_after" != unknown \] && \[ "\$\{pm_a_compat:-0\}" -le "\$pm_old_schema" \]; then/);
        bashSyntax(stop);
        const restore = synapseInstallScript({ ...s, upgrade: { rollback: "restore", backup: true } }, goldenOs());
        assert.match(restore, /rollback: restore needs the running release to switch back to: nothing was switched/);
        assert.match(restore, /\/usr\/local\/sbin\/pulumi-matrix-restore --snapshot "\$pm_snapshot" --replace-database --no-start/);
        assert.match(restore, /# {2}1\. .*without it there is none, and the upgrade stops here/);
        bashSyntax(restore);
        // A WorkerPool's own host installs in place; the config step restarts its workers.
        const workers = synapseInstallScript(s, goldenOs(), { workersOnly: true });
        assert.doesNotMatch(workers, /pm_unpack=\$\(mktemp/);
        bashSyntax(workers);
    });

    it("each release has its own virtualenv beside the symlink; the backup is tagged with the old release", () => {
        const s = goldenSynapseSettings();
        assert.equal(versionedVenv(s), `/opt/venvs/matrix-synapse-${s.version}`);
        assert.equal(upgradeBackupTag("1.163.1"), "synapse-1.163.1");
        const script = synapseInstallScript(s, goldenOs());
        assert.match(
            script,
            /ln -sfn matrix-synapse-1\.163\.2 \/opt\/venvs\/matrix-synapse\.pm-new && mv -T \/opt\/venvs\/matrix-synapse\.pm-new \/opt\/venvs\/matrix-synapse/,
        );
        // The downgrade check comes before anything is installed.
        assert.ok(script.indexOf("refusing to downgrade") < script.indexOf("pm_apt_install python3"));
    });

    it("the backup command takes a tag and prints its snapshot; the restore can put a database aside", () => {
        const b = renderBackupCommand(backupSettingsForTest());
        assert.match(b, /run\)\n\s+# run --tag TAG/);
        assert.match(b, /snapshot_id=\$\(pm_snapshot_id --latest 1 --tag "\$extra_tag"\)\n\s+echo "snapshot \$snapshot_id tagged \$extra_tag"/);
        const r = renderRestoreCommand(backupSettingsForTest());
        assert.match(r, /--replace-database\) replace_db=1; shift ;;/);
        assert.match(r, /ALTER DATABASE \\"synapse\\" RENAME TO \\"\$aside\\"/);
        bashSyntax(b);
        bashSyntax(r);
    });

    it("a change of the distribution's PostgreSQL major version (two clusters) is refused with the steps to migrate", () => {
        const text = postgresInstallScript(resolvePostgresSettings("p", {}), "p");
        // The detection, as the script has it, run by bash against a stand-in for /etc/postgresql.
        const from = text.indexOf("major=$(ls -1 /etc/postgresql");
        const to = text.indexOf("\nfi\n", text.indexOf('if [ "$majors" != "$major" ]; then')) + 4;
        assert.ok(from >= 0 && to > from);
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pg-majors-"));
        const detect = (majors: string[]) => {
            fs.rmSync(dir, { recursive: true, force: true });
            for (const m of majors) fs.mkdirSync(path.join(dir, m), { recursive: true });
            return spawnSync("bash", ["-euo", "pipefail", "-c", text.slice(from, to).replaceAll("/etc/postgresql", dir) + '\necho "major $major"'], {
                encoding: "utf8",
            });
        };
        const one = detect(["15"]);
        assert.equal(one.status, 0, one.stderr);
        assert.equal(one.stdout.trim(), "major 15");
        const two = detect(["15", "17"]);
        assert.equal(two.status, 1);
        assert.match(two.stderr, /PostgreSQL clusters of several major versions are on this host \(15 17\)/);
        assert.match(two.stderr, /pg_dropcluster --stop 17 main .*pg_upgradecluster 15 main; .*pg_dropcluster 15 main/);
        fs.rmSync(dir, { recursive: true, force: true });
    });

    golden("synapse", "scripts/synapse-install-apt-rollback-restore.sh", () =>
        synapseInstallScript({ ...goldenSynapseSettings(), installMethod: "apt", upgrade: { rollback: "restore", backup: true } }, goldenOs()),
    );

    golden("synapse", "scripts/synapse-install-pip-rollback-restore.sh", () =>
        synapseInstallScript({ ...goldenSynapseSettings(), upgrade: { rollback: "restore", backup: true } }, goldenOs()),
    );
});

function backupSettingsForTest() {
    return resolveBackupSettings(
        'SynapseBackup "b"',
        {
            repository: "sftp:backup@backup.example.com:/srv/restic",
            sftpKnownHosts: "backup.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHh0ZXN0a2V5dGVzdGtleXRlc3RrZXl0ZXN0a2V5",
        },
        {
            synapse: goldenSynapseSettings(),
            database: resolvePostgresSettings("p", {}),
            credentials: { password: true, sftpPrivateKey: true, s3AccessKeyId: false, s3SecretAccessKey: false },
        },
    );
}
