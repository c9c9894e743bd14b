import { ConfigError, throwIfAny } from "./errors";

/**
 * Validators for plain setting values. Each returns the value (narrowed or
 * normalised) or throws a ConfigError naming component, setting and value.
 */

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

/** A DNS host name: dot-separated labels, at least two, total <= 253. */
export function isHostname(value: string): boolean {
    if (value.length === 0 || value.length > 253) return false;
    const labels = value.split(".");
    return labels.length >= 2 && labels.every((l) => LABEL.test(l)) && !/^\d+$/.test(labels[labels.length - 1]);
}

/** A single-label name such as "localhost" or "db1" is allowed where a host is reachable by it. */
export function isSimpleHostname(value: string): boolean {
    return LABEL.test(value);
}

export function isIPv4(value: string): boolean {
    const parts = value.split(".");
    return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255 && String(Number(p)) === p);
}

export function isIPv6(value: string): boolean {
    if (!/^[0-9a-f:.]+$/i.test(value) || !value.includes(":")) return false;
    const double = value.split("::");
    if (double.length > 2) return false;
    const groups = value.split(":").filter((g) => g !== "");
    const last = groups[groups.length - 1] ?? "";
    const v4Tail = last.includes(".");
    if (v4Tail && !isIPv4(last)) return false;
    const hexGroups = v4Tail ? groups.slice(0, -1) : groups;
    if (!hexGroups.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return false;
    const count = hexGroups.length + (v4Tail ? 2 : 0);
    return double.length === 2 ? count < 8 : count === 8;
}

export function isIpAddress(value: string): boolean {
    return isIPv4(value) || isIPv6(value);
}

/** `0.0.0.0` or `::`: every address of a host, not one of them. */
export function isWildcardAddress(value: string): boolean {
    return value === "0.0.0.0" || value === "::";
}

/** `address:port` as a client on the same host dials it: a wildcard bind is reached on loopback, IPv6 in brackets. */
export function dialAddress(address: string, port: number): string {
    if (address === "0.0.0.0" || address === "*" || address === "") return `127.0.0.1:${port}`;
    if (address === "::") return `[::1]:${port}`;
    return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Where a service can be reached: a DNS name (also a single label such as "db1") or an IP address. */
export function isHostAddress(value: string): boolean {
    return isHostname(value) || isIpAddress(value) || isSimpleHostname(value);
}

/** An IPv4 or IPv6 network in CIDR notation, or a single address. */
export function isCidr(value: string): boolean {
    const [addr, bits, ...rest] = value.split("/");
    if (rest.length) return false;
    if (bits === undefined) return isIpAddress(addr);
    if (!/^\d{1,3}$/.test(bits)) return false;
    const n = Number(bits);
    return (isIPv4(addr) && n <= 32) || (isIPv6(addr) && n <= 128);
}

/** Synapse's server_name: a host name, IP literal, or either with an explicit port. */
export function isServerName(value: string): boolean {
    const m = /^(\[[0-9a-f:.]+\]|[^:]+)(?::(\d{1,5}))?$/i.exec(value);
    if (!m) return false;
    const host = m[1];
    if (m[2] !== undefined && !isPort(Number(m[2]))) return false;
    if (host.startsWith("[")) return isIPv6(host.slice(1, -1));
    return isHostname(host) || isIPv4(host) || host === "localhost";
}

export function isPort(value: unknown): value is number {
    return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 65535;
}

/**
 * A release version as Synapse tags them: MAJOR.MINOR.PATCH, numbers
 * without leading zeros, and an optional release candidate `rcN` (1.163.2,
 * 1.164.0rc1). Anything else (1.163, v1.163.2, latest) names no release.
 */
export function isVersion(value: string): boolean {
    return /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(rc[1-9]\d*)?$/.test(value);
}

/** Sizes as Synapse and nginx write them: digits and an optional K/M/G suffix. */
export function parseSize(value: string): number | undefined {
    const m = /^(\d+)([KMG])?$/.exec(value);
    if (!m) return undefined;
    const unit = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2] as "K" | "M" | "G"] ?? 1;
    return Number(m[1]) * unit;
}

/**
 * An http(s) URL with a host and no credentials, of characters a shell word,
 * an apt sources line and a log line carry unchanged (no quote, space or
 * backslash).
 */
export function isPlainUrl(value: unknown): value is string {
    if (typeof value !== "string" || !/^https?:\/\/[A-Za-z0-9._~:/?#@!$&()*+,;=%[\]-]+$/.test(value)) return false;
    try {
        const u = new URL(value);
        return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "" && u.username === "" && u.password === "";
    } catch {
        return false;
    }
}

export function isEmail(value: string): boolean {
    const m = /^[^\s@<>"]+@([^\s@<>"]+)$/.exec(value);
    return !!m && (isHostname(m[1]) || m[1] === "localhost");
}

/** An absolute POSIX path without parent references or characters a shell or YAML would mangle. */
export function isAbsolutePath(value: string): boolean {
    return /^\/[A-Za-z0-9._\-/+@]*$/.test(value) && !value.split("/").includes("..");
}

/** A Matrix localpart as Synapse accepts for new users. */
export function isLocalpart(value: string): boolean {
    return /^[a-z0-9._=\-/+]{1,255}$/.test(value);
}

/** A PostgreSQL identifier we are willing to create (quoted where used anyway). */
export function isSqlIdentifier(value: string): boolean {
    return /^[a-z_][a-z0-9_]{0,62}$/.test(value);
}

/**
 * A small helper bound to one component name so validation code reads as a
 * list of rules: `check(setting, value, ok, expected)`.
 */
export class Checker {
    readonly errors: ConfigError[] = [];
    constructor(readonly component: string) {}

    check(setting: string, value: unknown, ok: boolean, expected: string): void {
        if (!ok) this.errors.push(new ConfigError(this.component, setting, value, expected));
    }

    port(setting: string, value: unknown): void {
        this.check(setting, value, isPort(value), "expected a whole number from 1 to 65535");
    }

    oneOf<T extends string>(setting: string, value: unknown, allowed: readonly T[]): void {
        this.check(setting, value, (allowed as readonly unknown[]).includes(value), `expected one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`);
    }

    positiveInt(setting: string, value: unknown, max = Number.MAX_SAFE_INTEGER): void {
        this.check(
            setting,
            value,
            typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= max,
            `expected a whole number from 1 to ${max}`,
        );
    }

    /** Throws every collected error at once. */
    done(): void {
        throwIfAny(this.errors);
    }
}

/** A CIDR for one address (IPv4 /32, IPv6 /128). */
export function singleAddress(address: string): string {
    return address.includes(":") ? `${address}/128` : `${address}/32`;
}
