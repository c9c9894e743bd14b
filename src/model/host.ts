import { ConfigError, Described } from "./errors";
import { Checker, isCidr, isHostAddress, isIPv4, isIPv6 } from "./validate";

/** Paths the host bootstrap owns. */
export const HOST_FILES = {
    /** Where scripts keep what they need between runs: file-set manifests, restarts owed, the apt lock, drift records. */
    stateDir: "/var/lib/pulumi-matrix",
    firewallRuleset: "/etc/pulumi-matrix/firewall.nft",
    firewallUnit: "/etc/systemd/system/pulumi-matrix-firewall.service",
    autoUpgrades: "/etc/apt/apt.conf.d/20auto-upgrades",
    timesyncd: "/etc/systemd/timesyncd.conf.d/50-pulumi-matrix.conf",
    /** The journald drop-in bounding the journal's size and age. */
    journald: "/etc/systemd/journald.conf.d/50-pulumi-matrix.conf",
    /** The drift check (root-only; see render/drift.ts). */
    driftCheck: "/usr/local/sbin/pulumi-matrix-drift",
} as const;

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
        throw new ConfigError(
            component,
            "the host's operating system",
            name,
            `supported are ${SUPPORTED_OS.map((o) => `${o.id === "debian" ? "Debian" : "Ubuntu"} ${o.versionId} (${o.codename})`).join(", ")}`,
        );
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
    /** The last port of a range from `port` (e.g. coturn's relay ports). Default: `port` alone. */
    toPort?: number;
    protocol: Protocol;
    /** Address bound: an IP address, `0.0.0.0` (every IPv4 address), `::` (every address, dual-stack) or `*` (every address). */
    address: string;
    /** What listens there, e.g. "synapse http listener". */
    owner: string;
    /** The setting that chose the port, named when it clashes. Default `<owner> port`. */
    setting?: string;
}

/** "port 8008", or "ports 49152-65535" for a range. */
function portsOf(c: PortClaim): string {
    return c.toPort === undefined ? `port ${c.port}` : `ports ${c.port}-${c.toPort}`;
}

/** An address in a clash message: what a wildcard covers. */
function addressOf(address: string): string {
    if (address === "*") return "all addresses";
    if (address === "0.0.0.0") return "every IPv4 address (0.0.0.0)";
    if (address === "::") return "every address (::, which Linux binds dual-stack: IPv6 and IPv4)";
    return address;
}

/**
 * Whether two bound addresses take the same port from each other, as the
 * kernel sees it: a wildcard takes its family's every address, and `::`
 * IPv4 too (Linux binds it dual-stack unless bindv6only is set). One
 * exception within one component: `0.0.0.0` beside `::` is the usual pair
 * the daemons handle themselves (nginx, PostgreSQL and Redis bind `::` IPv6
 * only; Synapse skips 0.0.0.0 when it has `::`).
 */
export function addressesOverlap(a: string, b: string, sameComponent = false): boolean {
    if (a === "*" || b === "*" || a === b) return true;
    const covers = (wild: string, other: string) =>
        (wild === "0.0.0.0" && isIPv4(other)) || (wild === "::" && (isIPv6(other) || (isIPv4(other) && !(sameComponent && other === "0.0.0.0"))));
    return covers(a, b) || covers(b, a);
}

/**
 * The ports claimed on one host. Components claim theirs when they are
 * constructed; a clash fails at once, naming both owners and the port, not
 * later in a journal on the VM when the second service cannot bind.
 */
/** The first of `claims` that `c`, claimed by `component`, overlaps: same protocol, ports and addresses. */
function clashIn(claims: readonly (PortClaim & { component: string })[], component: string, c: PortClaim): (PortClaim & { component: string }) | undefined {
    const last = (p: PortClaim) => p.toPort ?? p.port;
    return claims.find(
        (o) => o.protocol === c.protocol && o.port <= last(c) && c.port <= last(o) && addressesOverlap(o.address, c.address, o.component === component),
    );
}

export class PortRegistry {
    private readonly claims: (PortClaim & { component: string })[] = [];
    constructor(readonly host: string) {}

    /** Claims ports for `component`; throws when another component (or this one) already has one of them. */
    claim(component: string, claims: PortClaim[]): void {
        const mine: (PortClaim & { component: string })[] = [];
        for (const c of claims) {
            const other = clashIn([...this.claims, ...mine], component, c);
            if (other) throw this.clashError(component, c, other);
            mine.push({ ...c, component });
        }
        this.claims.push(...mine);
    }

    /** The claim already made that `c`, claimed by `component`, would clash with; none when it is free. */
    clashing(component: string, c: PortClaim): (PortClaim & { component: string }) | undefined {
        return clashIn(this.claims, component, c);
    }

    /** The error for `component` claiming `c` where `other` already is, naming `c`'s setting. */
    clashError(component: string, c: PortClaim, other: PortClaim & { component: string }): ConfigError {
        // Equal addresses or "*" need no explanation; a wildcard covering a specific address does.
        const wildcard = other.address !== c.address && other.address !== "*" && c.address !== "*";
        return new ConfigError(
            component,
            c.setting ?? `${c.owner} port`,
            c.toPort === undefined ? c.port : new Described(`${c.port}-${c.toPort}`),
            `${other.component} (${other.owner}) already uses ${c.protocol} ${portsOf(other)} on ${addressOf(other.address)} of ${this.host}${wildcard ? `, which ${c.owner} on ${addressOf(c.address)} overlaps` : ""}; choose ${c.toPort === undefined ? "another port" : "a range without it"}${wildcard ? ", or addresses that do not overlap" : ""}`,
        );
    }

    /** Every claim so far, in the order they were made. */
    all(): readonly (PortClaim & { component: string })[] {
        return this.claims;
    }
}

/** Validates firewall rules a user declared, named as written: `firewall.rules[0].port`. */
export function validateFirewallRules(component: string, rules: FirewallRule[], prefix = "firewall.rules"): void {
    const c = new Checker(component);
    rules.forEach((r, i) => {
        const at = (k: string) => `${prefix}[${i}].${k}`;
        c.port(at("port"), r.port);
        if (r.toPort !== undefined) {
            c.port(at("toPort"), r.toPort);
            c.check(at("toPort"), r.toPort, r.toPort >= r.port, `expected a port >= ${r.port}, the start of the range (port)`);
        }
        c.oneOf(at("protocol"), r.protocol, ["tcp", "udp"] as const);
        for (const s of r.sources ?? []) c.check(at("sources"), s, isCidr(s), "expected an IPv4 or IPv6 address or CIDR network such as 10.0.0.0/24");
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
    if (s.host !== undefined)
        c.check(
            `${prefix}host`,
            s.host,
            typeof s.host === "string" && isHostAddress(s.host),
            "expected an IP address or a DNS host name such as vm1.example.com",
        );
    c.port(`${prefix}port`, s.port);
    c.check(`${prefix}user`, s.user, typeof s.user === "string" && /^[a-z_][a-z0-9_-]{0,31}$/.test(s.user), "expected a Unix user name such as root or debian");
    c.done();
}

/** Prefix for commands that need root: nothing for root, `sudo -n` for a sudoer (fails rather than prompting). */
export function sudoPrefix(user: string): string {
    return user === "root" ? "" : "sudo -n ";
}

/** The base-system settings a user writes for a Host (the SSH address and keys are Pulumi inputs of the component). */
export interface HostOptions {
    /** SSH port the client dials. Default 22. */
    port?: number;
    /** Login user: root, or a user with passwordless sudo (e.g. `debian`, `ubuntu`). Default `root`. */
    user?: string;
    /**
     * How long to wait for SSH and cloud-init on a freshly booted VM (or after a connection change), like `20m`,
     * `900s` or `1h`. Default `20m`. Every failed dial is retried until then, a refused key too: a deployment that
     * waits this long on its first step usually has the wrong address, port, user or key.
     */
    bootTimeout?: string;
    /**
     * Connect without verifying the host's SSH key (the component's `hostKey`): anyone on the network path could
     * then receive every script and secret. Not recommended; a warning is logged on every run. Ignored when a host key is
     * given (it is then verified). Default false.
     */
    acceptAnyHostKey?: boolean;
    /** Default-deny inbound firewall (nftables). Default enabled. */
    firewall?: {
        /** Turn the firewall on. Default true. */
        enabled?: boolean;
        /** The port sshd listens on inside the host (kept open, as is any port sshd really listens on). Default 22. */
        sshPort?: number;
        /** Openings of your own; components placed on the host open theirs themselves. Default none. */
        rules?: FirewallRule[];
    };
    /** Install and enable unattended security upgrades. Default true. */
    unattendedUpgrades?: boolean;
    /** NTP servers for systemd-timesyncd. Default: the distribution's. */
    ntpServers?: string[];
    /** Extra Debian packages to install. Default none. */
    extraPackages?: string[];
    /**
     * Bounds on systemd-journald's journal (a drop-in in /etc/systemd/journald.conf.d/), named as in journald.conf(5).
     * Synapse, its workers and every other service log there, and Synapse's access lines carry users' IP addresses:
     * without bounds the journal keeps them as long as it has room (journald's own default has no age limit).
     */
    journal?: {
        /**
         * Most disk space the persistent journal may use (journald's `SystemMaxUse=`): a number with K, M, G or T,
         * such as `500M` or `2G`. Default `1G`: weeks of a busy homeserver's logs, and small beside a 20 GB disk
         * (journald's own default, 10% of the file system up to 4G, can crowd a small VM's disk shared with the database).
         */
        systemMaxUse?: string;
        /**
         * Entries older than this are deleted (journald's `MaxRetentionSec=`): a number with h (hours), d (days) or
         * w (weeks), at least one day, such as `30d`. Default `30d`: enough to look into an incident noticed late, and
         * no longer than needed to keep users' IP addresses. Journal files are rotated daily so the bound is met to the day.
         */
        maxRetentionSec?: string;
    };
}

/** A Host's settings with every default filled in. */
export interface HostSettings {
    port: number;
    user: string;
    bootTimeout: string;
    acceptAnyHostKey: boolean;
    firewall: { enabled: boolean; sshPort: number; rules: FirewallRule[] };
    unattendedUpgrades: boolean;
    ntpServers: string[];
    extraPackages: string[];
    journal: { systemMaxUse: string; maxRetentionSec: string };
}

export const HOST_DEFAULTS = {
    port: 22,
    user: "root",
    bootTimeout: "20m",
    sshPort: 22,
    unattendedUpgrades: true,
    journalSystemMaxUse: "1G",
    journalMaxRetentionSec: "30d",
} as const;

/** journald sizes as this library accepts them: a whole number with a unit (journald reads K, M, G, T as powers of 1024). */
const JOURNAL_SIZE = /^[1-9]\d{0,5}[KMGT]$/;
/** journald time spans as this library accepts them: a whole number of hours, days or weeks. */
const JOURNAL_AGE = /^([1-9]\d{0,5})(h|d|w)$/;

/** A retention (`30d`, `36h`, `2w`) in hours; undefined when it is not one. */
export function journalRetentionHours(v: string): number | undefined {
    const m = JOURNAL_AGE.exec(v);
    if (!m) return undefined;
    return Number(m[1]) * { h: 1, d: 24, w: 24 * 7 }[m[2] as "h" | "d" | "w"];
}

/**
 * The port the Host's own sshd listens on: claimed first on every host, so a
 * service placed on `firewall.sshPort` (or an sshd moved onto a service's
 * port) fails here, not by locking the operator out.
 */
export function hostPortClaims(s: HostSettings): PortClaim[] {
    return [{ port: s.firewall.sshPort, protocol: "tcp", address: "*", owner: "sshd", setting: "firewall.sshPort" }];
}

/** Fills in a Host's defaults and validates them (the SSH address is checked separately, once it is known). */
export function resolveHostSettings(component: string, o: HostOptions): HostSettings {
    const s: HostSettings = {
        port: o.port ?? HOST_DEFAULTS.port,
        user: o.user ?? HOST_DEFAULTS.user,
        bootTimeout: o.bootTimeout ?? HOST_DEFAULTS.bootTimeout,
        acceptAnyHostKey: o.acceptAnyHostKey ?? false,
        firewall: { enabled: o.firewall?.enabled ?? true, sshPort: o.firewall?.sshPort ?? HOST_DEFAULTS.sshPort, rules: o.firewall?.rules ?? [] },
        unattendedUpgrades: o.unattendedUpgrades ?? HOST_DEFAULTS.unattendedUpgrades,
        ntpServers: o.ntpServers ?? [],
        extraPackages: o.extraPackages ?? [],
        journal: {
            systemMaxUse: o.journal?.systemMaxUse ?? HOST_DEFAULTS.journalSystemMaxUse,
            maxRetentionSec: o.journal?.maxRetentionSec ?? HOST_DEFAULTS.journalMaxRetentionSec,
        },
    };
    const c = new Checker(component);
    c.check(
        "journal.systemMaxUse",
        s.journal.systemMaxUse,
        typeof s.journal.systemMaxUse === "string" && JOURNAL_SIZE.test(s.journal.systemMaxUse),
        "expected a size: a whole number with K, M, G or T, such as 500M or 2G",
    );
    const hours = typeof s.journal.maxRetentionSec === "string" ? journalRetentionHours(s.journal.maxRetentionSec) : undefined;
    c.check(
        "journal.maxRetentionSec",
        s.journal.maxRetentionSec,
        hours !== undefined && hours >= 24,
        "expected an age of at least one day: a whole number with h, d or w, such as 30d, 36h or 2w",
    );
    c.port("firewall.sshPort", s.firewall.sshPort);
    c.check(
        "acceptAnyHostKey",
        s.acceptAnyHostKey,
        typeof s.acceptAnyHostKey === "boolean",
        "expected true (connect without verifying the host's key) or false",
    );
    c.check("bootTimeout", s.bootTimeout, /^\d+(s|m|h)$/.test(s.bootTimeout), "expected a duration such as 20m, 900s or 1h");
    for (const p of s.extraPackages) c.check("extraPackages", p, /^[a-z0-9][a-z0-9+.-]+$/.test(p), "expected Debian package names such as htop");
    for (const n of s.ntpServers) c.check("ntpServers", n, isHostAddress(n), "expected host names or addresses such as 0.debian.pool.ntp.org");
    c.done();
    validateSsh(component, { port: s.port, user: s.user });
    validateFirewallRules(component, s.firewall.rules);
    return s;
}

/** The SSH host key types a host key may have (OpenSSH's names, as `ssh-keyscan` and `*.pub` files print them). */
export const HOST_KEY_TYPES = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
] as const;

/** Where the README explains how to get a host's key without trusting the network it is verified over. */
export const HOST_KEY_HELP =
    "see the README's \"Host key\" section: read it from the cloud console's boot log or serial console, or inject one you generated with cloud-init's ssh_keys";

/** Why an unverified host is dangerous, for the error and the opt-out's warning. */
const HOST_KEY_RISK =
    "without it SSH accepts any server, so whoever sits on the network path (or answers for the host's DNS name) receives every script, with every secret in it";

/**
 * The key blob's own type: an SSH public key blob starts with its type as an
 * SSH string (4-byte big-endian length, then the name). Undefined when the
 * blob is not one.
 */
function blobType(blob: Buffer): string | undefined {
    if (blob.length < 4) return undefined;
    const n = blob.readUInt32BE(0);
    if (n === 0 || n > 64 || blob.length < 4 + n + 4) return undefined;
    return blob.subarray(4, 4 + n).toString("latin1");
}

/**
 * Parses a host's public key: exactly one line `<type> <base64> [comment]`,
 * of a known type, whose base64 decodes to a key blob of that same type.
 * Returns `<type> <base64>` (the comment dropped), or what is wrong with it.
 */
export function parseHostKey(text: unknown): { key: string } | { error: string } {
    if (typeof text !== "string") return { error: "not text" };
    // A line break inside (one at the end, as `< key.pub` gives, is trimmed) could carry a second line into a script.
    if (/\p{Cc}/u.test(text.trim())) return { error: "more than one line, or control characters" };
    const parts = text.trim().split(/ +/);
    const [type, blob] = parts;
    if (!type || !blob) return { error: "not `<type> <base64>`" };
    if (!(HOST_KEY_TYPES as readonly string[]).includes(type)) return { error: `an unknown key type ${JSON.stringify(type.slice(0, 40))}` };
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob) || blob.length % 4 !== 0) return { error: "a key that is not base64" };
    if (parts.slice(2).some((c) => !/^[\x21-\x7e]+$/.test(c))) return { error: "a comment with characters other than printable ASCII" };
    const embedded = blobType(Buffer.from(blob, "base64"));
    if (embedded !== type) return { error: `a key whose data says ${embedded === undefined ? "nothing of its type" : JSON.stringify(embedded)}, not ${type}` };
    return { key: `${type} ${blob}` };
}

/**
 * Validates a host key (see parseHostKey) and returns it as `<type> <base64>`;
 * `optOut` names the option that connects without one.
 */
export function validateHostKey(component: string, setting: string, key: unknown, optOut: string): string {
    if (key === undefined || key === null || (typeof key === "string" && key.trim() === "")) {
        throw new ConfigError(
            component,
            setting,
            key === undefined || key === null ? undefined : new Described("empty"),
            `expected the host's SSH public key, such as ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA...; ${HOST_KEY_RISK}. Get the key out of band (${HOST_KEY_HELP}). To connect without verifying the host (not recommended), set ${optOut}: true`,
        );
    }
    const parsed = parseHostKey(key);
    if ("error" in parsed) {
        throw new ConfigError(
            component,
            setting,
            // A damaged value is shown only as what is wrong with it: it may hold anything.
            new Described(parsed.error),
            `expected one line \`<type> <base64> [comment]\` such as ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA..., of type ${HOST_KEY_TYPES.join(", ")} (${HOST_KEY_HELP})`,
        );
    }
    return parsed.key;
}

/** The warning logged on every run of a host connected without verifying it (`acceptAnyHostKey`). */
export function acceptAnyHostKeyWarning(component: string, setting: string): string {
    return `${component}: ${setting} is true: the host's SSH key is NOT verified; ${HOST_KEY_RISK}. Set its host key instead (${HOST_KEY_HELP}).`;
}

/** A private key must at least be there; its format is the SSH client's to judge. */
export function validatePrivateKey(component: string, setting: string, key: string): void {
    if (typeof key !== "string" || key.trim() === "") {
        throw new ConfigError(
            component,
            setting,
            key === undefined ? undefined : new Described("empty"),
            "expected a private key in OpenSSH or PEM form (-----BEGIN ... PRIVATE KEY-----)",
        );
    }
}
