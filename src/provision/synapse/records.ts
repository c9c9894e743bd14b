import { synapseFiles, SynapsePaths, SynapseSettings, userId } from "../../model/synapse";
import { MANAGED_HEADER } from "../../render/drift";
import { heredocVar, lines, Sh, sh } from "../sh";
import { STATE_DIR, WRITTEN_DIR } from "../shell";

/**
 * What the library records on a host about the Synapse it deployed there, and
 * the rules that read it. The records outlive Pulumi's state (`pulumi destroy`
 * changes nothing on the VM), so a later deployment to the same host can tell
 * a signing key or an admin password the library set from one it did not.
 * They hold key ids and keyed digests (HMAC-SHA256 with the host's own
 * DIGEST_KEY_FILE) only, root-only, never a secret.
 */

/**
 * A shell test: the Synapse in `paths.configDir` is configured by
 * pulumi-matrix (its homeserver.yaml has the library's drift record, or the
 * library's header). A homeserver.yaml with neither is another installer's:
 * a Synapse about to be adopted, whose own unit is not the library's to
 * restart.
 */
export function synapseConfiguredByLibrary(paths: SynapsePaths): Sh {
    const yaml = synapseFiles(paths).homeserverYaml;
    return sh`{ [ -e ${`${WRITTEN_DIR}/records${yaml}`} ] || grep -qsF ${MANAGED_HEADER.slice(0, MANAGED_HEADER.indexOf("."))} ${yaml}; }`;
}

/** Where the records of the Synapse configured in `paths.configDir` live (one directory per config directory). */
export function synapseRecords(paths: SynapsePaths) {
    const dir = `${STATE_DIR}/synapse${paths.configDir}`;
    return {
        dir,
        /** `<key id> <HMAC-SHA256 of the key line>` of the signing key the library last wrote (an earlier release's: its sha256). */
        signingKey: `${dir}/signing-key.written`,
        /** The same of the key the matrix.org package generated when the library installed it (no deployment ever used it). */
        packageSigningKey: `${dir}/signing-key.package`,
        /** `<user id> <HMAC-SHA256 of the password>` the library last set for the initial admin (keyed with DIGEST_KEY_FILE). */
        adminPassword: `${dir}/admin-password.hmac`,
        /** The unkeyed `<user id> <sha256>` record of earlier releases: honoured once, then replaced by the keyed one. */
        legacyAdminPassword: `${dir}/admin-password.sha256`,
    };
}

/**
 * Shell functions the record rules use: `pm_synapse_key_line` prints a signing key
 * file's first line as `ed25519 <id> <seed>` (whatever its spacing), so the
 * same key in another layout is the same key; the prelude's `pm_digest` prints the
 * keyed digest of its standard input (render/drift.ts's DIGEST_KEY_FILE);
 * `pm_synapse_note FILE TEXT` writes a record, root-only, only when it changes.
 */
export function recordFunctions(paths: SynapsePaths): Sh {
    return lines([
        sh`pm_synapse_key_line() { awk 'NR == 1 { print $1 " " $2 " " $3 }'; }`,
        sh`pm_synapse_key_sum() { pm_digest_key; pm_synapse_key_line | pm_digest; }`,
        // The unkeyed digest of earlier releases' records, still recognised until the next secrets step rewrites them.
        sh`pm_synapse_key_legacy_sum() { pm_synapse_key_line | sha256sum | cut -d ' ' -f 1; }`,
        sh`pm_synapse_note() {`,
        sh`    install -d -m 0700 ${synapseRecords(paths).dir}`,
        sh`    if [ "$(cat "$1" 2>/dev/null)" != "$2" ]; then (umask 077; printf '%s\n' "$2" >"$1.tmp"); mv -f "$1.tmp" "$1"; fi`,
        sh`}`,
    ]);
}

/**
 * Run by the apt install right after a first install of the package: the
 * package's unit generates a signing key on its first start (ExecStartPre
 * `--generate-keys`) and runs Synapse briefly on the package's own SQLite
 * database before the library stops it. Recording that key lets the secrets
 * step replace it without taking it for a key someone relies on.
 */
export function recordPackageSigningKey(paths: SynapsePaths): Sh {
    const key = synapseFiles(paths).signingKey;
    return sh`if [ -z "$installed" ] && [ "$pm_had_key" = 0 ] && [ -s ${key} ]; then pm_synapse_note ${synapseRecords(paths).packageSigningKey} "$(pm_synapse_key_line <${key} | cut -d ' ' -f 2) $(pm_synapse_key_sum <${key})"; fi`;
}

/** A URN as one shell word for the user to paste (single-quoted: URNs hold `$`). */
const shellWord = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** Escapes text for a printf format. */
const fmt = (text: string) => text.replace(/%/g, "%%");

/**
 * The signing-key guard, run before the secrets step changes anything. The
 * host's key at the library's path differs from the stack's (`$pm_key`,
 * whose id is `keyId`): it is replaced only when it is the package's unused
 * key or `allowSigningKeyReplacement` is set (then kept in keys-replaced/);
 * otherwise the script stops with how to import the host's key. A replaced key
 * would change the server's identity for federation. Only key ids are printed.
 */
export function signingKeyGuard(s: SynapseSettings, component: string, keyId: string, protectedKeyUrn?: string): Sh {
    const f = synapseFiles(s.paths);
    const r = synapseRecords(s.paths);
    const replaced = `${f.secretsDir}/keys-replaced`;
    // Only the two %s are printf's: every other value is escaped for the format.
    const [c, key, dir] = [component, f.signingKey, replaced].map(fmt);
    // The stack's own new key is protected: importing removes it from the program, which Pulumi refuses until it is unprotected.
    const unprotect = protectedKeyUrn ? [`    pulumi state unprotect --yes ${fmt(shellWord(protectedKeyUrn))}`] : [];
    const refusal =
        [
            `${c}: this host already has a different signing key; nothing was changed.`,
            `  ${key} holds ed25519:%s (%s);`,
            `  this deployment's key is ed25519:${keyId}. Replacing the key changes the server's identity for federation.`,
            `  To keep the host's key (the usual case after \`pulumi destroy\` or a lost stack state), import it, then deploy again:`,
            `    ssh <host> sudo cat ${key} | pulumi config set --secret signingKey`,
            ...unprotect,
            `    pulumi up`,
            `  (with the SynapseHomeserver component: pass the file's content as its signingKey argument).`,
            `  To replace it on purpose: \`pulumi config set allowSigningKeyReplacement true\` (component argument allowSigningKeyReplacement: true);`,
            `  the old key is then kept in ${dir}/.`,
        ].join("\n") + "\n";
    const keep = [
        sh`    install -d -m 0700 ${replaced}`,
        sh`    cp -p ${f.signingKey} ${`${replaced}/homeserver.signing.key.`}$(date -u +%Y%m%dT%H%M%SZ)`,
        sh`    echo "replacing the signing key ed25519:$pm_old_id ($pm_origin) with ed25519:"${keyId}"; the old key was kept in "${`${replaced}/`}`,
    ];
    return lines([
        sh`pm_key_new=$(printf '%s\n' "$pm_key" | pm_synapse_key_sum)`,
        sh`if [ -s ${f.signingKey} ] && [ "$(pm_synapse_key_sum <${f.signingKey})" != "$pm_key_new" ]; then`,
        sh`    pm_old_sum=$(pm_synapse_key_sum <${f.signingKey})`,
        sh`    pm_old_id=$(pm_synapse_key_line <${f.signingKey} | cut -d ' ' -f 2)`,
        sh`    [[ $pm_old_id =~ ^[A-Za-z0-9_]+$ ]] || pm_old_id=unreadable`,
        sh`    pm_old_legacy=$(pm_synapse_key_legacy_sum <${f.signingKey})`,
        sh`    pm_recorded() { local got; got=$(cut -d ' ' -f 2 "$1" 2>/dev/null); [ -n "$got" ] && { [ "$got" = "$pm_old_sum" ] || [ "$got" = "$pm_old_legacy" ]; }; }`,
        sh`    if pm_recorded ${r.signingKey}; then pm_origin="pulumi-matrix wrote it for an earlier deployment"`,
        sh`    elif pm_recorded ${r.packageSigningKey}; then pm_origin=package`,
        sh`    else pm_origin="not written by pulumi-matrix; Synapse may have used it"; fi`,
        ...(s.allowSigningKeyReplacement
            ? keep
            : [sh`    if [ "$pm_origin" != package ]; then pm_msg=$(printf ${refusal} "$pm_old_id" "$pm_origin"); pm_tell "$pm_msg"; exit 1; fi`, ...keep]),
        sh`    [ "$pm_origin" != package ] || echo "(the key the matrix.org package generated at install; no deployment used it)"`,
        sh`fi`,
    ]);
}

/** Records the signing key the secrets step has just written. */
export function recordSigningKey(paths: SynapsePaths, keyId: string): Sh {
    return sh`pm_synapse_note ${synapseRecords(paths).signingKey} ${keyId}" $pm_key_new"`;
}

/**
 * Sets a local user's password without an admin token: a bcrypt hash made
 * exactly as Synapse makes it (synapse/handlers/auth.py `hash`: NFKC, the
 * `password_config.pepper` appended, the first 72 bytes, `bcrypt_rounds`),
 * written into the `users` table with the driver Synapse uses (psycopg2 or
 * sqlite3, connection from the merged config). The password comes on stdin.
 * No restart is needed: a login reads the hash with
 * `get_users_by_id_case_insensitive`, an uncached query; the cached
 * `get_user_by_id` does not hold the hash.
 */
const SET_PASSWORD_PY = `import glob, os, sys, unicodedata
import bcrypt, yaml
homeserver_yaml, conf_d, user_id = sys.argv[1:4]
config = {}
for path in [homeserver_yaml] + sorted(glob.glob(os.path.join(conf_d, "*.yaml"))):
    with open(path) as f:
        config.update(yaml.safe_load(f) or {})
pepper = (config.get("password_config") or {}).get("pepper") or ""
password = unicodedata.normalize("NFKC", sys.stdin.read().rstrip("\\n"))
hashed = bcrypt.hashpw((password.encode("utf8") + pepper.encode("utf8"))[:72], bcrypt.gensalt(int(config.get("bcrypt_rounds", 12)))).decode("ascii")
db = config["database"]
args = {k: v for k, v in (db.get("args") or {}).items() if not k.startswith("cp_")}
if db.get("name") == "sqlite3":
    import sqlite3
    conn, query = sqlite3.connect(args["database"]), "UPDATE users SET password_hash = ? WHERE name = ?"
else:
    import psycopg2
    conn, query = psycopg2.connect(**args), "UPDATE users SET password_hash = %s WHERE name = %s"
with conn:
    cur = conn.cursor()
    cur.execute(query, (hashed, user_id))
    if cur.rowcount != 1:
        sys.exit("setting the password of %s: %d accounts matched" % (user_id, cur.rowcount))
conn.close()`;

/**
 * Logs out every session of a user whose password was just set in the
 * database: logs in with the new password (the one session it knows), asks
 * Synapse's admin API to reset the password to the same value with
 * `logout_devices` (Synapse deletes every other device and access token, and
 * drops them from its caches, which a database edit would not), then logs that
 * session out too. The password comes on stdin; the account must be an admin.
 */
const LOGOUT_OTHERS_PY = `import json, sys, urllib.parse, urllib.request, urllib.error
base, user_id = sys.argv[1:3]
password = sys.stdin.read().rstrip("\\n")
def call(method, path, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(base + path, json.dumps(body).encode(), headers, method=method)
    try:
        return json.load(urllib.request.urlopen(req, timeout=30))
    except urllib.error.HTTPError as e:
        err = json.load(e)
        sys.exit("logging out the old sessions of %s: %s %s returned %s %s" % (user_id, method, path.split("?")[0], e.code, err.get("error")))
login = call("POST", "/_matrix/client/v3/login", {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id}, "password": password, "initial_device_display_name": "pulumi-matrix password reset"})
token = login["access_token"]
call("POST", "/_synapse/admin/v1/reset_password/" + urllib.parse.quote(user_id), {"new_password": password, "logout_devices": True}, token)
call("POST", "/_matrix/client/v3/logout", {}, token)`;

/**
 * After the admin registration (`$pm_result` is `created` or `exists`,
 * `$pw` the stack's password): the password is the stack's `adminPassword`
 * unless the account existed and the stack's password is the one the library
 * last set (then a password changed in a client stays). The database is
 * written as Synapse's user, so an SQLite file keeps its owner. Setting it
 * logs out every earlier session of the account (`LOGOUT_OTHERS_PY`): whoever
 * held the old password keeps no token. The record is a keyed digest
 * (`pm_digest`); an earlier release's unkeyed one is honoured once.
 */
export function adminPasswordRule(s: SynapseSettings, localpart: string): Sh {
    const f = synapseFiles(s.paths);
    const r = synapseRecords(s.paths);
    const id = userId(localpart, s.serverName);
    return lines([
        heredocVar("py_set_password", SET_PASSWORD_PY),
        heredocVar("py_logout_others", LOGOUT_OTHERS_PY),
        sh`pm_digest_key`,
        sh`pm_pw_record=${id}" $(printf '%s' "$pw" | pm_digest)"`,
        sh`pm_pw_legacy=${id}" $(printf '%s' "$pw" | sha256sum | cut -d ' ' -f 1)"`,
        sh`if [ "$pm_result" = created ]; then`,
        sh`    echo ${`admin user ${id} created`}`,
        sh`elif [ "$(cat ${r.adminPassword} 2>/dev/null)" = "$pm_pw_record" ] || { [ ! -e ${r.adminPassword} ] && [ "$(cat ${r.legacyAdminPassword} 2>/dev/null)" = "$pm_pw_legacy" ]; }; then`,
        sh`    echo ${`admin user ${id} already exists with the password pulumi-matrix set; left unchanged`}`,
        sh`else`,
        sh`    printf '%s\n' "$pw" | (cd / && runuser -u ${s.paths.user} -- ${`${s.paths.venvDir}/bin/python`} -c "$py_set_password" ${f.homeserverYaml} ${f.confD} ${id})`,
        sh`    printf '%s\n' "$pw" | (cd / && ${`${s.paths.venvDir}/bin/python`} -c "$py_logout_others" ${`http://127.0.0.1:${s.httpPort}`} ${id})`,
        sh`    echo ${`admin user ${id} already existed with another password than this deployment's adminPassword; its password is now adminPassword, and its earlier sessions are logged out`}`,
        sh`fi`,
        sh`pm_synapse_note ${r.adminPassword} "$pm_pw_record"`,
        sh`rm -f ${r.legacyAdminPassword}`,
    ]);
}
