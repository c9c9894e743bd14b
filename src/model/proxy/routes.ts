import { WorkerRole, WorkerUpstream } from "../workers";
import { RouteMethod, Stickiness, WORKER_ROUTES, WorkerRoute } from "../workers/routes";

/**
 * The route table applied to the workers a pool has: which regex locations a
 * reverse proxy needs, in order, and which upstream (a role's workers with
 * the route's stickiness, or the main process) each request method goes to.
 */

/** Methods a location can split on; every other method takes the location's default. */
const METHODS: readonly RouteMethod[] = ["GET", "HEAD", "POST", "PUT", "DELETE"];

/** The main process: what every request no worker serves goes to. */
export const MAIN_UPSTREAM = "pm_main";

/** The upstream of a role's workers with a stickiness (one upstream per pair: nginx balances per upstream). */
export function upstreamName(role: WorkerRole | "main", sticky: Stickiness): string {
    if (role === "main") return MAIN_UPSTREAM;
    const suffix = { none: "", source_ip: "_by_ip", user: "_by_user", room: "_by_room", single: "_single" }[sticky];
    return `pm_${role}${suffix}`;
}

/** One regex location of the proxy. */
export interface ProxyLocation {
    /** The route's index in the table: names the location's method map, stable whichever roles have workers. */
    id: number;
    /** The route's regex. */
    pattern: string;
    /** The upstream of every method not in `byMethod`. */
    upstream: string;
    /** Methods that go elsewhere than `upstream` (e.g. GET to a client reader, writes to main). */
    byMethod: { method: RouteMethod; upstream: string }[];
    /** The path is part of Synapse's admin API: only the admin allow-list may call it. */
    admin: boolean;
    /** The docs' heading of the route, for a comment. */
    group: string;
    /** Its requests long-poll (`/sync`): the location gets the long read timeout (see `LONG_POLL_TIMEOUT`). */
    longPoll: boolean;
}

/**
 * nginx's read timeout for long-polling requests: clients ask Synapse to hold
 * a /sync up to their `timeout` (30 s for most, minutes for some mobile
 * clients in battery-saving modes); every other request keeps nginx's
 * default of 60 s, so a stuck upstream frees the connection soon.
 */
export const LONG_POLL_TIMEOUT = "600s";

/** A role's workers as one upstream: the servers and how requests stick to one of them. */
export interface ProxyUpstream {
    name: string;
    role: WorkerRole;
    sticky: Stickiness;
    /** `address:port` of each worker (one for `single`). */
    servers: string[];
}

function targetOf(route: WorkerRoute, method: RouteMethod | "other", present: (role: WorkerRole) => boolean): string {
    const t = route.targets.find((x) => present(x.role) && (!x.methods || (method !== "other" && x.methods.includes(method))));
    return upstreamName(t?.role ?? "main", route.sticky);
}

/**
 * The locations a proxy renders for the roles that have workers, in the
 * table's order (nginx takes the first matching regex). A route whose every
 * method goes to main is left out (the catch-all sends it there) unless a
 * later location would otherwise take its paths, or it long-polls (its
 * location carries the long read timeout, also for the main process).
 */
export function proxyLocations(present: (role: WorkerRole) => boolean, routes: readonly WorkerRoute[] = WORKER_ROUTES): ProxyLocation[] {
    const kept: ProxyLocation[] = [];
    for (let id = routes.length - 1; id >= 0; id--) {
        const route = routes[id];
        const upstream = targetOf(route, "other", present);
        const byMethod = METHODS.map((method) => ({ method, upstream: targetOf(route, method, present) })).filter((m) => m.upstream !== upstream);
        const toMain = upstream === MAIN_UPSTREAM && byMethod.length === 0;
        const shadowed = route.examples.some((path) => kept.some((l) => new RegExp(l.pattern).test(path)));
        if (toMain && !shadowed && !route.longPoll) continue;
        kept.push({
            id,
            pattern: route.pattern,
            upstream,
            byMethod,
            admin: route.pattern.startsWith("^/_synapse/admin"),
            group: route.group,
            longPoll: route.longPoll === true,
        });
    }
    return kept.reverse();
}

/** The upstreams the locations use (main excluded), each with its workers' addresses. */
export function proxyUpstreams(locations: readonly ProxyLocation[], workers: readonly WorkerUpstream[]): ProxyUpstream[] {
    const used = new Set(locations.flatMap((l) => [l.upstream, ...l.byMethod.map((m) => m.upstream)]));
    const out: ProxyUpstream[] = [];
    for (const role of [...new Set(workers.map((w) => w.role))]) {
        const servers = workers.filter((w) => w.role === role).map((w) => new URL(w.url).host);
        for (const sticky of ["none", "source_ip", "user", "room", "single"] as const) {
            const name = upstreamName(role, sticky);
            if (used.has(name)) out.push({ name, role, sticky, servers: sticky === "single" ? servers.slice(0, 1) : servers });
        }
    }
    return out;
}

/** Who serves a request through these locations (nginx's first match), for tests and reviews. */
export function proxyTarget(locations: readonly ProxyLocation[], path: string, method: RouteMethod): string {
    const l = locations.find((x) => new RegExp(x.pattern).test(path));
    if (!l) return MAIN_UPSTREAM;
    return l.byMethod.find((m) => m.method === method)?.upstream ?? l.upstream;
}

/** The kinds of request a proxy limits per client address (see ReverseProxyOptions' `loginRateLimit` and `registrationRateLimit`). */
export type RateLimitZone = "login" | "registration";

/** A request the proxy rate-limits: its method and path regex, whoever serves it. */
export interface RateLimitedRequest {
    zone: RateLimitZone;
    method: RouteMethod;
    /** The path regex (nginx's, on the normalized URI). */
    pattern: string;
    /** Paths it must match. */
    examples: readonly string[];
}

/**
 * Requests that try a password or a secret, or make Synapse send mail or
 * create an account: limited per client address in front of Synapse (whose
 * own `rc_login` and `rc_registration` limits still apply behind it). Reads
 * such as `GET /login` (the login flows every client asks for) are not.
 */
export const RATE_LIMITED: readonly RateLimitedRequest[] = [
    {
        zone: "login",
        method: "POST",
        pattern: "^/_matrix/client/(api/v1|r0|v3|unstable)/login$",
        examples: ["/_matrix/client/v3/login", "/_matrix/client/r0/login"],
    },
    // The current password, asked for by user-interactive auth.
    { zone: "login", method: "POST", pattern: "^/_matrix/client/(r0|v3|unstable)/account/password$", examples: ["/_matrix/client/v3/account/password"] },
    // Registration with the shared secret's HMAC (also behind the admin allow-list).
    { zone: "login", method: "POST", pattern: "^/_synapse/admin/v1/register$", examples: ["/_synapse/admin/v1/register"] },
    { zone: "registration", method: "POST", pattern: "^/_matrix/client/(r0|v3|unstable)/register$", examples: ["/_matrix/client/v3/register"] },
    // Each sends a mail or a text message.
    {
        zone: "registration",
        method: "POST",
        pattern: "^/_matrix/client/(r0|v3|unstable)/(register|account/password|account/3pid)/(email|msisdn)/requestToken$",
        examples: ["/_matrix/client/v3/register/email/requestToken", "/_matrix/client/v3/account/password/email/requestToken"],
    },
    // Guessing a registration token.
    {
        zone: "registration",
        method: "GET",
        pattern: "^/_matrix/client/v1/register/m.login.registration_token/validity$",
        examples: ["/_matrix/client/v1/register/m.login.registration_token/validity"],
    },
];

/** The zone a request is limited in, if any (the first entry of `RATE_LIMITED` that matches). */
export function rateLimitZone(method: RouteMethod, path: string, limited: readonly RateLimitedRequest[] = RATE_LIMITED): RateLimitZone | undefined {
    return limited.find((l) => l.method === method && new RegExp(l.pattern).test(path))?.zone;
}
