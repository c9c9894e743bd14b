import { OsInfo } from "../../model/host";
import { secretFilePath, synapseFiles, SynapsePeers, SynapseSecretFile, SynapseSettings } from "../../model/synapse";
import { PROMETHEUS_SCRAPE_FILES, renderSynapseScrapeConfig } from "../../render/prometheus";
import { REGISTER_USER_PY } from "../../render/synapse/admin";
import { databaseCaFiles, renderHomeserverYaml, renderLogConfig } from "../../render/synapse/homeserver";
import { renderSynapseMainUnit, renderSynapseTarget } from "../../render/synapse/units";
import { applyFileSet, ensureRunning, ensureStopped, Handler, handlerStep, isOwed, ManagedFile, ServiceUnit, when } from "../apply";
import { heredocVar, indent, lines, Sh, sh } from "../sh";
import { script } from "../shell";
import { aptInstall, pipInstall } from "./install";
import { adminPasswordRule, recordFunctions, recordSigningKey, signingKeyGuard, synapseConfiguredByLibrary } from "./records";

export const SYNAPSE_UNITS = { main: "matrix-synapse.service", target: "matrix-synapse.target" };

/** The main process as handlers see it: healthy once /health answers on loopback. */
export function synapseMainUnit(s: SynapseSettings): ServiceUnit {
    return { name: SYNAPSE_UNITS.main, health: { url: `http://127.0.0.1:${s.httpPort}/health` } };
}

/**
 * Every Synapse process on the host reads it: the main process restarts, then
 * the workers the host lists, one by one. Only a Synapse the library
 * configured: the unit of a Synapse waiting to be adopted has the same name,
 * and restarting it would start the old server on the release just installed,
 * against its original database. Its restart is owed instead; the config
 * step, after the adoption stopped it, starts the stack's Synapse.
 */
export function synapseRestarts(s: SynapseSettings): Handler[] {
    const main = synapseMainUnit(s);
    return [
        when(
            synapseConfiguredByLibrary(s.paths),
            [
                { kind: "restart", unit: main },
                { kind: "rolling-restart-listed", list: synapseFiles(s.paths).workerList },
            ],
            [
                { kind: "owe-restart", unit: main },
                { kind: "run", command: sh`echo ${`${main.name} not restarted: ${s.paths.configDir} is not configured by pulumi-matrix yet`}` },
            ],
        ),
    ];
}

/** Stops a step that writes Synapse's files on a host where Synapse is not installed yet (its user is missing). */
export function requireSynapseUser(s: SynapseSettings): Sh {
    const u = s.paths.user;
    return sh`id -u ${u} >/dev/null 2>&1 || { echo "user "${u}" does not exist: install Synapse first" >&2; exit 1; }`;
}

/** Where and how a secret file Synapse reads is written: root-owned and group-readable, or Synapse's own (`access: "user"`). */
function secretFileEntry(s: SynapseSettings, file: SynapseSecretFile): ManagedFile {
    const u = s.paths.user;
    return {
        path: secretFilePath(s.paths, file),
        content: file.content,
        ...(file.access === "user" ? { mode: "0600", owner: u, group: u } : { mode: "0640", group: u }),
    };
}

/**
 * Secrets between services, the one way: a service built after Synapse
 * (coturn, a WorkerPool) hands Synapse its secret files in a step of its
 * own, as a file set of its own named `set` (secret: recorded as digests
 * only), so its removal prunes exactly what it wrote
 * (`synapsePeerSecretsRemoval`). `onChange` restarts the processes that
 * read them. Synapse's own inputs (the database passfile, the SMTP
 * fragment) are in its secrets script.
 */
export function synapsePeerSecrets(s: SynapseSettings, set: string, files: SynapseSecretFile[], onChange: Handler[]): Sh {
    return lines([
        requireSynapseUser(s),
        sh`install -d -m 0750 -o root -g ${s.paths.user} ${synapseFiles(s.paths).secretsDir}`,
        applyFileSet({ name: set, secret: true, files: files.map((f) => secretFileEntry(s, f)), onChange }),
    ]);
}

/** Takes away the secret files a peer wrote with `synapsePeerSecrets` under `set`; Synapse's step that stops reading them restarts it. */
export function synapsePeerSecretsRemoval(set: string): Sh {
    return applyFileSet({ name: set, secret: true, files: [] });
}

/**
 * Installs Synapse with the chosen method; with pip a new version is an upgrade that can be undone
 * (`pipUpgrade`). `workersOnly`: a host of a WorkerPool's own, where no main process runs.
 */
export function synapseInstallScript(s: SynapseSettings, os: OsInfo, opts: { workersOnly?: boolean } = {}): string {
    return script(`pulumi-matrix Synapse ${s.version} (${s.installMethod})`, s.installMethod === "apt" ? aptInstall(s, os, opts) : pipInstall(s, opts));
}

/** The secret values Synapse needs on disk: its own, and the files other services hand it. */
export interface SynapseSecrets {
    macaroonSecretKey: string;
    formSecret: string;
    registrationSharedSecret: string;
    /** The signing key file line (`ed25519 <id> <seed>`). */
    signingKey: string;
    /** Secret files of other services (the database passfile, the SMTP fragment, ...). */
    files: SynapseSecretFile[];
    /** The URN of the stack's generated key when it is protected (named in the guard's message). Default none. */
    protectedKeyUrn?: string;
}

/**
 * Writes the secret files (secret stdin). A different signing key the host
 * already has is not overwritten unless `allowSigningKeyReplacement` is set
 * (or it is the package's unused key): the script stops first, changing
 * nothing (see `signingKeyGuard`). A replaced key is kept in keys-replaced/,
 * so a wrong import can be undone. A running Synapse is restarted for changed
 * secrets; a stopped one owes the restart to the config step.
 * `component` names the component in errors.
 */
export function synapseSecretsScript(s: SynapseSettings, secrets: SynapseSecrets, component = "SynapseHomeserver"): string {
    const f = synapseFiles(s.paths);
    const u = s.paths.user;
    const own = (name: string, content: string) => ({ path: `${f.secretsDir}/${name}`, content, mode: "0640", group: u });
    const keyId = signingKeyIdOfLine(secrets.signingKey);
    return script("pulumi-matrix Synapse secrets", [
        requireSynapseUser(s),
        recordFunctions(s.paths),
        heredocVar("pm_key", secrets.signingKey.trim()),
        signingKeyGuard(s, component, keyId, secrets.protectedKeyUrn),
        sh`install -d -m 0750 -o root -g ${u} ${f.secretsDir} ${f.confD}`,
        applyFileSet({
            name: "synapse-secrets",
            // Recorded for the drift check as digests only, never copied.
            secret: true,
            files: [
                own("macaroon_secret_key", secrets.macaroonSecretKey),
                own("form_secret", secrets.formSecret),
                own("registration_shared_secret", secrets.registrationSharedSecret),
                { path: f.signingKey, generate: sh`printf '%s\n' "$pm_key"`, mode: "0640", group: u },
                ...secrets.files.map((file) => secretFileEntry(s, file)),
            ],
            // Worker processes (if any on this host) read the same secrets: after the main process, one by one.
            onChange: synapseRestarts(s),
        }),
        recordSigningKey(s.paths, keyId),
    ]);
}

/** The key id of a signing key file line (`ed25519 <id> <seed>`); it is not secret. */
function signingKeyIdOfLine(line: string): string {
    const id = line.trim().split(/\s+/)[1];
    if (!id || !/^[A-Za-z0-9_]+$/.test(id)) throw new Error("synapseSecretsScript: signingKey is not a signing key file line (ed25519 <key_id> <seed>)");
    return id;
}

/** What a step that keeps Synapse's processes stopped says (the `standby` option). */
export const STANDBY_REASON = "standby (this host holds the server without running it)";

/**
 * Writes the readable config and units, starts Synapse, and restarts it only
 * when something it reads changed (here, in the secrets, or the version). In
 * standby it stops and disables Synapse instead.
 */
export function synapseConfigScript(s: SynapseSettings, peers: SynapsePeers, component: string, opts: { afterUnits?: string[] } = {}): string {
    const f = synapseFiles(s.paths);
    const u = s.paths.user;
    const main = synapseMainUnit(s);
    return script(`pulumi-matrix Synapse ${s.version} config`, [
        sh`install -d -m 0750 -o ${u} -g ${u} ${[...new Set([s.paths.dataDir, s.paths.mediaStorePath])]}`,
        // Root's, readable by Synapse's group (the apt method registers the same with dpkg-statoverride).
        sh`install -d -m 0750 -o root -g ${u} ${s.paths.configDir}`,
        applyFileSet({ name: "synapse-config", files: synapseSharedFiles(s, peers, component), onChange: [{ kind: "owe-restart", unit: main }] }),
        applyFileSet({
            name: "synapse-units",
            files: [
                { path: `/etc/systemd/system/${SYNAPSE_UNITS.target}`, content: renderSynapseTarget() },
                { path: `/etc/systemd/system/${SYNAPSE_UNITS.main}`, content: renderSynapseMainUnit(s, opts.afterUnits) },
            ],
            onChange: [{ kind: "daemon-reload" }, { kind: "owe-restart", unit: main }],
        }),
        // A restart owed now (a change above, or a new version) is one every process on this host owes:
        // worker processes read the same config, so they follow the main process, one by one.
        // For a Prometheus the user runs: the main process's metrics listener (issue 23); nothing restarts.
        applyFileSet({ name: "synapse-prometheus", files: [{ path: PROMETHEUS_SCRAPE_FILES.synapse, content: renderSynapseScrapeConfig(s) }] }),
        ...(s.standby
            ? [
                  // Its workers stop with the target (PartOf=); the restart the main process may owe waits for the end of standby.
                  ensureStopped([SYNAPSE_UNITS.target, SYNAPSE_UNITS.main], STANDBY_REASON),
                  sh`echo ${`standby: Synapse ${s.version} is configured and stays stopped`}`,
              ]
            : [
                  sh`pm_workers_owe=0; if ${isOwed(main)}; then pm_workers_owe=1; fi`,
                  ensureRunning([main], { enable: [SYNAPSE_UNITS.target, SYNAPSE_UNITS.main] }),
                  sh`echo ${`Synapse healthy on 127.0.0.1:${s.httpPort}`}`,
                  lines([sh`if [ "$pm_workers_owe" = 1 ]; then`, indent(handlerStep({ kind: "rolling-restart-listed", list: f.workerList })), sh`fi`]),
              ]),
    ]);
}

/**
 * The files every Synapse process reads, main and workers alike (homeserver.yaml
 * and the log config), as the config script writes them; a WorkerPool writes
 * the same on a host of its own.
 */
export function synapseSharedFiles(s: SynapseSettings, peers: SynapsePeers, component: string): ManagedFile[] {
    const f = synapseFiles(s.paths);
    const u = s.paths.user;
    return [
        { path: f.homeserverYaml, content: renderHomeserverYaml(component, s, peers), mode: "0640", group: u },
        { path: f.logConfig, content: renderLogConfig(s), mode: "0640", group: u },
        // The database server's CA (public), when it has one of its own: libpq's sslrootcert.
        ...databaseCaFiles(s.paths, peers),
    ];
}

/**
 * Registers the initial admin through the shared-secret API (secret stdin:
 * the password), then makes the stack's password the one that logs in
 * (see `adminPasswordRule`): after `pulumi destroy` and a new `pulumi up` on
 * the same host the account exists and the stack has a new password.
 */
export function synapseAdminScript(s: SynapseSettings, localpart: string, password: string): string {
    // Through the API of a running Synapse: in standby it waits, and runs again when standby ends (its script changes).
    if (s.standby)
        return script("pulumi-matrix Synapse initial admin", [sh`echo ${`${STANDBY_REASON}: the account ${localpart} is set up once Synapse runs`}`]);
    const f = synapseFiles(s.paths);
    const py = `import hashlib, hmac, json, sys, urllib.request, urllib.error
${REGISTER_USER_PY}
print(register_user("http://127.0.0.1:${s.httpPort}", ${JSON.stringify(f.registrationSharedSecret)}, ${JSON.stringify(localpart)}, sys.stdin.read().rstrip("\\n"), True))
`;
    return script("pulumi-matrix Synapse initial admin", [
        recordFunctions(s.paths),
        heredocVar("py", py.trimEnd()),
        heredocVar("pw", password),
        sh`pm_result=$(printf '%s\n' "$pw" | ${`${s.paths.venvDir}/bin/python`} -c "$py")`,
        adminPasswordRule(s, localpart),
    ]);
}
