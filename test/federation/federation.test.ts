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
import * as crypto from "node:crypto";
import * as fs from "node:fs";

import * as sdk from "matrix-js-sdk";

import { startUser, type SuiteUser, useSuiteNetwork } from "../support/federation/client";
import { type Homeserver, planHomeserver, startHomeserver } from "../support/federation/homeserver";
import { describeBatch, Inbox, resumeMs, sendBatch } from "../support/federation/messages";
import { DNS_ADDRESS, FederationNetwork, HUB_ADDRESS, type Namespace } from "../support/federation/network";
import { type NamedServer, startNamedZones } from "../support/integration/named";
import { type PebbleServer, startPebble } from "../support/integration/pebble";
import { alive, registerCleanup, sleep } from "../support/integration/processes";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";
import { recordGap } from "./evidence";

const NS = {
    dns: { name: "pmfed-dns", address: DNS_ADDRESS },
    hs1: { name: "pmfed-hs1", address: "10.231.77.11" },
    hs2: { name: "pmfed-hs2", address: "10.231.77.12" },
} satisfies Record<string, Namespace>;

const MESSAGES = 100;

/**
 * The faults, by the names FEDERATION_FAULTS selects them with (a comma list;
 * default all, in this order); FEDERATION_REPEAT=n runs the selection n times
 * (default 1), e.g. `FEDERATION_FAULTS=kill-sender FEDERATION_REPEAT=5 npm run
 * test:federation` to run the sender's crash again and again. Every other
 * check runs as always.
 */
const FAULTS = ["kill-sender", "restart-redis", "restart-postgres", "restart-main", "cut-link"] as const;
type Fault = (typeof FAULTS)[number];
const SELECTED: Fault[] = (() => {
    const asked = (process.env.FEDERATION_FAULTS ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
    const unknown = asked.filter((f) => !(FAULTS as readonly string[]).includes(f));
    if (unknown.length) throw new Error(`FEDERATION_FAULTS: unknown ${unknown.join(", ")}; valid: ${FAULTS.join(", ")}`);
    return asked.length ? FAULTS.filter((f) => asked.includes(f)) : [...FAULTS];
})();
const REPEAT = (() => {
    const n = Number(process.env.FEDERATION_REPEAT ?? "1");
    if (!Number.isInteger(n) || n < 1) throw new Error(`FEDERATION_REPEAT: ${process.env.FEDERATION_REPEAT} is not a whole number of at least 1`);
    return n;
})();
/**
 * FEDERATION_SENDER_STOP_MS=n (default 0): before the kill -9, stop the sender
 * (SIGSTOP) for n ms, as a sender hung on a loaded machine, so more events
 * wait for it when it comes back. A way to provoke a larger catch-up by hand.
 */
const SENDER_STOP_MS = Number(process.env.FEDERATION_SENDER_STOP_MS ?? "0");
/** How long the receiving server's history may take to hold every message of a batch sync left a gap in (backfill). */
const HISTORY_TIMEOUT_MS = 120_000;
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
        holdSuiteLock();
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

    it("alice@hs1 creates an encrypted room and invites bob@hs2; bob joins over federation", async function () {
        const created = await alice.client.createRoom({
            name: "federation",
            invite: [bob.userId],
            preset: sdk.Preset.PrivateChat,
            initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
        });
        roomId = created.room_id;
        aliceInbox = new Inbox(alice, roomId);
        bobInbox = new Inbox(bob, roomId);
        // The invite reaches hs2 over federation; bob's sync shows it.
        await waitFor(() => bob.client.getRoom(roomId)?.getMyMembership() === sdk.KnownMembership.Invite, 120_000, "bob sees the invite");
        await bob.client.joinRoom(roomId);
        await waitFor(() => alice.client.getRoom(roomId)?.getMember(bob.userId)?.membership === sdk.KnownMembership.Join, 120_000, "alice sees bob join");
        // Both clients' crypto has taken in the room's encryption state before anything is sent.
        for (const u of [alice, bob])
            await waitForAsync(() => u.client.getCrypto()!.isEncryptionEnabledInRoom(roomId), 60_000, `${u.userId} knows the room is encrypted`);
    });

    it(`${MESSAGES} encrypted messages each way: every one arrives exactly once, in order, and decrypts (device lists, key query and claim over federation)`, async function () {
        const started = Date.now();
        await Promise.all([sendBatch(alice, roomId, "a2b", MESSAGES), sendBatch(bob, roomId, "b2a", MESSAGES)]);
        const [toBob, toAlice] = await Promise.all([bobInbox.expect("a2b", MESSAGES, 300_000), aliceInbox.expect("b2a", MESSAGES, 300_000)]);
        note(`${describeBatch(toBob)}; ${describeBatch(toAlice)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
        for (const r of [toBob, toAlice]) assert.ok(r.inOrder, describeBatch(r));
        assert.equal(bobInbox.failures() + aliceInbox.failures(), 0, "events that did not decrypt");
        // They were encrypted on the wire: the room is encrypted, and every event arrived as m.room.encrypted.
        assert.ok(await alice.client.getCrypto()!.isEncryptionEnabledInRoom(roomId));
        assert.ok(bobInbox.received.every((r) => r.encrypted) && aliceInbox.received.every((r) => r.encrypted), "an event arrived unencrypted");
    });

    it("a file alice uploads on hs1 is downloaded by bob through hs2 (authenticated media over federation), byte-identical", async function () {
        const bytes = crypto.randomBytes(256 * 1024);
        const { content_uri: mxc } = await alice.client.uploadContent(bytes, { type: "application/octet-stream", name: "federation.bin" });
        const [server, mediaId] = mxc.slice("mxc://".length).split("/");
        assert.equal(server, "hs1.test");
        const r = await fetch(`${hs2.baseUrl}/_matrix/client/v1/media/download/${server}/${mediaId}`, {
            headers: { authorization: `Bearer ${bob.client.getAccessToken()}` },
        });
        assert.equal(r.status, 200, await r.clone().text());
        const got = Buffer.from(await r.arrayBuffer());
        assert.equal(got.length, bytes.length);
        assert.ok(got.equals(bytes), "the downloaded file differs");
        // hs2 fetched it from hs1 over federation: hs1's access log has the federation media request.
        const hs1Logs = [hs1.main, ...hs1.workers.values()].map((p) => p.log()).join("\n");
        assert.match(hs1Logs, new RegExp(`"GET /_matrix/federation/v1/media/download/${mediaId}`), "hs1 served no federation media download");
        note(`media: ${bytes.length} bytes uploaded on hs1, downloaded through hs2, identical`);
    });

    it("room directory, profile lookup and a typing notification cross over", async function () {
        // Directory: alice makes a public room with an alias and publishes it; bob finds it in hs1's directory and
        // resolves the alias, through hs2. (Synapse lists rooms anyone may join: the encrypted room is invite-only.)
        const alias = "#federation:hs1.test";
        const { room_id: publicRoom } = await alice.client.createRoom({
            name: "federation lobby",
            preset: sdk.Preset.PublicChat,
            room_alias_name: "federation",
        });
        await alice.client.setRoomDirectoryVisibility(publicRoom, sdk.Visibility.Public);
        // hs1 lists the room once its room statistics caught up, and hs2 caches hs1's answer for a while: ask until it shows.
        const directoryAt = Date.now();
        await waitForAsync(
            async () => (await bob.client.publicRooms({ server: "hs1.test" })).chunk.some((r) => r.room_id === publicRoom),
            180_000,
            "bob finds the room in hs1's directory through hs2",
            2000,
        );
        const directoryMs = Date.now() - directoryAt;
        assert.equal((await bob.client.getRoomIdForAlias(alias)).room_id, publicRoom);
        // Profile: alice's display name, looked up by bob on hs2.
        await alice.client.setDisplayName("Alice of hs1");
        assert.equal((await bob.client.getProfileInfo(alice.userId)).displayname, "Alice of hs1");
        // Typing: bob's client sees alice typing (an EDU hs1's senders send, hs2's readers receive).
        const typing = new Promise<void>((resolve) =>
            bob.client.on(sdk.RoomMemberEvent.Typing, (_e, m) => {
                if (m.roomId === roomId && m.userId === alice.userId && m.typing) resolve();
            }),
        );
        await alice.client.sendTyping(roomId, true, 30_000);
        await Promise.race([typing, sleep(60_000).then(() => assert.fail("bob never saw alice typing"))]);
        note(`directory (hs1's public rooms listed through hs2 after ${(directoryMs / 1000).toFixed(1)} s; alias), profile and typing: crossed over`);
    });

    it("inbound federation is served by each server's federation readers, outbound sent by its senders; the main process sends none", function () {
        for (const [self, peer] of [
            [hs1, hs2],
            [hs2, hs1],
        ] as const) {
            const of = (role: string) => [...self.workers].filter(([n]) => n.startsWith(role));
            const inbound = /"PUT \/_matrix\/federation\/v1\/send\//g;
            const readers = of("federation_reader").map(([n, p]) => [n, p.log().match(inbound)?.length ?? 0] as const);
            assert.ok(
                readers.some(([, c]) => c > 0),
                `${self.spec.serverName}: no federation reader received a transaction`,
            );
            assert.doesNotMatch(self.main.log(), inbound, `${self.spec.serverName}: the main process received a federation transaction`);
            const outbound = new RegExp(`TX \\[${peer.spec.serverName.replace(/\./g, "\\.")}\\] \\{\\d+\\} Sending transaction`, "g");
            const senders = of("federation_sender").map(([n, p]) => [n, p.log().match(outbound)?.length ?? 0] as const);
            assert.equal(
                senders.filter(([, c]) => c > 0).length,
                1,
                `${self.spec.serverName}: exactly one sender serves ${peer.spec.serverName}: ${JSON.stringify(senders)}`,
            );
            assert.doesNotMatch(self.main.log(), /Sending transaction/, `${self.spec.serverName}: the main process sent a federation transaction`);
            note(
                `${self.spec.serverName}: inbound transactions by reader ${readers.map(([n, c]) => `${n}=${c}`).join(" ")}, main=0; ` +
                    `outbound to ${peer.spec.serverName} by sender ${senders.map(([n, c]) => `${n}=${c}`).join(" ")}, main=0`,
            );
        }
    });

    /**
     * Both users send `count` messages (`gapMs` apart) while `fault` runs,
     * starting 2 s into the batch; `fault` resolves with the moment the fault
     * ended (the link restored, the process back). Then the check: every
     * message arrived once, in order, and decrypted (by sync, or where sync
     * left a gap, in the receiving server's history within HISTORY_TIMEOUT_MS,
     * as Element shows it when its user scrolls up); the report says how long
     * delivery took to resume (the first message sent at or after the fault's
     * start arriving) and when the last arrived after the fault ended.
     */
    async function underFault(name: string, fault: () => Promise<number>, gapMs = 250): Promise<void> {
        const tag = name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
        const [a2b, b2a] = [`${tag}-a2b`, `${tag}-b2a`];
        // Messages flow before, during and after the fault: 10 at least, and 10 more each once it has ended.
        const state: { ended?: number } = {};
        const until = { min: 10, done: () => state.ended !== undefined, after: 10 };
        const lateBefore = bobInbox.lateKeys() + aliceInbox.lateKeys();
        const limitedBefore = { bob: bobInbox.limitedSyncs.length, alice: aliceInbox.limitedSyncs.length };
        const sending = Promise.all([sendBatch(alice, roomId, a2b, until, gapMs), sendBatch(bob, roomId, b2a, until, gapMs)]);
        await sleep(2000);
        const faultAt = Date.now();
        const ended = (state.ended = await fault());
        const [sa, sb] = await sending;
        const gap = (origin: Homeserver, receiver: Homeserver, batch: string, sent: { eventIds: string[] }) => ({
            historyTimeoutMs: HISTORY_TIMEOUT_MS,
            onGap: async (missing: number[]) => {
                const ids = missing.map((n) => sent.eventIds[n] ?? `#${n}?`);
                const dir = await recordGap(batch, roomId, origin, receiver, sent.eventIds, ids);
                note(`${batch}: sync on ${receiver.spec.serverName} did not bring ${JSON.stringify(missing)}; evidence in ${dir}`);
            },
        });
        const [toBob, toAlice] = await Promise.all([
            bobInbox.expect(a2b, sa.times.length, 240_000, gap(hs1, hs2, a2b, sa)),
            aliceInbox.expect(b2a, sb.times.length, 240_000, gap(hs2, hs1, b2a, sb)),
        ]);
        const count = { a2b: sa.times.length, b2a: sb.times.length };
        const resumes = [resumeMs(bobInbox, a2b, sa, faultAt), resumeMs(aliceInbox, b2a, sb, faultAt)];
        const last = Math.max(bobInbox.arrival(a2b, count.a2b - 1) ?? NaN, aliceInbox.arrival(b2a, count.b2a - 1) ?? NaN);
        const s = (ms: number | undefined) => (ms === undefined || Number.isNaN(ms) ? "?" : `${(ms / 1000).toFixed(1)} s`);
        note(
            `${name}: ${describeBatch(toBob)}; ${describeBatch(toAlice)}; ` +
                `delivery resumed after ${s(resumes[0])} (a2b) / ${s(resumes[1])} (b2a); all in ${s(last - ended)} after the fault ended; ` +
                `client retries ${sa.retries + sb.retries}; decrypted once their key came later: ${bobInbox.lateKeys() + aliceInbox.lateKeys() - lateBefore}; ` +
                `limited syncs (a gap the client fills by paging back): bob ${bobInbox.limitedSyncs.length - limitedBefore.bob}, alice ${aliceInbox.limitedSyncs.length - limitedBefore.alice}`,
        );
        for (const r of [toBob, toAlice]) assert.ok(r.inOrder, `${name}: ${describeBatch(r)}`);
        assert.equal(bobInbox.failures() + aliceInbox.failures(), 0, `${name}: events that did not decrypt`);
    }

    /** Defines the test of `fault`; `round` tells repeats apart (FEDERATION_REPEAT). */
    function faultTest(fault: Fault, round: string): void {
        switch (fault) {
            case "kill-sender":
                it(`fault${round}: kill -9 the federation sender of hs1 that serves hs2 while messages flow; supervision restarts it`, async function () {
                    const outbound = /TX \[hs2\.test\] \{\d+\} Sending transaction/;
                    const [name, sender] = [...hs1.workers].find(([n, p]) => n.startsWith("federation_sender") && outbound.test(p.log()))!;
                    const restartsBefore = sender.supervisedRestarts;
                    await underFault(`kill -9 hs1 ${name}${round}`, async () => {
                        const listening = () => sender.log().split("Synapse now listening on TCP port").length - 1;
                        const startsBefore = listening();
                        if (SENDER_STOP_MS > 0) {
                            process.kill(sender.pid, "SIGSTOP");
                            await sleep(SENDER_STOP_MS);
                        }
                        process.kill(sender.pid, "SIGKILL");
                        // Back once the new process serves: a restarted sender sends what was persisted while it was down when the
                        // next event on its server wakes it, so the fault ends (and the 10 messages after it go) only then.
                        await waitFor(
                            () => sender.supervisedRestarts > restartsBefore && sender.running() && listening() > startsBefore,
                            300_000,
                            `${name} restarted`,
                        );
                        return Date.now();
                    });
                });
                return;
            case "restart-redis":
                it(`fault${round}: restart Redis of hs2`, async function () {
                    await underFault(`restart hs2 Redis${round}`, async () => {
                        await hs2.redis.restart();
                        return Date.now();
                    });
                });
                return;
            case "restart-postgres":
                it(`fault${round}: restart PostgreSQL of hs1`, async function () {
                    await underFault(`restart hs1 PostgreSQL${round}`, async () => {
                        await hs1.pg.restart();
                        return Date.now();
                    });
                });
                return;
            case "restart-main":
                it(`fault${round}: restart Synapse main of hs2; its workers reconnect without a restart of their own`, async function () {
                    const before = new Map([...hs2.workers].map(([n, p]) => [n, { pid: p.pid, restarts: p.supervisedRestarts }]));
                    await underFault(`restart hs2 Synapse main${round}`, async () => {
                        await hs2.main.restart();
                        return Date.now();
                    });
                    for (const [n, p] of hs2.workers) {
                        assert.equal(p.pid, before.get(n)!.pid, `${n} was restarted`);
                        assert.equal(p.supervisedRestarts, before.get(n)!.restarts, `${n} died`);
                        assert.ok(p.running(), `${n} is not running`);
                    }
                });
                return;
            case "cut-link":
                it(`fault${round}: the link between the namespaces is cut for 60 s while both sides send; restored, everything arrives`, async function () {
                    await underFault(
                        `cut hs1-hs2 60 s${round}`,
                        async () => {
                            await net.cut(NS.hs1, NS.hs2);
                            await sleep(60_000);
                            await net.restore(NS.hs1, NS.hs2);
                            return Date.now();
                        },
                        1500,
                    );
                });
                return;
        }
    }
    for (let round = 1; round <= REPEAT; round++) for (const fault of SELECTED) faultTest(fault, REPEAT > 1 ? ` ${round}` : "");

    /** dig through the suite's DNS server for any zone it serves. */
    async function startNamedDig(name: string, type: string): Promise<string[]> {
        return named.dig(name, type);
    }
});

/**
 * One run of the suite at a time on a machine: its namespaces, bridge and
 * addresses have fixed names, and a second run would first remove the first's
 * as leftovers. The lock (a file with the holder's PID) is freed when the run
 * ends, also on failure; one whose holder died is taken over.
 */
function holdSuiteLock(): void {
    const file = "/run/pmfed-suite.lock";
    for (;;) {
        try {
            fs.writeFileSync(file, `${process.pid}\n`, { flag: "wx" });
            break;
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
            const holder = Number(fs.readFileSync(file, "utf8").trim());
            if (holder > 0 && alive(holder)) throw new Error(`another federation suite runs (PID ${holder}, ${file}); run one at a time`);
            fs.rmSync(file, { force: true });
        }
    }
    const free = () => {
        if (fs.existsSync(file) && fs.readFileSync(file, "utf8").trim() === String(process.pid)) fs.rmSync(file, { force: true });
    };
    registerCleanup({ name: "federation suite lock", run: free, runSync: free });
}

async function waitForAsync(check: () => Promise<boolean>, timeoutMs: number, what: string, intervalMs = 250): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
        if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms: ${what}`);
        await sleep(intervalMs);
    }
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
        if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms: ${what}`);
        await sleep(250);
    }
}
