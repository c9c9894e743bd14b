// Two homeservers federating for real users (issue 20, section 1): hs1 and
// hs2, each a whole stack as MatrixStack plans it and its scripts provision
// it (test/support/federation/homeserver.ts), each in a network namespace on
// a bridge of its own addresses; certificates from Pebble through certbot;
// discovery through the library's zone files served by BIND's named, the
// only resolver of both namespaces (hs1 by well-known delegation, hs2 by its
// _matrix-fed._tcp SRV record). Clients are matrix-js-sdk with Rust crypto.
//
// Run with `npm run test:federation` (as root; .ci/run runs it). It prints a
// short report at the end.

import { strict as assert } from "node:assert";
import * as fs from "node:fs";

import * as sdk from "matrix-js-sdk";

import { startUser, type SuiteUser, useSuiteNetwork } from "../support/federation/client";
import { type Homeserver, planHomeserver, startHomeserver } from "../support/federation/homeserver";
import { describeBatch, Inbox, sendBatch } from "../support/federation/messages";
import { DNS_ADDRESS, FederationNetwork, HUB_ADDRESS, type Namespace } from "../support/federation/network";
import { type NamedServer, startNamedZones } from "../support/integration/named";
import { type PebbleServer, startPebble } from "../support/integration/pebble";
import { sleep } from "../support/integration/processes";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";

const NS = {
    dns: { name: "pmfed-dns", address: DNS_ADDRESS },
    hs1: { name: "pmfed-hs1", address: "10.231.77.11" },
    hs2: { name: "pmfed-hs2", address: "10.231.77.12" },
} satisfies Record<string, Namespace>;

const MESSAGES = 100;
const report: string[] = [];
const note = (line: string) => {
    report.push(line);
    process.stderr.write(`      ${line}\n`);
};

describe("federation: two homeservers as the library deploys them, real clients, faults", function () {
    let net: FederationNetwork;
    let pebble: PebbleServer;
    let named: NamedServer;
    let hs1: Homeserver;
    let hs2: Homeserver;
    let alice: SuiteUser;
    let bob: SuiteUser;
    let roomId: string;
    let aliceInbox: Inbox;
    let bobInbox: Inbox;
    const t0 = Date.now();

    before(async function () {
        const venvP = ensureSynapseVenv();
        net = await FederationNetwork.create([NS.dns, NS.hs1, NS.hs2]);
        // Pebble listens on this machine's address on the bridge; its validation dials the names in the namespaces on port 80.
        pebble = await startPebble({ httpPort: 80, listenAddress: HUB_ADDRESS });
        const venv = await venvP;
        const p1 = planHomeserver({ ns: NS.hs1, serverName: "hs1.test", domain: "matrix.hs1.test", delegation: "well-known" }, venv, pebble);
        const p2 = planHomeserver({ ns: NS.hs2, serverName: "hs2.test", domain: "matrix.hs2.test", delegation: "srv" }, venv, pebble);
        // Pebble's own DNS answers for every name a certificate covers (hs2.test included: SRV delegation puts it on hs2's certificate).
        for (const p of [p1, p2]) for (const name of [p.spec.serverName, p.spec.domain]) await pebble.addARecord(name, p.spec.ns.address);
        named = await startNamedZones([p1.zone, p2.zone], { address: DNS_ADDRESS, port: 53, netns: NS.dns.name });
        useSuiteNetwork(fs.readFileSync(pebble.issuingRootFile, "utf8"));
        [hs1, hs2] = await Promise.all([startHomeserver(p1), startHomeserver(p2)]);
        note(`set-up: ${((Date.now() - t0) / 1000).toFixed(0)} s (2 stacks, 14 Synapse processes, certificates from Pebble)`);
        [alice, bob] = await Promise.all([startUser(hs1, "alice", "alice-password-1"), startUser(hs2, "bob", "bob-password-2")]);
    });

    after(async function () {
        alice?.client.stopClient();
        bob?.client.stopClient();
        await Promise.all([hs1?.stop(), hs2?.stop()]);
        await named?.stop();
        await pebble?.stop();
        await net?.teardown();
        note(`total: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
        process.stderr.write(`\n      ===== federation report =====\n${report.map((l) => `      ${l}`).join("\n")}\n`);
    });

    it("discovery: the zone files answer as rendered (hs1: A on its server_name for well-known; hs2: _matrix-fed._tcp SRV)", async function () {
        assert.deepEqual(await named.dig("hs1.test", "A"), [`hs1.test. 300 IN A ${NS.hs1.address}`]);
        const srv = await startNamedDig("_matrix-fed._tcp.hs2.test", "SRV");
        assert.match(srv.join("\n"), /SRV \d+ \d+ 8448 matrix\.hs2\.test\.$/m);
    });

    it("alice@hs1 creates a room and invites bob@hs2; bob joins over federation", async function () {
        const created = await alice.client.createRoom({ name: "federation", invite: [bob.userId], preset: sdk.Preset.PrivateChat });
        roomId = created.room_id;
        aliceInbox = new Inbox(alice, roomId);
        bobInbox = new Inbox(bob, roomId);
        // The invite reaches hs2 over federation; bob's sync shows it.
        await waitFor(() => bob.client.getRoom(roomId)?.getMyMembership() === sdk.KnownMembership.Invite, 120_000, "bob sees the invite");
        await bob.client.joinRoom(roomId);
        await waitFor(() => alice.client.getRoom(roomId)?.getMember(bob.userId)?.membership === sdk.KnownMembership.Join, 120_000, "alice sees bob join");
    });

    it(`${MESSAGES} messages each way: every one arrives exactly once, in order`, async function () {
        const started = Date.now();
        await Promise.all([sendBatch(alice, roomId, "a2b", MESSAGES), sendBatch(bob, roomId, "b2a", MESSAGES)]);
        const [toBob, toAlice] = await Promise.all([bobInbox.expect("a2b", MESSAGES, 180_000), aliceInbox.expect("b2a", MESSAGES, 180_000)]);
        note(`${describeBatch(toBob)}; ${describeBatch(toAlice)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
        for (const r of [toBob, toAlice]) assert.ok(r.inOrder, describeBatch(r));
    });

    /** dig through the suite's DNS server for any zone it serves. */
    async function startNamedDig(name: string, type: string): Promise<string[]> {
        return named.dig(name, type);
    }
});

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
        if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms: ${what}`);
        await sleep(250);
    }
}
