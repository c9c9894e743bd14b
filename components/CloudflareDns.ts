import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";

import {
    certificateNamesFor,
    cloudflareRecordKey,
    DnsOptions,
    DnsRecord,
    dnsRecords,
    DnsSettings,
    resolveDnsSettings,
    resolveZoneFileSettings,
    serverNameWellKnownFor,
    wellKnownWorker,
    withAddresses,
    WORKER_KEYS,
    ZoneFileOptions,
} from "../src/model/dns";
import { componentLabel, ConfigError } from "../src/model/errors";
import { DNS_STAND_IN } from "../src/model/stack";
import { renderWellKnownWorker, renderZoneFile } from "../src/render/dns";
import { childName, typeToken } from "./naming";
import { ReverseProxy } from "./ReverseProxy";
import { SynapseHomeserver } from "./SynapseHomeserver";

export interface CloudflareDnsArgs extends Omit<DnsOptions, "serverName" | "publicBaseUrl" | "ipv4" | "ipv6" | "stack"> {
    /** The homeserver: a SynapseHomeserver, or its server name and public base URL as plain values. Required. */
    synapse: SynapseHomeserver | { serverName: string; publicBaseUrl: string };
    /**
     * The ReverseProxy in front of it: its federation port and certificate
     * names are used, and its ACME directory for the CAA records (then
     * leave `federationPort`, `certificateNames` and `acmeDirectoryUrl` out). Default none: federation port 8448, certificate not checked.
     */
    proxy?: ReverseProxy;
    /** The VM's public IPv4 address (e.g. a cloud VM's output): every A record's content. Required. */
    ipv4: pulumi.Input<string>;
    /** The VM's public IPv6 address: when given, every A record gets an AAAA twin. Default none. */
    ipv6?: pulumi.Input<string>;
    /** The stack named in every record's comment. Default the current Pulumi stack. */
    stack?: string;
    /** SOA and NS of the `zoneFile` output (see `ZoneFileOptions`; its origin is the zone's name). Default placeholders that DNS hosts replace on import. */
    zoneFile?: Omit<ZoneFileOptions, "origin">;
    /**
     * The record set's settings, already resolved from these options (with
     * stand-in addresses while the real ones are not known: see
     * `DNS_STAND_IN`; MatrixStack passes its plan's, see `planStack`): used
     * as they are, so they are resolved once per deployment. Default:
     * resolved here.
     */
    resolved?: DnsSettings;
    /**
     * Leave the records and the Worker in Cloudflare when they leave this
     * stack (`pulumi destroy`, or the component removed): Pulumi's
     * `retainOnDelete`. For a stack whose names another stack takes over
     * (`takeOver`). MatrixStack sets it while the stack is in standby.
     * Default false: they are deleted with the stack.
     */
    retain?: boolean;
}

/** A record as created, for the component's outputs. */
export interface CreatedDnsRecord {
    name: string;
    type: DnsRecord["type"];
    /** The address, an SRV record's `priority weight port target`, or a CAA record's `flags issue "issuer"`. */
    content: string;
    ttl: number;
    proxied: boolean;
}

/** Addresses that arrive as Outputs plan the record set with these (DNS_STAND_IN, documentation ranges); the records get the real ones. */
const STAND_IN = DNS_STAND_IN;

/** The Worker's runtime behaviour is pinned by this date (Cloudflare's compatibility date). */
const WORKER_COMPATIBILITY_DATE = "2025-01-01";

const isDeferred = (v: unknown): boolean => pulumi.Output.isInstance(v) || v instanceof Promise;

/**
 * The homeserver's DNS on Cloudflare: A/AAAA records for the homeserver,
 * Element and TURN hosts (never proxied but Element on request), the
 * delegation of the server_name (SRV records, or the server_name pointing
 * here for nginx's well-known documents, or a Worker serving them on the
 * server_name's route), TURN's SRV records, CAA records that name the CA
 * the certificates come from, a comment naming the stack on each. The zone is looked up by name or given by id. `zoneFile` is the same
 * record set for any other DNS host; without Cloudflare use `dnsZoneFile`
 * instead (it creates nothing).
 */
export class CloudflareDns extends pulumi.ComponentResource {
    /** The records, as created (names fully qualified). */
    readonly records: pulumi.Output<CreatedDnsRecord[]>;
    /** The same record set as a BIND zone file. */
    readonly zoneFile: pulumi.Output<string>;
    /** The zone's Cloudflare id (given, or looked up by name). */
    readonly zoneId: pulumi.Output<string>;
    /**
     * Each Cloudflare resource's id as Pulumi imports it, by key (see
     * `cloudflareKeys`): what another stack's `takeOver` takes.
     */
    readonly cloudflareIds: pulumi.Output<Record<string, string>>;
    /** Names besides the homeserver host that the homeserver's certificate must cover for this delegation (tell the ReverseProxy). */
    readonly certificateNames: string[];
    /** Whether the ReverseProxy must serve the well-known documents on the server_name's domain (its `serverNameWellKnown`). */
    readonly serverNameWellKnown: boolean;

    constructor(name: string, args: CloudflareDnsArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("CloudflareDns"), name, {}, opts);
        const component = componentLabel("CloudflareDns", name);
        const { synapse, proxy, ipv4, ipv6, zoneFile, resolved, ...rest } = args;
        const homeserver = synapse instanceof SynapseHomeserver ? synapse.settings : synapse;
        const options = (addresses: { ipv4?: string; ipv6?: string }): DnsOptions => ({
            ...rest,
            ...fromProxy(component, args, proxy),
            serverName: homeserver.serverName,
            publicBaseUrl: homeserver.publicBaseUrl,
            stack: args.stack ?? pulumi.getStack(),
            ...addresses,
        });
        // Which records exist never depends on the addresses' values, only on whether an IPv6 is given.
        const deferred = isDeferred(ipv4) || isDeferred(ipv6);
        const plan =
            resolved ??
            resolveDnsSettings(
                component,
                options(
                    deferred
                        ? { ipv4: STAND_IN.ipv4, ...(ipv6 !== undefined ? { ipv6: STAND_IN.ipv6 } : {}) }
                        : ({ ipv4, ipv6 } as { ipv4?: string; ipv6?: string }),
                ),
            );
        const real: pulumi.Output<DnsSettings> = pulumi.all([ipv4, ipv6]).apply(([v4, v6]) => withAddresses(component, plan, v4, v6));
        this.certificateNames = certificateNamesFor(plan);
        this.serverNameWellKnown = serverNameWellKnownFor(plan);

        const zone = lookupZone(plan, this);
        this.zoneId = zone.id;
        this.records = real.apply((s) => dnsRecords(s).map(created));
        this.zoneFile = pulumi.all([real, zone.name]).apply(([s, origin]) => zoneFileText(component, s, { ...zoneFile, origin }));

        // Taken over from another stack: imported by id (a no-op once in this stack's state); left in Cloudflare when retained.
        const childOpts = (key: string): pulumi.CustomResourceOptions => ({
            parent: this,
            retainOnDelete: args.retain ?? false,
            ...(plan.takeOver?.[key] !== undefined ? { import: plan.takeOver[key] } : {}),
        });
        const ids: Record<string, pulumi.Output<string>> = {};
        for (const [i, r] of dnsRecords(plan).entries()) {
            const content = real.apply((s) => dnsRecords(s)[i]);
            const key = cloudflareRecordKey(r);
            const record = new cloudflare.DnsRecord(childName(name, key), recordArgs(r, content, zone.id), childOpts(key));
            ids[key] = pulumi.interpolate`${zone.id}/${record.id}`;
        }
        Object.assign(ids, createWorker(name, plan, zone.id, childOpts));
        this.cloudflareIds = pulumi.output(ids);
        this.registerOutputs({ records: this.records, zoneFile: this.zoneFile, zoneId: this.zoneId, cloudflareIds: this.cloudflareIds });
    }
}

/** The record set as a BIND zone file. */
function zoneFileText(component: string, s: DnsSettings, zoneFile: ZoneFileOptions): string {
    return renderZoneFile(s, resolveZoneFileSettings(component, s, zoneFile));
}

/**
 * The zone file of a record set planned before its addresses are known
 * (see `planStack`), once they are: what MatrixStack outputs without
 * Cloudflare (nothing is created).
 */
export function plannedZoneFile(
    component: string,
    planned: DnsSettings,
    ipv4: pulumi.Input<string>,
    ipv6: pulumi.Input<string> | undefined,
    zoneFile: ZoneFileOptions,
): pulumi.Output<string> {
    return pulumi.all([ipv4, ipv6]).apply(([v4, v6]) => zoneFileText(component, withAddresses(component, planned, v4, v6), zoneFile));
}

/** A record for the outputs. */
function created(r: DnsRecord): CreatedDnsRecord {
    return { name: r.name, type: r.type, content: r.content, ttl: r.ttl, proxied: r.type === "A" || r.type === "AAAA" ? r.proxied : false };
}

/** federationPort, certificateNames and the ACME directory (for CAA) from the ReverseProxy, when one is given (and they are not also set by hand). */
function fromProxy(component: string, args: CloudflareDnsArgs, proxy: ReverseProxy | undefined): Partial<DnsOptions> {
    if (!proxy) return {};
    for (const k of ["federationPort", "certificateNames", "acmeDirectoryUrl"] as const)
        if (args[k] !== undefined)
            throw new ConfigError(component, k, args[k], "it comes from proxy (the ReverseProxy's settings): remove it, or remove proxy");
    return { federationPort: proxy.settings.federationPort, certificateNames: proxy.certificateNames, acmeDirectoryUrl: proxy.settings.acme.directoryUrl };
}

/** The zone's id and name: the id as given (its name looked up when not given), or both looked up by name. */
function lookupZone(s: DnsSettings, parent: pulumi.Resource): { id: pulumi.Output<string>; name: pulumi.Output<string> } {
    if (s.zone.id !== undefined && s.zone.name !== undefined) return { id: pulumi.output(s.zone.id), name: pulumi.output(s.zone.name) };
    const found =
        s.zone.id !== undefined
            ? cloudflare.getZoneOutput({ zoneId: s.zone.id }, { parent })
            : cloudflare.getZoneOutput({ filter: { name: s.zone.name } }, { parent });
    return { id: s.zone.id !== undefined ? pulumi.output(s.zone.id) : found.id, name: s.zone.name !== undefined ? pulumi.output(s.zone.name) : found.name };
}

/** A Cloudflare record from the model's; A/AAAA contents come from the real addresses. */
function recordArgs(r: DnsRecord, real: pulumi.Output<DnsRecord>, zoneId: pulumi.Output<string>): cloudflare.DnsRecordArgs {
    const common = { zoneId, name: r.name, type: r.type, ttl: r.ttl, comment: r.comment };
    if (r.type === "SRV") {
        // Priority both in data and at the top level: with only one set the provider shows a change on every update.
        return { ...common, data: { ...r.data }, priority: r.data.priority };
    }
    if (r.type === "CAA") return { ...common, data: { ...r.data } };
    // Explicitly false for every name but a proxied Element: Cloudflare's proxy carries neither federation nor TURN.
    return { ...common, content: real.apply((x) => x.content), proxied: r.proxied };
}

/** Worker mode: the script with the two documents and its route on the server_name's domain; their import ids by key. */
function createWorker(
    name: string,
    s: DnsSettings,
    zoneId: pulumi.Output<string>,
    opts: (key: string) => pulumi.CustomResourceOptions,
): Record<string, pulumi.Output<string>> {
    const w = wellKnownWorker(s);
    if (!w) return {};
    const script = new cloudflare.WorkersScript(
        childName(name, WORKER_KEYS.script),
        {
            accountId: w.accountId,
            scriptName: w.scriptName,
            content: renderWellKnownWorker(w),
            mainModule: "worker.js",
            compatibilityDate: WORKER_COMPATIBILITY_DATE,
        },
        opts(WORKER_KEYS.script),
    );
    const route = new cloudflare.WorkersRoute(
        childName(name, WORKER_KEYS.route),
        { zoneId, pattern: w.routePattern, script: script.scriptName },
        { ...opts(WORKER_KEYS.route), dependsOn: [script] },
    );
    return {
        [WORKER_KEYS.script]: pulumi.interpolate`${w.accountId}/${script.scriptName}`,
        [WORKER_KEYS.route]: pulumi.interpolate`${zoneId}/${route.id}`,
    };
}
