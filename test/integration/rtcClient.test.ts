// The LiveKit test client (test/support/integration/rtc-client) against a bare
// livekit-server, before the MatrixRTC test (rtc.test.ts) relies on it: two
// clients join one room, one publishes Opus and VP8, the other counts the
// RTP packets the SFU forwards to it. Tokens are minted here with the
// server's API key, as lk-jwt-service mints them.
//
// WebRTC's ICE (pion) gathers no loopback candidates, so the SFU and the
// clients run in a network namespace of their own where the SFU's address
// is on a veth (the other end, in this namespace, lets the test call the
// SFU's room API); nothing routes further.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { waitForHttp } from "../support/integration/net";
import { makeTempDir, spawnDaemon, type SpawnedDaemon } from "../support/integration/processes";
import { addClientNamespace } from "../support/integration/remotePeer";
import { joinCall, livekitToken, matrixRtcBinaries, rtcClient } from "../support/integration/rtcClient";

const NS = `pm-rtcc-${process.pid}`;
const HOST_IF = `pmrc${process.pid % 100000}`;
/** This namespace's end of the veth, and the SFU's (the clients') end. */
const HOST_SIDE = "10.231.9.2";
const SFU_ADDRESS = "10.231.9.1";
const API_KEY = "pm-test-key";
const API_SECRET = crypto.randomBytes(32).toString("hex");

describe("rtc-client: the LiveKit test client against a bare livekit-server", function () {
    let livekit: SpawnedDaemon;
    let url: string;
    let api: string;
    const inNs = ["ip", "netns", "exec", NS];

    /** Creates a room through the SFU's room service (Twirp), as lk-jwt-service does for a full-access user. */
    async function createRoom(name: string): Promise<void> {
        const admin = livekitToken(API_KEY, API_SECRET, "pm-test-admin", { room: name, roomCreate: true });
        const r = await fetch(`${api}/twirp/livekit.RoomService/CreateRoom`, {
            method: "POST",
            headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
            body: JSON.stringify({ name }),
        });
        assert.equal(r.status, 200, await r.text());
    }

    const grant = (room: string) => ({ room, roomJoin: true, canPublish: true, canSubscribe: true });

    before(async function () {
        // The builds, when nothing is cached yet: minutes.
        this.timeout(30 * 60_000);
        const [bins] = await Promise.all([matrixRtcBinaries(), rtcClient()]);
        await addClientNamespace(NS, HOST_IF, HOST_SIDE, SFU_ADDRESS);
        const dir = makeTempDir("rtc-client-livekit");
        const config = path.join(dir, "livekit.yaml");
        const keys = path.join(dir, "keys");
        fs.writeFileSync(
            config,
            [
                "port: 7880",
                `bind_addresses: ["${SFU_ADDRESS}"]`,
                "rtc:",
                "  tcp_port: 7881",
                "  udp_port: 7882",
                "  use_external_ip: false",
                `  node_ip: ${SFU_ADDRESS}`,
                "room:",
                "  auto_create: false",
                "",
            ].join("\n"),
        );
        fs.writeFileSync(keys, `${API_KEY}: ${API_SECRET}\n`, { mode: 0o600 });
        livekit = spawnDaemon("ip", ["netns", "exec", NS, bins.livekitServer, "--config", config, "--key-file", keys], { name: "livekit-server" });
        api = `http://${SFU_ADDRESS}:7880`;
        url = `ws://${SFU_ADDRESS}:7880`;
        await waitForHttp(api, { timeoutMs: 30_000, abort: () => (livekit.hasExited() ? `livekit-server exited:\n${livekit.tail(30)}` : undefined) });
    });

    after(async function () {
        await livekit?.stop();
    });

    it("one client publishes an Opus and a VP8 track; the other receives RTP packets of both from it", async function () {
        await createRoom("call");
        const [pub, sub] = await Promise.all([
            joinCall({ mode: "publish", url, token: livekitToken(API_KEY, API_SECRET, "alice", grant("call")), seconds: 6, prefix: inNs }),
            joinCall({
                mode: "subscribe",
                url,
                token: livekitToken(API_KEY, API_SECRET, "bob", grant("call")),
                seconds: 20,
                until: { audio: 50, video: 50 },
                prefix: inNs,
            }),
        ]);
        assert.equal(pub.run.code, 0, pub.run.stderr.slice(-3000));
        assert.deepEqual(pub.report.published, ["audio/opus", "video/VP8"]);
        assert.equal(sub.run.code, 0, sub.run.stderr.slice(-3000));
        assert.equal(sub.report.identity, "bob");
        assert.equal(sub.report.room, "call");
        assert.deepEqual(Object.keys(sub.report.participants), ["alice"], JSON.stringify(sub.report));
        const alice = sub.report.participants.alice!;
        assert.ok(alice.audio >= 50 && alice.video >= 50, `too few packets from alice: ${JSON.stringify(alice)}\n${livekit.tail(20)}`);
        assert.deepEqual(alice.codecs, ["audio/opus", "video/VP8"]);
    });

    it("a listener alone receives nothing, and says so", async function () {
        await createRoom("quiet");
        const sub = await joinCall({ mode: "subscribe", url, token: livekitToken(API_KEY, API_SECRET, "carol", grant("quiet")), seconds: 2, prefix: inNs });
        assert.equal(sub.run.code, 0, sub.run.stderr.slice(-3000));
        assert.deepEqual(sub.report.participants, {});
    });

    it("reports a refused join: a room nobody created (auto_create off), a token signed with another secret", async function () {
        const missing = await joinCall({
            mode: "subscribe",
            url,
            token: livekitToken(API_KEY, API_SECRET, "dave", grant("nobody-made-this")),
            seconds: 2,
            prefix: inNs,
        });
        assert.equal(missing.run.code, 2);
        assert.match(missing.report.error ?? "", /room|not found|does not exist/i);
        await createRoom("guarded");
        const forged = await joinCall({
            mode: "subscribe",
            url,
            token: livekitToken(API_KEY, "not-the-secret", "eve", grant("guarded")),
            seconds: 2,
            prefix: inNs,
        });
        assert.equal(forged.run.code, 2);
        assert.ok(forged.report.error, JSON.stringify(forged.report));
    });
});
