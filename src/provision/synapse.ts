import { OsInfo } from "../model/host";
import { SYNAPSE_PIP_EXTRAS, SynapseSettings, synapseFiles } from "../model/synapse";
import { renderEmailSecretFragment, renderHomeserverYaml, renderLogConfig, renderPgpass } from "../render/synapse/homeserver";
import { renderSynapseMainUnit, renderSynapseTarget } from "../render/systemd";
import { STATE_DIR, script, shQuote, writeFile } from "./shell";

/** The matrix.org Debian repository and the fingerprint its keyring must have. */
export const MATRIX_ORG_APT = {
    url: "https://packages.matrix.org/debian/",
    keyringUrl: "https://packages.matrix.org/debian/matrix-org-archive-keyring.gpg",
    keyring: "/usr/share/keyrings/matrix-org-archive-keyring.gpg",
    fingerprint: "AAF9AE843A7584B5A3E4CD2BCF45A512DE2DA058",
    package: "matrix-synapse-py3",
};

export const SYNAPSE_UNITS = { main: "matrix-synapse.service", target: "matrix-synapse.target" };

/** Refuses to go back to an older Synapse: its database schema may already be newer. */
function noDowngrade(installedExpr: string, version: string): string {
    return `installed=${installedExpr}
if [ -n "$installed" ] && [ "$installed" != ${shQuote(version)} ] && [ "$(printf '%s\\n%s\\n' "$installed" ${shQuote(version)} | sort -V | tail -n 1)" = "$installed" ]; then
    echo "Synapse $installed is installed; refusing to downgrade to ${version} (its database may already use a newer schema). Set version to $installed or newer." >&2; exit 1
fi`;
}

/** Installs Synapse at the pinned version from the matrix.org repository (amd64 only). */
function aptInstall(s: SynapseSettings, os: OsInfo): string[] {
    const a = MATRIX_ORG_APT;
    return [
        `if [ "$(dpkg --print-architecture)" != amd64 ]; then echo "the matrix.org Synapse packages are amd64 only; this host is $(dpkg --print-architecture): use installMethod pip" >&2; exit 1; fi`,
        "pm_apt_install ca-certificates curl gnupg debconf-utils",
        `if [ ! -s ${a.keyring} ]; then
    tmp=$(mktemp); curl -fsSL --retry 3 -o "$tmp" ${a.keyringUrl}
    fpr=$(gpg --show-keys --with-colons "$tmp" | awk -F: '/^fpr/ {print $10; exit}')
    if [ "$fpr" != ${a.fingerprint} ]; then echo "matrix.org keyring fingerprint is $fpr, expected ${a.fingerprint}; not trusting it" >&2; rm -f "$tmp"; exit 1; fi
    install -m 0644 "$tmp" ${a.keyring}; rm -f "$tmp"
fi`,
        writeFile({ path: "/etc/apt/sources.list.d/matrix-org.list", content: `deb [signed-by=${a.keyring}] ${a.url} ${os.codename} main\n` }),
        writeFile({ path: "/etc/apt/preferences.d/matrix-synapse-py3", content: `# Managed by pulumi-matrix: the Synapse version is pinned.\nPackage: ${a.package}\nPin: version ${s.version}+*\nPin-Priority: 1001\n` }),
        `printf '%s\\n' "matrix-synapse-py3 matrix-synapse/server-name string ${s.serverName}" "matrix-synapse-py3 matrix-synapse/report-stats boolean ${s.reportStats}" | debconf-set-selections`,
        noDowngrade(`$(dpkg-query -W -f='\${Version}' ${a.package} 2>/dev/null | sed 's/+.*//' || true)`, s.version),
        `if [ "$installed" != ${shQuote(s.version)} ]; then
    pm_apt update -q >/dev/null
    pm_apt install -y -q -o Dpkg::Options::=--force-confold ${a.package} >/dev/null
    systemctl stop ${SYNAPSE_UNITS.main} 2>/dev/null || true
    pm_mark_restart synapse; echo "Synapse ${s.version} installed from matrix.org"
fi`,
        // The package's postinst writes these from debconf; conf.d is read after homeserver.yaml,
        // so they would silently override what the library renders.
        `for f in ${synapseFiles(s.paths).confD}/server_name.yaml ${synapseFiles(s.paths).confD}/report_stats.yaml; do
    if [ -e "$f" ]; then rm -f "$f"; pm_mark_restart synapse; echo "removed the package's $f (homeserver.yaml carries it)"; fi
done`,
    ];
}

/** Builds the virtualenv with Synapse from PyPI at the pinned version (psycopg2 is compiled against libpq). */
function pipInstall(s: SynapseSettings): string[] {
    const v = s.paths.venvDir;
    return [
        "pm_apt_install python3 python3-venv python3-dev build-essential libpq-dev libffi-dev libssl-dev",
        `if ! id -u ${s.paths.user} >/dev/null 2>&1; then useradd --system --home-dir ${s.paths.dataDir} --no-create-home --shell /usr/sbin/nologin ${s.paths.user}; fi`,
        noDowngrade(`$( [ -x ${v}/bin/python ] && ${v}/bin/python -c 'import importlib.metadata as m; print(m.version("matrix-synapse"))' 2>/dev/null || true)`, s.version),
        `if [ "$installed" != ${shQuote(s.version)} ]; then
    [ -x ${v}/bin/python ] || python3 -m venv ${v}
    ${v}/bin/pip install -q --disable-pip-version-check --upgrade pip setuptools wheel
    ${v}/bin/pip install -q --disable-pip-version-check "matrix-synapse[${SYNAPSE_PIP_EXTRAS}]==${s.version}"
    pm_mark_restart synapse; echo "Synapse ${s.version} installed from PyPI into ${v}"
fi`,
    ];
}

/** Installs (or upgrades in place) Synapse with the chosen method. */
export function synapseInstallScript(s: SynapseSettings, os: OsInfo): string {
    return script(`pulumi-matrix Synapse ${s.version} (${s.installMethod})`, [
        ...(s.installMethod === "apt" ? aptInstall(s, os) : pipInstall(s)),
        `echo "${s.version}" > ${STATE_DIR}/synapse-version`,
    ]);
}

/** The secret values Synapse needs on disk. */
export interface SynapseSecrets {
    macaroonSecretKey: string;
    formSecret: string;
    registrationSharedSecret: string;
    /** The signing key file line (`ed25519 <id> <seed>`). */
    signingKey: string;
    databasePassword?: string;
    smtpPassword?: string;
}

/**
 * Writes the secret files (secret stdin). An existing signing key that
 * differs is kept in keys-replaced/ rather than lost, so a wrong import can
 * be undone.
 */
export function synapseSecretsScript(s: SynapseSettings, secrets: SynapseSecrets): string {
    const f = synapseFiles(s.paths);
    const u = s.paths.user;
    const body = [
        `id -u ${u} >/dev/null 2>&1 || { echo "user ${u} does not exist: install Synapse first" >&2; exit 1; }`,
        `install -d -m 0750 -o root -g ${u} ${f.secretsDir} ${f.confD}`,
        "pm_changed=0",
        writeFile({ path: f.macaroonSecretKey, content: secrets.macaroonSecretKey, mode: "0640", group: u }),
        writeFile({ path: f.formSecret, content: secrets.formSecret, mode: "0640", group: u }),
        writeFile({ path: f.registrationSharedSecret, content: secrets.registrationSharedSecret, mode: "0640", group: u }),
        `key=$(cat <<'PM_KEY'\n${secrets.signingKey.trim()}\nPM_KEY\n)`,
        `if [ -s ${f.signingKey} ] && ! printf '%s\\n' "$key" | cmp -s - ${f.signingKey}; then
    install -d -m 0700 ${f.secretsDir}/keys-replaced
    cp -p ${f.signingKey} ${f.secretsDir}/keys-replaced/homeserver.signing.key.$(date -u +%Y%m%dT%H%M%SZ)
    echo "the previous signing key was kept in ${f.secretsDir}/keys-replaced/"
fi`,
        `printf '%s\\n' "$key" | pm_write ${f.signingKey} 0640 root ${u}`,
    ];
    if (secrets.databasePassword !== undefined) body.push(writeFile({ path: f.databasePassfile, content: renderPgpass(s, secrets.databasePassword), mode: "0600", owner: u, group: u }));
    else body.push(`rm -f ${f.databasePassfile}`);
    if (s.email && secrets.smtpPassword !== undefined) body.push(writeFile({ path: f.emailFragment, content: renderEmailSecretFragment(s, secrets.smtpPassword), mode: "0640", group: u }));
    else body.push(`if [ -e ${f.emailFragment} ]; then rm -f ${f.emailFragment}; pm_changed=1; fi`);
    // A running Synapse picks up changed secrets now; on a first install the config step starts it.
    body.push(`if [ "$pm_changed" = 1 ]; then
    if systemctl is-active -q ${SYNAPSE_UNITS.main}; then
        echo "restarting Synapse for changed secrets"; systemctl restart ${SYNAPSE_UNITS.main}
${healthWait(s.httpPort, SYNAPSE_UNITS.main).replace(/^/gm, "        ")}
    else
        pm_mark_restart synapse
    fi
fi`);
    return script("pulumi-matrix Synapse secrets", body);
}

/** Waits until Synapse answers /health; on failure prints the last log lines. */
export function healthWait(port: number, unit: string, timeoutSeconds = 300): string {
    return `ok=0
for i in $(seq 1 ${timeoutSeconds}); do
    if curl -fsS -m 2 -o /dev/null http://127.0.0.1:${port}/health; then ok=1; break; fi
    if ! systemctl is-active -q ${unit} && [ "$(systemctl show -p ActiveState --value ${unit})" = failed ]; then break; fi
    sleep 1
done
if [ "$ok" != 1 ]; then
    echo "Synapse (${unit}) did not answer http://127.0.0.1:${port}/health within ${timeoutSeconds} s. Last log lines:" >&2
    journalctl -u ${unit} -n 40 --no-pager -o cat >&2 || true
    exit 1
fi`;
}

/**
 * Writes the readable config and units, starts Synapse, and restarts it only
 * when something it reads changed (here, in the secrets, or the version).
 */
export function synapseConfigScript(s: SynapseSettings, component: string, opts: { afterUnits?: string[] } = {}): string {
    const f = synapseFiles(s.paths);
    const u = s.paths.user;
    const dataDirs = [...new Set([s.paths.dataDir, s.paths.mediaStorePath])];
    return script(`pulumi-matrix Synapse ${s.version} config`, [
        `install -d -m 0750 -o ${u} -g ${u} ${dataDirs.join(" ")}`,
        `install -d -m 0755 ${s.paths.configDir}`,
        "pm_changed=0",
        writeFile({ path: f.homeserverYaml, content: renderHomeserverYaml(component, s), mode: "0640", group: u }),
        writeFile({ path: f.logConfig, content: renderLogConfig(s), mode: "0640", group: u }),
        `if [ "$pm_changed" = 1 ]; then pm_mark_restart synapse; fi`,
        "pm_changed=0",
        writeFile({ path: `/etc/systemd/system/${SYNAPSE_UNITS.target}`, content: renderSynapseTarget() }),
        writeFile({ path: `/etc/systemd/system/${SYNAPSE_UNITS.main}`, content: renderSynapseMainUnit(s, opts.afterUnits) }),
        `if [ "$pm_changed" = 1 ]; then systemctl daemon-reload; pm_mark_restart synapse; fi`,
        `systemctl enable -q ${SYNAPSE_UNITS.target} ${SYNAPSE_UNITS.main}`,
        `if pm_take_restart synapse && systemctl is-active -q ${SYNAPSE_UNITS.main}; then
    echo "restarting Synapse"; systemctl restart ${SYNAPSE_UNITS.main}
elif ! systemctl is-active -q ${SYNAPSE_UNITS.main}; then
    echo "starting Synapse"; systemctl start ${SYNAPSE_UNITS.main} || true
fi`,
        healthWait(s.httpPort, SYNAPSE_UNITS.main),
        `echo "Synapse healthy on 127.0.0.1:${s.httpPort}"`,
    ]);
}

/**
 * Registers the initial admin through the shared-secret API (secret stdin:
 * the password). An existing account is left as it is.
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
    print("admin user @%s:${s.serverName} created" % user)
except urllib.error.HTTPError as e:
    err = json.load(e)
    if err.get("errcode") == "M_USER_IN_USE":
        print("admin user @%s:${s.serverName} already exists; left unchanged" % user)
    else:
        sys.exit("registering the admin user failed: %s %s" % (e.code, err.get("error")))
`;
    return script("pulumi-matrix Synapse initial admin", [
        `py=$(cat <<'PM_PY'\n${py.trimEnd()}\nPM_PY\n)`,
        `pw=$(cat <<'PM_PW'\n${password}\nPM_PW\n)`,
        `printf '%s\\n' "$pw" | ${s.paths.venvDir}/bin/python -c "$py"`,
    ]);
}
