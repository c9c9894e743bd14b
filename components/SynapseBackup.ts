import * as pulumi from "@pulumi/pulumi";

import { BACKUP_FILES, BackupOptions, BackupSettings, resolveBackupSettings } from "../src/model/backup";
import { componentLabel, ConfigError, Described } from "../src/model/errors";
import { backupScript, backupSecretsScript, finalBackupScript, restoreScript } from "../src/provision/backup";
import { childName, typeToken } from "./naming";
import { PostgresDatabase } from "./PostgresDatabase";
import { hostScript } from "./remote";
import { SynapseHomeserver } from "./SynapseHomeserver";

export interface SynapseBackupArgs extends BackupOptions {
    /** The homeserver backed up (its host runs the backup). */
    synapse: SynapseHomeserver;
    /** Its database: a PostgresDatabase installed on Synapse's host (pg_dump runs there as the postgres user). */
    database: PostgresDatabase;
    /** The restic repository's password (secret): written to a root-only file, restic's --password-file. Required. */
    password: pulumi.Input<string>;
    /** The private key (OpenSSH format) of the SFTP repository's user (secret). Required for an sftp: repository. */
    sftpPrivateKey?: pulumi.Input<string>;
    /** The S3 access key id (secret). Required for an s3: repository. */
    s3AccessKeyId?: pulumi.Input<string>;
    /** The S3 secret access key (secret). Required for an s3: repository. */
    s3SecretAccessKey?: pulumi.Input<string>;
    /**
     * The settings already resolved from these options (MatrixStack passes
     * its plan's). Default: resolved here.
     */
    resolved?: BackupSettings;
    /**
     * In standby, resources the move's final backup waits for besides
     * Synapse's config step: the steps that still stop a Synapse process or
     * write among Synapse's secrets then (a WorkerPool's, a
     * MonitoringServer's alert room). A Promise may stand for one made after
     * this component (MatrixStack passes them). Default none.
     */
    finalAfter?: pulumi.Input<pulumi.Resource>[];
}

/**
 * Backups of a homeserver: a nightly archive (database, signing key,
 * configuration and secrets, local media, a manifest with checksums) sent to
 * an off-host restic repository (SFTP or S3-compatible), retention per
 * day/week/month, a weekly `restic check`, a loud failure (OnFailure=) and
 * the time of the last good backup as a node_exporter metric. With
 * `restoreFrom`, the archive is restored before Synapse first starts:
 * give SynapseHomeserver `startAfter: [<a promise of this component's
 * restored>]` (MatrixStack does).
 */
export class SynapseBackup extends pulumi.ComponentResource {
    /** The resolved settings. */
    readonly settings: BackupSettings;
    /** Done once the backup's files and timers are in place. */
    readonly ready: pulumi.Resource;
    /** Done once a `restoreFrom` restore is (or was) done; the backup step itself without one. Synapse's start waits for it. */
    readonly restored: pulumi.Resource;
    /** The command that prints the time of the last good backup on the host (run it over SSH, as root). */
    readonly statusCommand: pulumi.Output<string>;
    /** The command that restores a backup on the running host (see the README, "Backups and restore"). */
    readonly restoreCommand: pulumi.Output<string>;

    constructor(name: string, args: SynapseBackupArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("SynapseBackup"), name, {}, opts);
        const component = componentLabel("SynapseBackup", name);
        const { synapse, database, password, sftpPrivateKey, s3AccessKeyId, s3SecretAccessKey, resolved, ...options } = args;
        if (!database.settings || database.host !== synapse.host)
            throw new ConfigError(
                component,
                "database",
                new Described(database.settings ? "on another host" : "an external server"),
                "expected the PostgresDatabase installed on Synapse's host (pg_dump and pg_restore run there)",
            );
        const s =
            resolved ??
            resolveBackupSettings(component, options, {
                synapse: synapse.settings,
                database: database.settings,
                credentials: {
                    password: password !== undefined,
                    sftpPrivateKey: sftpPrivateKey !== undefined,
                    s3AccessKeyId: s3AccessKeyId !== undefined,
                    s3SecretAccessKey: s3SecretAccessKey !== undefined,
                },
            });
        this.settings = s;
        const host = synapse.host;
        const secrets = pulumi.secret(
            pulumi.all([password, sftpPrivateKey, s3AccessKeyId, s3SecretAccessKey]).apply(([pw, key, id, secret]) => ({
                password: pw,
                ...(key !== undefined ? { sftpPrivateKey: key } : {}),
                ...(id !== undefined ? { s3AccessKeyId: id } : {}),
                ...(secret !== undefined ? { s3SecretAccessKey: secret } : {}),
            })),
        );
        const secretsStep = hostScript(
            childName(name, "secrets"),
            { host, script: secrets.apply((v) => backupSecretsScript(s, v)), secret: true, after: [database.ready] },
            { parent: this },
        );
        this.ready = hostScript(childName(name, "setup"), { host, script: backupScript(s), after: [secretsStep], timeout: "20m" }, { parent: this });
        this.restored =
            s.restoreFrom !== undefined
                ? hostScript(
                      childName(name, "restore"),
                      {
                          host,
                          script: synapse.signingKeyId.apply((keyId) => restoreScript(s, keyId)),
                          // After Synapse's secrets (its user, its key on disk) and the empty database; Synapse's config step waits for it.
                          after: [this.ready, synapse.secretsWritten, database.ready],
                          timeout: "6h",
                      },
                      { parent: this },
                  )
                : this.ready;
        // A live server going into standby (a move to a new VM): once its config step stopped Synapse, all it wrote goes off the host.
        if (s.synapse.standby)
            hostScript(
                childName(name, "final"),
                { host, script: finalBackupScript(s), after: [this.ready, this.restored, synapse.ready, ...(args.finalAfter ?? [])], timeout: "6h" },
                { parent: this },
            );
        this.statusCommand = pulumi.output(`${BACKUP_FILES.backupCommand} status`);
        this.restoreCommand = pulumi.output(`${BACKUP_FILES.restoreCommand} --snapshot latest`);
        this.registerOutputs({ statusCommand: this.statusCommand, restoreCommand: this.restoreCommand });
    }
}
