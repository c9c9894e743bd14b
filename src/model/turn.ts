import { FirewallRule, HOST_FILES, PortClaim, Protocol } from "./host";
import { PROXY_FILES } from "./proxy";
import { AcmeSettings, CertificateLineage, lineageLiveDir } from "./proxy/acme";
import { secretFilePath, SynapsePaths } from "./synapse";
import { Checker, isHostname, isIpAddress, isIPv4, isIPv6, isWildcardAddress } from "./validate";

/** coturn's own directory for this library's files. */
const COTURN_DIR = "/etc/coturn/pulumi-matrix";

/** Where TURN's files live on the host (coturn's config, unit drop-in, certificate copy and hook). */
export const TURN_FILES = {
    /** root:turnserver 0750: nothing below is readable by other users. */
    dir: COTURN_DIR,
    /** The file coturn reads: `readable` followed by `secret` (0640 root:turnserver). */
    conf: `${COTURN_DIR}/turnserver.conf`,
    /** The readable part (shown in previews, copied by the drift record). */
    readable: `${COTURN_DIR}/readable.conf`,
    /** `static-auth-secret=...`, root only. */
    secret: `${COTURN_DIR}/secret.conf`,
    /** coturn's copy of the certificate, owned by turnserver. */
    tlsDir: `${COTURN_DIR}/tls`,
    dropIn: "/etc/systemd/system/coturn.service.d/pulumi-matrix.conf",
    /** Older packages start coturn only with TURNSERVER_ENABLED=1 here. */
    defaults: "/etc/default/coturn",
    /** Run by certbot's deploy hook after a renewal (run-parts: letters, digits, - and _ only). */
    certificateHook: `${PROXY_FILES.hooksDir}/coturn`,
    /** What coturn's certificate (its own lineage) was requested with: a change asks the CA again. */
    certificateRequest: `${HOST_FILES.stateDir}/acme-request-coturn`,
} as const;

/**
 * coturn, the TURN server Matrix clients relay calls through when they
 * cannot reach each other directly. Debian's package, on Synapse's host or
 * a host of its own; credentials are short-lived and made by Synapse from a
 * secret it shares with coturn (TURN REST API: `use-auth-secret`); relays to
 * private, loopback and other special addresses are refused, so the server
 * cannot be used to reach the networks behind it.
 */

/** The TURN settings a user writes. */
export interface TurnOptions {
    /**
     * The DNS name clients dial (`turn:<domain>`), such as `turn.example.com`;
     * its A/AAAA records must point at coturn's host. With a `certificate`,
     * coturn gets a certificate of its own for this name alone. Required.
     */
    domain: string;
    /** coturn's `realm` (sent to clients in authentication challenges). Default: `domain`. */
    realm?: string;
    /** Port of plain TURN, UDP and TCP (`listening-port`). Default 3478; `turn:` URIs name it when it is not 3478. */
    port?: number;
    /** Port of TURN over TLS (TCP) and DTLS (UDP) (`tls-listening-port`); used only with a certificate. Default 5349. */
    tlsPort?: number;
    /**
     * The UDP ports coturn relays media on (`min-port`/`max-port`); the
     * firewall opens exactly this range. Between 1024 and 65535; it must not
     * contain another UDP port in use on the host. Default 49152-65535.
     */
    relayPorts?: { min?: number; max?: number };
    /**
     * Addresses coturn listens on (`listening-ip`). Default none: every
     * address of the host. They count as the server's own addresses: a
     * private one is allowed as a peer (two clients relayed by this server
     * reach each other), a public one is refused as a peer (see
     * `allowedPeerIps`).
     */
    listeningIps?: string[];
    /**
     * The host's own IPv4 address coturn relays from (`relay-ip`), on a VM
     * behind NAT its private address; `externalIp` is mapped to it, and it is
     * allowed as a peer so two clients relayed by this server reach each
     * other. Default none: coturn picks relay addresses itself.
     */
    relayIp?: string;
    /**
     * The public IPv4 address clients reach when the host is behind NAT (a
     * cloud VM whose network interface has a private address)
     * (`external-ip`, mapped to `relayIp` when given). Default none: the
     * host's addresses are public.
     */
    externalIp?: string;
    /**
     * Peer addresses allowed although the denied-peer list covers them
     * (`allowed-peer-ip`), such as a media server on your private network.
     * The server's own private addresses (`listeningIps`, `relayIp`) are
     * always allowed. Its own public addresses (`externalIp`, public
     * `listeningIps`) are refused as peers, so a client cannot reach the
     * host's own UDP services through a relay; listing one here allows it
     * again (two clients that both need the relay, and reach it on that
     * address, then reach each other through it). Default none.
     */
    allowedPeerIps?: string[];
    /** Concurrent relay allocations one user may hold (`user-quota`). Default 12. */
    userQuota?: number;
    /** Concurrent relay allocations on the whole server (`total-quota`). Default 1200. */
    totalQuota?: number;
    /**
     * Bandwidth one TURN session may use, in bytes per second, each
     * direction counted on its own (`max-bps`); traffic above it is dropped.
     * Bounds what one client can make the server send. Default 1000000
     * (8 Mbit/s: a 1080p video call needs about a third of it); 0: no limit.
     */
    maxBps?: number;
    /**
     * Bandwidth of all sessions together, in bytes per second
     * (`bps-capacity`): new allocations are refused while it is used up.
     * Default 0: no limit.
     */
    bpsCapacity?: number;
    /**
     * How long the credentials Synapse hands out stay valid
     * (`turn_user_lifetime`), like `1h`, `30m` or `1d`. Default `1h`.
     */
    userLifetime?: string;
    /** Hand TURN credentials to guest users too (`turn_allow_guests`). Default false. */
    allowGuests?: boolean;
}

/**
 * TLS for coturn: a certificate of its own (its own certbot lineage, only
 * the TURN name on it, its own key), obtained from the reverse proxy's ACME
 * CA the way the proxy's is (HTTP-01 through nginx's port 80 on the same
 * host, or DNS-01), so coturn never holds the key of the web names.
 */
export interface TurnCertificate {
    /** The reverse proxy's ACME settings (CA, account e-mail, key type, challenge). */
    acme: AcmeSettings;
}

/** The name of coturn's certbot lineage: `coturn-<domain>`, never the web lineage's (named after the homeserver domain). */
export function turnCertName(domain: string): string {
    return `coturn-${domain}`;
}

/** coturn's settings with every default filled in. */
export interface TurnSettings {
    domain: string;
    realm: string;
    port: number;
    tlsPort: number;
    relayPorts: { min: number; max: number };
    /** Empty: every address. */
    listeningIps: string[];
    relayIp?: string;
    externalIp?: string;
    /** The user's extra allowed peers (the server's own addresses are added when rendering: see `allowedPeers`). */
    allowedPeerIps: string[];
    userQuota: number;
    totalQuota: number;
    /** Bytes per second per session; 0: no limit. */
    maxBps: number;
    /** Bytes per second for all sessions; 0: no limit. */
    bpsCapacity: number;
    userLifetime: string;
    allowGuests: boolean;
    /**
     * TLS and DTLS on `tlsPort` with a certificate of coturn's own (certbot
     * lineage `certName`, live in `liveDir`, from the CA `acme` names);
     * absent: plain TURN only.
     */
    tls?: { certName: string; liveDir: string; acme: AcmeSettings };
}

export const TURN_DEFAULTS = {
    port: 3478,
    tlsPort: 5349,
    relayPorts: { min: 49152, max: 65535 },
    userQuota: 12,
    totalQuota: 1200,
    maxBps: 1_000_000,
    bpsCapacity: 0,
    userLifetime: "1h",
    allowGuests: false,
} as const;

/** The lowest port the relay range may start at: below are the privileged and well-known ports. */
export const MIN_RELAY_PORT = 1024;

/** One range of the denied-peer list and why it is there. */
export interface DeniedPeerRange {
    cidr: string;
    what: string;
}

/**
 * Peers coturn never relays to (`denied-peer-ip`): every address that is
 * not on the public internet, so a TURN client cannot reach the host itself,
 * its private networks or a cloud's metadata service through the relay.
 */
export const DENIED_PEER_RANGES: readonly DeniedPeerRange[] = [
    { cidr: "0.0.0.0/8", what: "this network" },
    { cidr: "10.0.0.0/8", what: "private (RFC 1918)" },
    { cidr: "100.64.0.0/10", what: "carrier-grade NAT (RFC 6598)" },
    { cidr: "127.0.0.0/8", what: "loopback" },
    { cidr: "169.254.0.0/16", what: "link-local (cloud metadata services)" },
    { cidr: "172.16.0.0/12", what: "private (RFC 1918)" },
    { cidr: "192.0.0.0/24", what: "IETF protocol assignments" },
    { cidr: "192.0.2.0/24", what: "documentation (TEST-NET-1)" },
    { cidr: "192.88.99.0/24", what: "6to4 relay anycast (deprecated)" },
    { cidr: "192.168.0.0/16", what: "private (RFC 1918)" },
    { cidr: "198.18.0.0/15", what: "benchmarking (RFC 2544)" },
    { cidr: "198.51.100.0/24", what: "documentation (TEST-NET-2)" },
    { cidr: "203.0.113.0/24", what: "documentation (TEST-NET-3)" },
    { cidr: "224.0.0.0/4", what: "multicast" },
    { cidr: "240.0.0.0/4", what: "reserved, and the broadcast address" },
    { cidr: "::1/128", what: "loopback" },
    { cidr: "::ffff:0:0/96", what: "IPv4-mapped addresses (would reach the IPv4 ranges above)" },
    { cidr: "64:ff9b::/96", what: "NAT64 (would reach the IPv4 ranges above)" },
    { cidr: "100::/64", what: "discard-only" },
    { cidr: "2001::/32", what: "Teredo" },
    { cidr: "2001:db8::/32", what: "documentation" },
    { cidr: "2002::/16", what: "6to4" },
    { cidr: "fc00::/7", what: "unique local" },
    { cidr: "fe80::/10", what: "link-local" },
];

/** A Synapse duration as `turn_user_lifetime` takes it: a whole number and a unit. */
function isDuration(value: unknown): boolean {
    return typeof value === "string" && /^[1-9]\d{0,9}(ms|s|m|h|d|w|y)$/.test(value);
}

/** Fills in the defaults and validates (the certificate's names are checked against `domain`). */
export function resolveTurnSettings(component: string, o: TurnOptions, certificate?: TurnCertificate): TurnSettings {
    const s: TurnSettings = {
        domain: o.domain,
        realm: o.realm ?? o.domain,
        port: o.port ?? TURN_DEFAULTS.port,
        tlsPort: o.tlsPort ?? TURN_DEFAULTS.tlsPort,
        relayPorts: { min: o.relayPorts?.min ?? TURN_DEFAULTS.relayPorts.min, max: o.relayPorts?.max ?? TURN_DEFAULTS.relayPorts.max },
        listeningIps: [...(o.listeningIps ?? [])],
        ...(o.relayIp !== undefined ? { relayIp: o.relayIp } : {}),
        ...(o.externalIp !== undefined ? { externalIp: o.externalIp } : {}),
        allowedPeerIps: [...(o.allowedPeerIps ?? [])],
        userQuota: o.userQuota ?? TURN_DEFAULTS.userQuota,
        totalQuota: o.totalQuota ?? TURN_DEFAULTS.totalQuota,
        maxBps: o.maxBps ?? TURN_DEFAULTS.maxBps,
        bpsCapacity: o.bpsCapacity ?? TURN_DEFAULTS.bpsCapacity,
        userLifetime: o.userLifetime ?? TURN_DEFAULTS.userLifetime,
        allowGuests: o.allowGuests ?? TURN_DEFAULTS.allowGuests,
        ...(certificate ? { tls: { certName: turnCertName(o.domain), liveDir: lineageLiveDir(turnCertName(o.domain)), acme: certificate.acme } } : {}),
    };
    validateTurn(component, s);
    return s;
}

/** Validates settings; every problem is reported at once. */
export function validateTurn(component: string, s: TurnSettings): void {
    const c = new Checker(component);
    c.check("domain", s.domain, typeof s.domain === "string" && isHostname(s.domain), "expected the DNS name clients dial, such as turn.example.com");
    c.check("realm", s.realm, typeof s.realm === "string" && isHostname(s.realm), "expected a DNS name such as turn.example.com (the default is domain)");
    c.port("port", s.port);
    c.port("tlsPort", s.tlsPort);
    if (s.tls) c.check("tlsPort", s.tlsPort, s.tlsPort !== s.port, `expected a port other than port (${s.port})`);
    const { min, max } = s.relayPorts;
    const inRange = (p: unknown) => typeof p === "number" && Number.isInteger(p) && p >= MIN_RELAY_PORT && p <= 65535;
    c.check("relayPorts.min", min, inRange(min), `expected a whole number from ${MIN_RELAY_PORT} to 65535`);
    c.check("relayPorts.max", max, inRange(max), `expected a whole number from ${MIN_RELAY_PORT} to 65535`);
    if (inRange(min) && inRange(max)) {
        c.check("relayPorts", { min, max }, min <= max, "expected min <= max, such as { min: 49152, max: 65535 }");
        for (const [setting, p] of [["port", s.port], ...(s.tls ? [["tlsPort", s.tlsPort]] : [])] as [string, number][])
            c.check("relayPorts", { min, max }, !(p >= min && p <= max), `expected a range without coturn's own ${setting} ${p}; choose another range or port`);
    }
    for (const a of s.listeningIps)
        c.check(
            "listeningIps",
            a,
            typeof a === "string" && isIpAddress(a) && !isWildcardAddress(a),
            "expected specific IP addresses of this host, such as 203.0.113.10 (leave listeningIps out for every address)",
        );
    if (s.relayIp !== undefined)
        c.check(
            "relayIp",
            s.relayIp,
            typeof s.relayIp === "string" && isIPv4(s.relayIp) && !isWildcardAddress(s.relayIp),
            isIPv6(String(s.relayIp))
                ? "expected an IPv4 address such as 10.0.0.5 (an IPv6 address is not translated by NAT: leave relayIp out)"
                : "expected the host's own IPv4 address, such as 10.0.0.5",
        );
    if (s.externalIp !== undefined)
        c.check(
            "externalIp",
            s.externalIp,
            typeof s.externalIp === "string" && isIPv4(s.externalIp) && !isWildcardAddress(s.externalIp),
            isIPv6(String(s.externalIp))
                ? "expected an IPv4 address such as 203.0.113.10: externalIp is the public IPv4 address of a host behind NAT (IPv6 needs no NAT mapping: leave it out)"
                : "expected the host's public IPv4 address, such as 203.0.113.10",
        );
    for (const a of s.allowedPeerIps)
        c.check("allowedPeerIps", a, typeof a === "string" && isIpAddress(a) && !isWildcardAddress(a), "expected single IP addresses, such as 10.0.0.7");
    c.positiveInt("userQuota", s.userQuota, 100000);
    c.positiveInt("totalQuota", s.totalQuota, 1000000);
    for (const [setting, value] of [
        ["maxBps", s.maxBps],
        ["bpsCapacity", s.bpsCapacity],
    ] as const)
        c.check(
            setting,
            value,
            typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 100_000_000_000,
            "expected a whole number of bytes per second, such as 1000000 (8 Mbit/s), or 0 for no limit",
        );
    if (Number.isInteger(s.userQuota) && Number.isInteger(s.totalQuota))
        c.check("userQuota", s.userQuota, s.userQuota <= s.totalQuota, `expected at most totalQuota (${s.totalQuota})`);
    c.check(
        "userLifetime",
        s.userLifetime,
        isDuration(s.userLifetime),
        "expected a duration such as 1h, 30m or 1d (a whole number and ms, s, m, h, d, w or y)",
    );
    c.check("allowGuests", s.allowGuests, typeof s.allowGuests === "boolean", "expected true or false");
    c.done();
}

/** The server's own addresses that the configuration knows: where it listens, relays from, and its public address behind NAT. */
export function ownAddresses(s: TurnSettings): string[] {
    return [...new Set([...s.listeningIps, ...(s.relayIp !== undefined ? [s.relayIp] : []), ...(s.externalIp !== undefined ? [s.externalIp] : [])])];
}

/** The ports coturn listens on: plain TURN, and TLS/DTLS with a certificate; UDP and TCP each. */
export function turnPorts(s: TurnSettings): { port: number; protocol: Protocol; owner: string; setting: string }[] {
    const both = (port: number, owner: string, setting: string) => (["udp", "tcp"] as const).map((protocol) => ({ port, protocol, owner, setting }));
    return [...both(s.port, "coturn", "port"), ...(s.tls ? both(s.tlsPort, "coturn TLS/DTLS", "tlsPort") : [])];
}

/**
 * What coturn binds on its host: each listening port on each listening
 * address ("*": every address), and the relay range on UDP, which nothing
 * else on the host may listen in (a relay allocation would take the port, or
 * fail). TCP listeners in the range do not clash: relays are UDP only
 * (`no-tcp-relay`).
 */
export function turnPortClaims(s: TurnSettings): PortClaim[] {
    const addresses = s.listeningIps.length ? s.listeningIps : ["*"];
    return [
        ...turnPorts(s).flatMap((p) => addresses.map((address) => ({ ...p, address }))),
        { port: s.relayPorts.min, toPort: s.relayPorts.max, protocol: "udp", address: "*", owner: "coturn relay", setting: "relayPorts" },
    ];
}

/** Open to everyone: the listening ports and the relay range (UDP: TCP relays are off). */
export function turnFirewallRules(s: TurnSettings): FirewallRule[] {
    return [
        ...turnPorts(s).map(({ port, protocol, owner }) => ({ port, protocol, owner })),
        { port: s.relayPorts.min, toPort: s.relayPorts.max, protocol: "udp", owner: "coturn relay" },
    ];
}

/** coturn's certbot lineage: only the TURN name. */
export function turnLineage(s: Pick<TurnSettings, "domain">): CertificateLineage {
    return { certName: turnCertName(s.domain), names: [s.domain], requestFile: TURN_FILES.certificateRequest };
}

/** The URIs Synapse hands to clients (`turn_uris`): UDP and TCP, and TLS with a certificate. */
export function turnUris(s: TurnSettings): string[] {
    const plain = s.port === TURN_DEFAULTS.port ? s.domain : `${s.domain}:${s.port}`;
    return [`turn:${plain}?transport=udp`, `turn:${plain}?transport=tcp`, ...(s.tls ? [`turns:${s.domain}:${s.tlsPort}?transport=tcp`] : [])];
}

/** The file name of the shared secret in Synapse's secrets directory. */
export const TURN_SECRET_FILE = "turn_shared_secret";

/** Synapse's side of TURN: a conf.d fragment (readable) and the shared secret (secret), beside Synapse's own files. */
export function turnSynapseFiles(paths: SynapsePaths) {
    return {
        /** turn_uris, turn_shared_secret_path, turn_user_lifetime, turn_allow_guests. */
        fragment: `${paths.configDir}/conf.d/45-turn.yaml`,
        secret: secretFilePath(paths, { name: TURN_SECRET_FILE, kind: "secret" }),
    };
}
