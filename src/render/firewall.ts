import { FirewallRule } from "../model/host";

/** The name of the nftables table the library owns; other tables (the user's, Docker's) are left alone. */
export const FIREWALL_TABLE = "pulumi_matrix";

function portExpr(r: FirewallRule): string {
    return r.toPort !== undefined && r.toPort !== r.port ? `${r.port}-${r.toPort}` : String(r.port);
}

/** Sorts rules so the ruleset is byte-identical however components were declared. */
function sortRules(rules: FirewallRule[]): FirewallRule[] {
    return [...rules].sort(
        (a, b) => a.protocol.localeCompare(b.protocol) || a.port - b.port || (a.toPort ?? 0) - (b.toPort ?? 0) || a.owner.localeCompare(b.owner),
    );
}

/** The directory of the fragments components write: each opens what its component needs. */
export const FIREWALL_FRAGMENT_DIR = "/etc/pulumi-matrix/firewall.d";

/** The nft rule bodies (after `add rule ... input` or inside the chain) of a set of openings. */
function ruleBodies(rules: FirewallRule[]): string[] {
    const out: string[] = [];
    for (const r of sortRules(rules)) {
        const v4 = (r.sources ?? []).filter((s) => !s.includes(":"));
        const v6 = (r.sources ?? []).filter((s) => s.includes(":"));
        const base = `${r.protocol} dport ${portExpr(r)} accept comment "${r.owner.replace(/"/g, "")}"`;
        if (!r.sources || r.sources.length === 0) {
            out.push(base);
            continue;
        }
        if (v4.length) out.push(`ip saddr { ${v4.join(", ")} } ${base}`);
        if (v6.length) out.push(`ip6 saddr { ${v6.join(", ")} } ${base}`);
    }
    return out;
}

/**
 * A component's own openings, as a fragment the host's ruleset includes: a
 * component placed on any Host opens exactly what it needs, itself.
 */
export function renderFirewallFragment(component: string, rules: FirewallRule[]): string {
    return [
        `# Managed by pulumi-matrix: the openings of ${component.replace(/\n/g, " ")}.`,
        ...ruleBodies(rules).map((b) => `add rule inet ${FIREWALL_TABLE} input ${b}`),
        "",
    ].join("\n");
}

/** The file defining `$ssh_ports`, written on the host from the ports sshd really listens on. */
export const SSH_PORTS_FILE = "/etc/pulumi-matrix/ssh-ports.nft";

/**
 * The definition the ruleset includes: every port sshd listens on (plus the
 * configured one). `ports` is a comma-separated list, or a shell expression
 * that expands to one when the host writes the file.
 */
export function renderSshPorts(ports: string): string {
    return `# Managed by pulumi-matrix: the ports sshd listens on, kept open by the firewall.\ndefine ssh_ports = { ${ports} }\n`;
}

/**
 * A default-deny inbound ruleset in a table of its own, with a forward chain
 * that drops (the host routes nothing). Loading it replaces only that table
 * in one transaction: `nft -f` applies the whole file (fragments included)
 * or nothing, so a failing load leaves the old rules active and there is no
 * moment without the table. The `table`/`delete table` pair makes the first
 * load and later loads the same file. SSH ports (`$ssh_ports`, from
 * SSH_PORTS_FILE) are always open so a mistake cannot lock the operator out.
 */
export function renderFirewall(rules: FirewallRule[]): string {
    const lines = [
        "#!/usr/sbin/nft -f",
        "# Managed by pulumi-matrix: inbound default deny; open are SSH, the rules below, and what each component on this host opens in firewall.d/.",
        "# Loaded as one transaction (all or nothing) by reloading pulumi-matrix-firewall.service, never by stopping it.",
        `include "${SSH_PORTS_FILE}"`,
        `table inet ${FIREWALL_TABLE}`,
        `delete table inet ${FIREWALL_TABLE}`,
        `table inet ${FIREWALL_TABLE} {`,
        "    chain input {",
        "        type filter hook input priority filter; policy drop;",
        "        ct state established,related accept",
        "        ct state invalid drop",
        '        iif "lo" accept',
        "        meta l4proto icmp icmp type { echo-request, destination-unreachable, time-exceeded, parameter-problem } accept",
        "        meta l4proto ipv6-icmp accept",
        // DHCPv6 clients receive on a UDP socket, behind this chain (DHCPv4 clients read a raw socket, before it);
        // a server's or relay's reply comes from its link-local address, not always tracked as a reply.
        '        ip6 saddr fe80::/10 ip6 daddr fe80::/10 udp sport 547 udp dport 546 accept comment "dhcpv6 replies"',
        '        tcp dport $ssh_ports accept comment "ssh"',
    ];
    lines.push(...ruleBodies(rules).map((b) => `        ${b}`));
    lines.push(
        "    }",
        "    chain forward {",
        "        type filter hook forward priority filter; policy drop;",
        "    }",
        "}",
        `include "${FIREWALL_FRAGMENT_DIR}/*.nft"`,
        "",
    );
    return lines.join("\n");
}

/** The unit that loads the ruleset at boot, after (and independent of) the distribution's nftables.service. */
export function renderFirewallUnit(rulesetPath: string): string {
    return `# Managed by pulumi-matrix.
[Unit]
Description=pulumi-matrix firewall (nftables table ${FIREWALL_TABLE})
Wants=network-pre.target
Before=network-pre.target
After=nftables.service
# Debian's nftables.service flushes the whole ruleset when it stops or restarts: follow it, so the table is loaded again.
PartOf=nftables.service
DefaultDependencies=no

[Service]
Type=oneshot
RemainAfterExit=yes
# Start and reload are the same atomic load: the file replaces the table in one transaction (see the ruleset's head).
ExecStart=/usr/sbin/nft -f ${rulesetPath}
ExecReload=/usr/sbin/nft -f ${rulesetPath}
# Stopping (only when the firewall is turned off) removes the table; already gone after a flush is no failure.
ExecStop=-/usr/sbin/nft delete table inet ${FIREWALL_TABLE}

[Install]
WantedBy=sysinit.target
`;
}
