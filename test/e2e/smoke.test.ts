/**
 * E2E smoke: a fresh Debian VM -> MatrixStack (Host bootstrap, PostgreSQL,
 * Synapse by the pip method) provisioned by the components' own commands
 * over SSH, then checked from this machine.
 */
import * as assert from "node:assert/strict";
import { Vm, bootVm, ensureBaseImage } from "./harness";
import { Deployment, deploy, startTimestamps, tunnel, vmStackArgs } from "./deploy";
import { registerWithSharedSecret } from "../integration/support/synapse";
import { loginWithPassword } from "../integration/support/client";

const log = (s: string) => process.stderr.write(`      [e2e] ${s}\n`);
const UNITS = ["matrix-synapse.service", "postgresql@15-main.service", "pulumi-matrix-firewall.service", "systemd-timesyncd.service"];

describe("e2e smoke: fresh VM to a working homeserver", function () {
    this.timeout(40 * 60_000);
    let vm: Vm;
    let first: Deployment;
    const state = new Map<string, Record<string, any>>();
    const timings: string[] = [];
    let closeTunnel = () => {};
    let baseUrl = "";

    /** The stack both runs deploy: defaults, plus a firewall opening for the probe listener on 8765. */
    function smokeArgs() {
        const args = vmStackArgs(vm);
        args.host.firewall = { rules: [{ port: 8765, protocol: "tcp", owner: "e2e probe" }] };
        return args;
    }

    before(async function () {
        const t0 = Date.now();
        const img = await ensureBaseImage(log);
        timings.push(`image: ${img.cached ? "cached" : `built in ${img.buildSeconds} s`} (${Math.round((Date.now() - t0) / 1000)} s)`);
        // 8765 answers because a firewall rule opens it; 8766 and PostgreSQL do not.
        vm = await bootVm({ name: "smoke", memoryMb: 3072, forwardTcp: [8765, 8766, 5432, 9000], log });
        timings.push(`boot to SSH: ${vm.bootSeconds} s (${vm.accel})`);
    });

    after(async function () {
        closeTunnel();
        for (const t of timings) log(`timing: ${t}`);
        await vm?.stop();
    });

    it("provisions the VM from nothing with the components' own commands", async function () {
        first = await deploy(smokeArgs(), state, log);
        timings.push(`first deployment: ${first.seconds} s`);
        assert.equal(first.outputs.serverName, "matrix.test");
        assert.equal(first.outputs.adminUserId, "@admin:matrix.test");
    });

    it("prints no secret: no command's stdout or stderr carries a generated secret or the signing key", async function () {
        const secrets: string[] = [];
        for (const r of first.mocks.resources) {
            if (r.type === "random:index/randomPassword:RandomPassword") secrets.push(String(r.outputs?.result));
            if (r.type === "tls:index/privateKey:PrivateKey")
                secrets.push(
                    ...String(r.outputs?.privateKeyPem)
                        .split("\n")
                        .filter((l) => l.length > 40),
                );
        }
        assert.ok(secrets.length >= 5, `found ${secrets.length} secrets`);
        const seed = (await vm.exec("cut -d' ' -f3 /etc/matrix-synapse/homeserver.signing.key")).stdout.trim();
        secrets.push(seed);
        for (const r of first.mocks.resources.filter((x) => x.type === "command:remote:Command")) {
            const out = `${r.outputs?.stdout ?? ""}\n${r.outputs?.stderr ?? ""}`;
            for (const secret of secrets) assert.ok(!out.includes(secret), `${r.name} printed a secret`);
        }
        const journal = await vm.exec("journalctl --no-pager -o cat");
        for (const secret of secrets) assert.ok(!journal.stdout.includes(secret), "the journal holds a secret");
    });

    it("answers /health and /_matrix/client/versions", async function () {
        const r = await vm.exec("curl -fsS http://127.0.0.1:8008/health; echo; curl -fsS http://127.0.0.1:8008/_matrix/client/versions");
        assert.equal(r.code, 0, r.stderr);
        const [health, versions] = r.stdout.split("\n");
        assert.equal(health, "OK");
        assert.ok((JSON.parse(versions) as { versions: string[] }).versions.length > 0);
    });

    it("publishes the key id derived from the Pulumi-side key", async function () {
        const r = await vm.exec("curl -fsS http://127.0.0.1:8008/_matrix/key/v2/server");
        const body = JSON.parse(r.stdout) as { verify_keys: Record<string, unknown> };
        assert.deepEqual(Object.keys(body.verify_keys), [`ed25519:${first.outputs.signingKeyId}`]);
    });

    it("registers a user through the shared-secret API; the user and the admin log in with matrix-js-sdk", async function () {
        const t = await tunnel(vm, 8008);
        closeTunnel = t.close;
        baseUrl = `http://127.0.0.1:${t.port}`;
        await registerWithSharedSecret(baseUrl, first.outputs.registrationSharedSecret, "alice", "alice-password-e2e", false);
        const alice = await loginWithPassword(baseUrl, "alice", "alice-password-e2e");
        assert.equal(alice.userId, "@alice:matrix.test");
        alice.client.stopClient();
        const admin = await loginWithPassword(baseUrl, "admin", first.outputs.adminPassword);
        assert.equal(admin.userId, "@admin:matrix.test");
        admin.client.stopClient();
    });

    it("PostgreSQL runs with the rendered settings: loopback only, tuning from memoryMb, UTF8/C database, nightly dump timer", async function () {
        const q = (sql: string) => vm.exec(`cd / && runuser -u postgres -- psql -X -At -c "${sql}"`).then((r) => r.stdout.trim());
        assert.equal(await q("SHOW listen_addresses"), "127.0.0.1");
        assert.equal(await q("SHOW shared_buffers"), "256MB");
        assert.equal(await q("SHOW effective_cache_size"), "768MB");
        assert.equal(
            await q("SELECT pg_encoding_to_char(encoding) || '/' || datcollate || '/' || datctype FROM pg_database WHERE datname = 'synapse'"),
            "UTF8/C/C",
        );
        assert.equal((await vm.exec("systemctl is-enabled pulumi-matrix-pg-backup.timer")).stdout.trim(), "enabled");
    });

    it("firewall: only the declared ports answer from outside the VM", async function () {
        // Two listeners on every address inside the VM; only 8765 is declared.
        await vm.exec("for p in 8765 8766; do (setsid python3 -m http.server $p --bind 0.0.0.0 >/dev/null 2>&1 &); done; sleep 2");
        const get = async (guestPort: number) => {
            try {
                const r = await fetch(`http://127.0.0.1:${vm.forwardedPort(guestPort)}/`, { signal: AbortSignal.timeout(5000) });
                return r.status;
            } catch {
                return "no answer";
            }
        };
        assert.equal(await get(8765), 200);
        assert.equal(await get(8766), "no answer");
        assert.equal(await get(5432), "no answer");
        assert.equal(await get(9000), "no answer");
        const listening = await vm.exec("ss -Htln | awk '{print $4}'");
        assert.match(listening.stdout, /127\.0\.0\.1:5432/);
        assert.match(listening.stdout, /127\.0\.0\.1:9000/);
        assert.doesNotMatch(listening.stdout, /0\.0\.0\.0:(5432|9000|8008)/);
        await vm.exec("pkill -f 'http.server 876' || true");
    });

    it("running the same provisioning again changes nothing and restarts nothing", async function () {
        const before = await startTimestamps(vm, UNITS);
        const again = await deploy(smokeArgs(), state, log);
        timings.push(`second deployment (no change): ${again.seconds} s`);
        assert.equal(again.outputs.signingKeyId, first.outputs.signingKeyId);
        assert.deepEqual(await startTimestamps(vm, UNITS), before);
        for (const r of again.mocks.resources.filter((x) => x.type === "command:remote:Command" && !x.secretInputs.includes("stdin"))) {
            const out = String(r.outputs?.stdout ?? "");
            assert.doesNotMatch(
                out,
                /^(updated |removed |installing |restarting |starting |reloaded |PostgreSQL restarted)/m,
                `${r.name} changed something:\n${out}`,
            );
        }
    });

    it("leaves no failed systemd unit", async function () {
        const r = await vm.exec("systemctl --failed --no-legend --plain");
        assert.equal(r.stdout.trim(), "");
    });
});
