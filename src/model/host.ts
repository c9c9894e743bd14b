import { ConfigError } from "./errors";
import { Checker, isCidr, isHostAddress } from "./validate";

/** The operating systems the provisioning scripts are written and tested for. */
export const SUPPORTED_OS = [
    { id: "debian", versionId: "12", codename: "bookworm" },
    { id: "debian", versionId: "13", codename: "trixie" },
    { id: "ubuntu", versionId: "22.04", codename: "jammy" },
    { id: "ubuntu", versionId: "24.04", codename: "noble" },
] as const;

export type OsFamily = "debian" | "ubuntu";

/** What first contact learns about a host. */
export interface OsInfo {
    id: OsFamily;
    versionId: string;
    codename: string;
    prettyName: string;
    architecture: string;
}

/** Parses the output of the host's os-release probe (os-release lines plus `ARCH=`). */
export function parseOsRelease(text: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const line of text.split("\n")) {
        const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
        if (m) out[m[1]] = m[2].replace(/^"(.*)"$/, "$1").replace(/^'(.*)'$/, "$1");
    }
    return out;
}

/**
 * Checks the OS a host reported against SUPPORTED_OS; the error names what
 * was found so a user on, say, CentOS knows at once why nothing happens.
 */
export function checkSupportedOs(component: string, osRelease: string): OsInfo {
    const fields = parseOsRelease(osRelease);
    const found = SUPPORTED_OS.find((o) => o.id === fields.ID && o.versionId === fields.VERSION_ID);
    if (!found) {
        const name = fields.PRETTY_NAME || `${fields.ID ?? "unknown"} ${fields.VERSION_ID ?? ""}`.trim();
        throw new ConfigError(component, "the host's operating system", name,
            `supported are ${SUPPORTED_OS.map((o) => `${o.id === "debian" ? "Debian" : "Ubuntu"} ${o.versionId} (${o.codename})`).join(", ")}`);
    }
    return {
        id: found.id,
        versionId: found.versionId,
        codename: found.codename,
        prettyName: fields.PRETTY_NAME ?? `${found.id} ${found.versionId}`,
        architecture: fields.ARCH ?? "unknown",
    };
}

export type Protocol = "tcp" | "udp";

/**
 * One opening in a host's firewall. Components declare these; the Host opens
 * the union of them and nothing else (SSH is always kept open).
 */
export interface FirewallRule {
    /** A single port, or the first port of a range. */
    port: number;
    /** The last port of a range (inclusive); absent for a single port. */
    toPort?: number;
    protocol: Protocol;
    /** Source networks (CIDR) allowed; absent means anyone. */
    sources?: string[];
    /** Who asked for it, for the comment in the ruleset and for clash errors. */
    owner: string;
}

/** A port something listens on, for detecting two things wanting one port on one host. */
export interface PortClaim {
    port: number;
    protocol: Protocol;
    /** Address bound; "*" for all. */
    address: string;
    owner: string;
}

/**
 * Fails when two owners claim the same port on overlapping addresses of one
 * host: the second service would not start, and the reason would only show in
 * its journal on the VM.
 */
export function checkPortClashes(component: string, claims: PortClaim[]): void {
    const seen = new Map<string, PortClaim>();
    for (const c of claims) {
        for (const [key, other] of seen) {
            const [proto, port] = key.split("/");
            if (proto !== c.protocol || Number(port) !== c.port || other.owner === c.owner) continue;
            if (other.address === "*" || c.address === "*" || other.address === c.address) {
                throw new ConfigError(component, `${c.owner} port`, c.port,
                    `${other.owner} already uses ${c.protocol} port ${c.port} on ${other.address === "*" ? "all addresses" : other.address} of this host; choose another port`);
            }
        }
        seen.set(`${c.protocol}/${c.port}/${c.owner}/${c.address}`, c);
    }
}

/** Validates firewall rules a user or component declared. */
export function validateFirewallRules(component: string, rules: FirewallRule[]): void {
    const c = new Checker(component);
    rules.forEach((r, i) => {
        c.port(`firewall rule ${i} (${r.owner}) port`, r.port);
        if (r.toPort !== undefined) {
            c.port(`firewall rule ${i} (${r.owner}) toPort`, r.toPort);
            c.check(`firewall rule ${i} (${r.owner}) toPort`, r.toPort, r.toPort >= r.port, `expected a port >= ${r.port}, the start of the range`);
        }
        c.oneOf(`firewall rule ${i} (${r.owner}) protocol`, r.protocol, ["tcp", "udp"] as const);
        for (const s of r.sources ?? []) c.check(`firewall rule ${i} (${r.owner}) sources`, s, isCidr(s), "expected an IPv4 or IPv6 address or CIDR network such as 10.0.0.0/24");
    });
    c.done();
}

/** SSH settings of a host, as plain values (the private key is handled by the component as a secret). */
export interface SshSettings {
    /** Address or DNS name the SSH client dials. */
    host: string;
    /** Port the SSH client dials. */
    port: number;
    /** Login user; root, or a user with passwordless sudo. */
    user: string;
}

/** Validates SSH settings; `host` may be left out while it is still an unknown Output. */
export function validateSsh(component: string, s: Omit<SshSettings, "host"> & { host?: string }, prefix = ""): void {
    const c = new Checker(component);
    if (s.host !== undefined) c.check(`${prefix}host`, s.host, typeof s.host === "string" && isHostAddress(s.host), "expected an IP address or a DNS host name such as vm1.example.com");
    c.port(`${prefix}port`, s.port);
    c.check(`${prefix}user`, s.user, typeof s.user === "string" && /^[a-z_][a-z0-9_-]{0,31}$/.test(s.user), "expected a Unix user name such as root or debian");
    c.done();
}

/** Prefix for commands that need root: nothing for root, `sudo -n` for a sudoer (fails rather than prompting). */
export function sudoPrefix(user: string): string {
    return user === "root" ? "" : "sudo -n ";
}
