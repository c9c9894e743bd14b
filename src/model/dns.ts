import { ConfigError } from "./errors";
import { homeserverDomain, serverNameHost, wellKnownClient } from "./proxy";
import { Checker, isHostname, isIPv4, isIPv6, isServerName, isWildcardAddress } from "./validate";

/**
 * The DNS records that make a homeserver reachable: A/AAAA for every host
 * name this deployment answers on, and the records that tell other servers
 * where federation for the server_name lives (SRV, or the apex pointing to
 * the host that serves the well-known documents). One record set, two
 * outputs: Cloudflare resources (components/CloudflareDns.ts) and a BIND
 * zone file (src/render/dns.ts) for any other DNS host.
 */

/**
 * How other servers find the homeserver from the server_name (see
 * REFERENCE "Server discovery"):
 * - `none`: the server_name is the homeserver's own host; nothing to delegate.
 * - `well-known`: `https://<server_name>/.well-known/matrix/server` names the
 *   homeserver host (served by our nginx, or by a Cloudflare Worker: see `WellKnownVia`).
 * - `srv`: `_matrix-fed._tcp.<server_name>` names it; the homeserver's
 *   certificate must then be valid for the server_name itself.
 */
export const DELEGATION_MODES = ["none", "well-known", "srv"] as const;
export type DelegationMode = (typeof DELEGATION_MODES)[number];

/**
 * Who answers `/.well-known/matrix/*` on the server_name's domain:
 * - `nginx`: this deployment's ReverseProxy; the server_name's A/AAAA
 *   records then point to this host (the apex website, if any, moves here).
 * - `worker`: a Cloudflare Worker on a route of the server_name's domain;
 *   the apex website stays where it is. Cloudflare runs a route only for
 *   traffic through its proxy: the website's own record for the
 *   server_name (not managed here) must be proxied.
 */
export const WELL_KNOWN_VIA = ["nginx", "worker"] as const;
export type WellKnownVia = (typeof WELL_KNOWN_VIA)[number];

/** The zone every record goes into. */
export interface DnsZone {
    /** The zone's name, e.g. `example.com`. Needed for the zone file (its $ORIGIN) and to check that every name lies in the zone. */
    name?: string;
    /** The zone's Cloudflare id (32 hex digits). When given, no lookup by name is done. */
    id?: string;
}

/**
 * The DNS options a stack fills in from its other parts (Element's, TURN's
 * and MatrixRTC's names and ports, the federation port, the certificate's
 * names): a MatrixStack's `dns` never takes them.
 */
export type StackDerivedDnsOption =
    "elementDomain" | "turnHost" | "turnPort" | "turnTlsPort" | "rtcDomain" | "rtcTurnDomain" | "rtcServiceUrl" | "federationPort" | "certificateNames";

/** The DNS settings a user writes (every host name comes from the other components' settings). */
export interface DnsOptions {
    /** The zone holding every record: its name, its Cloudflare id, or both. Required. */
    zone?: DnsZone;
    /** Synapse's server_name (the part after the colon in user ids). Required. */
    serverName: string;
    /** Synapse's public base URL; its host is the homeserver host that gets A/AAAA records and that SRV and well-known point to. Required. */
    publicBaseUrl: string;
    /** The VM's public IPv4 address: the content of every A record. Required. */
    ipv4?: string;
    /** The VM's public IPv6 address: when given, every A record gets an AAAA twin. Default none. */
    ipv6?: string;
    /** Element Web's domain (ElementWeb's `domain`): gets A/AAAA records when given. Default none. */
    elementDomain?: string;
    /**
     * Put Element's records behind Cloudflare's proxy (its CDN): Element is a
     * static site, so it can be. Never allowed for a name that also carries
     * federation or TURN (the proxy carries neither). Default false.
     */
    elementProxied?: boolean;
    /** coturn's public host name: gets A/AAAA records and the TURN SRV records when given. Default none. */
    turnHost?: string;
    /** MatrixRTC's own domain (RtcServer's `domain`, when it is not the homeserver's): gets A/AAAA records (never proxied: WebSocket and media). Default none. */
    rtcDomain?: string;
    /** LiveKit's TURN name (RtcServer's `turn.domain`): gets A/AAAA records (never proxied: TURN over TLS is not HTTP). Default none. */
    rtcTurnDomain?: string;
    /** MatrixRTC's authorization service URL: the client well-known a Worker serves advertises it (`org.matrix.msc4143.rtc_foci`). Default none. */
    rtcServiceUrl?: string;
    /** coturn's plain (UDP and TCP) port, in `_turn._udp` and `_turn._tcp`. Default 3478. */
    turnPort?: number;
    /** coturn's TLS port, in `_turns._tcp`. Default 5349. */
    turnTlsPort?: number;
    /** Seconds resolvers may cache the records: 1 (Cloudflare's "automatic") or 60 to 86400. Default 300. */
    ttl?: number;
    /**
     * How servers find the homeserver from the server_name (see
     * `DelegationMode`). Default `none` when the server_name is the homeserver
     * host; otherwise it must be chosen (it decides where the apex points).
     */
    delegation?: DelegationMode;
    /** With `well-known`: who serves the documents (see `WellKnownVia`). Default `nginx`. */
    wellKnownVia?: WellKnownVia;
    /** The Cloudflare account the Worker is deployed to (32 hex digits). Required with `wellKnownVia: "worker"`, not allowed otherwise. */
    accountId?: string;
    /** The port federation listens on (ReverseProxy's `federationPort`): the SRV records' port and the one well-known names. Default 8448. */
    federationPort?: number;
    /** With `srv`: also publish the deprecated `_matrix._tcp` record for servers older than Matrix 1.8. Default false. */
    legacySrv?: boolean;
    /** Priority of every SRV record (lower is preferred). Default 10. */
    srvPriority?: number;
    /** Weight of every SRV record (share among equal priorities). Default 5. */
    srvWeight?: number;
    /**
     * The names the homeserver's certificate covers (ReverseProxy's
     * `certificateNames`), when the caller knows them: a delegation the
     * certificate cannot serve (SRV without the server_name) is then an
     * error here rather than a federation failure later. Default unknown (not checked).
     */
    certificateNames?: string[];
    /** The Pulumi stack, named in every record's comment so a record in a shared zone says who manages it. Required. */
    stack?: string;
    /**
     * The certificate authorities allowed to issue certificates for the names
     * here: one CAA `issue` record (RFC 8659) per issuer domain on every
     * name that gets address records, so a CA not listed refuses them.
     * Default `["letsencrypt.org"]` when the certificates come from Let's
     * Encrypt (`acmeDirectoryUrl` unset or Let's Encrypt's); with another
     * ACME CA none, unless its issuer domain is given here (its
     * documentation names it). `[]` publishes none. The zone's apex and names behind Cloudflare's proxy
     * get none: a CAA record at the apex would hold for every name of the
     * zone without its own, and Cloudflare's edge certificates come from
     * its own CAs.
     */
    caa?: string[];
    /** The ACME directory the certificates come from (ReverseProxy's `acme.directoryUrl`), for the default of `caa`. Default Let's Encrypt's. */
    acmeDirectoryUrl?: string;
    /**
     * Cloudflare records (and the well-known Worker) another stack created,
     * taken over instead of created: that stack's `cloudflareIds` output
     * (`dnsCloudflareIds`), a mapping of each resource's key (`a-<name>`,
     * `srv-<name>`, `caa-<name>-<issuer>`, `well-known-worker`,
     * `well-known-route`) to its Cloudflare id. The second half of a move
     * to a new VM (README: "Moving to a new VM"); keys this record set does
     * not have are an error, resources it has but the mapping does not are
     * created. Default none.
     */
    takeOver?: Record<string, string>;
}

/** The DNS settings with every default filled in. Host names are lower case. */
export interface DnsSettings {
    zone: DnsZone;
    serverName: string;
    /** The server_name without a port. */
    serverNameHost: string;
    publicBaseUrl: string;
    /** The host of `publicBaseUrl`. */
    homeserverHost: string;
    ipv4: string;
    ipv6?: string;
    elementDomain?: string;
    elementProxied: boolean;
    turn?: { host: string; port: number; tlsPort: number };
    rtcDomain?: string;
    rtcTurnDomain?: string;
    rtcServiceUrl?: string;
    ttl: number;
    delegation: DelegationMode;
    /** Set in `well-known` mode only. */
    wellKnownVia?: WellKnownVia;
    accountId?: string;
    federationPort: number;
    legacySrv: boolean;
    srvPriority: number;
    srvWeight: number;
    stack: string;
    /** CAA issuer domains (`caa`); empty: no CAA records. */
    caa: string[];
    /** Cloudflare ids of resources taken over from another stack, by key (see `cloudflareKeys`); absent: none. */
    takeOver?: Record<string, string>;
}

interface RecordBase {
    /** Fully qualified, lower case, without the trailing dot. */
    name: string;
    ttl: number;
    /** Names the stack and what the record is for. */
    comment: string;
    /** The record's data as a zone file (and `dig +short`) writes it, without the target's trailing dot. */
    content: string;
}

/** An A or AAAA record pointing a name at the VM. */
export interface AddressRecord extends RecordBase {
    type: "A" | "AAAA";
    /** Behind Cloudflare's proxy: only ever true for Element with `elementProxied`. */
    proxied: boolean;
}

/** An SRV record: service `_service._proto.<domain>` at `target:port`. */
export interface SrvRecord extends RecordBase {
    type: "SRV";
    data: { priority: number; weight: number; port: number; target: string };
}

/** A CAA record (RFC 8659): only the CA named in `value` may issue certificates for `name`. */
export interface CaaRecord extends RecordBase {
    type: "CAA";
    data: { flags: number; tag: "issue"; value: string };
}

export type DnsRecord = AddressRecord | SrvRecord | CaaRecord;

/** The Worker that answers `/.well-known/matrix/*` on the server_name's domain (worker mode only). */
export interface WellKnownWorker {
    /** Cloudflare account the script is deployed to. */
    accountId: string;
    /** Script name, derived from the server_name (one Worker per server_name). */
    scriptName: string;
    /** The route on the server_name's domain. */
    routePattern: string;
    /** The documents, by path. */
    documents: Record<string, unknown>;
    /** Names the stack, for the script's header. */
    comment: string;
}

export const DNS_DEFAULTS = {
    ttl: 300,
    wellKnownVia: "nginx",
    federationPort: 8448,
    turnPort: 3478,
    turnTlsPort: 5349,
    srvPriority: 10,
    srvWeight: 5,
} as const;

/** Cloudflare's TTL for "automatic", forced on proxied records. */
export const AUTO_TTL = 1;

/** Cloudflare account and zone ids: 32 lower-case hex digits. */
function isCloudflareId(value: unknown): boolean {
    return typeof value === "string" && /^[0-9a-f]{32}$/.test(value);
}

/** Whether `name` is the zone's apex or lies below it. */
export function inZone(name: string, zone: string): boolean {
    return name === zone || name.endsWith(`.${zone}`);
}

const lower = (v: string | undefined): string | undefined => (typeof v === "string" ? v.toLowerCase() : v);

/** Let's Encrypt's CAA issuer domain (its production and staging directories both check it). */
export const LETS_ENCRYPT_CAA = "letsencrypt.org";

/** Whether an ACME directory is Let's Encrypt's (production or staging); unset means the default, Let's Encrypt. */
function isLetsEncrypt(directoryUrl: string | undefined): boolean {
    if (directoryUrl === undefined) return true;
    try {
        return /(^|\.)api\.letsencrypt\.org$/.test(new URL(directoryUrl).hostname);
    } catch {
        return false;
    }
}

/** Checks an address field: the right family, and a usable address (not the "any" address). */
function checkAddress(c: Checker, setting: "ipv4" | "ipv6", value: unknown): void {
    const other = setting === "ipv4" ? "ipv6" : "ipv4";
    const right = setting === "ipv4" ? isIPv4 : isIPv6;
    const wrong = setting === "ipv4" ? isIPv6 : isIPv4;
    if (typeof value === "string" && wrong(value)) {
        c.check(
            setting,
            value,
            false,
            `this is an ${other === "ipv6" ? "IPv6" : "IPv4"} address: give it as ${other} (expected ${setting === "ipv4" ? "an IPv4 address here, such as 203.0.113.10" : "an IPv6 address here, such as 2001:db8::10"})`,
        );
        return;
    }
    c.check(
        setting,
        value,
        typeof value === "string" && right(value) && !isWildcardAddress(value),
        setting === "ipv4" ? "expected the VM's public IPv4 address, such as 203.0.113.10" : "expected the VM's public IPv6 address, such as 2001:db8::10",
    );
}

/**
 * An IPv6 address in its canonical text (RFC 5952: lower case, zeros
 * compressed), the form Cloudflare stores: any other spelling would show as
 * a change on every update.
 */
export function canonicalIPv6(address: string): string {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

/**
 * The settings with the VM's addresses put in, checked and canonical: the
 * component plans the records before addresses that arrive as Outputs are
 * known, and puts them in with this once they are.
 */
export function withAddresses(component: string, s: DnsSettings, ipv4: unknown, ipv6: unknown): DnsSettings {
    const c = new Checker(component);
    checkAddress(c, "ipv4", ipv4);
    if (ipv6 !== undefined) checkAddress(c, "ipv6", ipv6);
    c.done();
    const { ipv6: _old, ...rest } = s;
    return { ...rest, ipv4: ipv4 as string, ...(ipv6 !== undefined ? { ipv6: canonicalIPv6(ipv6 as string) } : {}) };
}

/** The host of Synapse's public base URL, lower case; "" when it is not an https URL on a DNS name. */
function homeserverHostOf(publicBaseUrl: unknown): string {
    try {
        const u = new URL(String(publicBaseUrl));
        return u.protocol === "https:" && isHostname(u.hostname) ? homeserverDomain(u.href).toLowerCase() : "";
    } catch {
        return "";
    }
}

/** The options with their defaults, not yet validated (a missing delegation stays undefined for the check to report). */
function withDefaults(o: DnsOptions): DnsSettings {
    const zoneName = lower(o.zone?.name);
    const serverName = typeof o.serverName === "string" ? o.serverName.toLowerCase() : "";
    const snHost = serverNameHost(serverName);
    const homeserverHost = homeserverHostOf(o.publicBaseUrl);
    const turnHost = lower(o.turnHost);
    const delegation = o.delegation ?? (snHost === homeserverHost ? "none" : undefined);
    return {
        zone: { ...(zoneName !== undefined ? { name: zoneName } : {}), ...(o.zone?.id !== undefined ? { id: o.zone.id } : {}) },
        serverName,
        serverNameHost: snHost,
        publicBaseUrl: o.publicBaseUrl,
        homeserverHost,
        ipv4: o.ipv4 as string,
        ...(o.ipv6 !== undefined ? { ipv6: typeof o.ipv6 === "string" && isIPv6(o.ipv6) ? canonicalIPv6(o.ipv6) : o.ipv6 } : {}),
        ...(o.elementDomain !== undefined ? { elementDomain: lower(o.elementDomain) } : {}),
        elementProxied: o.elementProxied ?? false,
        ...(turnHost !== undefined
            ? { turn: { host: turnHost, port: o.turnPort ?? DNS_DEFAULTS.turnPort, tlsPort: o.turnTlsPort ?? DNS_DEFAULTS.turnTlsPort } }
            : {}),
        ...(o.rtcDomain !== undefined ? { rtcDomain: lower(o.rtcDomain) } : {}),
        ...(o.rtcTurnDomain !== undefined ? { rtcTurnDomain: lower(o.rtcTurnDomain) } : {}),
        ...(o.rtcServiceUrl !== undefined ? { rtcServiceUrl: o.rtcServiceUrl } : {}),
        ttl: o.ttl ?? DNS_DEFAULTS.ttl,
        delegation: delegation as DelegationMode,
        ...(delegation === "well-known" ? { wellKnownVia: o.wellKnownVia ?? DNS_DEFAULTS.wellKnownVia } : {}),
        ...(o.accountId !== undefined ? { accountId: o.accountId } : {}),
        federationPort: o.federationPort ?? DNS_DEFAULTS.federationPort,
        legacySrv: o.legacySrv ?? false,
        srvPriority: o.srvPriority ?? DNS_DEFAULTS.srvPriority,
        srvWeight: o.srvWeight ?? DNS_DEFAULTS.srvWeight,
        stack: o.stack as string,
        caa: Array.isArray(o.caa)
            ? o.caa.map((d) => (typeof d === "string" ? d.toLowerCase() : d))
            : o.caa === undefined && isLetsEncrypt(o.acmeDirectoryUrl)
              ? [LETS_ENCRYPT_CAA]
              : [],
        ...(o.takeOver !== undefined ? { takeOver: o.takeOver } : {}),
    };
}

/** The CAA issuers: DNS names. */
function checkCaa(c: Checker, o: DnsOptions, s: DnsSettings): void {
    if (o.caa === undefined) return;
    c.check(
        "caa",
        o.caa,
        Array.isArray(o.caa) && s.caa.every((d) => typeof d === "string" && isHostname(d)),
        'expected the issuer domains of the CAs allowed to issue certificates, such as ["letsencrypt.org"], or [] for no CAA records',
    );
}

/** The zone (name or id) and the VM's addresses. */
function checkZoneAndAddresses(c: Checker, o: DnsOptions): void {
    const zone = o.zone;
    c.check(
        "zone",
        zone,
        !!zone && typeof zone === "object" && (zone.name !== undefined || zone.id !== undefined),
        "expected the zone's name (e.g. example.com) or its Cloudflare id",
    );
    if (zone?.name !== undefined)
        c.check("zone.name", zone.name, typeof zone.name === "string" && isHostname(zone.name), "expected a DNS zone such as example.com");
    if (zone?.id !== undefined)
        c.check("zone.id", zone.id, isCloudflareId(zone.id), "expected the zone's Cloudflare id: 32 hex digits (the zone's Overview page)");
    checkAddress(c, "ipv4", o.ipv4);
    if (o.ipv6 !== undefined) checkAddress(c, "ipv6", o.ipv6);
}

/** TTL, ports, SRV numbers and the stack name. */
function checkNumbers(c: Checker, o: DnsOptions, s: DnsSettings): void {
    c.check(
        "ttl",
        s.ttl,
        Number.isInteger(s.ttl) && (s.ttl === AUTO_TTL || (s.ttl >= 60 && s.ttl <= 86400)),
        "expected 1 (automatic) or a whole number of seconds from 60 to 86400",
    );
    c.port("federationPort", s.federationPort);
    for (const k of ["srvPriority", "srvWeight"] as const)
        c.check(k, s[k], Number.isInteger(s[k]) && s[k] >= 0 && s[k] <= 65535, "expected a whole number from 0 to 65535");
    if (s.turn) {
        c.port("turnPort", s.turn.port);
        c.port("turnTlsPort", s.turn.tlsPort);
    } else {
        for (const k of ["turnPort", "turnTlsPort"] as const) c.check(k, o[k], o[k] === undefined, "it is only used with turnHost; set turnHost, or remove it");
    }
    // Cloudflare keeps 100 characters of comment on its free plan: 50 leave room for the longest purpose (see `comment`).
    c.check(
        "stack",
        s.stack,
        typeof s.stack === "string" && /^[A-Za-z0-9._/-]{1,50}$/.test(s.stack),
        "expected the Pulumi stack's name, at most 50 letters, digits or ._/- (set stack to a shorter name for the comments)",
    );
}

/** server_name, the homeserver host, Element's domain and the TURN host, and how they may share names. */
function checkNames(c: Checker, o: DnsOptions, s: DnsSettings): void {
    c.check("serverName", o.serverName, typeof o.serverName === "string" && isServerName(o.serverName), "expected Synapse's server_name, such as example.com");
    c.check("publicBaseUrl", o.publicBaseUrl, s.homeserverHost !== "", "expected Synapse's public base URL on a DNS name, such as https://matrix.example.com/");
    const element = s.elementDomain;
    if (element !== undefined) {
        c.check("elementDomain", o.elementDomain, isHostname(element), "expected a DNS name such as element.example.com");
        c.check(
            "elementDomain",
            o.elementDomain,
            element !== s.homeserverHost,
            `Element must have its own domain, not the homeserver's (${s.homeserverHost}): media the homeserver serves must not run script in Element's origin`,
        );
    }
    c.check("elementProxied", o.elementProxied, !s.elementProxied || element !== undefined, "it proxies Element's records: set elementDomain, or remove it");
    if (s.turn) {
        c.check("turnHost", o.turnHost, isHostname(s.turn.host), "expected a DNS name such as turn.example.com");
        // Cloudflare's proxy carries HTTP(S) only: a TURN client would reach Cloudflare, not coturn.
        c.check(
            "turnHost",
            o.turnHost,
            !(s.elementProxied && s.turn.host === element),
            `it is Element's domain, which elementProxied puts behind Cloudflare's proxy (HTTP only): give TURN its own name, such as turn.${s.zone.name ?? s.serverNameHost}`,
        );
    }
}

/**
 * The options that only mean something in one delegation mode: set in
 * another, they would be silently ignored. Set to its default, an option
 * says nothing (the stack config fills declared defaults in).
 */
function checkModeOnly(c: Checker, o: DnsOptions, s: DnsSettings): void {
    const defaults: Partial<Record<keyof DnsOptions, unknown>> = { wellKnownVia: DNS_DEFAULTS.wellKnownVia, legacySrv: false };
    const only = (setting: keyof DnsOptions, ok: boolean, where: string) =>
        c.check(
            setting,
            o[setting],
            o[setting] === undefined || o[setting] === defaults[setting] || ok,
            `it is only used ${where}; remove it, or choose that mode`,
        );
    only("wellKnownVia", s.delegation === "well-known", 'with delegation "well-known"');
    only("legacySrv", s.delegation === "srv", 'with delegation "srv"');
    only("accountId", s.wellKnownVia === "worker", 'with delegation "well-known" and wellKnownVia "worker" (the Worker\'s account)');
}

/** The delegation mode and what it needs of the names (see `DelegationMode`). */
function checkDelegation(c: Checker, o: DnsOptions, s: DnsSettings): void {
    const sn = s.serverNameHost;
    const same = sn === s.homeserverHost;
    if (s.delegation === undefined) {
        // No default here: the choice decides where the server_name's domain points.
        c.check(
            "delegation",
            o.delegation,
            false,
            `the server_name ${s.serverName} is not the homeserver host ${s.homeserverHost}: choose "well-known" (https://${sn}/.well-known/matrix/server) or "srv" (_matrix-fed._tcp.${sn})`,
        );
        return;
    }
    c.oneOf("delegation", s.delegation, DELEGATION_MODES);
    if (!DELEGATION_MODES.includes(s.delegation)) return;
    checkModeOnly(c, o, s);
    if (s.delegation === "none") {
        c.check(
            "delegation",
            s.delegation,
            same,
            `"none" needs the server_name to be the homeserver host, but ${JSON.stringify(s.serverName)} is not ${s.homeserverHost}: choose "well-known" or "srv"`,
        );
        return;
    }
    c.check(
        "delegation",
        s.delegation,
        !same,
        `the server_name is the homeserver host ${s.homeserverHost} (whose nginx serves the well-known documents already): use "none"`,
    );
    c.check(
        "serverName",
        o.serverName,
        !/:\d+$/.test(s.serverName) && isHostname(sn),
        `delegation "${s.delegation}" needs a server_name that is a DNS name without a port (servers dial a server_name with a port directly): use "none"`,
    );
    if (s.delegation === "well-known") checkWellKnownVia(c, o, s);
}

/** Who serves the well-known documents, and which names must then stay off the server_name's domain. */
function checkWellKnownVia(c: Checker, o: DnsOptions, s: DnsSettings): void {
    const sn = s.serverNameHost;
    c.oneOf("wellKnownVia", s.wellKnownVia, WELL_KNOWN_VIA);
    if (s.wellKnownVia === "worker") {
        c.check(
            "accountId",
            o.accountId,
            isCloudflareId(o.accountId),
            "the Worker that serves the well-known documents is deployed to a Cloudflare account: expected its id, 32 hex digits (the dashboard's Workers overview)",
        );
        // The server_name's domain stays with its website in worker mode: a record of ours there would split its traffic.
        for (const [k, v] of [
            ["elementDomain", s.elementDomain],
            ["turnHost", s.turn?.host],
        ] as const)
            c.check(k, o[k], v !== sn, `with wellKnownVia "worker" the server_name's domain ${sn} stays with its own website: give this its own name`);
    } else if (s.wellKnownVia === "nginx") {
        c.check(
            "elementDomain",
            o.elementDomain,
            s.elementDomain !== sn,
            `with wellKnownVia "nginx" the server_name's domain ${sn} serves the well-known documents here: give Element its own domain`,
        );
    }
}

/** Every record must land in the one zone (the zone file's $ORIGIN; Cloudflare refuses names outside it). */
function checkInZone(c: Checker, o: DnsOptions, s: DnsSettings): void {
    const zone = s.zone.name;
    if (zone === undefined || !isHostname(zone)) return;
    const expected = `expected a name in the zone ${zone} (every record goes in this one zone)`;
    c.check("publicBaseUrl", o.publicBaseUrl, s.homeserverHost === "" || inZone(s.homeserverHost, zone), expected);
    c.check("serverName", o.serverName, s.serverNameHost === "" || inZone(s.serverNameHost, zone), expected);
    if (s.elementDomain !== undefined) c.check("elementDomain", o.elementDomain, inZone(s.elementDomain, zone), expected);
    if (s.turn) c.check("turnHost", o.turnHost, inZone(s.turn.host, zone), expected);
    if (s.rtcDomain !== undefined) c.check("rtcDomain", o.rtcDomain, inZone(s.rtcDomain, zone), expected);
    if (s.rtcTurnDomain !== undefined) c.check("rtcTurnDomain", o.rtcTurnDomain, inZone(s.rtcTurnDomain, zone), expected);
}

/** Fills in the defaults and validates; every problem is reported at once. */
export function resolveDnsSettings(component: string, o: DnsOptions): DnsSettings {
    const s = withDefaults(o);
    const c = new Checker(component);
    checkZoneAndAddresses(c, o);
    checkNumbers(c, o, s);
    checkNames(c, o, s);
    checkDelegation(c, o, s);
    checkInZone(c, o, s);
    checkCaa(c, o, s);
    c.done();
    checkCertificateNames(component, s, o.certificateNames);
    checkTakeOver(component, s);
    return s;
}

/** What a Cloudflare resource of a record set is: its import id's form follows from it. */
export type CloudflareResourceKind = "record" | "workerScript" | "workerRoute";

/** The keys of the Worker's two resources (worker mode). */
export const WORKER_KEYS = { script: "well-known-worker", route: "well-known-route" } as const;

/** A record's key: its type and name (a name has one CAA record per issuer: the issuer tells them apart). */
export function cloudflareRecordKey(r: DnsRecord): string {
    return `${r.type.toLowerCase()}-${r.name}${r.type === "CAA" ? `-${r.data.value}` : ""}`;
}

/**
 * The Cloudflare resources a record set makes, by key: the name of each
 * child of CloudflareDns after the component's own, and what the
 * `cloudflareIds` output and `takeOver` name them by.
 */
export function cloudflareKeys(s: DnsSettings): Map<string, CloudflareResourceKind> {
    const keys = new Map<string, CloudflareResourceKind>(dnsRecords(s).map((r) => [cloudflareRecordKey(r), "record"]));
    if (wellKnownWorker(s)) {
        keys.set(WORKER_KEYS.script, "workerScript");
        keys.set(WORKER_KEYS.route, "workerRoute");
    }
    return keys;
}

/** A Cloudflare id (zone, record, route, account): 32 lower-case hex digits. */
const CLOUDFLARE_ID = "[0-9a-f]{32}";

/** Each kind's import id, as Pulumi's `import` takes it, and how to describe it. */
const TAKE_OVER_IDS: Record<CloudflareResourceKind, { pattern: RegExp; form: string }> = {
    record: { pattern: new RegExp(`^${CLOUDFLARE_ID}/${CLOUDFLARE_ID}$`), form: "<zone id>/<record id>" },
    workerScript: { pattern: new RegExp(`^${CLOUDFLARE_ID}/[a-z0-9-]{1,63}$`), form: "<account id>/<script name>" },
    workerRoute: { pattern: new RegExp(`^${CLOUDFLARE_ID}/${CLOUDFLARE_ID}$`), form: "<zone id>/<route id>" },
};

/** `takeOver` names only resources of this record set, each with an id of its kind's form. */
function checkTakeOver(component: string, s: DnsSettings): void {
    if (s.takeOver === undefined) return;
    const c = new Checker(component);
    if (typeof s.takeOver !== "object" || s.takeOver === null || Array.isArray(s.takeOver)) {
        c.check("takeOver", s.takeOver, false, "expected the other stack's dnsCloudflareIds output: a mapping of resource keys to Cloudflare ids");
        c.done();
    }
    const keys = cloudflareKeys(s);
    for (const [key, id] of Object.entries(s.takeOver)) {
        const kind = keys.get(key);
        if (kind === undefined) c.check(`takeOver.${key}`, id, false, `this record set has no such resource; its keys are ${[...keys.keys()].join(", ")}`);
        else
            c.check(
                `takeOver.${key}`,
                id,
                typeof id === "string" && TAKE_OVER_IDS[kind].pattern.test(id),
                `expected ${TAKE_OVER_IDS[kind].form}, as the other stack's dnsCloudflareIds output gives it`,
            );
    }
    c.done();
}

/**
 * The names, besides the homeserver host, that the homeserver's certificate
 * must cover for this delegation: with SRV (and no well-known) servers check
 * the certificate against the server_name itself; with well-known served by
 * our nginx, that nginx answers HTTPS on the server_name's domain. Tell the
 * ReverseProxy (which requests the certificate) about them.
 */
export function certificateNamesFor(s: Pick<DnsSettings, "delegation" | "wellKnownVia" | "serverNameHost">): string[] {
    if (s.delegation === "srv") return [s.serverNameHost];
    if (s.delegation === "well-known" && s.wellKnownVia === "nginx") return [s.serverNameHost];
    return [];
}

/** Whether this deployment's nginx must serve the well-known documents on the server_name's domain (ReverseProxy's `serverNameWellKnown`). */
export function serverNameWellKnownFor(s: Pick<DnsSettings, "delegation" | "wellKnownVia">): boolean {
    return s.delegation === "well-known" && s.wellKnownVia === "nginx";
}

/** When the caller says which names the certificate has: the delegation must find all it needs there. */
function checkCertificateNames(component: string, s: DnsSettings, names: string[] | undefined): void {
    if (names === undefined) return;
    const have = new Set(names.map((n) => n.toLowerCase()));
    const missing = [s.homeserverHost, ...certificateNamesFor(s)].filter((n) => !have.has(n));
    if (missing.length === 0) return;
    const why =
        s.delegation === "srv"
            ? "SRV delegation (without well-known) makes servers check the certificate against the server_name itself"
            : "the certificate must cover every name this host answers HTTPS on";
    throw new ConfigError(
        component,
        "certificateNames",
        names,
        `the homeserver's certificate lacks ${missing.join(", ")}: ${why}; have the ReverseProxy request it (DNS-01 when that name does not point to this host)`,
    );
}

/** The comment on every record: who manages it and why it exists (purposes are short: see the stack's length check). */
function comment(s: DnsSettings, purposes: string[]): string {
    return `pulumi-matrix stack ${s.stack}: ${purposes.join(", ")}`;
}

/**
 * The names that point at the VM, each with what it is for, in a fixed
 * order (homeserver, server_name, Element, TURN); a name used twice is
 * listed once with both purposes.
 */
export function addressNames(s: DnsSettings): { name: string; purposes: string[]; proxied: boolean }[] {
    const wanted: [string | undefined, string][] = [
        [s.homeserverHost, "homeserver"],
        [serverNameWellKnownFor(s) ? s.serverNameHost : undefined, "Matrix well-known"],
        [s.elementDomain, "Element Web"],
        [s.turn?.host, "TURN"],
        [s.rtcDomain, "MatrixRTC"],
        [s.rtcTurnDomain, "MatrixRTC TURN"],
    ];
    const byName = new Map<string, string[]>();
    for (const [name, purpose] of wanted) if (name !== undefined) byName.set(name, [...(byName.get(name) ?? []), purpose]);
    // Only a name that is Element's alone may sit behind the proxy: federation and TURN do not pass through it.
    return [...byName].map(([name, purposes]) => ({
        name,
        purposes,
        proxied: s.elementProxied && purposes.length === 1 && purposes[0] === "Element Web",
    }));
}

function srv(s: DnsSettings, name: string, port: number, target: string, purpose: string): SrvRecord {
    const data = { priority: s.srvPriority, weight: s.srvWeight, port, target };
    return {
        type: "SRV",
        name,
        ttl: s.ttl,
        comment: comment(s, [purpose]),
        content: `${data.priority} ${data.weight} ${data.port} ${data.target}`,
        data,
    };
}

/**
 * The CAA records: one per issuer on every name that gets address records,
 * except the zone's apex (a CAA record there holds for every name of the
 * zone without its own: the website's too) and a name behind Cloudflare's
 * proxy (its edge certificate comes from Cloudflare's CAs). A zone given by
 * id alone has an unknown apex: the server_name, the usual apex, is left out too.
 */
export function caaRecords(s: DnsSettings): CaaRecord[] {
    const apex = s.zone.name ?? s.serverNameHost;
    return addressNames(s)
        .filter((n) => n.name !== apex && !n.proxied)
        .flatMap(({ name }) =>
            s.caa.map((issuer) => {
                const data = { flags: 0, tag: "issue" as const, value: issuer };
                return { type: "CAA" as const, name, ttl: s.ttl, comment: comment(s, ["certificate authority"]), content: `0 issue "${issuer}"`, data };
            }),
        );
}

/**
 * Every record, in a fixed order: A then AAAA per name, then the federation
 * SRV records (SRV mode), then the TURN SRV records, then CAA. SRV targets are always
 * names with our own A/AAAA records (the spec forbids CNAME targets).
 */
export function dnsRecords(s: DnsSettings): DnsRecord[] {
    const records: DnsRecord[] = [];
    for (const { name, purposes, proxied } of addressNames(s)) {
        // Cloudflare forces automatic TTL on proxied records: anything else would show as a change on every update.
        const ttl = proxied ? AUTO_TTL : s.ttl;
        records.push({ type: "A", name, content: s.ipv4, ttl, proxied, comment: comment(s, purposes) });
        if (s.ipv6 !== undefined) records.push({ type: "AAAA", name, content: s.ipv6, ttl, proxied, comment: comment(s, purposes) });
    }
    if (s.delegation === "srv") {
        records.push(srv(s, `_matrix-fed._tcp.${s.serverNameHost}`, s.federationPort, s.homeserverHost, "federation SRV"));
        if (s.legacySrv) records.push(srv(s, `_matrix._tcp.${s.serverNameHost}`, s.federationPort, s.homeserverHost, "federation SRV (legacy)"));
    }
    if (s.turn) {
        // TURN discovery (RFC 5766/7065) on the Matrix domain; Synapse itself hands clients turn_uris.
        records.push(srv(s, `_turn._udp.${s.serverNameHost}`, s.turn.port, s.turn.host, "TURN over UDP"));
        records.push(srv(s, `_turn._tcp.${s.serverNameHost}`, s.turn.port, s.turn.host, "TURN over TCP"));
        records.push(srv(s, `_turns._tcp.${s.serverNameHost}`, s.turn.tlsPort, s.turn.host, "TURN over TLS"));
    }
    records.push(...caaRecords(s));
    return records;
}

/** `/.well-known/matrix/server`: the homeserver host and federation port (the same document the ReverseProxy serves). */
export function wellKnownServerFor(s: Pick<DnsSettings, "homeserverHost" | "federationPort">): { "m.server": string } {
    return { "m.server": `${s.homeserverHost}:${s.federationPort}` };
}

/** A Worker script name: letters, digits, `-`, at most 63 characters, one per server_name. */
function workerScriptName(serverNameHost: string): string {
    return `matrix-well-known-${serverNameHost.replace(/[^a-z0-9]+/g, "-")}`.slice(0, 63).replace(/-+$/, "");
}

/** The Worker of worker mode (undefined in every other mode). */
export function wellKnownWorker(s: DnsSettings): WellKnownWorker | undefined {
    if (s.delegation !== "well-known" || s.wellKnownVia !== "worker") return undefined;
    return {
        accountId: s.accountId!,
        scriptName: workerScriptName(s.serverNameHost),
        routePattern: `${s.serverNameHost}/.well-known/matrix/*`,
        documents: {
            "/.well-known/matrix/server": wellKnownServerFor(s),
            "/.well-known/matrix/client": wellKnownClient(s.publicBaseUrl, s.rtcServiceUrl),
        },
        comment: comment(s, [`Matrix well-known for ${s.serverNameHost}`]),
    };
}

/**
 * The zone file's own records (SOA and NS), for a file the user imports
 * into another DNS host or serves as the zone's primary. DNS hosts replace
 * SOA and the apex NS records with their own on import (Route 53 and Cloud
 * DNS ignore them), so the defaults only have to load everywhere.
 */
export interface ZoneFileOptions {
    /** The zone's name ($ORIGIN). Default the settings' `zone.name`; required when the zone was given by id only. */
    origin?: string;
    /**
     * The zone's name servers: the apex NS records, the first also the SOA's
     * primary. Default `ns1.dns-host.invalid`, a placeholder that cannot
     * resolve (RFC 2606): set your DNS host's servers when you serve the file
     * yourself. A name inside the zone would need address records of its own.
     */
    nameServers?: string[];
    /** The zone's contact (the SOA's mailbox), as an e-mail address. Default `hostmaster@<origin>`. */
    hostmaster?: string;
    /** The SOA serial. Default 1; the file has no timestamp (same settings, same file): raise it on every change when you serve it yourself. */
    serial?: number;
    /** Seconds between secondaries' checks (SOA refresh). Default 7200. */
    refresh?: number;
    /** Seconds before a failed check is retried (SOA retry). Default 3600. */
    retry?: number;
    /** Seconds a secondary serves the zone without reaching the primary (SOA expire). Default 1209600 (14 days). */
    expire?: number;
    /** Seconds resolvers cache "no such name" (SOA minimum). Default the records' TTL. */
    negativeTtl?: number;
}

/** The zone file's settings with every default filled in; names without the trailing dot. */
export interface ZoneFileSettings {
    origin: string;
    nameServers: string[];
    /** The SOA mailbox as an e-mail address. */
    hostmaster: string;
    serial: number;
    refresh: number;
    retry: number;
    expire: number;
    negativeTtl: number;
    /** $TTL and every record's TTL: the settings' TTL, or the default where it is Cloudflare's "automatic" (meaningless elsewhere). */
    ttl: number;
}

export const ZONE_FILE_DEFAULTS = { nameServers: ["ns1.dns-host.invalid"], serial: 1, refresh: 7200, retry: 3600, expire: 1209600 } as const;

/** Fills in the zone file's defaults and validates them against the record set. */
export function resolveZoneFileSettings(component: string, s: DnsSettings, o: ZoneFileOptions = {}): ZoneFileSettings {
    const c = new Checker(component);
    const origin = lower(o.origin ?? s.zone.name);
    c.check(
        "zone.name",
        origin,
        origin !== undefined && isHostname(origin),
        "the zone file needs the zone's name (its $ORIGIN), such as example.com: set zone.name (or the zone file's origin)",
    );
    if (origin === undefined || !isHostname(origin)) c.done();
    const zone = origin!;
    c.check("origin", o.origin, o.origin === undefined || s.zone.name === undefined || zone === s.zone.name, `expected the zone's name ${s.zone.name}`);
    for (const r of dnsRecords(s)) c.check("zone.name", zone, inZone(r.name, zone), `the record ${r.name} is outside the zone: expected a zone that holds it`);
    const nameServers = (o.nameServers ?? [...ZONE_FILE_DEFAULTS.nameServers]).map((n) => n.toLowerCase().replace(/\.$/, ""));
    c.check(
        "nameServers",
        o.nameServers,
        nameServers.length > 0 && nameServers.every(isHostname),
        "expected one or more name server host names, such as ns1.example.net",
    );
    const hostmaster = o.hostmaster ?? `hostmaster@${zone}`;
    c.check(
        "hostmaster",
        o.hostmaster,
        /^[A-Za-z0-9._+-]+@[^@\s]+$/.test(hostmaster) && isHostname(hostmaster.split("@")[1]),
        "expected the zone contact's e-mail address, such as hostmaster@example.com",
    );
    const ttl = s.ttl === AUTO_TTL ? DNS_DEFAULTS.ttl : s.ttl;
    const u32 = (k: keyof ZoneFileOptions, v: number, min = 0) =>
        c.check(k, v, Number.isInteger(v) && v >= min && v <= 2 ** 31 - 1, `expected a whole number from ${min} to 2147483647`);
    const serial = o.serial ?? ZONE_FILE_DEFAULTS.serial;
    const refresh = o.refresh ?? ZONE_FILE_DEFAULTS.refresh;
    const retry = o.retry ?? ZONE_FILE_DEFAULTS.retry;
    const expire = o.expire ?? ZONE_FILE_DEFAULTS.expire;
    const negativeTtl = o.negativeTtl ?? ttl;
    u32("serial", serial, 1);
    u32("refresh", refresh, 1);
    u32("retry", retry, 1);
    u32("expire", expire, 1);
    u32("negativeTtl", negativeTtl);
    c.done();
    return { origin: zone, nameServers, hostmaster, serial, refresh, retry, expire, negativeTtl, ttl };
}
