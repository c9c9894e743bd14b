import { ConfigError, Described } from "./errors";

/**
 * An existing server (PostgreSQL, Redis) used instead of one the library
 * installs: the part every such service shares, written once. Its address
 * may be known only later (a managed database's output), so its settings
 * are checked now when the address is a plain value, and again once it is
 * known, before any script is built from them.
 */

/** An existing server's settings, from its address. */
export interface ExternalServer<S> {
    /** The settings, when the address is a plain value now (undefined while it is known only later). */
    now?: S;
    /** The settings for the address once it is known (checked; throws a ConfigError). */
    at(host: string): S;
}

/**
 * The settings of an existing server: `settings(host)` fills in the
 * defaults, `check` validates them (each problem named as the user wrote it,
 * e.g. `external.port`). A plain address is checked at once.
 */
export function externalServer<S>(host: unknown, settings: (host: string) => S, check: (s: S) => void): ExternalServer<S> {
    const at = (h: string): S => {
        const s = settings(h);
        check(s);
        return s;
    };
    return typeof host === "string" ? { now: at(host), at } : { at };
}

/**
 * Options that configure a server the library installs mean nothing with an
 * existing one: they would be silently ignored, so they are an error, as is
 * a Host to install it on. `service` names it in the message (`PostgreSQL`).
 */
export function checkExternalOptions<K extends string>(
    component: string,
    service: string,
    o: Partial<Record<K, unknown>> & { host?: unknown },
    localOnly: readonly K[],
): void {
    if (o.host !== undefined) {
        throw new ConfigError(
            component,
            "host",
            new Described("set together with external"),
            `choose one: host installs ${service} on that Host, external uses an existing server`,
        );
    }
    const set = localOnly.filter((k) => o[k] !== undefined);
    if (set.length) {
        throw new ConfigError(
            component,
            set.join(", "),
            Object.fromEntries(set.map((k) => [k, o[k]])),
            "these configure a server the library installs and do nothing with external; remove them, or configure the existing server itself",
        );
    }
}
