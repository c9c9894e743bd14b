import { componentLabel } from "../model/errors";
import { RTC_FILES, RTC_UNITS, RTC_USERS, RtcBinary, rtcFirewallRules, RtcSettings, rtcSynapseFiles } from "../model/rtc";
import { synapseFiles, SynapseSettings } from "../model/synapse";
import { singleAddress } from "../model/validate";
import { renderJwtEnv, renderJwtKey, renderJwtUnit, renderLivekitConfig, renderLivekitKeys, renderLivekitUnit, renderRtcSynapseYaml } from "../render/rtc";
import { applyFileSet, ensureRunning, Handler, ServiceUnit } from "./apply";
import { firewallFragmentRemovalSet, firewallFragmentSet } from "./host";
import { indent, lines, raw, Sh, sh } from "./sh";
import { script } from "./shell";
import { requireSynapseUser, synapseRestarts } from "./synapse";

/**
 * MatrixRTC's scripts. The server step installs the two pinned release
 * binaries (each used only when its SHA-256 matches), makes their system
 * users, writes everything readable (configs, units, firewall fragment)
 * and, once the key files exist, starts both. The secret step writes the
 * two key files (API key and secret) and starts or restarts what reads
 * them. Synapse's side is one readable conf.d fragment on Synapse's host.
 */

/** The file sets MatrixRTC's steps write (their manifests are what a removal prunes). */
const RTC_SETS = {
    units: "rtc-units",
    config: "rtc-config",
    secrets: "rtc-secrets",
    synapseConfig: "rtc-synapse-config",
} as const;

/** livekit-server as handlers see it: healthy once its HTTP port answers (`/` says OK). */
export function livekitUnit(s: RtcSettings): ServiceUnit {
    return { name: RTC_UNITS.livekit, health: { url: `http://127.0.0.1:${s.port}/` }, healthTimeout: 60 };
}

/** lk-jwt-service as handlers see it: healthy once `/healthz` answers. */
export function jwtUnit(s: RtcSettings): ServiceUnit {
    return { name: RTC_UNITS.jwt, health: { url: `http://127.0.0.1:${s.jwtPort}/healthz` }, healthTimeout: 60 };
}

/** Who the firewall fragment of the RtcServer `name` belongs to. */
export function rtcFirewallOwner(name: string): string {
    return componentLabel("RtcServer", name);
}

/**
 * Installs one pinned binary into `<binDir>/<program>-<version>/<program>`
 * unless it is there from a download with the pinned SHA-256 (recorded in
 * `<program>-<version>.sha256`). The download is used only when its
 * SHA-256 matches: a mismatch stops the script before anything changed.
 * `binDir` is `RTC_FILES.binDir` on a host (a test passes a directory of its own).
 */
export function rtcBinaryInstall(b: RtcBinary, binDir: string = RTC_FILES.binDir): Sh {
    const dir = `${binDir}/${b.program}-${b.version}`;
    const bin = `${dir}/${b.program}`;
    const record = `${dir}.sha256`;
    const what = `${b.program} ${b.version}`;
    const fail = (message: string) => lines([sh`    echo ${`${what}: ${message}; nothing was changed`} >&2`, sh`    exit 1`]);
    return lines([
        sh`if [ ! -x ${bin} ] || [ "$(cat ${record} 2>/dev/null)" != ${b.sha256} ]; then`,
        indent(
            lines([
                sh`mkdir -p ${binDir}`,
                // Beside the final directory: the same filesystem, so moving the release into place is a rename.
                sh`pm_rtc_tmp=$(mktemp -d ${`${binDir}/.incoming-XXXXXX`})`,
                sh`trap 'rm -rf -- "$pm_rtc_tmp"' EXIT`,
                sh`echo ${`downloading ${what} from ${b.downloadUrl}`}`,
                sh`if ! curl -fsSL --proto =https,http --proto-redir =https,http --retry 3 --retry-delay 2 --retry-connrefused --connect-timeout 20 --max-time 900 -o "$pm_rtc_tmp/download" ${b.downloadUrl}; then`,
                fail(`the download from ${b.downloadUrl} failed (see curl's message above)`),
                sh`fi`,
                sh`pm_rtc_sum=$(sha256sum "$pm_rtc_tmp/download" | cut -d' ' -f1)`,
                sh`if [ "$pm_rtc_sum" != ${b.sha256} ]; then`,
                sh`    echo ${`${what}: checksum mismatch for ${b.downloadUrl}: expected SHA-256 ${b.sha256} (the sha256 setting), got`} "$pm_rtc_sum"${`; refusing to use it, nothing was changed`} >&2`,
                sh`    exit 1`,
                sh`fi`,
                sh`mkdir "$pm_rtc_tmp/release"`,
                ...(b.tarball
                    ? [
                          sh`if ! tar -xzf "$pm_rtc_tmp/download" -C "$pm_rtc_tmp/release" --no-same-owner --no-same-permissions ${b.program}; then`,
                          fail(`${b.downloadUrl} is not a gzip tarball holding ${b.program}`),
                          sh`fi`,
                      ]
                    : [sh`mv "$pm_rtc_tmp/download" ${raw(`"$pm_rtc_tmp/release/"`)}${b.program}`]),
                sh`chmod 0755 "$pm_rtc_tmp/release" ${raw(`"$pm_rtc_tmp/release/"`)}${b.program}`,
                // A directory without its checksum record (a run stopped halfway, or another file) is replaced.
                sh`rm -rf -- ${dir}`,
                sh`mv -T "$pm_rtc_tmp/release" ${dir}`,
                sh`printf '%s\n' ${b.sha256} >${`${record}.pm-tmp`}`,
                sh`mv -f ${`${record}.pm-tmp`} ${record}`,
                sh`rm -rf -- "$pm_rtc_tmp"`,
                sh`trap - EXIT`,
                sh`echo ${`installed ${what} (SHA-256 verified)`}`,
            ]),
        ),
        sh`fi`,
    ]);
}

/** Removes the other versions of a program the install left (never the pinned one). */
function pruneOtherVersions(b: RtcBinary): Sh {
    return lines([
        sh`for pm_old in ${raw(`${RTC_FILES.binDir}/${b.program}-*`)}; do`,
        sh`    case "$pm_old" in ${raw(`${RTC_FILES.binDir}/${b.program}-${b.version}`)} | ${raw(`${RTC_FILES.binDir}/${b.program}-${b.version}.sha256`)} | ${raw(`"${RTC_FILES.binDir}/${b.program}-*"`)}) continue ;; esac`,
        sh`    rm -rf -- "$pm_old"`,
        sh`    echo "removed $pm_old"`,
        sh`done`,
    ]);
}

/** A system user without home or shell for one program. */
function systemUser(user: string): Sh {
    return sh`if ! id -u ${user} >/dev/null 2>&1; then useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ${user}; echo ${`created the system user ${user}`}; fi`;
}

/**
 * The server step: checks the architecture, installs both binaries
 * (downloaded only when missing, verified), their users, configs and
 * units, opens the firewall, restarts what changed, and starts both once
 * the secret step wrote the key files. Other versions are removed last.
 */
export function rtcServerScript(s: RtcSettings, name: string): string {
    const livekit = livekitUnit(s);
    const jwt = jwtUnit(s);
    const f = RTC_FILES;
    const restartBoth: Handler[] = [
        { kind: "restart", unit: livekit },
        { kind: "restart", unit: jwt },
    ];
    return script(`pulumi-matrix MatrixRTC (${s.domain})`, [
        sh`pm_rtc_arch=$(dpkg --print-architecture)`,
        sh`if [ "$pm_rtc_arch" != ${s.architecture} ]; then echo ${`MatrixRTC: the binaries are pinned for linux ${s.architecture} (the architecture setting), and this host is`} "$pm_rtc_arch"${`: pin the release files and checksums for its architecture; nothing was changed`} >&2; exit 1; fi`,
        ...(s.localAddress !== undefined ? [localAddressCheck(s.localAddress)] : []),
        sh`if ! command -v curl >/dev/null || ! command -v tar >/dev/null; then pm_apt_install curl ca-certificates tar; fi`,
        rtcBinaryInstall(s.livekit),
        rtcBinaryInstall(s.jwtService),
        systemUser(RTC_USERS.livekit),
        systemUser(RTC_USERS.jwt),
        sh`install -d -m 0755 -o root -g root ${f.confDir}`,
        applyFileSet({
            name: RTC_SETS.config,
            files: [
                { path: f.livekitConfig, content: renderLivekitConfig(s), mode: "0640", group: RTC_USERS.livekit },
                { path: f.jwtEnv, content: renderJwtEnv(s), mode: "0640", group: RTC_USERS.jwt },
            ],
            onChange: restartBoth,
        }),
        applyFileSet({
            name: RTC_SETS.units,
            files: [
                { path: f.livekitUnit, content: renderLivekitUnit(s) },
                { path: f.jwtUnit, content: renderJwtUnit(s) },
            ],
            onChange: [{ kind: "daemon-reload" }, ...restartBoth],
        }),
        applyFileSet(firewallFragmentSet(rtcFirewallOwner(name), rtcFirewallRules(s))),
        sh`if [ -e ${f.livekitKeys} ] && [ -e ${f.jwtKey} ]; then`,
        indent(ensureRunning([livekit, jwt])),
        sh`else`,
        sh`    echo "livekit-server and lk-jwt-service start with their API key (next step)"`,
        sh`fi`,
        pruneOtherVersions(s.livekit),
        pruneOtherVersions(s.jwtService),
    ]);
}

/**
 * Stops the server step before it changes anything when the host has no
 * interface with the media address: LiveKit would gather no candidate and
 * every call would fail. Names the settings and lists the host's addresses.
 */
function localAddressCheck(address: string): Sh {
    const prefix = singleAddress(address);
    return lines([
        sh`if [ -z "$(ip -o addr show to ${prefix})" ]; then`,
        sh`    echo ${`MatrixRTC: this host has no network interface with the address ${address} (localAddress, else publicAddress: the stack keys rtcLocalAddress and rtcPublicAddress), which LiveKit's media would use; behind 1:1 NAT (AWS, GCP, Azure) give the private address the NAT maps the public one to as localAddress. This host's addresses:`} $(ip -o addr show scope global | awk '{print $4}' | cut -d/ -f1)${`; nothing was changed`} >&2`,
        sh`    exit 1`,
        sh`fi`,
    ]);
}

/** The secret step: the API key and secret in the two key files (secret stdin), then both (re)started with them. */
export function rtcSecretScript(s: RtcSettings, apiKey: string, apiSecret: string): string {
    const livekit = livekitUnit(s);
    const jwt = jwtUnit(s);
    const f = RTC_FILES;
    return script("pulumi-matrix MatrixRTC API key", [
        sh`[ -e ${f.livekitConfig} ] || { echo ${`${f.livekitConfig} is missing: the MatrixRTC server step runs first`} >&2; exit 1; }`,
        applyFileSet({
            name: RTC_SETS.secrets,
            secret: true,
            files: [
                { path: f.livekitKeys, content: renderLivekitKeys(apiKey, apiSecret), mode: "0640", group: RTC_USERS.livekit },
                { path: f.jwtKey, content: renderJwtKey(apiKey, apiSecret), mode: "0640", group: RTC_USERS.jwt },
            ],
            onChange: [
                { kind: "restart", unit: livekit },
                { kind: "restart", unit: jwt },
            ],
        }),
        ensureRunning([livekit, jwt]),
        sh`echo ${`livekit-server and lk-jwt-service answer for ${s.domain}`}`,
    ]);
}

/** Synapse's MatrixRTC options (conf.d/46-rtc.yaml); Synapse restarts when they change. */
export function rtcSynapseConfigScript(synapse: SynapseSettings, s: RtcSettings): string {
    const u = synapse.paths.user;
    return script(`pulumi-matrix Synapse MatrixRTC config (${s.domain})`, [
        requireSynapseUser(synapse),
        sh`install -d -m 0750 -o root -g ${u} ${synapseFiles(synapse.paths).confD}`,
        applyFileSet({
            name: RTC_SETS.synapseConfig,
            files: [{ path: rtcSynapseFiles(synapse.paths).fragment, content: renderRtcSynapseYaml(s, synapse.extraConfig), mode: "0640", group: u }],
            onChange: synapseRestarts(synapse),
        }),
        sh`echo ${`Synapse advertises the MatrixRTC transport ${s.serviceUrl}`}`,
    ]);
}

/** Synapse without the MatrixRTC options an earlier deployment gave it; changes nothing where they were never written. */
export function rtcSynapseRemovalScript(synapse: SynapseSettings): string {
    return script("pulumi-matrix Synapse without MatrixRTC", [applyFileSet({ name: RTC_SETS.synapseConfig, files: [], onChange: synapseRestarts(synapse) })]);
}

/**
 * Turns off the MatrixRTC back end an earlier deployment ran on this host
 * as the RtcServer named `name`: both units stopped and disabled, the
 * units, configs, key files and binaries removed, the firewall openings
 * closed. The system users stay (files they may own keep an owner).
 * Changes nothing on a host where it never ran.
 */
export function rtcRemovalScript(name: string): string {
    const f = RTC_FILES;
    return script("pulumi-matrix MatrixRTC removed", [
        ...[RTC_UNITS.jwt, RTC_UNITS.livekit].map(
            (unit) =>
                sh`if [ -e ${`/etc/systemd/system/${unit}`} ]; then systemctl disable -q ${unit} 2>/dev/null || true; if systemctl is-active -q ${unit}; then systemctl stop ${unit}; echo ${`stopped ${unit}: MatrixRTC is no longer part of this deployment`}; fi; fi`,
        ),
        applyFileSet({ name: RTC_SETS.secrets, secret: true, files: [] }),
        applyFileSet({ name: RTC_SETS.config, files: [] }),
        applyFileSet({ name: RTC_SETS.units, files: [], onChange: [{ kind: "daemon-reload" }] }),
        sh`if [ -d ${f.confDir} ]; then rm -rf -- ${f.confDir}; echo ${`removed ${f.confDir}`}; fi`,
        sh`if [ -d ${f.binDir} ]; then rm -rf -- ${f.binDir}; echo ${`removed ${f.binDir}`}; fi`,
        applyFileSet(firewallFragmentRemovalSet(rtcFirewallOwner(name))),
    ]);
}
