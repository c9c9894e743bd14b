import { FirewallRule, OsInfo } from "../model/host";
import { SSH_PORTS_FILE, renderFirewall, renderFirewallUnit, renderSshPorts } from "../render/firewall";
import { script, shQuote, writeFile } from "./shell";

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

/** Settings of the base system a Host bootstraps. */
export interface HostBootstrapSettings {
    os: OsInfo;
    /** Extra Debian packages to install. */
    extraPackages: string[];
    /** Keep the system patched with unattended security upgrades. */
    unattendedUpgrades: boolean;
    /** NTP servers for systemd-timesyncd; empty keeps the distribution's. */
    ntpServers: string[];
    firewall: { enabled: boolean; sshPort: number; rules: FirewallRule[] };
}

export const BASE_PACKAGES = ["ca-certificates", "curl", "gnupg", "nftables", "systemd-timesyncd", "python3"];

/** Paths the host bootstrap owns. */
export const HOST_FILES = {
    firewallRuleset: "/etc/pulumi-matrix/firewall.nft",
    firewallUnit: "/etc/systemd/system/pulumi-matrix-firewall.service",
    autoUpgrades: "/etc/apt/apt.conf.d/20auto-upgrades",
    timesyncd: "/etc/systemd/timesyncd.conf.d/50-pulumi-matrix.conf",
};

/** The idempotent bootstrap: packages, unattended upgrades, time sync, firewall. */
export function hostBootstrapScript(s: HostBootstrapSettings): string {
    const packages = [...BASE_PACKAGES, ...(s.unattendedUpgrades ? ["unattended-upgrades"] : []), ...s.extraPackages];
    const body: string[] = [
        `# ${s.os.prettyName} (${s.os.architecture})`,
        `pm_apt_install ${[...new Set(packages)].join(" ")}`,
    ];
    if (s.unattendedUpgrades) {
        body.push(writeFile({
            path: HOST_FILES.autoUpgrades,
            content: 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\nAPT::Periodic::AutocleanInterval "7";\n',
        }));
    }
    body.push("pm_changed=0");
    body.push(writeFile({
        path: HOST_FILES.timesyncd,
        content: `# Managed by pulumi-matrix.\n[Time]\n${s.ntpServers.length ? `NTP=${s.ntpServers.join(" ")}\n` : ""}`,
    }));
    body.push(
        "systemctl enable -q systemd-timesyncd.service 2>/dev/null || true",
        'if [ "$pm_changed" = 1 ] || ! systemctl is-active -q systemd-timesyncd.service; then systemctl restart systemd-timesyncd.service || true; fi',
        "timedatectl set-ntp true 2>/dev/null || true",
    );
    if (s.firewall.enabled) {
        body.push(
            "pm_changed=0",
            // Keep open every port sshd really listens on, whatever the settings say, so a
            // wrong sshPort cannot lock the operator out.
            `ssh_ports=$( (echo ${s.firewall.sshPort}; ss -Htlnp 2>/dev/null | awk '/"sshd"/ {n=split($4,a,":"); print a[n]}') | sort -n | uniq | paste -sd, - | sed 's/,/, /g')`,
            // Unquoted heredoc: $ssh_ports expands here, on the host.
            `pm_write ${SSH_PORTS_FILE} 0644 root root <<PM_SSH_PORTS\n${renderSshPorts("$ssh_ports")}PM_SSH_PORTS`,
            writeFile({ path: HOST_FILES.firewallRuleset, content: renderFirewall(s.firewall.rules) }),
            "nft -c -f " + HOST_FILES.firewallRuleset,
            writeFile({ path: HOST_FILES.firewallUnit, content: renderFirewallUnit(HOST_FILES.firewallRuleset) }),
            "systemctl daemon-reload",
            "systemctl enable -q pulumi-matrix-firewall.service",
            `if [ "$pm_changed" = 1 ] || ! systemctl is-active -q pulumi-matrix-firewall.service; then systemctl restart pulumi-matrix-firewall.service; echo "firewall loaded"; fi`,
        );
    } else {
        body.push(`if systemctl is-enabled -q pulumi-matrix-firewall.service 2>/dev/null; then systemctl disable --now -q pulumi-matrix-firewall.service; echo "firewall removed"; fi`);
    }
    body.push(`echo ${shQuote("host ready")}`);
    return script("pulumi-matrix host bootstrap", body);
}
