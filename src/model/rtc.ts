import { FirewallRule, PortClaim } from "./host";
import { homeserverDomain, serverNameHost } from "./proxy";
import { SynapsePaths } from "./synapse";
import { Checker, isHostname, isIPv4, isIPv6, isPlainUrl, isPort, isServerName } from "./validate";

/**
 * MatrixRTC: the back end Element X and Element Call place calls through.
 * Two programs from their projects' release binaries, each pinned by
 * version and SHA-256 and run as its own system user: `livekit-server`
 * (the LiveKit SFU, which forwards the media) and element-hq's
 * `lk-jwt-service` (the MatrixRTC authorization service, which turns a
 * Matrix OpenID token into a LiveKit access token). nginx serves both on
 * the homeserver's domain or an `rtcDomain` of their own; Synapse and the
 * client well-known advertise the authorization service.
 */

/** A pinned release binary. */
export interface RtcRelease {
    /** The release, such as `1.13.5` (no leading v). Default: see `RTC_DEFAULTS`. */
    version?: string;
    /**
     * SHA-256 (64 hex digits) of the file `downloadUrl` names for this
     * version and architecture; the download is used only when it matches.
     * Required: the library ships no checksum (see `RTC_SHA256_HOWTO`).
     */
    sha256: string;
    /**
     * Where the host downloads the release; `{version}` and `{arch}` are
     * replaced. A URL ending in `.tar.gz` is a tarball holding the program
     * at its top level; any other is the program itself. Default: the
     * project's GitHub release (see `RTC_DEFAULTS`).
     */
    downloadUrl?: string;
}

/** The MatrixRTC settings a user writes. */
export interface RtcOptions {
    /**
     * The DNS name clients reach the authorization service and the SFU on
     * (`https://<domain>/livekit/jwt`, `wss://<domain>/livekit/sfu`); it
     * must point at the proxy's host and is added to its certificate.
     * Default: the homeserver's own domain (the host of Synapse's publicBaseUrl).
     */
    domain?: string;
    /** livekit-server, the LiveKit SFU: version, SHA-256, download URL. */
    livekit: RtcRelease;
    /** lk-jwt-service, the MatrixRTC authorization service: version, SHA-256, download URL. */
    jwtService: RtcRelease;
    /** The host's CPU architecture the binaries are for (`{arch}` in the URLs); the install refuses another. Default `amd64`. */
    architecture?: "amd64" | "arm64";
    /**
     * The host's public IP address the SFU advertises to clients as its ICE
     * candidate (livekit's `rtc.node_ip`), such as a cloud VM's public
     * address behind NAT. Default none: the SFU finds it through STUN
     * (`rtc.use_external_ip`), which fails behind some NATs.
     */
    publicAddress?: string;
    /**
     * The address of the host's own network interface that carries the
     * SFU's media: LiveKit gathers its ICE candidates on it alone (livekit's
     * `rtc.ips.includes`). On a host with a second network (a private
     * network, a VPN, a container bridge), LiveKit would otherwise announce
     * `publicAddress` for every interface and may answer a client, or its
     * own TURN relay, from an address that cannot be reached or that the
     * relay does not allow: calls then fail at random. Default:
     * `publicAddress` when it is given (a VM that holds its public
     * address, as at most VPS providers); none without it (LiveKit's STUN
     * discovery sorts the addresses). Behind 1:1 NAT (AWS, GCP, Azure) give
     * the private address the NAT maps `publicAddress` to. The server step
     * refuses an address the host does not have, before it changes anything.
     */
    localAddress?: string;
    /** The SFU's HTTP and WebSocket port on loopback, behind nginx (livekit's `port`). Default 7880. */
    port?: number;
    /** The authorization service's HTTP port on loopback, behind nginx (`LIVEKIT_JWT_BIND`). Default 8080. */
    jwtPort?: number;
    /** ICE over TCP, for clients that cannot use UDP (livekit's `rtc.tcp_port`); opened in the firewall. Default 7881. */
    tcpPort?: number;
    /**
     * ICE over UDP on one port for every participant (livekit's
     * `rtc.udp_port`); opened in the firewall. Default 7882. Leave it out
     * and give `udpPorts` for a range instead.
     */
    udpPort?: number;
    /**
     * ICE over UDP on a range of ports (livekit's
     * `rtc.port_range_start`/`port_range_end`), two ports per participant;
     * opened in the firewall. Default none (one port: `udpPort`).
     */
    udpPorts?: { min: number; max: number };
    /**
     * How many participants may be in calls at once on this SFU; with
     * `udpPorts`, the range must hold two ports for each. Default 100.
     */
    maxParticipants?: number;
    /**
     * Server names whose users may create calls (rooms) on the SFU
     * (`LIVEKIT_FULL_ACCESS_HOMESERVERS`); users of other servers may only
     * join calls that exist. Default: the homeserver's server_name.
     */
    fullAccessHomeservers?: string[];
    /**
     * LiveKit's built-in TURN server over TLS on port 443, for clients behind
     * firewalls that let only HTTPS out (livekit's `turn` section). nginx
     * takes the TLS connections on 443 that ask for `turn.domain` (by SNI,
     * before any handshake), ends TLS with the proxy's certificate and hands
     * the stream to the TURN server (`external_tls`); every other name goes
     * to the web servers as before. Default none: no TURN (clients reach the
     * SFU on `tcpPort` and `udpPort` only).
     */
    turn?: RtcTurnOptions;
}

/** LiveKit's TURN server, reached as `turns:<domain>:443` (see `RtcOptions.turn`). */
export interface RtcTurnOptions {
    /**
     * The name TURN/TLS is served on (livekit's `turn.domain`): a DNS name of
     * its own that points at the proxy's host, not one the web servers use;
     * added to the proxy's certificate. Required.
     */
    domain: string;
    /** The TURN server's TCP port on this host, which only nginx connects to (livekit's `turn.tls_port`); never opened in the firewall. Default 7883. */
    port?: number;
    /**
     * The UDP ports the TURN server relays media from (livekit's
     * `turn.relay_range_start`/`relay_range_end`), at least two per
     * participant (`maxParticipants`). Default 30000-40000, LiveKit's.
     */
    relayPorts?: { min: number; max: number };
}

/** Where MatrixRTC's files live on the host. */
const RTC_CONF_DIR = "/etc/pulumi-matrix/rtc";
const RTC_BIN_DIR = "/opt/pulumi-matrix/rtc";

export const RTC_FILES = {
    /** 0755 root: the configs below (each readable by its program's group only). */
    confDir: RTC_CONF_DIR,
    /** livekit-server's config.yaml (0640 root:livekit). */
    livekitConfig: `${RTC_CONF_DIR}/livekit.yaml`,
    /** `<key>: <secret>` (livekit's `key_file`; 0640 root:livekit, no access for others, as livekit requires). */
    livekitKeys: `${RTC_CONF_DIR}/livekit-keys.yaml`,
    /** lk-jwt-service's environment (no secret: it names the key file). 0640 root:lk-jwt-service. */
    jwtEnv: `${RTC_CONF_DIR}/lk-jwt-service.env`,
    /** `<key>:<secret>` (`LIVEKIT_KEY_FILE`; 0640 root:lk-jwt-service). */
    jwtKey: `${RTC_CONF_DIR}/lk-jwt-service.key`,
    /** The installed binaries: `<program>-<version>/<program>`, beside it `<program>-<version>.sha256`. */
    binDir: RTC_BIN_DIR,
    livekitUnit: "/etc/systemd/system/livekit-server.service",
    jwtUnit: "/etc/systemd/system/lk-jwt-service.service",
} as const;

/** The system users the two programs run as. */
export const RTC_USERS = { livekit: "livekit", jwt: "lk-jwt-service" } as const;

/** The unit names. */
export const RTC_UNITS = { livekit: "livekit-server.service", jwt: "lk-jwt-service.service" } as const;

/** The paths nginx serves the two programs on. */
export const RTC_PATHS = { jwt: "/livekit/jwt", sfu: "/livekit/sfu" } as const;

export const RTC_DEFAULTS = {
    architecture: "amd64",
    port: 7880,
    jwtPort: 8080,
    tcpPort: 7881,
    udpPort: 7882,
    turnPort: 7883,
    /** LiveKit's own default relay range. */
    turnRelayPorts: { min: 30000, max: 40000 },
    maxParticipants: 100,
    livekit: {
        version: "1.13.5",
        downloadUrl: "https://github.com/livekit/livekit/releases/download/v{version}/livekit_{version}_linux_{arch}.tar.gz",
    },
    jwtService: {
        version: "0.5.0",
        downloadUrl: "https://github.com/element-hq/lk-jwt-service/releases/download/v{version}/lk-jwt-service_linux_{arch}",
    },
} as const;

/** How a user finds the checksum to pin; every error about a sha256 says it. */
export const RTC_SHA256_HOWTO =
    "download the release file for your architecture from the project's GitHub release page (livekit/livekit, element-hq/lk-jwt-service), " +
    "compare it with the checksums the release publishes where it has them, then take sha256sum <file>";

/** One program's pinned release with the URL made for its version and architecture. */
export interface RtcBinary {
    /** The program's file name (`livekit-server`, `lk-jwt-service`). */
    program: string;
    version: string;
    /** Lower-case hex. */
    sha256: string;
    downloadUrl: string;
    /** The URL names a gzip tarball holding `program` at its top level; otherwise it is the program. */
    tarball: boolean;
    /** Where it is installed: `<binDir>/<program>-<version>/<program>`. */
    path: string;
}

/** MatrixRTC's settings with every default filled in. */
export interface RtcSettings {
    /** The DNS name nginx serves the two programs on. */
    domain: string;
    /** `domain` is not the homeserver's: nginx has a server block for it alone, and the certificate covers it. */
    ownDomain: boolean;
    livekit: RtcBinary;
    jwtService: RtcBinary;
    architecture: "amd64" | "arm64";
    publicAddress?: string;
    /** The one local address LiveKit gathers ICE candidates on, if any (`localAddress`, else `publicAddress`). */
    localAddress?: string;
    port: number;
    jwtPort: number;
    tcpPort: number;
    /** One UDP port, or a range. */
    udp: { kind: "mux"; port: number } | { kind: "range"; min: number; max: number };
    maxParticipants: number;
    fullAccessHomeservers: string[];
    /** What clients and Synapse are told: the authorization service's base URL (`livekit_service_url`). */
    serviceUrl: string;
    /** The SFU's public WebSocket URL (`LIVEKIT_URL`). */
    sfuUrl: string;
    /** LiveKit's TURN server behind nginx's TLS on 443, if any. */
    turn?: { domain: string; port: number; relayPorts: { min: number; max: number } };
}

/** What MatrixRTC needs of the homeserver and the rest of the stack. */
export interface RtcHomeserver {
    serverName: string;
    publicBaseUrl: string;
    /** Element Web's domain, if the stack serves it: the RTC domain must differ. */
    elementDomain?: string;
}

const VERSION = /^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$/;

/** The URL for a version and architecture, or undefined when the template is not an http(s) URL. */
function downloadUrlFor(template: unknown, version: string, arch: string): string | undefined {
    if (typeof template !== "string") return undefined;
    const url = template.split("{version}").join(version).split("{arch}").join(arch);
    return isPlainUrl(url) ? url : undefined;
}

/** An address an interface can hold and media can use: IPv4 or IPv6, not loopback, link-local, multicast, unspecified or IPv4-mapped. */
export function isLocalInterfaceAddress(a: string): boolean {
    if (isIPv4(a)) {
        const [x, y] = a.split(".").map(Number);
        return !(x === 0 || x === 127 || (x === 169 && y === 254) || x >= 224);
    }
    if (isIPv6(a)) {
        const l = a.toLowerCase();
        const first = parseInt(l.split(":")[0] || "0", 16);
        // Link-local fe80::/10, multicast ff00::/8, IPv4-mapped ::ffff:0:0/96.
        return !(l === "::" || l === "::1" || (first & 0xffc0) === 0xfe80 || (first & 0xff00) === 0xff00 || l.startsWith("::ffff:"));
    }
    return false;
}

/** Whether an IP address is one clients on the internet can reach: an interface's address that is not private or otherwise special. */
export function isPublicAddress(a: string): boolean {
    if (!isLocalInterfaceAddress(a)) return false;
    if (isIPv4(a)) {
        const [x, y, z] = a.split(".").map(Number);
        return !(
            x === 10 ||
            (x === 100 && y >= 64 && y <= 127) ||
            (x === 172 && y >= 16 && y <= 31) ||
            (x === 192 && y === 168) ||
            (x === 192 && y === 0 && z === 0) ||
            (x === 198 && (y === 18 || y === 19))
        );
    }
    // Unique local fc00::/7.
    return (parseInt(a.toLowerCase().split(":")[0] || "0", 16) & 0xfe00) !== 0xfc00;
}

function resolveRelease(c: Checker, setting: "livekit" | "jwtService", program: string, o: RtcRelease | undefined, arch: string): RtcBinary {
    const d = RTC_DEFAULTS[setting];
    c.check(setting, o, typeof o === "object" && o !== null, `expected { version, sha256 } of the ${program} release: ${RTC_SHA256_HOWTO}`);
    const r: Partial<RtcRelease> = typeof o === "object" && o !== null ? o : {};
    const version = r.version ?? d.version;
    c.check(
        `${setting}.version`,
        version,
        typeof version === "string" && VERSION.test(version),
        `expected a ${program} release such as ${d.version} (no leading v; pin its sha256 with it)`,
    );
    c.check(
        `${setting}.sha256`,
        r.sha256,
        typeof r.sha256 === "string" && /^[0-9a-fA-F]{64}$/.test(r.sha256),
        `expected the SHA-256 of the ${program} ${version} release file for linux ${arch} (64 hex digits); there is no default: ${RTC_SHA256_HOWTO}`,
    );
    const url = downloadUrlFor(r.downloadUrl ?? d.downloadUrl, String(version), arch);
    c.check(
        `${setting}.downloadUrl`,
        r.downloadUrl,
        url !== undefined,
        "expected an http(s) URL without credentials, such as the default " + d.downloadUrl + " ({version} and {arch} are replaced)",
    );
    return {
        program,
        version: String(version),
        sha256: String(r.sha256).toLowerCase(),
        downloadUrl: url ?? "",
        tarball: (url ?? "").replace(/[?#].*$/, "").endsWith(".tar.gz"),
        path: `${RTC_BIN_DIR}/${program}-${String(version)}/${program}`,
    };
}

/** Fills in the defaults and validates (every problem at once). */
export function resolveRtcSettings(component: string, o: RtcOptions, homeserver: RtcHomeserver): RtcSettings {
    const c = new Checker(component);
    const hsDomain = homeserverDomain(homeserver.publicBaseUrl);
    const domain = o.domain ?? hsDomain;
    c.check("domain", domain, typeof domain === "string" && isHostname(domain), "expected a DNS name such as rtc.example.com that points at the proxy's host");
    if (homeserver.elementDomain !== undefined)
        c.check(
            "domain",
            domain,
            domain !== homeserver.elementDomain,
            `it is Element's domain (${homeserver.elementDomain}): serve MatrixRTC on the homeserver's domain (${hsDomain}, the default) or a name of its own such as rtc.${serverNameHost(homeserver.serverName)}`,
        );
    const architecture = o.architecture ?? RTC_DEFAULTS.architecture;
    c.oneOf("architecture", architecture, ["amd64", "arm64"]);
    const livekit = resolveRelease(c, "livekit", "livekit-server", o.livekit, architecture);
    const jwtService = resolveRelease(c, "jwtService", "lk-jwt-service", o.jwtService, architecture);
    if (o.publicAddress !== undefined)
        c.check(
            "publicAddress",
            o.publicAddress,
            typeof o.publicAddress === "string" && isPublicAddress(o.publicAddress),
            "expected the host's public IP address that clients on the internet reach, such as 203.0.113.10 (not a private, loopback or link-local address; leave it out to discover it through STUN)",
        );
    if (o.localAddress !== undefined)
        c.check(
            "localAddress",
            o.localAddress,
            typeof o.localAddress === "string" && isLocalInterfaceAddress(o.localAddress),
            "expected an IP address of the host's own network interface that carries the media, such as 10.0.0.5 behind 1:1 NAT (not loopback, link-local, multicast or unspecified; leave it out to use publicAddress)",
        );
    const localAddress = o.localAddress ?? o.publicAddress;
    const port = o.port ?? RTC_DEFAULTS.port;
    const jwtPort = o.jwtPort ?? RTC_DEFAULTS.jwtPort;
    const tcpPort = o.tcpPort ?? RTC_DEFAULTS.tcpPort;
    c.port("port", port);
    c.port("jwtPort", jwtPort);
    c.port("tcpPort", tcpPort);
    const maxParticipants = o.maxParticipants ?? RTC_DEFAULTS.maxParticipants;
    c.positiveInt("maxParticipants", maxParticipants, 100000);
    let udp: RtcSettings["udp"];
    if (o.udpPorts !== undefined) {
        c.check("udpPort", o.udpPort, o.udpPort === undefined, "expected udpPort or udpPorts, not both: one UDP port for everyone, or a range");
        const { min, max } = o.udpPorts ?? ({} as { min: number; max: number });
        c.port("udpPorts.min", min);
        c.port("udpPorts.max", max);
        if (isPort(min) && isPort(max)) {
            c.check("udpPorts", { min, max }, min <= max, "expected min <= max, such as { min: 50000, max: 60000 }");
            if (min <= max && Number.isInteger(maxParticipants))
                c.check(
                    "udpPorts",
                    { min, max },
                    max - min + 1 >= 2 * maxParticipants,
                    `expected at least ${2 * maxParticipants} ports: two per participant for maxParticipants ${maxParticipants} (the range has ${max - min + 1})`,
                );
        }
        udp = { kind: "range", min, max };
    } else {
        const p = o.udpPort ?? RTC_DEFAULTS.udpPort;
        c.port("udpPort", p);
        udp = { kind: "mux", port: p };
    }
    const turn = resolveTurn(c, o.turn, { domain, hsDomain, elementDomain: homeserver.elementDomain, maxParticipants, udp });
    // The TCP ports must differ from each other (the UDP ones are another protocol).
    const tcp: [string, number][] = [
        ["port", port],
        ["jwtPort", jwtPort],
        ["tcpPort", tcpPort],
        ...(turn ? [["turn.port", turn.port] as [string, number]] : []),
    ];
    for (let i = 0; i < tcp.length; i++)
        for (let j = 0; j < i; j++)
            if (isPort(tcp[i][1]))
                c.check(tcp[i][0], tcp[i][1], tcp[i][1] !== tcp[j][1], `expected a port other than ${tcp[j][0]} (${tcp[j][1]}): both are TCP on this host`);
    const fullAccessHomeservers = o.fullAccessHomeservers ?? [homeserver.serverName];
    c.check(
        "fullAccessHomeservers",
        fullAccessHomeservers,
        Array.isArray(fullAccessHomeservers) && fullAccessHomeservers.length > 0,
        'expected at least one server name, such as ["example.com"] (the default is the homeserver\'s server_name)',
    );
    for (const n of Array.isArray(fullAccessHomeservers) ? fullAccessHomeservers : [])
        c.check("fullAccessHomeservers", n, typeof n === "string" && isServerName(n), "expected Matrix server names such as example.com");
    c.done();
    return {
        domain,
        ownDomain: domain !== hsDomain,
        livekit,
        jwtService,
        architecture,
        ...(o.publicAddress !== undefined ? { publicAddress: o.publicAddress } : {}),
        ...(localAddress !== undefined ? { localAddress } : {}),
        port,
        jwtPort,
        tcpPort,
        udp,
        maxParticipants,
        fullAccessHomeservers: [...fullAccessHomeservers],
        serviceUrl: `https://${domain}${RTC_PATHS.jwt}`,
        sfuUrl: `wss://${domain}${RTC_PATHS.sfu}`,
        ...(turn ? { turn } : {}),
    };
}

/** `turn`'s settings, checked against the names and UDP ports the rest of MatrixRTC and the proxy use. */
function resolveTurn(
    c: Checker,
    o: RtcTurnOptions | undefined,
    around: { domain: string; hsDomain: string; elementDomain?: string; maxParticipants: number; udp: RtcSettings["udp"] },
): RtcSettings["turn"] {
    if (o === undefined) return undefined;
    c.check("turn", o, typeof o === "object" && o !== null, "expected { domain } (and optionally port, relayPorts): TURN over TLS on 443 for that name");
    const t: Partial<RtcTurnOptions> = typeof o === "object" && o !== null ? o : {};
    const domain = t.domain;
    c.check(
        "turn.domain",
        domain,
        typeof domain === "string" && isHostname(domain),
        "expected a DNS name of its own such as turn.example.com that points at the proxy's host",
    );
    const taken: [string | undefined, string][] = [
        [around.hsDomain, "the homeserver's domain"],
        [around.domain !== around.hsDomain ? around.domain : undefined, "MatrixRTC's domain (rtc.domain)"],
        [around.elementDomain, "Element's domain"],
    ];
    for (const [name, what] of taken)
        if (name !== undefined)
            c.check(
                "turn.domain",
                domain,
                domain !== name,
                `it is ${what}: nginx sends every TLS connection for the TURN name to the TURN server, so it needs a name no web server uses, such as turn.${name.replace(/^(matrix|rtc|element)\./, "")}`,
            );
    const port = t.port ?? RTC_DEFAULTS.turnPort;
    c.port("turn.port", port);
    // One end given alone keeps the other's default (as the stack keys set them one at a time).
    const { min, max } = { ...RTC_DEFAULTS.turnRelayPorts, ...(typeof t.relayPorts === "object" && t.relayPorts !== null ? t.relayPorts : {}) };
    c.port("turn.relayPorts.min", min);
    c.port("turn.relayPorts.max", max);
    if (isPort(min) && isPort(max)) {
        c.check("turn.relayPorts", { min, max }, min <= max, "expected min <= max, such as { min: 30000, max: 40000 }");
        if (min <= max && Number.isInteger(around.maxParticipants))
            c.check(
                "turn.relayPorts",
                { min, max },
                max - min + 1 >= 2 * around.maxParticipants,
                `expected at least ${2 * around.maxParticipants} ports: two per participant for maxParticipants ${around.maxParticipants} (the range has ${max - min + 1})`,
            );
        const [umin, umax] = around.udp.kind === "mux" ? [around.udp.port, around.udp.port] : [around.udp.min, around.udp.max];
        if (isPort(umin) && isPort(umax))
            c.check(
                "turn.relayPorts",
                { min, max },
                max < umin || min > umax,
                `expected a range without the SFU's ICE/UDP port${umin === umax ? ` ${umin}` : `s ${umin}-${umax}`}: both are UDP on this host`,
            );
    }
    return { domain: String(domain), port, relayPorts: { min, max } };
}

/** What the SFU and the authorization service bind on their host. */
export function rtcPortClaims(s: RtcSettings): PortClaim[] {
    return [
        { port: s.port, protocol: "tcp", address: "127.0.0.1", owner: "livekit-server HTTP", setting: "port" },
        { port: s.jwtPort, protocol: "tcp", address: "127.0.0.1", owner: "lk-jwt-service", setting: "jwtPort" },
        { port: s.tcpPort, protocol: "tcp", address: "*", owner: "livekit-server ICE/TCP", setting: "tcpPort" },
        s.udp.kind === "mux"
            ? { port: s.udp.port, protocol: "udp", address: "*", owner: "livekit-server ICE/UDP", setting: "udpPort" }
            : { port: s.udp.min, toPort: s.udp.max, protocol: "udp", address: "*", owner: "livekit-server ICE/UDP", setting: "udpPorts" },
        // LiveKit binds its TURN listener and relay sockets on every address (relays must reach the public address); the firewall opens neither.
        ...(s.turn
            ? [
                  { port: s.turn.port, protocol: "tcp", address: "*", owner: "livekit-server TURN (behind nginx)", setting: "turn.port" } as PortClaim,
                  {
                      port: s.turn.relayPorts.min,
                      toPort: s.turn.relayPorts.max,
                      protocol: "udp",
                      address: "*",
                      owner: "livekit-server TURN relays",
                      setting: "turn.relayPorts",
                  } as PortClaim,
              ]
            : []),
    ];
}

/** Open to everyone: ICE over TCP and UDP (the HTTP ports stay behind nginx on loopback). */
export function rtcFirewallRules(s: RtcSettings): FirewallRule[] {
    return [
        { port: s.tcpPort, protocol: "tcp", owner: "livekit-server ICE/TCP" },
        s.udp.kind === "mux"
            ? { port: s.udp.port, protocol: "udp", owner: "livekit-server ICE/UDP" }
            : { port: s.udp.min, toPort: s.udp.max, protocol: "udp", owner: "livekit-server ICE/UDP" },
    ];
}

/** What nginx needs to serve MatrixRTC (plain values; the proxy reads them). */
export interface RtcSite {
    /** The name it is served on. */
    domain: string;
    /** A server block of its own (the domain is not the homeserver's). */
    ownDomain: boolean;
    /** `127.0.0.1:<jwtPort>`. */
    jwtUpstream: string;
    /** `127.0.0.1:<port>`. */
    sfuUpstream: string;
    /** The client well-known's `org.matrix.msc4143.rtc_foci` entry's URL. */
    serviceUrl: string;
    /** LiveKit's TURN server: nginx routes TLS on 443 for `domain` to it (`127.0.0.1:<turn.port>`), ending TLS itself. */
    turn?: { domain: string; upstream: string };
}

export function rtcSite(s: RtcSettings): RtcSite {
    return {
        domain: s.domain,
        ownDomain: s.ownDomain,
        jwtUpstream: `127.0.0.1:${s.jwtPort}`,
        sfuUpstream: `127.0.0.1:${s.port}`,
        serviceUrl: s.serviceUrl,
        ...(s.turn ? { turn: { domain: s.turn.domain, upstream: `127.0.0.1:${s.turn.port}` } } : {}),
    };
}

/** The client well-known's MatrixRTC focus (MSC4143). */
export function rtcFoci(serviceUrl: string): { "org.matrix.msc4143.rtc_foci": { type: "livekit"; livekit_service_url: string }[] } {
    return { "org.matrix.msc4143.rtc_foci": [{ type: "livekit", livekit_service_url: serviceUrl }] };
}

/** Synapse's MatrixRTC fragment, beside its own config. */
export function rtcSynapseFiles(paths: SynapsePaths) {
    return { fragment: `${paths.configDir}/conf.d/46-rtc.yaml` };
}
