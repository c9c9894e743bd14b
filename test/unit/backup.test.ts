import * as assert from "node:assert/strict";

import { MatrixStack } from "../../components/MatrixStack";
import { BACKUP_FILES, BACKUP_METRIC, BackupOptions, parseRepository, resolveBackupSettings } from "../../src/model/backup";
import { ConfigError, ConfigErrors } from "../../src/model/errors";
import { planStack } from "../../src/model/stack";
import { backupRemovalScript, backupScript, backupSecretsScript, restoreScript } from "../../src/provision/backup";
import { renderBackupCommand, renderMatrixBackupUnits, renderResticEnv, renderRestoreCommand } from "../../src/render/backup";
import { PG_DUMP_OPTIONS } from "../../src/render/postgres";
import { golden } from "../support/golden";
import { goldenPostgresSettings, goldenSynapseSettings, stackArgs, TEST_SSH_KEY } from "../support/unit/fixtures";
import { runWithMocks, valueOf } from "../support/unit/mocks";

const C = 'SynapseBackup "backup"';
const KNOWN_HOSTS = "[backup.example.com]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBa6yTPVw8Ss6B7Bb1D0X8ATh3X0qgH/dEqnDq9sQ1lu";
const ALL = { password: true, sftpPrivateKey: true, s3AccessKeyId: true, s3SecretAccessKey: true };
const SFTP: BackupOptions = { repository: "sftp://backup@backup.example.com:2222//srv/restic/matrix", sftpKnownHosts: KNOWN_HOSTS };
const S3: BackupOptions = { repository: "s3:https://s3.example.com/matrix-backups/example.com" };

const resolve = (o: BackupOptions, credentials = ALL) =>
    resolveBackupSettings(C, o, { synapse: goldenSynapseSettings(), database: goldenPostgresSettings(), credentials });

/** The error names the component, the setting, the value and what is valid. */
function rejects(f: () => unknown, message: RegExp): void {
    assert.throws(f, (e: Error) => {
        assert.ok(e instanceof ConfigError || e instanceof ConfigErrors, `${e.name}: ${e.message}`);
        assert.match(e.message, /^SynapseBackup "backup": /);
        assert.match(e.message, message);
        return true;
    });
}

describe("backups: the model", () => {
    it("reads restic's SFTP and S3 repository forms", () => {
        assert.deepEqual(parseRepository("sftp:backup@backup.example.com:/srv/restic"), {
            kind: "sftp",
            user: "backup",
            host: "backup.example.com",
            port: 22,
            path: "/srv/restic",
        });
        assert.deepEqual(parseRepository("sftp://backup@127.0.0.1:2222//srv/restic"), {
            kind: "sftp",
            user: "backup",
            host: "127.0.0.1",
            port: 2222,
            path: "//srv/restic",
        });
        assert.deepEqual(parseRepository("s3:http://127.0.0.1:7070/bucket/prefix"), { kind: "s3", endpoint: "http://127.0.0.1:7070", bucket: "bucket" });
        for (const bad of ["/srv/restic", "local:/srv/restic", "rest:https://h/", "b2:bucket:path", "sftp:host:/path", "s3:ftp://h/b", "sftp://u@h:99999//p"])
            assert.equal(parseRepository(bad), undefined, bad);
    });

    it("fills in the defaults: nightly, weekly check, 7 daily, 4 weekly, 12 monthly, no local copy", () => {
        const s = resolve(S3);
        assert.equal(s.schedule, "*-*-* 04:00:00");
        assert.equal(s.checkSchedule, "Sun *-*-* 05:30:00");
        assert.deepEqual(s.retention, { daily: 7, weekly: 4, monthly: 12 });
        assert.equal(s.directory, "/var/backups/pulumi-matrix/synapse");
        assert.equal(s.keepLocalCopy, false);
        assert.equal(s.restoreFrom, undefined);
        assert.deepEqual(s.database, { name: "synapse", user: "synapse", port: 5432 });
    });

    it("refuses a repository of an unknown scheme", () => {
        rejects(() => resolve({ repository: "rclone:remote:path" }), /repository is "rclone:remote:path"; expected a restic repository off this host/);
        rejects(() => resolve({ repository: "/srv/restic" }), /only SFTP and S3-compatible targets are supported/);
    });

    it("refuses an off-host target without its credentials", () => {
        rejects(() => resolve(S3, { ...ALL, s3AccessKeyId: false }), /s3AccessKeyId is not set; an S3 repository needs its access key id/);
        rejects(() => resolve(S3, { ...ALL, s3SecretAccessKey: false }), /s3SecretAccessKey is not set; an S3 repository needs its secret access key/);
        rejects(() => resolve(SFTP, { ...ALL, sftpPrivateKey: false }), /sftpPrivateKey is not set; an SFTP repository needs the private key/);
        rejects(() => resolve({ repository: SFTP.repository }), /sftpKnownHosts is not set; an SFTP repository needs the server's host keys/);
        rejects(() => resolve({ ...SFTP, sftpKnownHosts: "backup.example.com" }), /sftpKnownHosts is "backup.example.com"; an SFTP repository needs/);
        rejects(() => resolve(S3, { ...ALL, password: false }), /password is not set; expected the restic repository's password/);
    });

    it("refuses retention below one day, and negative weeks or months", () => {
        rejects(() => resolve({ ...S3, retention: { daily: 0 } }), /retention\.daily is 0; expected at least one day kept/);
        rejects(() => resolve({ ...S3, retention: { daily: 0.5 } }), /retention\.daily is 0\.5; expected at least one day kept/);
        rejects(() => resolve({ ...S3, retention: { weekly: -1 } }), /retention\.weekly is -1; expected a whole number from 0 to 1200/);
    });

    it("refuses a backup directory inside Synapse's data directory, media store or config directory", () => {
        rejects(
            () => resolve({ ...S3, directory: "/var/lib/matrix-synapse/backups" }),
            /directory is "\/var\/lib\/matrix-synapse\/backups"; expected a directory outside Synapse's data directory/,
        );
        rejects(() => resolve({ ...S3, directory: "/var/lib" }), /expected a directory outside Synapse's data directory \/var\/lib\/matrix-synapse/);
        rejects(() => resolve({ ...S3, directory: "/etc/matrix-synapse/b" }), /outside Synapse's config directory/);
        rejects(() => resolve({ ...S3, directory: "backups" }), /expected an absolute path/);
    });

    it("refuses a restoreFrom that is no snapshot id, and schedules that are no OnCalendar expression", () => {
        rejects(() => resolve({ ...S3, restoreFrom: "yesterday" }), /restoreFrom is "yesterday"; expected a restic snapshot id/);
        assert.equal(resolve({ ...S3, restoreFrom: "latest" }).restoreFrom, "latest");
        assert.equal(resolve({ ...S3, restoreFrom: "4f6e7d2a" }).restoreFrom, "4f6e7d2a");
        rejects(() => resolve({ ...S3, schedule: "nightly; rm -rf /" }), /schedule is "nightly; rm -rf \/"; expected a systemd OnCalendar expression/);
    });

    it("the plan refuses backups without PostgreSQL on Synapse's host", () => {
        const args = stackArgs();
        const backup = { ...S3, password: "pw", s3AccessKeyId: "id", s3SecretAccessKey: "secret" };
        assert.throws(
            () => planStack("dev", { ...args, synapse: { ...args.synapse, sqlite: {} }, backup }, { stack: "dev" }),
            /MatrixStack "dev": backup is set together with SQLite \(synapse\.sqlite\); backups need PostgreSQL installed on Synapse's host .*, not SQLite/,
        );
        assert.equal(planStack("dev", { ...args, backup }, { stack: "dev" }).backup?.target.kind, "s3");
    });
});

describe("backups: the rendered files", () => {
    const sftp = () => resolve(SFTP);
    const s3 = () => resolve({ ...S3, keepLocalCopy: true, retention: { daily: 3, weekly: 2, monthly: 6 } });

    it("dumps as Synapse's guide says (the postgres backup's options), archives media without remote caches, and keeps secrets out of the units", () => {
        const text = renderBackupCommand(sftp());
        assert.ok(text.includes(`pg_dump --port=5432 ${PG_DUMP_OPTIONS} 'synapse'`));
        assert.match(text, /for m in local_content local_thumbnails; do/);
        assert.doesNotMatch(text, /remote_content|url_cache/);
        assert.match(text, /--keep-daily 7 --keep-weekly 4 --keep-monthly 12 --prune/);
        assert.match(text, new RegExp(`${BACKUP_METRIC} \\$\\(cat`));
        assert.ok(text.includes(`metrics='${BACKUP_FILES.metricsFile}'`));
        assert.match(text, /StrictHostKeyChecking=yes -o UserKnownHostsFile=\/etc\/pulumi-matrix\/backup\/known_hosts/);
        const units = renderMatrixBackupUnits(sftp());
        assert.match(units.service, /^OnFailure=pulumi-matrix-backup-failed@%n\.service$/m);
        assert.match(units.service, /^EnvironmentFile=\/etc\/pulumi-matrix\/backup\/restic\.env$/m);
        assert.doesNotMatch(units.service, /^Environment=/m);
        assert.match(units.timer, /^Persistent=true$/m);
        assert.match(units.checkTimer, /^OnCalendar=Sun \*-\*-\* 05:30:00$/m);
    });

    it("puts S3 keys only in the root-only environment file, and refuses a value the file could not carry", () => {
        const env = renderResticEnv(s3(), { s3AccessKeyId: "AKID", s3SecretAccessKey: "SECRETs3" });
        assert.match(env, /^AWS_SECRET_ACCESS_KEY='SECRETs3'$/m);
        assert.throws(
            () => renderResticEnv(s3(), { s3AccessKeyId: "AKID", s3SecretAccessKey: "it's" }),
            /AWS_SECRET_ACCESS_KEY: expected printable characters/,
        );
        const setup = backupSecretsScript(s3(), { password: "SECRETpw", s3AccessKeyId: "AKID", s3SecretAccessKey: "SECRETs3" });
        assert.match(setup, /pm_write backup-secrets \/etc\/pulumi-matrix\/backup\/restic\.env 0600 root root secret/);
        assert.match(setup, /pm_write backup-secrets \/etc\/pulumi-matrix\/backup\/restic-password 0600 root root secret/);
    });

    it("restores only into an empty database, after the checksums, server_name and key id are checked", () => {
        const text = renderRestoreCommand(sftp());
        const at = (re: RegExp) => {
            const i = text.search(re);
            assert.ok(i >= 0, String(re));
            return i;
        };
        assert.ok(at(/already has \$tables tables/) < at(/pm_restic dump/));
        assert.ok(at(/sha256sum --quiet --strict -c SHA256SUMS/) < at(/systemctl stop/));
        assert.ok(at(/\[ "\$got_key" = "\$key_id" \] \|\| refuse/) < at(/pg_restore/));
        assert.ok(at(/pg_restore/) < at(/TRUNCATE e2e_one_time_keys_json/));
        assert.match(text, /CREATE DATABASE %I OWNER %I ENCODING %L LC_COLLATE %L LC_CTYPE %L TEMPLATE template0/);
        assert.match(
            restoreScript({ ...sftp(), restoreFrom: "latest" }, "a_AbCd"),
            /pulumi-matrix-restore --snapshot latest --key-id a_AbCd --once --no-start/,
        );
    });

    golden("backup", "pulumi-matrix-backup-sftp", () => renderBackupCommand(sftp()));
    golden("backup", "pulumi-matrix-backup-s3", () => renderBackupCommand(s3()));
    golden("backup", "pulumi-matrix-restore", () => renderRestoreCommand(sftp()));
    golden("backup", "restic-s3.env", () => renderResticEnv(s3(), { s3AccessKeyId: "AKID-placeholder", s3SecretAccessKey: "s3-secret-placeholder" }));
    golden("backup", "pulumi-matrix-backup.service", () => renderMatrixBackupUnits(sftp()).service);
    golden("backup", "pulumi-matrix-backup.timer", () => renderMatrixBackupUnits(sftp()).timer);
    golden("backup", "pulumi-matrix-backup-check.service", () => renderMatrixBackupUnits(sftp()).checkService);
    golden("backup", "pulumi-matrix-backup-check.timer", () => renderMatrixBackupUnits(sftp()).checkTimer);
    golden("backup", "pulumi-matrix-backup-failed@.service", () => renderMatrixBackupUnits(sftp()).failedService);
    golden("backup", "scripts/backup-sftp.sh", () => backupScript(sftp()));
    golden("backup", "scripts/backup-s3.sh", () => backupScript(s3()));
    golden("backup", "scripts/backup-secrets-sftp.sh", () =>
        backupSecretsScript(sftp(), { password: "password-placeholder", sftpPrivateKey: "key-placeholder" }),
    );
    golden("backup", "scripts/backup-secrets-s3.sh", () =>
        backupSecretsScript(s3(), { password: "password-placeholder", s3AccessKeyId: "AKID-placeholder", s3SecretAccessKey: "s3-secret-placeholder" }),
    );
    golden("backup", "scripts/backup-removal.sh", () => backupRemovalScript());
    golden("backup", "scripts/restore.sh", () => restoreScript({ ...sftp(), restoreFrom: "latest" }, "a_AbCd"));
});

describe("backups: SynapseBackup in a MatrixStack, under mocks", () => {
    const backup = { ...SFTP, password: "SECRETresticpw", sftpPrivateKey: TEST_SSH_KEY, restoreFrom: "latest" };

    it("sets up after the database, restores after Synapse's secrets and before Synapse first starts; secrets only in the secret step", async () => {
        const { mocks, result } = await runWithMocks(
            () => new MatrixStack("prod", { ...stackArgs(), backup }),
            (s) => [s.synapse.signingKeyId, s.backup!.statusCommand],
        );
        for (let i = 0; i < 50 && !mocks.resources.some((r) => r.name === "prod-synapse-config"); i++) await new Promise((r) => setTimeout(r, 100));
        const seq = (n: string) => mocks.byName(n).seq;
        assert.ok(seq("prod-postgres-database") < seq("prod-backup-secrets"));
        assert.ok(seq("prod-backup-secrets") < seq("prod-backup-setup"));
        assert.ok(seq("prod-synapse-secrets") < seq("prod-backup-restore"));
        assert.ok(seq("prod-backup-setup") < seq("prod-backup-restore"));
        assert.ok(seq("prod-backup-restore") < seq("prod-synapse-config"), "Synapse first starts after the restore");
        const secrets = mocks.byName("prod-backup-secrets");
        assert.ok(secrets.secretInputs.includes("stdin"), "the secrets step carries the secrets");
        assert.equal(secrets.inputs.logging, "none");
        assert.ok(!mocks.byName("prod-backup-setup").secretInputs.includes("stdin"), "the setup step shows in previews");
        const restore = String(mocks.byName("prod-backup-restore").inputs.stdin);
        const keyId = await valueOf(result.synapse.signingKeyId);
        assert.ok(restore.includes(`--snapshot latest --key-id ${keyId} --once --no-start`), restore);
        for (const r of mocks.resources.filter((r) => r.type === "command:remote:Command" && !r.secretInputs.includes("stdin"))) {
            assert.ok(!String(r.inputs.stdin).includes("SECRETresticpw"), `${r.name} shows the repository password`);
            assert.ok(!String(r.inputs.stdin).includes("SECRETsshkeymaterial") || r.name === "prod-host-bootstrap", `${r.name} shows the SFTP key`);
        }
        assert.equal(await valueOf(result.backup!.statusCommand), "/usr/local/sbin/pulumi-matrix-backup status");
    });

    it("without restoreFrom, Synapse waits only for the backup's setup", async () => {
        const { restoreFrom: _r, ...plain } = backup;
        const { mocks } = await runWithMocks(
            () => new MatrixStack("prod", { ...stackArgs(), backup: plain }),
            (s) => [s.synapse.signingKeyId],
        );
        for (let i = 0; i < 50 && !mocks.resources.some((r) => r.name === "prod-synapse-config"); i++) await new Promise((r) => setTimeout(r, 100));
        assert.equal(
            mocks.resources.some((r) => r.name === "prod-backup-restore"),
            false,
        );
        assert.ok(mocks.byName("prod-backup-setup").seq < mocks.byName("prod-synapse-config").seq);
        assert.equal(
            mocks.resources.some((r) => r.name === "prod-backup-removal-removal"),
            false,
        );
    });

    it("without backup, a removal takes away what an earlier deployment set up", async () => {
        const { mocks } = await runWithMocks(
            () => new MatrixStack("prod", stackArgs()),
            (s) => [s.synapse.signingKeyId],
        );
        for (let i = 0; i < 50 && !mocks.resources.some((r) => r.name === "prod-backup-removal-removal"); i++) await new Promise((r) => setTimeout(r, 100));
        const removal = String(mocks.byName("prod-backup-removal-removal").inputs.stdin);
        assert.match(removal, /systemctl disable -q --now pulumi-matrix-backup\.timer;/);
        assert.match(removal, /systemctl disable -q --now pulumi-matrix-backup-check\.timer;/);
        assert.equal(
            mocks.resources.some((r) => r.name.startsWith("prod-backup-setup")),
            false,
        );
    });
});
