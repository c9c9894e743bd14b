/**
 * A client outside a VM that reaches it at a public address, as the
 * internet reaches a cloud VM behind NAT: the VM's ports are forwarded by
 * qemu to 127.0.0.1 here; a network namespace of the test's own (its
 * programs run under `prefix`) routes `publicAddress` through a veth to this
 * namespace, where an nftables table of the test's own DNATs each
 * `publicAddress:port` to the forwarded loopback port (`route_localnet` on
 * that veth only, which loopback destinations from outside need). Names in
 * `hosts` resolve to `publicAddress` inside the namespace
 * (/etc/netns/<ns>/hosts, which `ip netns exec` puts over /etc/hosts).
 *
 * The VM's programs see the client's packets as they would on a cloud VM:
 * through a NAT, addressed to its public address. Everything (namespace,
 * veth, nft table, hosts file) goes in `close()`, on failure too (it is
 * registered with the test processes' cleanup).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { registerCleanup, run } from "../integration/processes";

export interface Forward {
    readonly proto: "tcp" | "udp";
    /** The port at the public address. */
    readonly port: number;
    /** The port on this machine's 127.0.0.1 it reaches (qemu's forward). */
    readonly to: number;
}

export interface PublicAddressClient {
    /** The namespace's name. */
    readonly ns: string;
    /** Runs a command in the namespace: `[...prefix, cmd, ...args]`. */
    readonly prefix: readonly string[];
    /** Flows (connections, UDP 5-tuples) each forward has translated so far, by `proto/port`: a NAT rule sees a flow's first packet only. */
    flows(): Promise<Record<string, number>>;
    close(): void;
}

/** See the module comment. `tag` makes the names unique (a few lowercase letters). */
export async function publicAddressClient(o: {
    tag: string;
    publicAddress: string;
    forwards: readonly Forward[];
    hosts: readonly string[];
}): Promise<PublicAddressClient> {
    const id = `${o.tag}${process.pid % 100000}`;
    const ns = `pm-${id}`;
    const hostIf = `pm${id}`.slice(0, 15);
    const table = `pm_${id}`;
    // A /30 of its own per process (10.233.0.0/16: not used by the other suites).
    const net = `10.233.${process.pid % 250}`;
    const [hostSide, nsSide] = [`${net}.2`, `${net}.1`];
    const netnsDir = `/etc/netns/${ns}`;
    const hadNetnsRoot = fs.existsSync("/etc/netns");
    const remove = () => {
        spawnSync("nft", ["delete", "table", "ip", table], { stdio: "ignore" });
        spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
        spawnSync("ip", ["link", "del", hostIf], { stdio: "ignore" });
        fs.rmSync(netnsDir, { recursive: true, force: true });
        if (!hadNetnsRoot)
            try {
                fs.rmdirSync("/etc/netns");
            } catch {
                /* not empty (another suite's), or gone */
            }
    };
    const unregister = registerCleanup({ name: `public-address client ${ns}`, run: remove, runSync: remove });
    try {
        const ip = (...a: string[]) => run("ip", a);
        await ip("netns", "add", ns);
        await ip("link", "add", hostIf, "type", "veth", "peer", "name", "v1", "netns", ns);
        await ip("addr", "add", `${hostSide}/30`, "dev", hostIf);
        await ip("link", "set", hostIf, "up");
        await ip("-n", ns, "addr", "add", `${nsSide}/30`, "dev", "v1");
        await ip("-n", ns, "link", "set", "v1", "up");
        await ip("-n", ns, "link", "set", "lo", "up");
        await ip("-n", ns, "route", "add", `${o.publicAddress}/32`, "via", hostSide);
        // DNAT to 127.0.0.1 from a non-loopback interface: allowed on this veth alone (it goes with it).
        await run("sysctl", ["-q", "-w", `net.ipv4.conf.${hostIf}.route_localnet=1`]);
        const rules = o.forwards.map(
            (f) =>
                `    iifname "${hostIf}" ip daddr ${o.publicAddress} ${f.proto} dport ${f.port} counter dnat to 127.0.0.1:${f.to} comment "${f.proto}/${f.port}"`,
        );
        const ruleset = [
            `table ip ${table} {`,
            "  chain prerouting {",
            "    type nat hook prerouting priority dstnat; policy accept;",
            ...rules,
            "  }",
            "}",
            "",
        ].join("\n");
        await run("nft", ["-f", "-"], { input: ruleset });
        fs.mkdirSync(netnsDir, { recursive: true });
        fs.writeFileSync(path.join(netnsDir, "hosts"), `127.0.0.1 localhost\n${o.publicAddress} ${o.hosts.join(" ")}\n`);
        // No DNS server: names outside `hosts` fail at once.
        fs.writeFileSync(path.join(netnsDir, "resolv.conf"), "nameserver 127.0.0.1\n");
    } catch (e) {
        remove();
        unregister();
        throw e;
    }
    return {
        ns,
        prefix: ["ip", "netns", "exec", ns],
        async flows() {
            const out = (await run("nft", ["-j", "list", "table", "ip", table])).stdout;
            const counts: Record<string, number> = {};
            for (const item of (JSON.parse(out) as { nftables: { rule?: { comment?: string; expr: { counter?: { packets: number } }[] } }[] }).nftables) {
                const rule = item.rule;
                if (!rule?.comment) continue;
                counts[rule.comment] = rule.expr.find((e) => e.counter)?.counter?.packets ?? 0;
            }
            return counts;
        },
        close() {
            remove();
            unregister();
        },
    };
}
