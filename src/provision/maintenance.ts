import { COMPRESSOR_PYPI_VERSION, MAINTENANCE_UNITS, MaintenanceSettings, MaintenanceTimer, maintenanceTimers } from "../model/maintenance";
import {
    compressorBinaryPath,
    maintenanceScriptPaths,
    maintenanceUnitNames,
    renderCompressorRequirements,
    renderCompressorScript,
    renderMaintenanceUnits,
    renderPurgeScript,
} from "../render/maintenance";
import { applyFileSet, ensureStopped, ManagedFile } from "./apply";
import { lines, Sh, sh } from "./sh";
import { script } from "./shell";
import { STANDBY_REASON } from "./synapse";

/** The file sets the maintenance step writes. */
const MAINTENANCE_SETS = { scripts: "maintenance-scripts", units: "maintenance-units" } as const;

const ALL_TIMERS: MaintenanceTimer[] = ["compressor", "mediaCache", "emptyRooms"];

/**
 * Puts the compressor in place: from PyPI, a virtualenv of its own made
 * again whenever the hash-pinned requirement changed (pip refuses a wheel
 * whose hash differs); or the user's binary, downloaded to a temporary file
 * and kept only when its SHA-256 matches. Needs the requirements file
 * written first (the scripts' file set).
 */
export function compressorInstall(s: MaintenanceSettings): Sh {
    const c = s.compressor;
    if (!c) return lines([]);
    const p = maintenanceScriptPaths(s);
    const venv = s.paths.venvDir;
    if (c.source.kind === "pypi")
        return lines([
            // PyPI has the compressor's 0.1.2 wheel for x86_64 only.
            sh`if [ "$(uname -m)" != x86_64 ]; then echo ${`synapse-auto-compressor ${COMPRESSOR_PYPI_VERSION} on PyPI is built for x86_64 only, and this host is`}" $(uname -m): give compressor.binaryUrl and compressor.binarySha256 (maintenanceCompressorBinaryUrl, maintenanceCompressorBinarySha256) of a build for it, or turn the compressor off" >&2; exit 1; fi`,
            sh`if ! cmp -s ${p.requirements} ${`${venv}/requirements.txt`} || ! [ -x ${`${venv}/bin/python`} ]; then`,
            sh`    rm -rf -- ${venv}`,
            sh`    /usr/bin/python3 -m venv ${venv}`,
            sh`    ${`${venv}/bin/pip`} install --quiet --disable-pip-version-check --no-deps --only-binary=:all: --require-hashes -r ${p.requirements}`,
            sh`    ${`${venv}/bin/python`} -c 'import synapse_auto_compressor'`,
            sh`    cp ${p.requirements} ${`${venv}/requirements.txt`}`,
            sh`    echo ${`installed synapse_auto_compressor from PyPI in ${venv}`}`,
            sh`fi`,
        ]);
    const bin = compressorBinaryPath(s)!;
    return lines([
        sh`if ! [ -x ${bin} ] || ! echo ${`${c.source.sha256}  ${bin}`} | sha256sum -c --quiet - >/dev/null 2>&1; then`,
        sh`    install -d -m 0755 ${s.paths.binaryDir}`,
        sh`    pm_bin=$(mktemp ${`${bin}.XXXXXX`})`,
        sh`    curl -fsSL --proto '=https' -o "$pm_bin" ${c.source.url}`,
        sh`    if ! echo ${c.source.sha256}"  $pm_bin" | sha256sum -c --quiet -; then rm -f -- "$pm_bin"; echo ${`the file at ${c.source.url} does not have the SHA-256 ${c.source.sha256} (compressor.binarySha256): not installed`} >&2; exit 1; fi`,
        sh`    chmod 0755 "$pm_bin"; mv -T -- "$pm_bin" ${bin}`,
        sh`    echo ${`installed synapse_auto_compressor from ${c.source.url}`}`,
        sh`fi`,
        // Binaries of an earlier URL.
        sh`find ${s.paths.binaryDir} -maxdepth 1 -type f ! -name ${bin.split("/").pop()!} -delete`,
    ]);
}

/**
 * The maintenance timers on Synapse's host: the scripts, the compressor,
 * each timer's service and timer, enabled; a timer turned off is stopped,
 * disabled and its files removed (so is the compressor's install). On a
 * host without any of them and none on, it changes nothing.
 */
export function maintenanceScript(s: MaintenanceSettings): string {
    const on = maintenanceTimers(s);
    const p = maintenanceScriptPaths(s);
    const scripts: ManagedFile[] = [];
    if (s.compressor) {
        scripts.push({ path: p.compressor, content: renderCompressorScript(s), mode: "0755" });
        if (s.compressor.source.kind === "pypi") scripts.push({ path: p.requirements, content: renderCompressorRequirements(s) });
    }
    if (s.synapse) scripts.push({ path: p.purge, content: renderPurgeScript(s) });
    const units: ManagedFile[] = on.flatMap((t) => {
        const u = renderMaintenanceUnits(s, t);
        const n = maintenanceUnitNames(t);
        return [
            { path: `${s.paths.unitDir}/${n.service}`, content: u.service },
            { path: `${s.paths.unitDir}/${n.timer}`, content: u.timer },
        ];
    });
    const off = ALL_TIMERS.filter((t) => !on.includes(t)).map((t) => maintenanceUnitNames(t).timer);
    const body: (Sh | string)[] = [
        // Timers turned off stop before their files go.
        ...off.map((t) => sh`if systemctl is-enabled -q ${t} 2>/dev/null; then systemctl disable -q --now ${t}; echo ${`stopped ${t}`}; fi`),
        ...(s.compressor ? [sh`pm_apt_install postgresql-client ${s.compressor.source.kind === "pypi" ? "python3-venv" : "curl"}`] : []),
        ...(scripts.length ? [sh`install -d -m 0755 ${s.paths.libDir}`] : []),
        ...(s.synapse ? [sh`install -d -m 0700 ${s.paths.stateDir}`] : []),
        applyFileSet({ name: MAINTENANCE_SETS.scripts, files: scripts }),
        compressorInstall(s),
        ...(s.compressor?.source.kind === "pypi" ? [] : [sh`rm -rf -- ${s.paths.venvDir}`]),
        ...(s.compressor?.source.kind === "binary" ? [] : [sh`rm -rf -- ${s.paths.binaryDir}`]),
        applyFileSet({ name: MAINTENANCE_SETS.units, files: units, onChange: [{ kind: "daemon-reload" }] }),
        ...(s.standby
            ? [
                  ensureStopped(
                      on.map((t) => maintenanceUnitNames(t).timer),
                      STANDBY_REASON,
                  ),
              ]
            : [
                  ...(on.length ? [sh`systemctl enable -q --now ${on.map((t) => maintenanceUnitNames(t).timer)}`] : []),
                  sh`echo ${on.length ? `maintenance timers: ${on.map((t) => MAINTENANCE_UNITS[t]).join(", ")}` : "no maintenance timers"}`,
              ]),
    ];
    return script("pulumi-matrix Synapse maintenance timers", body);
}
