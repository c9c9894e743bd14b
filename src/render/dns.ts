import {
    DnsOptions,
    DnsRecord,
    dnsRecords,
    DnsSettings,
    resolveDnsSettings,
    resolveZoneFileSettings,
    WellKnownWorker,
    wellKnownWorker,
    ZoneFileOptions,
    ZoneFileSettings,
} from "../model/dns";

/**
 * The DNS service's files: the record set as a BIND zone file (RFC 1035
 * master file format, which every DNS host imports), and the Cloudflare
 * Worker that serves the well-known documents when the server_name's
 * website lives elsewhere. Both are pure functions of the settings: same
 * settings, byte-identical text (no timestamps; the SOA serial is a setting).
 */

/** A name as the zone file writes it: `@` for the apex, relative below it (the model keeps every name inside the zone). */
function relative(name: string, origin: string): string {
    if (name === origin) return "@";
    if (!name.endsWith(`.${origin}`)) throw new Error(`renderZoneFile: ${name} is outside the zone ${origin}`);
    return name.slice(0, -(origin.length + 1));
}

/** A host name as record data: absolute, with the trailing dot (a relative one would get $ORIGIN appended). */
const absolute = (name: string): string => `${name}.`;

/** The SOA's mailbox: the e-mail address with `@` as a dot and the dots of the local part escaped (RFC 1035 section 8). */
function mailbox(email: string): string {
    const [local, domain] = email.split("@");
    return absolute(`${local.replace(/\./g, "\\.")}.${domain}`);
}

/** A record's data field. */
function rdata(r: DnsRecord): string {
    if (r.type === "SRV") return `${r.data.priority} ${r.data.weight} ${r.data.port} ${absolute(r.data.target)}`;
    // The value is a quoted string (RFC 8659 section 4.1.1); issuer domains hold no quote.
    if (r.type === "CAA") return `${r.data.flags} ${r.data.tag} "${r.data.value}"`;
    return r.content;
}

/** Lines as columns padded to their widest cell (the last column and comments are left as they are). */
function columns(rows: string[][]): string[] {
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (i < r.length - 1 ? r[i].length : 0))));
    return rows.map((r) =>
        r
            .map((cell, i) => (i < r.length - 1 ? cell.padEnd(widths[i]) : cell))
            .join(" ")
            .trimEnd(),
    );
}

/** What the zone file cannot express, said in a comment so the reader knows where the rest lives. */
function notes(s: DnsSettings, worker: WellKnownWorker | undefined): string[] {
    const lines: string[] = [];
    if (worker) {
        lines.push(`; https://${s.serverNameHost}/.well-known/matrix/* is answered by the Cloudflare Worker ${worker.scriptName}`);
        lines.push(`; (route ${worker.routePattern}); ${s.serverNameHost}'s own records stay with its website.`);
    }
    const proxied = dnsRecords(s).filter((r) => (r.type === "A" || r.type === "AAAA") && r.proxied);
    if (proxied.length)
        lines.push(`; On Cloudflare, ${[...new Set(proxied.map((r) => r.name))].join(", ")} sits behind its proxy; elsewhere these are plain records.`);
    return lines;
}

/**
 * The record set as a zone file: header, $ORIGIN and $TTL, SOA and NS,
 * then every record in the model's order, each with its comment.
 * Cloudflare's "automatic" TTL becomes the file's TTL (it means nothing elsewhere).
 */
export function renderZoneFile(s: DnsSettings, z: ZoneFileSettings): string {
    const origin = z.origin;
    const records = dnsRecords(s);
    const soa = [absolute(z.nameServers[0]), mailbox(z.hostmaster), `(${z.serial} ${z.refresh} ${z.retry} ${z.expire} ${z.negativeTtl})`].join(" ");
    const rows: string[][] = [
        ["@", String(z.ttl), "IN", "SOA", soa],
        ...z.nameServers.map((ns) => ["@", String(z.ttl), "IN", "NS", absolute(ns)]),
        ...records.map((r) => [relative(r.name, origin), String(z.ttl), "IN", r.type, `${rdata(r)} ; ${r.comment}`]),
    ];
    return [
        `; Zone ${origin}: the DNS records of the Matrix homeserver ${s.homeserverHost} (pulumi-matrix stack ${s.stack}).`,
        "; Import it into any DNS host (most replace SOA and NS with their own), or serve it as the zone's primary",
        "; after setting the name servers and raising the serial on every change.",
        ...notes(s, wellKnownWorker(s)),
        `$ORIGIN ${absolute(origin)}`,
        `$TTL ${z.ttl}`,
        ...columns(rows),
        "",
    ].join("\n");
}

/**
 * The Worker (an ES module) that answers `/.well-known/matrix/server` and
 * `/client` on the server_name's domain with the documents as JSON, open to
 * every origin (web clients read them cross-origin); any other path under
 * the route goes on to the website's own origin.
 */
export function renderWellKnownWorker(w: WellKnownWorker): string {
    const documents = JSON.stringify(w.documents, null, 4);
    return `// ${w.comment}
// Serves the Matrix discovery documents on ${w.routePattern}; other paths go to the site's origin.
const DOCUMENTS = ${documents};

const HEADERS = {
    "Content-Type": "application/json",
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization",
    "Cache-Control": "public, max-age=3600",
};

export default {
    async fetch(request) {
        const path = new URL(request.url).pathname;
        if (!Object.prototype.hasOwnProperty.call(DOCUMENTS, path)) return fetch(request);
        const document = DOCUMENTS[path];
        if (request.method === "OPTIONS") return new Response(null, { status: 204, headers: HEADERS });
        if (request.method !== "GET" && request.method !== "HEAD") return new Response(null, { status: 405, headers: { ...HEADERS, Allow: "GET, HEAD, OPTIONS" } });
        return new Response(request.method === "HEAD" ? null : JSON.stringify(document), { headers: HEADERS });
    },
};
`;
}

/**
 * The zone file alone, from the settings a user writes: for a DNS host
 * other than Cloudflare, no Pulumi and no Cloudflare account needed
 * (`zone.name` is required; a bad setting throws a ConfigError). E.g.
 *
 * ```ts
 * fs.writeFileSync("example.com.zone", dnsZoneFile({
 *     zone: { name: "example.com" }, serverName: "example.com", publicBaseUrl: "https://matrix.example.com/",
 *     ipv4: "203.0.113.10", delegation: "srv", turnHost: "turn.example.com", stack: "prod",
 * }));
 * ```
 */
export function dnsZoneFile(o: DnsOptions, zoneFile: ZoneFileOptions = {}, component = "dnsZoneFile"): string {
    const s = resolveDnsSettings(component, o);
    return renderZoneFile(s, resolveZoneFileSettings(component, s, zoneFile));
}
