// The off-host targets of the backup tests, started on loopback by the test:
// OpenSSH's sshd with its sftp-server on a port of its own (its own host key,
// one authorized key), and versitygw, an S3-compatible gateway over a
// directory (built from the Go module proxy by scripts/versitygw.sh).

import * as fs from "node:fs";
import * as path from "node:path";

import { BACKUP_FILES, BackupFiles, BackupSettings } from "../../../src/model/backup";
import { renderBackupCommand, renderResticEnv, renderRestoreCommand } from "../../../src/render/backup";
import { freePort, isListening } from "./net";
import { makeTempDir, run, sleep, spawnDaemon, type SpawnedDaemon } from "./processes";

export const VERSITYGW_SCRIPT = path.resolve(__dirname, "..", "..", "..", "scripts", "versitygw.sh");

async function waitListening(port: number, daemon: SpawnedDaemon, what: string): Promise<void> {
    for (let i = 0; i < 150; i++) {
        if (await isListening(port)) return;
        if (daemon.hasExited()) throw new Error(`${what} exited:\n${daemon.tail(30)}`);
        await sleep(200);
    }
    throw new Error(`${what} does not listen on 127.0.0.1:${port}:\n${daemon.tail(30)}`);
}

export interface SftpServer {
    port: number;
    /** The user the client logs in as. */
    user: string;
    /** known_hosts line of the server's own host key (`[127.0.0.1]:<port> ssh-ed25519 ...`). */
    knownHosts: string;
    /** The client's private key (OpenSSH format). */
    clientKey: string;
    /** A directory the user may write (the repository goes below it). */
    dir: string;
    stop(): Promise<void>;
}

/**
 * sshd on 127.0.0.1 with a fresh host key, public keys only, one authorized
 * key (made here), and OpenSSH's sftp-server as the sftp subsystem. The user
 * is root: the test user's account is locked, which sshd refuses without PAM.
 */
export async function startSftpServer(): Promise<SftpServer> {
    const dir = makeTempDir("sftp");
    const port = await freePort();
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "host_key")]);
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "client_key")]);
    fs.copyFileSync(path.join(dir, "client_key.pub"), path.join(dir, "authorized_keys"));
    const sftpServer = ["/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server"].find((p) => fs.existsSync(p));
    if (!sftpServer) throw new Error("OpenSSH's sftp-server is not installed (scripts/integration-deps.sh: openssh-sftp-server)");
    fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    const config = path.join(dir, "sshd_config");
    fs.writeFileSync(
        config,
        [
            `ListenAddress 127.0.0.1:${port}`,
            `HostKey ${dir}/host_key`,
            `PidFile ${dir}/sshd.pid`,
            `AuthorizedKeysFile ${dir}/authorized_keys`,
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            `Subsystem sftp ${sftpServer}`,
            "",
        ].join("\n"),
    );
    const repoDir = path.join(dir, "repos");
    fs.mkdirSync(repoDir);
    const sshd = spawnDaemon("/usr/sbin/sshd", ["-D", "-e", "-f", config], { name: "sshd (sftp target)" });
    await waitListening(port, sshd, "sshd");
    const hostPub = fs.readFileSync(path.join(dir, "host_key.pub"), "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
    return {
        port,
        user: "root",
        knownHosts: `[127.0.0.1]:${port} ${hostPub}`,
        clientKey: fs.readFileSync(path.join(dir, "client_key"), "utf8"),
        dir: repoDir,
        stop: () => sshd.stop(),
    };
}

export interface S3Server {
    endpoint: string;
    accessKeyId: string;
    secretAccessKey: string;
    /** A bucket that exists. */
    bucket: string;
    stop(): Promise<void>;
}

/** Builds (once per version, cached) versitygw and returns the binary's path. */
export async function ensureVersitygw(): Promise<string> {
    const r = await run("bash", [VERSITYGW_SCRIPT], { timeoutMs: 20 * 60_000 });
    return r.stdout.trim().split("\n").pop()!;
}

/** versitygw's posix backend over a temp directory, on a loopback port, with one account. */
export async function startS3Server(): Promise<S3Server> {
    const bin = await ensureVersitygw();
    const dir = makeTempDir("s3");
    const port = await freePort();
    const bucket = "matrix-backups";
    fs.mkdirSync(path.join(dir, bucket));
    const accessKeyId = "pulumimatrixtest";
    const secretAccessKey = "versitygw-test-secret-0123456789";
    const gw = spawnDaemon(bin, ["--port", `127.0.0.1:${port}`, "posix", dir], {
        name: "versitygw (s3 target)",
        env: { ...process.env, ROOT_ACCESS_KEY: accessKeyId, ROOT_SECRET_KEY: secretAccessKey },
    });
    await waitListening(port, gw, "versitygw");
    return { endpoint: `http://127.0.0.1:${port}`, accessKeyId, secretAccessKey, bucket, stop: () => gw.stop() };
}

/**
 * A host's backup files under `root`, as SynapseBackup's steps write them
 * (BACKUP_FILES below `root`): the password and restic's environment, the
 * SFTP key and known_hosts, and the two commands rendered for `settings`.
 * Returns the layout, for the commands and `restoreScript`.
 */
export function writeBackupHost(root: string, settings: BackupSettings, secrets: { password: string; sftp?: SftpServer; s3?: S3Server }): BackupFiles {
    const files = Object.fromEntries(Object.entries(BACKUP_FILES).map(([k, p]) => [k, path.join(root, p)])) as BackupFiles;
    for (const d of [files.configDir, path.dirname(files.backupCommand), path.dirname(files.restoreCommand)]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    fs.writeFileSync(files.passwordFile, secrets.password + "\n", { mode: 0o600 });
    const s3 = secrets.s3 ? { s3AccessKeyId: secrets.s3.accessKeyId, s3SecretAccessKey: secrets.s3.secretAccessKey } : {};
    fs.writeFileSync(files.envFile, renderResticEnv(settings, s3, files), { mode: 0o600 });
    if (secrets.sftp) {
        fs.writeFileSync(files.sshKey, secrets.sftp.clientKey, { mode: 0o600 });
        fs.writeFileSync(files.knownHosts, secrets.sftp.knownHosts + "\n", { mode: 0o600 });
    }
    fs.writeFileSync(files.backupCommand, renderBackupCommand(settings, files), { mode: 0o700 });
    fs.writeFileSync(files.restoreCommand, renderRestoreCommand(settings, files), { mode: 0o700 });
    return files;
}
