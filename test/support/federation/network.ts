// The federation suite's network: a bridge on this machine with addresses of
// its own (10.231.77.0/24, never routed anywhere) and one network namespace
// per server plus one for DNS, each joined to the bridge by a veth pair. Each
// namespace's only resolver is the DNS namespace's named
// (/etc/netns/<ns>/resolv.conf, which `ip netns exec` binds over
// /etc/resolv.conf). Everything is removed by `teardown` or the suite's
// cleanup, also after a crash (and a leftover of an earlier run first).

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";

import { registerCleanup, run } from "../integration/processes";

/** The bridge's subnet: this machine's own address on it, the DNS server's, and the homeservers'. */
export const FED_SUBNET = "10.231.77.0/24";
export const HUB_ADDRESS = "10.231.77.1";
export const DNS_ADDRESS = "10.231.77.2";
const BRIDGE = "pmfed0";
const NETNS_ETC = "/etc/netns";

/** A namespace on the bridge. */
export interface Namespace {
    readonly name: string;
    readonly address: string;
}

/** The nftables table that cuts a namespace off from one address (dropped silently, as a broken link does). */
const CUT_TABLE = "pmfed_cut";

/** Another bridge and subnet than the suite's, so a run of the benchmark and one of the suite do not meet (the default is the suite's). */
export interface BridgeOptions {
    /** The bridge's interface name (default pmfed0). */
    readonly bridge?: string;
    /** This machine's address on it, a /24 (default HUB_ADDRESS). */
    readonly hubAddress?: string;
    /** The DNS server's address, every namespace's resolver (default DNS_ADDRESS). */
    readonly dnsAddress?: string;
}

export class FederationNetwork {
    private readonly namespaces: Namespace[] = [];
    private bridge = BRIDGE;
    private createdNetnsEtc = false;
    private readonly unregister: () => void;

    private constructor() {
        this.unregister = registerCleanup({ name: "federation network", run: () => this.teardown(), runSync: () => this.teardownSync() });
    }

    /** The bridge with this machine's address on it, and a namespace per entry (a leftover of an earlier run is removed first). */
    static async create(namespaces: readonly Namespace[], opts: BridgeOptions = {}): Promise<FederationNetwork> {
        const net = new FederationNetwork();
        net.namespaces.push(...namespaces);
        net.bridge = opts.bridge ?? BRIDGE;
        const [bridge, hub, resolver] = [net.bridge, opts.hubAddress ?? HUB_ADDRESS, opts.dnsAddress ?? DNS_ADDRESS];
        net.teardownSync();
        net.createdNetnsEtc = !fs.existsSync(NETNS_ETC);
        const sh = async (cmd: string) => {
            await run("bash", ["-euo", "pipefail", "-c", cmd]);
        };
        await sh(`ip link add ${bridge} type bridge && ip addr add ${hub}/24 dev ${bridge} && ip link set ${bridge} up`);
        for (const ns of namespaces) {
            const veth = `${ns.name}-h`;
            await sh(
                [
                    `ip netns add ${ns.name}`,
                    `ip link add ${veth} type veth peer name eth0 netns ${ns.name}`,
                    `ip link set ${veth} master ${bridge} up`,
                    `ip -n ${ns.name} addr add ${ns.address}/24 dev eth0`,
                    `ip -n ${ns.name} link set eth0 up`,
                    `ip -n ${ns.name} link set lo up`,
                    // Services bind ports below 1024 (nginx, named) in their own namespace only.
                    `ip netns exec ${ns.name} sysctl -q -w net.ipv4.ip_unprivileged_port_start=0`,
                ].join(" && "),
            );
            fs.mkdirSync(`${NETNS_ETC}/${ns.name}`, { recursive: true });
            fs.writeFileSync(`${NETNS_ETC}/${ns.name}/resolv.conf`, `nameserver ${resolver}\noptions timeout:2 attempts:2\n`);
        }
        return net;
    }

    /** Drops every packet between the two namespaces (both ways, in each), as a cut link does; DNS and the clients still reach each. */
    async cut(a: Namespace, b: Namespace): Promise<void> {
        for (const [self, other] of [
            [a, b],
            [b, a],
        ] as const) {
            const rules = `table inet ${CUT_TABLE} {
    chain out { type filter hook output priority 0; ip daddr ${other.address} drop; }
    chain in { type filter hook input priority 0; ip saddr ${other.address} drop; }
}
`;
            await run("ip", ["netns", "exec", self.name, "nft", "-f", "-"], { input: rules });
        }
    }

    /** Undoes `cut`. */
    async restore(a: Namespace, b: Namespace): Promise<void> {
        for (const ns of [a, b]) await run("ip", ["netns", "exec", ns.name, "nft", "delete", "table", "inet", CUT_TABLE]);
    }

    /** Kills whatever still runs in the namespaces, removes them, the bridge and the resolver files. */
    async teardown(): Promise<void> {
        this.teardownSync();
        this.unregister();
    }

    private teardownSync(): void {
        const quiet = (cmd: string) => spawnSync("bash", ["-c", cmd], { stdio: "ignore" });
        for (const ns of this.namespaces) {
            quiet(`p=$(ip netns pids ${ns.name} 2>/dev/null); [ -z "$p" ] || kill -9 $p`);
            quiet(`ip netns del ${ns.name}`);
            quiet(`ip link del ${ns.name}-h`);
            fs.rmSync(`${NETNS_ETC}/${ns.name}`, { recursive: true, force: true });
        }
        quiet(`ip link del ${this.bridge}`);
        if (this.createdNetnsEtc && fs.existsSync(NETNS_ETC) && fs.readdirSync(NETNS_ETC).length === 0) fs.rmdirSync(NETNS_ETC);
    }
}
