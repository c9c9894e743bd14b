import { FirewallRule, HOST_FILES, HostSettings, OsInfo } from "../model/host";
import { driftCheckScript } from "../render/drift";
import {
    FIREWALL_FRAGMENT_DIR,
    FIREWALL_TABLE,
    renderFirewall,
    renderFirewallFragment,
    renderFirewallUnit,
    renderSshPorts,
    SSH_PORTS_FILE,
} from "../render/firewall";
import { renderAutoUpgrades, renderJournald, renderTimesyncd } from "../render/host";
import { applyFileSet, FileSet, ServiceUnit } from "./apply";
import { Sh, sh } from "./sh";
import { script } from "./shell";

/**
 * First contact: waits for cloud-init to finish (when the image has it) so
 * apt is not fought over, then reports the OS for the support check.
 */
export function hostProbeCommand(): string {
    return [
        "if command -v cloud-init >/dev/null 2>&1; then timeout 900 cloud-init status --wait >/dev/null 2>&1 || true; fi",
        "cat /etc/os-release",
        "echo ARCH=$(dpkg --print-architecture 2>/dev/null || uname -m)",
    ].join("; ");
}

export const BASE_PACKAGES = ["ca-certificates", "curl", "gnupg", "nftables", "systemd-timesyncd", "python3"];

const FIREWALL_UNIT: ServiceUnit = { name: "pulumi-matrix-firewall.service" };
const TIMESYNCD_UNIT: ServiceUnit = { name: "systemd-timesyncd.service" };
const JOURNALD_UNIT: ServiceUnit = { name: "systemd-journald.service" };

/** nft accepts the whole ruleset, fragments included (a file set's check: a set that fails it is put back). */
const CHECK_FIREWALL = sh`nft -c -f ${HOST_FILES.firewallRuleset}`;

/** Reloads a running firewall (its files passed CHECK_FIREWALL). */
const RELOAD_FIREWALL = { kind: "reload" as const, unit: FIREWALL_UNIT };

/** The idempotent bootstrap: packages, unattended upgrades, time sync, firewall. */
export function hostBootstrapScript(s: HostSettings, os: OsInfo): string {
    const packages = [...BASE_PACKAGES, ...(s.unattendedUpgrades ? ["unattended-upgrades"] : []), ...s.extraPackages];
    const body: (Sh | string)[] = [
        `# ${os.prettyName} (${os.architecture})`,
        // First, so the drift check is there even when a later step fails; root-only, as the records it reads.
        applyFileSet({ name: "host-drift", files: [{ path: HOST_FILES.driftCheck, content: driftCheckScript(), mode: "0700" }] }),
        sh`pm_apt_install ${[...new Set(packages)]}`,
        applyFileSet({ name: "host-upgrades", files: s.unattendedUpgrades ? [{ path: HOST_FILES.autoUpgrades, content: renderAutoUpgrades() }] : [] }),
        applyFileSet({
            name: "host-timesync",
            files: [{ path: HOST_FILES.timesyncd, content: renderTimesyncd(s.ntpServers) }],
            onChange: [{ kind: "owe-restart", unit: TIMESYNCD_UNIT }],
        }),
        // Time sync matters, but a container or an image without it must not fail the bootstrap.
        sh`if pm_take ${TIMESYNCD_UNIT.name} || ! systemctl is-active -q ${TIMESYNCD_UNIT.name}; then systemctl enable -q ${TIMESYNCD_UNIT.name} 2>/dev/null || true; systemctl restart ${TIMESYNCD_UNIT.name} || true; fi`,
        sh`timedatectl set-ntp true 2>/dev/null || true`,
        // Restarted only when the drop-in changed, and only where journald runs (it reads the drop-in when it starts).
        applyFileSet({
            name: "host-journald",
            files: [{ path: HOST_FILES.journald, content: renderJournald(s.journal) }],
            onChange: [{ kind: "rolling-restart", units: [JOURNALD_UNIT] }],
        }),
    ];
    if (s.firewall.enabled) {
        body.push(
            sh`install -d -m 0755 ${FIREWALL_FRAGMENT_DIR}`,
            // Keep open every port sshd really listens on, whatever the settings say, so a
            // wrong sshPort cannot lock the operator out.
            sh`ssh_ports=$( (echo ${s.firewall.sshPort}; ss -Htlnp 2>/dev/null | awk '/"sshd"/ {n=split($4,a,":"); print a[n]}') | sort -n | uniq | paste -sd, - | sed 's/,/, /g')`,
            applyFileSet({
                name: "host-firewall",
                files: [
                    { path: SSH_PORTS_FILE, generate: sh`printf '%s' ${renderSshPorts("@SSH_PORTS@")} | sed "s/@SSH_PORTS@/$ssh_ports/"` },
                    { path: HOST_FILES.firewallRuleset, content: renderFirewall(s.firewall.rules) },
                    { path: HOST_FILES.firewallUnit, content: renderFirewallUnit(HOST_FILES.firewallRuleset) },
                ],
                check: CHECK_FIREWALL,
                onChange: [
                    { kind: "daemon-reload" },
                    // A reload is one `nft -f` transaction: never a stop/start, which leaves the host open in between.
                    RELOAD_FIREWALL,
                ],
            }),
            // Not ensureRunning: it restarts for an owed restart (an older version's, for this unit), and a restart opens the host.
            sh`systemctl enable -q ${FIREWALL_UNIT.name}`,
            sh`if pm_take ${FIREWALL_UNIT.name} && systemctl is-active -q ${FIREWALL_UNIT.name}; then systemctl reload ${FIREWALL_UNIT.name}; echo ${`reloaded ${FIREWALL_UNIT.name}`}; fi`,
            sh`if ! systemctl is-active -q ${FIREWALL_UNIT.name}; then echo ${`starting ${FIREWALL_UNIT.name}`}; systemctl start ${FIREWALL_UNIT.name}; fi`,
            // Every run, changed or not: a flushed ruleset (nftables.service's restart, `nft flush ruleset`) is loaded again.
            sh`if systemctl is-active -q ${FIREWALL_UNIT.name} && ! nft list table inet ${FIREWALL_TABLE} >/dev/null 2>&1; then`,
            sh`    echo ${`firewall: table inet ${FIREWALL_TABLE} was missing (a flushed ruleset?); loading it`}; systemctl reload ${FIREWALL_UNIT.name}`,
            sh`fi`,
        );
    } else {
        body.push(
            sh`if systemctl is-enabled -q ${FIREWALL_UNIT.name} 2>/dev/null; then systemctl disable --now -q ${FIREWALL_UNIT.name}; echo "firewall removed"; fi`,
        );
    }
    body.push(sh`echo "host ready"`);
    return script("pulumi-matrix host bootstrap", body);
}

/** A component's firewall fragment file name: its name, reduced to what a file name may hold. */
export function firewallFragmentPath(component: string): string {
    return `${FIREWALL_FRAGMENT_DIR}/${fragmentId(component)}.nft`;
}

function fragmentId(component: string): string {
    return (
        component
            .toLowerCase()
            .replace(/[^a-z0-9]+/g, "-")
            .replace(/^-+|-+$/g, "") || "component"
    );
}

/**
 * A component's own firewall openings on its host, applied by the
 * component's own script: the fragment is written (or emptied), checked with
 * the whole ruleset (put back when the check fails), and a running firewall
 * reloaded.
 */
export function firewallFragmentSet(component: string, rules: FirewallRule[]): FileSet {
    return {
        name: `firewall-${fragmentId(component)}`,
        files: [{ path: firewallFragmentPath(component), content: renderFirewallFragment(component, rules) }],
        // Only where the Host's firewall is installed: a fragment on a host without it is inert.
        check: sh`if [ -e ${HOST_FILES.firewallRuleset} ]; then ${CHECK_FIREWALL}; fi`,
        onChange: [RELOAD_FIREWALL],
    };
}

/** Closes the openings of a component that is gone (its fragment removed, the firewall reloaded); nothing when it never had any. */
export function firewallFragmentRemovalSet(component: string): FileSet {
    return { ...firewallFragmentSet(component, []), files: [] };
}
