import { OsInfo } from "../model/host";
import { SYNAPSE_PIP_EXTRAS, SynapsePeers, SynapseSecretFile, SynapseSettings, secretFilePath, synapseFiles } from "../model/synapse";
import { renderHomeserverYaml, renderLogConfig } from "../render/synapse/homeserver";
import { renderSynapseMainUnit, renderSynapseTarget } from "../render/synapse/units";
import { ServiceUnit, applyFileSet, ensureRunning } from "./apply";
import { script } from "./shell";
import { Sh, heredocVar, lines, raw, sh } from "./sh";
import { adminPasswordRule, recordFunctions, recordPackageSigningKey, recordSigningKey, signingKeyGuard } from "./synapseRecords";

/** The matrix.org Debian repository and the fingerprint its keyring must have. */
export const MATRIX_ORG_APT = {
    url: "https://packages.matrix.org/debian/",
    keyringUrl: "https://packages.matrix.org/debian/matrix-org-archive-keyring.gpg",
    keyring: "/usr/share/keyrings/matrix-org-archive-keyring.gpg",
    fingerprint: "AAF9AE843A7584B5A3E4CD2BCF45A512DE2DA058",
    package: "matrix-synapse-py3",
};

export const SYNAPSE_UNITS = { main: "matrix-synapse.service", target: "matrix-synapse.target" };

/** The main process as handlers see it: healthy once /health answers on loopback. */
export function synapseMainUnit(s: SynapseSettings): ServiceUnit {
    return { name: SYNAPSE_UNITS.main, health: { url: `http://127.0.0.1:${s.httpPort}/health` } };
}

/** Refuses to go back to an older Synapse: its database schema may already be newer. */
function noDowngrade(installedExpr: Sh, version: string): Sh {
    return lines([
        sh`installed=${installedExpr}`,
        sh`if [ -n "$installed" ] && [ "$installed" != ${version} ] && [ "$(printf '%s\n%s\n' "$installed" ${version} | sort -V | tail -n 1)" = "$installed" ]; then`,
        sh`    echo "Synapse $installed is installed; refusing to downgrade to "${version}" (its database may already use a newer schema). Set version to $installed or newer." >&2; exit 1`,
        sh`fi`,
    ]);
}

/** Installs Synapse at the pinned version from the matrix.org repository (amd64 only). */
function aptInstall(s: SynapseSettings, os: OsInfo): Sh[] {
    const a = MATRIX_ORG_APT;
    const f = synapseFiles(s.paths);
    return [
        sh`if [ "$(dpkg --print-architecture)" != amd64 ]; then echo "the matrix.org Synapse packages are amd64 only; this host is $(dpkg --print-architecture): use installMethod pip" >&2; exit 1; fi`,
        sh`pm_apt_install ca-certificates curl gnupg debconf-utils`,
        sh`if [ ! -s ${a.keyring} ]; then`,
        sh`    tmp=$(mktemp); curl -fsSL --retry 3 -o "$tmp" ${a.keyringUrl}`,
        sh`    fpr=$(gpg --show-keys --with-colons "$tmp" | awk -F: '/^fpr/ {print $10; exit}')`,
        sh`    if [ "$fpr" != ${a.fingerprint} ]; then echo "matrix.org keyring fingerprint is $fpr, expected "${a.fingerprint}"; not trusting it" >&2; rm -f "$tmp"; exit 1; fi`,
        sh`    install -m 0644 "$tmp" ${a.keyring}; rm -f "$tmp"`,
        sh`fi`,
        applyFileSet({
            name: "synapse-apt",
            files: [
                { path: "/etc/apt/sources.list.d/matrix-org.list", content: `deb [signed-by=${a.keyring}] ${a.url} ${os.codename} main\n` },
                {
                    path: `/etc/apt/preferences.d/${a.package}`,
                    content: `# Managed by pulumi-matrix: the Synapse version is pinned.\nPackage: ${a.package}\nPin: version ${s.version}+*\nPin-Priority: 1001\n`,
                },
            ],
        }),
        sh`printf '%s\n' ${`matrix-synapse-py3 matrix-synapse/server-name string ${s.serverName}`} ${`matrix-synapse-py3 matrix-synapse/report-stats boolean ${s.reportStats}`} | debconf-set-selections`,
        noDowngrade(raw(`$(dpkg-query -W -f='\${Version}' ${a.package} 2>/dev/null | sed 's/+.*//' || true)`), s.version),
        recordFunctions(s.paths),
        sh`if [ "$installed" != ${s.version} ]; then`,
        sh`    pm_had_key=0; if [ -e ${f.signingKey} ]; then pm_had_key=1; fi`,
        sh`    pm_apt update -q >/dev/null`,
        sh`    pm_apt install -y -q -o Dpkg::Options::=--force-confold ${a.package} >/dev/null`,
        sh`    systemctl stop ${SYNAPSE_UNITS.main} 2>/dev/null || true`,
        indent(recordPackageSigningKey(s.paths)),
        sh`    pm_owe ${SYNAPSE_UNITS.main}; echo ${`Synapse ${s.version} installed from matrix.org`}`,
        sh`fi`,
        // The package's postinst writes these from debconf; conf.d is read after homeserver.yaml,
        // so they would silently override what the library renders.
        sh`for f in ${`${f.confD}/server_name.yaml`} ${`${f.confD}/report_stats.yaml`}; do`,
        sh`    if [ -e "$f" ]; then rm -f "$f"; pm_owe ${SYNAPSE_UNITS.main}; echo "removed the package's $f (homeserver.yaml carries it)"; fi`,
        sh`done`,
    ];
}

/** Builds the virtualenv with Synapse from PyPI at the pinned version (psycopg2 is compiled against libpq). */
function pipInstall(s: SynapseSettings): Sh[] {
    const v = s.paths.venvDir;
    const python = `${v}/bin/python`;
    const pip = `${v}/bin/pip`;
    return [
        sh`pm_apt_install python3 python3-venv python3-dev build-essential libpq-dev libffi-dev libssl-dev`,
        sh`if ! id -u ${s.paths.user} >/dev/null 2>&1; then useradd --system --home-dir ${s.paths.dataDir} --no-create-home --shell /usr/sbin/nologin ${s.paths.user}; fi`,
        noDowngrade(
            sh`$( [ -x ${python} ] && ${python} -c 'import importlib.metadata as m; print(m.version("matrix-synapse"))' 2>/dev/null || true)`,
            s.version,
        ),
        sh`if [ "$installed" != ${s.version} ]; then`,
        sh`    [ -x ${python} ] || python3 -m venv ${v}`,
        sh`    ${pip} install -q --disable-pip-version-check --upgrade pip setuptools wheel`,
        sh`    ${pip} install -q --disable-pip-version-check ${`matrix-synapse[${SYNAPSE_PIP_EXTRAS}]==${s.version}`}`,
        sh`    pm_owe ${SYNAPSE_UNITS.main}; echo ${`Synapse ${s.version} installed from PyPI into ${v}`}`,
        sh`fi`,
    ];
}

/** Installs (or upgrades in place) Synapse with the chosen method. A new version is a restart owed to the config step. */
export function synapseInstallScript(s: SynapseSettings, os: OsInfo): string {
    return script(`pulumi-matrix Synapse ${s.version} (${s.installMethod})`, s.installMethod === "apt" ? aptInstall(s, os) : pipInstall(s));
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
        sh`id -u ${u} >/dev/null 2>&1 || { echo "user "${u}" does not exist: install Synapse first" >&2; exit 1; }`,
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
                ...secrets.files.map((file) => ({
                    path: secretFilePath(s.paths, file),
                    content: file.content,
                    ...(file.access === "user" ? { mode: "0600", owner: u, group: u } : { mode: "0640", group: u }),
                })),
            ],
            onChange: [{ kind: "restart", unit: synapseMainUnit(s) }],
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

function indent(code: Sh): Sh {
    return raw(code.text.replace(/^(?=.)/gm, "    "));
}

/**
 * Writes the readable config and units, starts Synapse, and restarts it only
 * when something it reads changed (here, in the secrets, or the version).
 */
export function synapseConfigScript(s: SynapseSettings, peers: SynapsePeers, component: string, opts: { afterUnits?: string[] } = {}): string {
    const f = synapseFiles(s.paths);
    const u = s.paths.user;
    const main = synapseMainUnit(s);
    return script(`pulumi-matrix Synapse ${s.version} config`, [
        sh`install -d -m 0750 -o ${u} -g ${u} ${[...new Set([s.paths.dataDir, s.paths.mediaStorePath])]}`,
        sh`install -d -m 0755 ${s.paths.configDir}`,
        applyFileSet({
            name: "synapse-config",
            files: [
                { path: f.homeserverYaml, content: renderHomeserverYaml(component, s, peers), mode: "0640", group: u },
                { path: f.logConfig, content: renderLogConfig(s), mode: "0640", group: u },
            ],
            onChange: [{ kind: "owe-restart", unit: main }],
        }),
        applyFileSet({
            name: "synapse-units",
            files: [
                { path: `/etc/systemd/system/${SYNAPSE_UNITS.target}`, content: renderSynapseTarget() },
                { path: `/etc/systemd/system/${SYNAPSE_UNITS.main}`, content: renderSynapseMainUnit(s, opts.afterUnits) },
            ],
            onChange: [{ kind: "daemon-reload" }, { kind: "owe-restart", unit: main }],
        }),
        ensureRunning([main], { enable: [SYNAPSE_UNITS.target, SYNAPSE_UNITS.main] }),
        sh`echo ${`Synapse healthy on 127.0.0.1:${s.httpPort}`}`,
    ]);
}

/**
 * Registers the initial admin through the shared-secret API (secret stdin:
 * the password), then makes the stack's password the one that logs in
 * (see `adminPasswordRule`): after `pulumi destroy` and a new `pulumi up` on
 * the same host the account exists and the stack has a new password.
 */
export function synapseAdminScript(s: SynapseSettings, localpart: string, password: string): string {
    const f = synapseFiles(s.paths);
    const py = `import hashlib, hmac, json, sys, urllib.request, urllib.error
base = "http://127.0.0.1:${s.httpPort}/_synapse/admin/v1/register"
secret = open(${JSON.stringify(f.registrationSharedSecret)}).read().strip().encode()
user, password = ${JSON.stringify(localpart)}, sys.stdin.read().rstrip("\\n")
nonce = json.load(urllib.request.urlopen(base, timeout=30))["nonce"]
mac = hmac.new(secret, b"\\0".join([nonce.encode(), user.encode(), password.encode(), b"admin"]), hashlib.sha1).hexdigest()
body = json.dumps({"nonce": nonce, "username": user, "password": password, "admin": True, "mac": mac}).encode()
try:
    urllib.request.urlopen(urllib.request.Request(base, body, {"Content-Type": "application/json"}), timeout=30)
    print("created")
except urllib.error.HTTPError as e:
    err = json.load(e)
    if err.get("errcode") == "M_USER_IN_USE":
        print("exists")
    else:
        sys.exit("registering the admin user failed: %s %s" % (e.code, err.get("error")))
`;
    return script("pulumi-matrix Synapse initial admin", [
        recordFunctions(s.paths),
        heredocVar("py", py.trimEnd()),
        heredocVar("pw", password),
        sh`pm_result=$(printf '%s\n' "$pw" | ${`${s.paths.venvDir}/bin/python`} -c "$py")`,
        adminPasswordRule(s, localpart),
    ]);
}
