import { FirewallRule, PortClaim } from "./host";
import { homeserverDomain, serverNameHost } from "./proxy";
import { SynapsePaths } from "./synapse";
import { Checker, isHostname, isIPv4, isIPv6, isPort, isServerName } from "./validate";

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
    try {
        const u = new URL(url);
        return (u.protocol === "https:" || u.protocol === "http:") && u.hostname !== "" && u.username === "" && u.password === "" ? url : undefined;
    } catch {
        return undefined;
    }
}

/** Whether an IP address is one clients on the internet can reach: not private, loopback, link-local, unspecified or otherwise special. */
export function isPublicAddress(a: string): boolean {
    if (isIPv4(a)) {
        const [x, y] = a.split(".").map(Number);
        return !(
            x === 0 ||
            x === 10 ||
            x === 127 ||
            (x === 100 && y >= 64 && y <= 127) ||
            (x === 169 && y === 254) ||
            (x === 172 && y >= 16 && y <= 31) ||
            (x === 192 && y === 168) ||
            (x === 192 && y === 0 && Number(a.split(".")[2]) === 0) ||
            (x === 198 && (y === 18 || y === 19)) ||
            x >= 224
        );
    }
    if (isIPv6(a)) {
        const l = a.toLowerCase();
        if (l === "::" || l === "::1") return false;
        const first = parseInt(l.split(":")[0] || "0", 16);
        // Link-local fe80::/10, unique local fc00::/7, multicast ff00::/8, IPv4-mapped ::ffff:0:0/96.
        return !((first & 0xffc0) === 0xfe80 || (first & 0xfe00) === 0xfc00 || (first & 0xff00) === 0xff00 || l.startsWith("::ffff:"));
    }
    return false;
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
    // The TCP ports must differ from each other (the UDP ones are another protocol).
    const tcp: [string, number][] = [
        ["port", port],
        ["jwtPort", jwtPort],
        ["tcpPort", tcpPort],
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
        port,
        jwtPort,
        tcpPort,
        udp,
        maxParticipants,
        fullAccessHomeservers: [...fullAccessHomeservers],
        serviceUrl: `https://${domain}${RTC_PATHS.jwt}`,
        sfuUrl: `wss://${domain}${RTC_PATHS.sfu}`,
    };
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
}

export function rtcSite(s: RtcSettings): RtcSite {
    return {
        domain: s.domain,
        ownDomain: s.ownDomain,
        jwtUpstream: `127.0.0.1:${s.jwtPort}`,
        sfuUpstream: `127.0.0.1:${s.port}`,
        serviceUrl: s.serviceUrl,
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
