import { OsInfo } from "../../model/host";
import { SYNAPSE_PIP_EXTRAS, synapseFiles, synapseRequirements, SynapseSettings } from "../../model/synapse";
import { APT_NAMES, AptRepository, MATRIX_ORG_REPOSITORY } from "../../model/synapse/install";
import { applyFileSet } from "../apply";
import { heredoc, indent, lines, raw, Sh, sh } from "../sh";
import { STATE_DIR } from "../shell";
import { aptUpgrade, debFunctions } from "./aptUpgrade";
import { recordFunctions, recordPackageSigningKey, synapseConfiguredByLibrary, synapseRecords } from "./records";
import { pipUpgrade, upgradeFunctions, upgradePlan, versionedVenv, workersOnlySwitch } from "./upgrade";

/**
 * The two ways Synapse gets onto a host, as script steps. Both install
 * exactly the pinned release and verify it afterwards, never start Synapse
 * (the config step does, once), refuse a downgrade, and refuse to take over
 * a host where the other method installed Synapse.
 */

/** The unit both methods run Synapse as (the library's own unit; with apt it replaces the package's). */
const MAIN_UNIT = APT_NAMES.unit;

/** Shell functions both methods use to read dpkg's view of a package. */
const DPKG_FUNCTIONS = lines([
    "# pm_deb_state PKG: dpkg's state of the package (installed, config-files when removed but not purged, unpacked, ...); empty if unknown.",
    "pm_deb_state() { dpkg-query -W -f='${db:Status-Status}' \"$1\" 2>/dev/null || true; }",
    "# pm_deb_present PKG: the package's files are on the host (installed, even half; not removed, purged or unknown).",
    'pm_deb_present() { case "$(pm_deb_state "$1")" in "" | not-installed | config-files) return 1 ;; *) return 0 ;; esac; }',
    "# pm_deb_version PKG: the version of a present package, else nothing.",
    'pm_deb_version() { if pm_deb_present "$1"; then dpkg-query -W -f=\'${Version}\' "$1"; fi; }',
]);

/** Refuses to go back to an older Synapse: its database schema may already be newer. */
function noDowngrade(installedExpr: Sh, version: string): Sh {
    return lines([
        sh`installed=${installedExpr}`,
        sh`if [ -n "$installed" ] && [ "$installed" != ${version} ] && [ "$(printf '%s\n%s\n' "$installed" ${version} | sort -V | tail -n 1)" = "$installed" ]; then`,
        sh`    echo "Synapse $installed is installed; refusing to downgrade to "${version}" (its database may already use a newer schema). Set version to $installed or newer." >&2; exit 1`,
        sh`fi`,
    ]);
}

/**
 * `pm_key_problem FILE FINGERPRINT` prints why FILE is not a keyring that
 * holds exactly the key FINGERPRINT, unrevoked, unexpired and able to sign
 * (itself or through a subkey); it prints nothing when it is.
 */
const KEYRING_CHECK = lines([
    "pm_key_problem() {",
    "    local colons verdict",
    '    [ -s "$1" ] || { echo "it is missing"; return 0; }',
    '    colons=$(gpg --batch --no-tty --with-colons --show-keys "$1" 2>/dev/null) || { echo "it is not an OpenPGP keyring"; return 0; }',
    '    verdict=$(printf \'%s\\n\' "$colons" | awk -F: -v want="$2" -v now="$(date +%s)" \'',
    '        function usable(validity, expires, caps) { return caps ~ /s/ && validity !~ /[re]/ && (expires == "" || expires > now) }',
    '        $1 == "pub" { keys++; primary = 1; v = $2; e = $7; c = $12; next }',
    '        $1 == "sub" { primary = 0; if (mine && usable($2, $7, $12)) signs = 1; next }',
    '        $1 == "fpr" && primary { all = all " " $10; mine = ($10 == want); if (mine) { found = 1; fv = v; fe = e; if (usable(v, e, c)) signs = 1 }; primary = 0 }',
    "        END {",
    '            if (keys != 1 || !found) print "keys" (all == "" ? " none" : all)',
    '            else if (fv ~ /r/) print "revoked"',
    '            else if (fe != "" && fe <= now) print "expired " fe',
    '            else if (!signs) print "nosign"',
    '            else print "ok"',
    "        }')",
    '    case "$verdict" in',
    "        ok) ;;",
    '        "keys "*) echo "it holds the key(s) ${verdict#keys }, not exactly the expected $2" ;;',
    '        revoked) echo "its key $2 is revoked" ;;',
    '        "expired "*) echo "its key $2 expired on $(date -u -d "@${verdict#expired }" +%Y-%m-%d)" ;;',
    '        *) echo "its key $2 has no signing key that is valid now (expired or revoked)" ;;',
    "    esac",
    "}",
]);

/** Where Debian's invoke-rc.d and deb-systemd-invoke look for the local start policy. */
const POLICY_RC_D = "/usr/sbin/policy-rc.d";
/** Where a policy-rc.d the host already had waits while the library's is in place. */
const POLICY_SAVED = `${POLICY_RC_D}.pulumi-matrix-saved`;
/** The first lines of the library's policy-rc.d: a file that starts so is the library's, left behind when a run was killed. */
const POLICY_MARK = "# pulumi-matrix";

/**
 * The library's policy-rc.d (Debian policy's `policy-rc.d [--quiet]
 * <initscript ID> <actions> [<runlevel>]`: deb-systemd-invoke passes the unit,
 * `matrix-synapse.service`, invoke-rc.d the script name, `matrix-synapse`):
 * 101 (action forbidden) for Synapse's units only, so the package never starts
 * Synapse (the library does, once, with its own config). Every other package
 * keeps the host's own policy (the saved policy-rc.d, when it had one), else
 * 0 (allowed): a run killed with this file in place costs no other service
 * its start or restart.
 */
const POLICY_SCRIPT = `#!/bin/sh
${POLICY_MARK}: refuses only Synapse's starts while pulumi-matrix installs it (it starts Synapse itself)
case "\${1:-}" in --quiet) pm_unit=\${2:-} ;; *) pm_unit=\${1:-} ;; esac
case "$pm_unit" in
    matrix-synapse | matrix-synapse.service | matrix-synapse.target | matrix-synapse-worker@*) exit 101 ;;
esac
if [ -x ${POLICY_SAVED} ]; then exec ${POLICY_SAVED} "$@"; fi
exit 0
`;

/**
 * `pm_policy_restore`: puts the host's own policy-rc.d back in place of the
 * library's (or removes the library's when the host had none). Run when an
 * install ends, and at the start of every install run, which takes away one a
 * killed run left behind. A policy-rc.d that is not the library's is left as
 * it is.
 */
const POLICY_RESTORE = lines([
    "pm_policy_restore() {",
    sh`    if [ -e ${POLICY_RC_D} ] && ! head -n 2 ${POLICY_RC_D} | grep -q ${`^${POLICY_MARK}`}; then return 0; fi`,
    sh`    if [ -e ${POLICY_SAVED} ]; then mv -f ${POLICY_SAVED} ${POLICY_RC_D}; else rm -f ${POLICY_RC_D}; fi`,
    "}",
]);

/**
 * `pm_apt_install_quietly ARGS...`: `apt-get install ARGS` with Synapse's
 * start by the package's maintainer scripts refused (the library's
 * policy-rc.d, see POLICY_SCRIPT), under the same lock as `pm_apt`, so no other
 * script's install is affected. A policy-rc.d the host already had is put back
 * afterwards, also on failure; one a killed run left behind is removed first.
 * apt's standard output is kept in a temp file and shown only when the install
 * fails: apt runs dpkg on a pseudo-terminal and copies everything dpkg and the
 * maintainer scripts print there, their errors included.
 */
const QUIET_INSTALL = lines([
    "pm_apt_install_quietly() (",
    `    flock -w 1800 9`,
    "    pm_policy_restore",
    sh`    if [ -e ${POLICY_RC_D} ]; then mv -f ${POLICY_RC_D} ${POLICY_SAVED}; fi`,
    `    trap 'rm -f "\${pm_log:-}"; pm_policy_restore' EXIT`,
    heredoc(sh`cat >${POLICY_RC_D}`, POLICY_SCRIPT),
    sh`    chmod 0755 ${POLICY_RC_D}`,
    "    pm_log=$(mktemp)",
    '    if ! apt-get -o DPkg::Lock::Timeout=600 install "$@" >"$pm_log"; then cat "$pm_log" >&2; echo "apt-get install $* failed: apt\'s output is above" >&2; exit 1; fi',
    `) 9>${STATE_DIR}/apt.lock`,
]);

/** At the start of every install run (either method): a policy-rc.d a killed run of the library left behind goes, under the apt lock. */
const STALE_POLICY = lines([POLICY_RESTORE, `( flock -w 1800 9; pm_policy_restore ) 9>${STATE_DIR}/apt.lock`]);

/** A shell parameter expansion `${expr}` (an `sh` template keeps a backslash before `$`, so it is written through `raw`). */
function param(expr: string): Sh {
    return raw(`\${${expr}}`);
}

/** Escapes a value for a `grep -E` pattern. */
function ere(text: string): string {
    return text.replace(/[.+*?^$()[\]{}|\\]/g, "\\$&");
}

/**
 * Installs Synapse from a Debian repository laid out like matrix.org's, at
 * exactly `<version>+<codename>N`. Order: checks that change nothing (the
 * repository builds for this OS release and architecture, no pip install on
 * the host); the keyring (exactly the expected key, unexpired, on every run);
 * the source and a strict `apt-get update` of it; the keyring package kept
 * current; then, when the version differs, the library's ownership of the
 * package's directories, the debconf answers, the install with service starts
 * refused, and the check that dpkg has exactly that version. The package's
 * own enablement outside matrix-synapse.target and its conf.d files are
 * undone on every run.
 */
export function aptInstall(s: SynapseSettings, os: OsInfo, opts: { workersOnly?: boolean } = {}): Sh[] {
    const r: AptRepository = s.aptRepository ?? MATRIX_ORG_REPOSITORY;
    const n = APT_NAMES;
    const f = synapseFiles(s.paths);
    const venvPython = `${s.paths.venvDir}/bin/python`;
    const dists = `${r.url}dists/${os.codename}/`;
    const exact = `${ere(s.version)}\\+${ere(os.codename)}[0-9]+`;
    const wantsOfTarget = `/etc/systemd/system/matrix-synapse.target.wants/${MAIN_UNIT}`;
    const freshInstall = lines([
        sh`pm_deb_install "$pm_new_deb" "$pm_exact" || exit 1`,
        recordPackageSigningKey(s.paths),
        sh`pm_owe ${MAIN_UNIT}; echo "Synapse $pm_exact installed from "${r.url}" (held: only pulumi-matrix changes its version)"`,
    ]);
    return [
        ...upgradePlan(s).map((l) => raw(l)),
        DPKG_FUNCTIONS,
        KEYRING_CHECK,
        STALE_POLICY,
        QUIET_INSTALL,
        sh`pm_apt_install ca-certificates curl gnupg adduser`,
        // 1. Checks that change nothing on the host.
        sh`if ! pm_deb_present ${n.package} && [ -e ${venvPython} ]; then`,
        sh`    printf 'Synapse was installed on this host with installMethod "pip" (a virtualenv in %s, no %s package). pulumi-matrix does not switch install methods in place; nothing was changed.\n  To keep pip: set installMethod back to "pip".\n  To move to apt: on the host, stop Synapse (systemctl stop matrix-synapse.target) and move the virtualenv aside (mv %s %s.pip), then deploy again; configuration, secrets, signing key and data stay where they are.\n' ${s.paths.venvDir} ${n.package} ${s.paths.venvDir} ${s.paths.venvDir} >&2`,
        sh`    exit 1`,
        sh`fi`,
        sh`pm_unpack=""; pm_tmp=$(mktemp -d); trap 'rm -rf "$pm_tmp" ${param('pm_unpack:+"$pm_unpack"')}' EXIT`,
        sh`pm_release=""`,
        sh`for pm_name in InRelease Release; do`,
        sh`    pm_code=$(curl -sS --retry 3 -o "$pm_tmp/release" -w '%{http_code}' ${dists}"$pm_name") || { echo "the apt repository "${r.url}" cannot be reached (aptRepository.url)" >&2; exit 1; }`,
        sh`    if [ "$pm_code" = 200 ]; then pm_release=$pm_name; break; fi`,
        sh`done`,
        sh`if [ -z "$pm_release" ]; then`,
        sh`    printf '%s serves no packages for %s (%sInRelease: HTTP %s): installMethod "apt" cannot install Synapse on this OS release. Use installMethod "pip", which installs any release from PyPI on any supported host.\n' ${r.url} ${os.codename} ${dists} "$pm_code" >&2`,
        sh`    exit 1`,
        sh`fi`,
        sh`pm_arch=$(dpkg --print-architecture)`,
        sh`pm_archs=$(awk -F': *' '$1 == "Architectures" { print $2; exit }' "$pm_tmp/release")`,
        sh`case " $pm_archs " in *" $pm_arch "*) ;; *)`,
        sh`    printf '%s builds Synapse for %s on %s only; this host is %s. Use installMethod "pip", which installs on any architecture.\n' ${r.url} ${os.codename} "${param("pm_archs:-no architecture")}" "$pm_arch" >&2`,
        sh`    exit 1 ;;`,
        sh`esac`,
        // 2. The keyring: exactly the expected key, valid now; fetched again when it is not.
        sh`pm_problem=$(pm_key_problem ${n.keyring} ${r.fingerprint})`,
        sh`if [ -n "$pm_problem" ]; then`,
        sh`    echo "the repository keyring "${n.keyring}": $pm_problem; fetching it from "${r.keyringUrl}`,
        sh`    curl -fsSL --retry 3 -o "$pm_tmp/keyring" ${r.keyringUrl} || { echo "the keyring cannot be downloaded from "${r.keyringUrl}" (aptRepository.keyringUrl)" >&2; exit 1; }`,
        sh`    if grep -q -- '-----BEGIN PGP PUBLIC KEY BLOCK-----' "$pm_tmp/keyring"; then gpg --batch --yes --dearmor -o "$pm_tmp/keyring.gpg" "$pm_tmp/keyring"; mv -f "$pm_tmp/keyring.gpg" "$pm_tmp/keyring"; fi`,
        sh`    pm_problem=$(pm_key_problem "$pm_tmp/keyring" ${r.fingerprint})`,
        sh`    if [ -n "$pm_problem" ]; then`,
        sh`        printf 'refusing the keyring from %s (aptRepository.keyringUrl): %s. aptRepository.fingerprint is %s: it must be the repository signing key, and the keyring must hold that key alone, unexpired; nothing was installed.\n' ${r.keyringUrl} "$pm_problem" ${r.fingerprint} >&2`,
        sh`        exit 1`,
        sh`    fi`,
        sh`    install -m 0644 "$pm_tmp/keyring" ${n.keyring}`,
        sh`    echo "installed the repository keyring (key "${r.fingerprint}") from "${r.keyringUrl}`,
        sh`fi`,
        // 3. The source, updated strictly (an unverifiable or unreachable repository is an error, not stale lists).
        applyFileSet({ name: "synapse-apt", files: [{ path: n.sourcesList, content: `deb [signed-by=${n.keyring}] ${r.url} ${os.codename} main\n` }] }),
        sh`pm_repo_update() { pm_apt update -q -o APT::Update::Error-Mode=any -o Dir::Etc::SourceList=${n.sourcesList} -o Dir::Etc::SourceParts=/nonexistent -o APT::Get::List-Cleanup=0 >"$pm_tmp/update.log" 2>&1; }`,
        sh`if ! pm_repo_update; then`,
        sh`    grep -E '^(E|W|Err):' "$pm_tmp/update.log" >&2 || cat "$pm_tmp/update.log" >&2`,
        sh`    printf 'apt-get update of %s failed (above): the repository cannot be reached, or its index does not verify with the key %s (aptRepository.fingerprint).\n' ${r.url} ${r.fingerprint} >&2`,
        sh`    exit 1`,
        sh`fi`,
        // The keyring package brings the renewed key before the old one expires.
        sh`pm_candidate=$(apt-cache policy ${n.keyringPackage} | awk '$1 == "Candidate:" { print $2 }')`,
        sh`if [ -n "$pm_candidate" ] && [ "$pm_candidate" != "(none)" ]; then`,
        sh`    if [ "$(pm_deb_state ${n.keyringPackage})" != installed ] || [ "$(pm_deb_version ${n.keyringPackage})" != "$pm_candidate" ]; then`,
        sh`        pm_apt install -y -q ${n.keyringPackage} >/dev/null; echo ${`${n.keyringPackage}`}" $pm_candidate installed (it renews the repository key)"`,
        sh`    fi`,
        sh`    pm_problem=$(pm_key_problem ${n.keyring} ${r.fingerprint})`,
        sh`    if [ -n "$pm_problem" ]; then printf '%s %s installed a keyring %s: %s; expected the key %s (aptRepository.fingerprint).\n' ${n.keyringPackage} "$pm_candidate" ${n.keyring} "$pm_problem" ${r.fingerprint} >&2; exit 1; fi`,
        sh`fi`,
        // 4. The package at exactly the pinned version.
        recordFunctions(s.paths),
        upgradeFunctions(s),
        noDowngrade(sh`$(pm_deb_version ${n.package} | sed 's/+.*//')`, s.version),
        sh`pm_old_build=$(pm_deb_version ${n.package})`,
        // The exact build, before anything of Synapse changes: the index must serve it.
        sh`pm_exact=""`,
        sh`if [ "$(pm_deb_state ${n.package})" != installed ] || [ "$installed" != ${s.version} ]; then`,
        sh`    pm_served=$(apt-cache madison ${n.package} | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' | sort -uV)`,
        sh`    pm_exact=$(printf '%s\n' "$pm_served" | grep -xE ${exact} | sort -V | tail -n 1 || true)`,
        sh`    if [ -z "$pm_exact" ]; then`,
        sh`        pm_list=$(printf '%s\n' "$pm_served" | sed '/^$/d' | paste -sd ' ' -)`,
        sh`        pm_newest=$(printf '%s\n' "$pm_served" | tail -n 1); pm_newest=${param("pm_newest%%+*")}`,
        sh`        printf '%s %s is not served by %s for %s: its index has %s. (The matrix.org repository lists only its newest build.) Set the Synapse version (component argument version, stack config synapseVersion) to a release it serves%s, or use installMethod "pip", which installs any release from PyPI.\n' ${n.package} ${s.version} ${r.url} ${os.codename} "${param("pm_list:-no version of it")}" "${param("pm_newest:+ (such as $pm_newest)")}" >&2`,
        sh`        exit 1`,
        sh`    fi`,
        sh`fi`,
        // The package's postinst keeps a statoverride that exists: the library's come first (root owns the config, Synapse's group reads it).
        sh`if ! getent passwd ${s.paths.user} >/dev/null; then adduser --quiet --system --group --no-create-home --home ${n.dataDir} ${s.paths.user}; fi`,
        sh`pm_statoverride() {`,
        sh`    local have; have=$(dpkg-statoverride --list "$4" || true)`,
        sh`    if [ "$have" != "$1 $2 $3 $4" ]; then`,
        sh`        if [ -n "$have" ]; then dpkg-statoverride --quiet --remove "$4"; fi`,
        sh`        if [ -e "$4" ]; then dpkg-statoverride --quiet --update --add "$1" "$2" "$3" "$4"; else dpkg-statoverride --quiet --add "$1" "$2" "$3" "$4"; fi`,
        sh`        echo "dpkg-statoverride $4: $1 $2 $3${param("have:+ (was $have)")}"`,
        sh`    fi`,
        sh`}`,
        sh`pm_statoverride root ${s.paths.user} 750 ${n.configDir}`,
        sh`pm_statoverride ${s.paths.user} ${s.paths.user} 750 ${n.dataDir}`,
        // What the package leaves that the library undoes, after every install of it (and on every run).
        sh`pm_package_leftovers() {`,
        // The package enables its unit for multi-user.target on first install; Synapse starts through matrix-synapse.target only.
        sh`    for pm_link in /etc/systemd/system/*.wants/${MAIN_UNIT}; do`,
        sh`        if [ -L "$pm_link" ] && [ "$pm_link" != ${wantsOfTarget} ]; then rm -f "$pm_link"; echo "removed $pm_link: Synapse starts through matrix-synapse.target only"; fi`,
        sh`    done`,
        // The package's postinst writes these from debconf (again on every upgrade); conf.d is read after homeserver.yaml,
        // so they would silently override what the library renders.
        sh`    for pm_file in ${`${f.confD}/server_name.yaml`} ${`${f.confD}/report_stats.yaml`}; do`,
        sh`        if [ -e "$pm_file" ]; then rm -f "$pm_file"; pm_owe ${MAIN_UNIT}; echo "removed the package's $pm_file (homeserver.yaml carries it)"; fi`,
        sh`    done`,
        sh`}`,
        debFunctions(),
        sh`if [ -n "$pm_exact" ]; then`,
        // Plain values, as the package's postinst writes them into conf.d (and compares them with homeserver.yaml's lines).
        sh`    printf '%s\n' ${`${n.package} matrix-synapse/server-name string ${s.serverName}`} ${`${n.package} matrix-synapse/report-stats boolean ${s.reportStats}`} | debconf-set-selections`,
        sh`    pm_had_key=0; if [ -e ${f.signingKey} ]; then pm_had_key=1; fi`,
        sh`    pm_apt update -q >/dev/null`,
        // The new build's .deb is kept: it is what a later upgrade switches back to (the index may list only the newest build).
        sh`    pm_deb_keep "$pm_exact" || { echo ${`${n.package}`}" $pm_exact cannot be downloaded from "${r.url}" (apt-get download, above)" >&2; exit 1; }`,
        sh`    pm_new_deb=$pm_deb`,
        // A host with a configured Synapse: an upgrade that can be undone; else (a first install, or the workers of a host of
        // their own, restarted by the config step) the install.
        opts.workersOnly
            ? indent(freshInstall)
            : lines([
                  sh`    if [ "$(pm_deb_state ${n.package})" = installed ] && [ -f ${f.homeserverYaml} ]; then`,
                  indent(aptUpgrade(s, MAIN_UNIT, r.url), "        "),
                  sh`    else`,
                  indent(freshInstall, "        "),
                  sh`    fi`,
              ]),
        sh`elif [ -n "$pm_old_build" ]; then`,
        // A host installed before builds were kept: the running build's, when apt's cache or the index still has it.
        sh`    pm_deb_keep "$pm_old_build" || true`,
        sh`fi`,
        sh`pm_package_leftovers`,
    ];
}

/** Where the pip method keeps the requirements file with hashes it installs from (beside the records of this Synapse). */
export function synapseRequirementsPath(s: SynapseSettings): string {
    return `${synapseRecords(s.paths).dir}/requirements.txt`;
}

/**
 * Installs Synapse from PyPI into a virtualenv, from wheels only (no compiler,
 * no build tools): psycopg2 is Debian's python3-psycopg2, seen through the
 * virtualenv's system site packages. While pip runs the virtualenv sees only
 * itself, so every other dependency lands in it and nothing of Debian's stands
 * in for one. What it installs is exactly the release's requirements file
 * (`synapseRequirements`, written to the host first): every package pinned,
 * every file checked against its hash, nothing resolved beyond it; the
 * extras without postgres are the ones it covers. Afterwards Synapse must
 * report the pinned version and pass its own dependency check for each extra.
 */
export function pipInstall(s: SynapseSettings, opts: { workersOnly?: boolean } = {}): Sh[] {
    const v = s.paths.venvDir;
    const next = versionedVenv(s);
    const python = `${next}/bin/python`;
    const pip = `${next}/bin/pip`;
    const cfg = `${next}/pyvenv.cfg`;
    const complete = `${next}/.pulumi-matrix-complete`;
    const requirements = synapseRequirementsPath(s);
    const requirementsText = synapseRequirements(s.version);
    // The model refuses such a version before anything runs; this is for a caller that skipped it.
    if (requirementsText === undefined) throw new Error(`pipInstall: no requirements file with hashes for Synapse ${s.version}`);
    const verify =
        "import sys, synapse; from synapse.util.check_dependencies import check_requirements; check_requirements(); [check_requirements(e) for e in sys.argv[1:]]; import psycopg2; print(synapse.__version__)";
    const versionOf = (dir: string) =>
        sh`$( [ -x ${dir}/bin/python ] && (cd / && ${dir}/bin/python -c 'import importlib.metadata as m; print(m.version("matrix-synapse"))') 2>/dev/null || true)`;
    return [
        ...upgradePlan(s).map((l) => raw(l)),
        DPKG_FUNCTIONS,
        STALE_POLICY,
        sh`if pm_deb_present ${APT_NAMES.package}; then`,
        sh`    printf 'Synapse is installed on this host with installMethod "apt" (the %s package, %s). pulumi-matrix does not switch install methods in place; nothing was changed.\n  To keep apt: set installMethod back to "apt".\n  To move to pip: on the host, stop Synapse (systemctl stop matrix-synapse.target) and remove the package without purging it (apt-mark unhold %s; apt-get remove %s), then deploy again; configuration, secrets, signing key and data stay where they are.\n' ${APT_NAMES.package} "$(pm_deb_version ${APT_NAMES.package})" ${APT_NAMES.package} ${APT_NAMES.package} >&2`,
        sh`    exit 1`,
        sh`fi`,
        // Before anything changes: the release the host runs (through the symlink, or the directory of an older layout).
        noDowngrade(versionOf(v), s.version),
        sh`pm_apt_install python3 python3-venv python3-psycopg2`,
        sh`install -d -m 0700 ${synapseRecords(s.paths).dir}`,
        applyFileSet({ name: "synapse-requirements", files: [{ path: requirements, content: requirementsText, mode: "0644" }] }),
        sh`if ! id -u ${s.paths.user} >/dev/null 2>&1; then useradd --system --home-dir ${s.paths.dataDir} --no-create-home --shell /usr/sbin/nologin ${s.paths.user}; fi`,
        // The layout before versioned virtualenvs: the directory moves beside, under its release, and the symlink takes its place
        // (a rename on one filesystem: the running process keeps its files, and its paths resolve through the symlink).
        sh`if [ -d ${v} ] && [ ! -L ${v} ]; then`,
        sh`    if [ -n "$installed" ]; then`,
        sh`        mv -T ${v} ${v}"-$installed"`,
        sh`        ln -sfn ${v.slice(v.lastIndexOf("/") + 1)}"-$installed" ${`${v}.pm-new`} && mv -T ${`${v}.pm-new`} ${v}`,
        sh`        echo ${`moved the virtualenv ${v} to ${v}-`}"$installed; "${v}" is now a symlink to it"`,
        sh`    else`,
        sh`        mv -T ${v} ${v}".broken-$(date +%s)"; echo ${`${v} held no working Synapse: moved aside`}`,
        sh`    fi`,
        sh`fi`,
        sh`pm_site_packages() { sed -i "s/^include-system-site-packages = .*/include-system-site-packages = $1/" ${cfg}; }`,
        upgradeFunctions(s),
        // A directory without the marker is a build that did not finish: built again.
        sh`pm_next_version=${versionOf(next)}`,
        sh`if [ ! -e ${complete} ] || [ "$pm_next_version" != ${s.version} ]; then`,
        sh`    rm -rf -- ${next}`,
        sh`    python3 -m venv --system-site-packages ${next}`,
        sh`    pm_site_packages false`,
        // Exactly the listed packages, each file checked against its hash (no resolving, nothing unpinned); pip check: nothing is missing.
        sh`    ${pip} install -q --disable-pip-version-check --no-input --only-binary=:all: --require-hashes --no-deps -r ${requirements}`,
        sh`    ${pip} check >&2 || { echo ${`the packages installed from ${requirements} do not satisfy each other (above)`} >&2; exit 1; }`,
        sh`    pm_site_packages true`,
        sh`    touch ${complete}`,
        sh`    echo ${`Synapse ${s.version} installed from PyPI into ${next}`}`,
        sh`fi`,
        sh`pm_site_packages true`,
        sh`pm_got=$(cd / && ${python} -c ${verify} ${SYNAPSE_PIP_EXTRAS.split(",")}) || { echo ${`the virtualenv ${next} fails Synapse's own dependency check (above)`} >&2; exit 1; }`,
        sh`if [ "$pm_got" != ${s.version} ]; then echo ${`Synapse in ${next} reports version`}" $pm_got, expected "${s.version} >&2; exit 1; fi`,
        sh`if [ ! -e ${v} ] && [ ! -L ${v} ]; then`,
        // A first install: nothing runs yet; the config step starts it.
        sh`    ln -sfn ${next.slice(next.lastIndexOf("/") + 1)} ${`${v}.pm-new`} && mv -T ${`${v}.pm-new`} ${v}`,
        sh`    pm_owe ${MAIN_UNIT}; echo ${`${v} -> ${next}`}`,
        sh`elif [ "$(readlink -f ${v})" != ${next} ]; then`,
        sh`    if ! ${synapseConfiguredByLibrary(s.paths)}; then`,
        // Installed but never configured by the library: nothing of the stack's runs on it. A Synapse being adopted keeps
        // running the code it started with (its directory was renamed, not removed) until the adoption stops it.
        sh`        ln -sfn ${next.slice(next.lastIndexOf("/") + 1)} ${`${v}.pm-new`} && mv -T ${`${v}.pm-new`} ${v}`,
        sh`        pm_owe ${MAIN_UNIT}; echo ${`${v} -> ${next}`}`,
        sh`    else`,
        indent(opts.workersOnly ? workersOnlySwitch(s) : pipUpgrade(s, MAIN_UNIT), "        "),
        sh`    fi`,
        sh`fi`,
    ];
}
