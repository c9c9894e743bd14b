/**
 * E2E full (npm run test:e2e:full, not in CI), through the real engine: a
 * connection change, drift and re-apply, a second federation reader, destroy
 * and `up` again on the same VM, a replaced VM, the reverse proxy's settings
 * changed (certificates from Pebble, as in the smoke suite), backups to an
 * SFTP target on this machine with an upgrade that backs up first and a
 * move to a new VM through them (restoreFrom, standby), a Synapse installed
 * by hand (the Debian package's layout, SQLite) adopted, monitoring (Synapse's
 * recording rules left out: no GitHub here), and the split-hosts example on
 * two VMs.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { BACKUP_FILES } from "../../src/model/backup";
import { MONITORING_FILES } from "../../src/model/monitoring";
import { DEFAULT_SYNAPSE_PATHS, DEFAULT_SYNAPSE_VERSION, synapseFiles } from "../../src/model/synapse";
import { type SftpServer, startSftpServer } from "../support/integration/backupTargets";
import { loginWithPassword } from "../support/integration/client";
import { ReleaseServer } from "../support/integration/elementReleases";
import { PebbleServer, startPebble } from "../support/integration/pebble";
import { clientApi, downloadMedia, passwordLogin, roomTexts, sendText, uploadMedia } from "../support/integration/roomHistory";
import { matrixRtcBinaries, type RtcReleaseServer, serveRtcReleases } from "../support/integration/rtcClient";
import { registerWithSharedSecret } from "../support/integration/synapse";
import { bootVm, createPrivateNetwork, ensureBaseImage, PrivateNetwork, Vm } from "../support/vm";
import { httpsGet, startTimestamps, tunnel } from "../support/vm/deploy";
import { assertNothingChanged, buildDist, EngineStack, projectCopy, stepSeconds, useEngine } from "../support/vm/engine";
import { installPackagedSynapse, PACKAGED } from "../support/vm/packagedSynapse";

/** The shared secret the operator reads on the VM (it is not a stack output). */
const REGISTRATION_SHARED_SECRET_FILE = synapseFiles(DEFAULT_SYNAPSE_PATHS).registrationSharedSecret;

const log = (s: string) => process.stderr.write(`      [e2e] ${s}\n`);
const full = process.env.E2E_FULL === "1" ? describe : describe.skip;
/** The default stack's workers. */
const READER1 = "matrix-synapse-worker@federation_reader1.service";
const SENDER1 = "matrix-synapse-worker@federation_sender1.service";
const UNITS = ["matrix-synapse.service", "postgresql@15-main.service", "pulumi-matrix-firewall.service", "redis-server.service", READER1, SENDER1];
/** The stack program's Synapse install command, whatever the stack's name. */
const SYNAPSE_INSTALL = "[\\w-]+-synapse-install";
/** Lines a script prints only when it changed something on the host. */
const CHANGED = /^(updated |removed |installing |restarting |starting |reloaded |PostgreSQL restarted)/m;

/** Stack config for the project's own program against a harness VM (pip: matrix.org's apt repository is out of reach here). */
function vmConfig(vm: Vm, extra: Record<string, string | { secret: string }> = {}): Record<string, string | { secret: string }> {
    const c = vm.connection();
    return {
        sshHost: c.host,
        sshPort: String(c.port),
        sshUser: c.user,
        sshPrivateKey: { secret: c.privateKey },
        sshHostKey: c.hostKey,
        serverName: "matrix.test",
        publicBaseUrl: "https://matrix.test/",
        installMethod: "pip",
        adminUser: "admin",
        // The reverse proxy needs a CA: the smoke suite proves it with Pebble; these scenarios are about the rest.
        proxy: "none",
        ...extra,
    };
}

full("e2e full (real engine)", function () {
    this.timeout(120 * 60_000);
    const timings: string[] = [];
    // One copy of the repository for every scenario, taken when the suite starts.
    let dir: string;
    before(async () => {
        useEngine(log);
        dir = projectCopy();
        buildDist(dir);
        await ensureBaseImage(log);
    });
    after(() => {
        for (const t of timings) log(`timing: ${t}`);
    });

    describe("one VM through its life", function () {
        let vm: Vm;
        let stack: EngineStack;
        let first: Record<string, string>;

        before(async () => {
            vm = await bootVm({ name: "full-a", memoryMb: 3072, log });
            stack = await EngineStack.create(dir, "full", log, vmConfig(vm));
            const up = await stack.up("first up");
            timings.push(`first up: ${up.seconds} s (Synapse install step: ${stepSeconds(up.stdout, SYNAPSE_INSTALL)} s)`);
            first = await stack.outputs();
            const t = await tunnel(vm, 8008);
            const shared = (await vm.exec(`cat ${REGISTRATION_SHARED_SECRET_FILE}`)).stdout.trim();
            await registerWithSharedSecret(`http://127.0.0.1:${t.port}`, shared, "bob", "bob-password-e2e", false);
            t.close();
        });
        after(async () => {
            await vm?.stop();
        });

        it("a connection change alone re-runs every script, which change nothing and restart nothing", async function () {
            const before = await startTimestamps(vm, UNITS);
            await stack.setConfig({ sshHost: "localhost" });
            const preview = await stack.preview("preview sshHost 127.0.0.1 -> localhost");
            assert.match(preview.stdout, /-\s+# target: root@127\.0\.0\.1:\d+/);
            assert.match(preview.stdout, /\+\s+# target: root@localhost:\d+/);
            const up = await stack.up("up sshHost localhost");
            timings.push(`up of a connection change (every script re-run, nothing changed): ${up.seconds} s`);
            assert.ok((up.changes.update ?? 0) >= 5, `updates: ${JSON.stringify(up.changes)}`);
            for (const [name, { stdout }] of await stack.commandOutputs()) assert.doesNotMatch(stdout, CHANGED, `${name} changed something:\n${stdout}`);
            assert.deepEqual(await startTimestamps(vm, UNITS), before);
        });

        it("the drift check reports a file edited on the host; a re-apply restores it and restarts only what reads it", async function () {
            await vm.exec("sed -i 's/^max_upload_size: .*/max_upload_size: 1G/' /etc/matrix-synapse/homeserver.yaml");
            const drift = await vm.exec("/usr/local/sbin/pulumi-matrix-drift");
            assert.equal(drift.code, 1, drift.stdout + drift.stderr);
            assert.match(drift.stdout, /homeserver\.yaml/);
            assert.match(drift.stdout, /^-max_upload_size: 50M$/m);
            assert.match(drift.stdout, /^\+max_upload_size: 1G$/m);
            const before = await startTimestamps(vm, UNITS);
            await stack.setConfig({ reapply: "1" });
            const up = await stack.up("up reapply 1");
            timings.push(`re-apply: ${up.seconds} s`);
            assert.equal((await vm.exec("/usr/local/sbin/pulumi-matrix-drift")).code, 0);
            const after = await startTimestamps(vm, UNITS);
            assert.notEqual(after["matrix-synapse.service"], before["matrix-synapse.service"]);
            assert.equal(after["postgresql@15-main.service"], before["postgresql@15-main.service"]);
        });

        it("a second federation reader: only the workers' commands update, the new reader starts, nothing that runs restarts", async function () {
            const before = await startTimestamps(vm, UNITS);
            await stack.setConfig({ workers: "{federation_reader: 2, federation_sender: 1}" });
            const up = await stack.up("up workers: two federation readers");
            timings.push(`up adding a federation reader: ${up.seconds} s`);
            const updated = [...up.ops].filter(([, op]) => op !== "same").map(([name, op]) => `${op} ${name}`);
            assert.ok(updated.length > 0 && updated.every((u) => /workers/.test(u)), `steps: ${updated.join(", ")}`);
            assert.equal((await vm.exec("systemctl is-active matrix-synapse-worker@federation_reader2.service")).stdout.trim(), "active");
            assert.equal((await vm.exec("curl -fsS http://127.0.0.1:8101/health")).stdout, "OK");
            assert.deepEqual(await startTimestamps(vm, UNITS), before);
        });

        it("destroy is refused while the signing key is protected; unprotected, it leaves the VM as it is", async function () {
            await assert.rejects(stack.destroy("destroy (protected)"), /protect/);
            // The engine deletes the commands before it reaches the protected key: the state keeps the key, the VM is untouched.
            assert.equal((await stack.outputs()).signingKeyId, first.signingKeyId);
            assert.equal((await vm.exec("curl -fsS http://127.0.0.1:8008/health")).stdout, "OK");
            await stack.setConfig({ protectSigningKey: "false" });
            await stack.up("up protectSigningKey false");
            await stack.destroy("destroy");
            assert.equal((await vm.exec("systemctl is-active matrix-synapse.service")).stdout.trim(), "active");
            assert.equal((await vm.exec("curl -fsS http://127.0.0.1:8008/health")).stdout, "OK");
        });

        it("`up` from a new stack on the same VM refuses to replace its signing key; with the key imported, it keeps the key and the users, and adminPassword logs in", async function () {
            stack = await EngineStack.create(dir, "again", log, vmConfig(vm));
            let message = "";
            await assert.rejects(stack.up("up of a new stack (key differs)"), (e: Error) => {
                message = e.message;
                return new RegExp(`ed25519:${first.signingKeyId}`).test(e.message);
            });
            // The steps the error gives: import the host's key, let Pulumi drop this stack's unused (protected) key, deploy.
            const key = (await vm.exec("cat /etc/matrix-synapse/homeserver.signing.key")).stdout;
            const set = await stack.cli(["config", "set", "--secret", "signingKey"], { stdin: key });
            assert.equal(set.code, 0, set.stderr);
            const urn = /pulumi state unprotect --yes '([^']+)'/.exec(message)?.[1];
            assert.ok(urn, `the error does not say how to unprotect the stack's own key:\n${message}`);
            const unprotect = await stack.cli(["state", "unprotect", "--yes", urn]);
            assert.equal(unprotect.code, 0, unprotect.stderr);
            const up = await stack.up("up with the imported key");
            timings.push(`up of a new stack on an existing VM: ${up.seconds} s`);
            const outputs = await stack.outputs();
            assert.equal(outputs.signingKeyId, first.signingKeyId);
            assert.notEqual(outputs.adminPassword, first.adminPassword);
            const t = await tunnel(vm, 8008);
            const admin = await loginWithPassword(`http://127.0.0.1:${t.port}`, "admin", outputs.adminPassword);
            admin.client.stopClient();
            const bob = await loginWithPassword(`http://127.0.0.1:${t.port}`, "bob", "bob-password-e2e");
            bob.client.stopClient();
            t.close();
        });

        it("a replaced VM with the same stack and a restored nightly dump keeps the key id and the users", async function () {
            const r = await vm.exec("systemctl start pulumi-matrix-pg-backup.service && ls -1 /var/backups/pulumi-matrix/postgres/");
            assert.equal(r.code, 0, r.stderr);
            const file = r.stdout.trim().split("\n").pop()!;
            const dump = Buffer.from((await vm.exec(`base64 -w0 /var/backups/pulumi-matrix/postgres/${file}`)).stdout, "base64");
            await vm.stop();
            vm = await bootVm({ name: "full-b", memoryMb: 3072, log });
            const c = vm.connection();
            // The harness gives every VM its own client key, as a rebuilt cloud VM may have.
            await stack.setConfig({ sshHost: c.host, sshPort: String(c.port), sshHostKey: c.hostKey, sshPrivateKey: { secret: c.privateKey } });
            const up = await stack.up("up onto a replaced VM");
            timings.push(`up onto a replaced VM: ${up.seconds} s (Synapse install step: ${stepSeconds(up.stdout, SYNAPSE_INSTALL)} s)`);
            await vm.exec("systemctl stop matrix-synapse.service");
            const put = await vm.exec("base64 -d > /tmp/synapse.dump && runuser -u postgres -- pg_restore --clean --if-exists -d synapse /tmp/synapse.dump", {
                stdin: dump.toString("base64"),
            });
            assert.equal(put.code, 0, put.stderr);
            await vm.exec("systemctl start matrix-synapse.service");
            const keys = await vm.exec("for i in $(seq 1 120); do curl -fsS http://127.0.0.1:8008/_matrix/key/v2/server && exit 0; sleep 1; done; exit 1");
            assert.deepEqual(Object.keys(JSON.parse(keys.stdout).verify_keys), [`ed25519:${first.signingKeyId}`]);
            const t = await tunnel(vm, 8008);
            const bob = await loginWithPassword(`http://127.0.0.1:${t.port}`, "bob", "bob-password-e2e");
            assert.equal(bob.userId, "@bob:matrix.test");
            bob.client.stopClient();
            t.close();
        });
    });

    describe("the reverse proxy's settings: an admin allow-list, then Element, then TURN and its relay range, then TURN removed, then MatrixRTC with LiveKit's TURN on 443 added and removed", function () {
        let vm: Vm;
        let stack: EngineStack;
        let pebble: PebbleServer;
        let releases: ReleaseServer;
        let rtcReleases: RtcReleaseServer;
        const NGINX = "nginx.service";
        const PROXY_UNITS = ["matrix-synapse.service", "postgresql@15-main.service", NGINX];
        /** nginx's master process: a reload keeps it, a restart does not. */
        const nginxPid = async () => (await vm.exec("systemctl show -p MainPID --value nginx.service")).stdout.trim();
        const get = async (name: string, p: string) => httpsGet(vm.forwardedPort(443), name, p, await pebble.issuingRootPem());

        before(async () => {
            vm = await bootVm({ name: "full-proxy", memoryMb: 3072, forwardTcp: [80, 443], log });
            pebble = await startPebble({ httpPort: vm.forwardedPort(80), extraApiHosts: ["10.0.2.2"] });
            releases = new ReleaseServer();
            await releases.start(fs.mkdtempSync(path.join(os.tmpdir(), "e2e-element-")), ["1.11.999"]);
            rtcReleases = await serveRtcReleases(await matrixRtcBinaries());
            stack = await EngineStack.create(
                dir,
                "proxy",
                log,
                vmConfig(vm, {
                    proxy: "nginx",
                    // MatrixRTC comes later (added, then removed, at the end).
                    rtc: "none",
                    workers: "{}",
                    acmeEmail: "admin@example.com",
                    acmeDirectoryUrl: `https://10.0.2.2:${pebble.apiPort}/dir`,
                    acmeCaBundle: fs.readFileSync(pebble.apiCaFile, "utf8"),
                }),
            );
            const up = await stack.up("first up with nginx");
            timings.push(`first up with nginx and a certificate: ${up.seconds} s`);
        });
        after(async () => {
            await vm?.stop();
            await pebble?.stop();
            await releases?.stop();
            await rtcReleases?.close();
        });

        it("adminAllowList: only nginx's step updates; nginx reloads (same master process), nothing restarts; the admin API answers the allowed network", async function () {
            assert.equal((await get("matrix.test", "/_synapse/admin/v1/server_version")).status, 403);
            const before = await startTimestamps(vm, PROXY_UNITS);
            const pid = await nginxPid();
            // Requests from this machine reach the VM from qemu's host side.
            await stack.setConfig({ "adminAllowList[0]": "10.0.2.2/32" });
            const up = await stack.up("up adminAllowList");
            timings.push(`up of an admin allow-list: ${up.seconds} s`);
            const updated = [...up.ops].filter(([, op]) => op !== "same").map(([name, op]) => `${op} ${name}`);
            assert.deepEqual(updated, ["update proxy-proxy-nginx"]);
            assert.match((await vm.exec("grep -c 'allow 10.0.2.2/32;' /etc/nginx/conf.d/pulumi-matrix.conf")).stdout, /^[1-9]/);
            assert.equal((await get("matrix.test", "/_synapse/admin/v1/server_version")).status, 200);
            assert.equal(await nginxPid(), pid, "nginx restarted instead of reloading");
            assert.deepEqual(await startTimestamps(vm, PROXY_UNITS), before);
        });

        it("Element added: it is installed, the certificate gains its name, nginx serves it after a reload; nothing restarts", async function () {
            const before = await startTimestamps(vm, PROXY_UNITS);
            const pid = await nginxPid();
            await stack.setConfig({
                elementDomain: "element.test",
                elementVersion: "1.11.999",
                elementSha256: releases.sha256.get("1.11.999")!,
                elementDownloadUrl: `http://10.0.2.2:${releases.port}/element-v{version}.tar.gz`,
            });
            const up = await stack.up("up with Element");
            timings.push(`up adding Element (new certificate): ${up.seconds} s`);
            const changed = [...up.ops].filter(([, op]) => op !== "same").map(([name, op]) => `${op} ${name}`);
            // The ElementWeb component and its install step are new; the certificate and nginx's site change.
            assert.deepEqual(changed.sort(), [
                "create proxy-element",
                "create proxy-element-install",
                "update proxy-proxy-certificate",
                "update proxy-proxy-nginx",
            ]);
            const config = await get("element.test", "/config.json");
            assert.equal(config.status, 200);
            assert.deepEqual(config.names.sort(), ["DNS:element.test", "DNS:matrix.test"]);
            assert.equal(config.headers["x-frame-options"], "SAMEORIGIN");
            assert.equal(await nginxPid(), pid, "nginx restarted instead of reloading");
            assert.deepEqual(await startTimestamps(vm, PROXY_UNITS), before);
            // And a second `up` changes nothing.
            assertNothingChanged(await stack.up("second up with Element"));
        });

        it("TURN added: coturn runs with a certificate of its own (the web certificate keeps its names); Synapse restarts onto turn_uris, nginx only reloads", async function () {
            const pid = await nginxPid();
            await stack.setConfig({ turnDomain: "turn.test" });
            const up = await stack.up("up with TURN");
            timings.push(`up adding TURN: ${up.seconds} s`);
            assert.equal((await vm.exec("systemctl is-active coturn.service")).stdout.trim(), "active");
            assert.deepEqual((await get("matrix.test", "/_matrix/client/versions")).names.sort(), ["DNS:element.test", "DNS:matrix.test"]);
            const coturnNames = await vm.exec("openssl x509 -noout -ext subjectAltName -in /etc/coturn/pulumi-matrix/tls/fullchain.pem");
            assert.match(coturnNames.stdout, /^\s*DNS:turn\.test\s*$/m, coturnNames.stdout);
            assert.match((await vm.exec("cat /etc/matrix-synapse/conf.d/45-turn.yaml")).stdout, /turns:turn\.test:5349\?transport=tcp/);
            assert.equal(await nginxPid(), pid, "nginx restarted instead of reloading");
        });

        it("a relay range change: only coturn's step updates, coturn restarts, Synapse and nginx do not", async function () {
            const units = [...PROXY_UNITS, "coturn.service"];
            const before = await startTimestamps(vm, units);
            await stack.setConfig({ turnRelayPortMin: "50000", turnRelayPortMax: "50999" });
            const up = await stack.up("up relay range");
            timings.push(`up of a relay range change: ${up.seconds} s`);
            const changed = [...up.ops].filter(([, op]) => op !== "same").map(([name, op]) => `${op} ${name}`);
            assert.deepEqual(changed, ["update proxy-turn-server"]);
            const after = await startTimestamps(vm, units);
            assert.notEqual(after["coturn.service"], before["coturn.service"], "coturn did not restart onto the new range");
            for (const u of PROXY_UNITS) assert.equal(after[u], before[u], `${u} restarted`);
            assert.match((await vm.exec("nft list table inet pulumi_matrix")).stdout, /udp dport 50000-50999 accept/);
        });

        it("TURN removed: Synapse restarts without it, coturn stops, its files, ports and certificate lineage go; nginx only reloads", async function () {
            const before = await startTimestamps(vm, PROXY_UNITS);
            const pid = await nginxPid();
            await stack.removeConfig(["turnDomain", "turnRelayPortMin", "turnRelayPortMax"]);
            const up = await stack.up("up without TURN");
            timings.push(`up removing TURN: ${up.seconds} s`);
            const ops = (op: string) =>
                [...up.ops]
                    .filter(([, o]) => o === op)
                    .map(([name]) => name)
                    .sort();
            assert.deepEqual(ops("create"), ["proxy-turn-removal", "proxy-turn-removal-server", "proxy-turn-removal-synapse-config"]);
            assert.deepEqual(ops("delete"), [
                "proxy-turn",
                "proxy-turn-certificate",
                "proxy-turn-secrets",
                "proxy-turn-server",
                "proxy-turn-shared-secret",
                "proxy-turn-synapse-config",
                "proxy-turn-synapse-secrets",
            ]);
            for (const name of ops("update")) assert.match(name, /^proxy-proxy-(certificate|nginx)$/);

            assert.equal((await vm.exec("systemctl is-active coturn.service || true")).stdout.trim(), "inactive");
            assert.equal((await vm.exec("systemctl is-enabled coturn.service || true")).stdout.trim(), "disabled");
            const left = await vm.exec(
                "for f in /etc/coturn/pulumi-matrix /etc/letsencrypt/live/coturn-turn.test /etc/systemd/system/coturn.service.d/pulumi-matrix.conf /etc/pulumi-matrix/certificate-hooks.d/coturn /etc/matrix-synapse/conf.d/45-turn.yaml /etc/matrix-synapse/secrets/turn_shared_secret; do [ -e $f ] && echo $f; done; grep -rl turn_ /etc/matrix-synapse || true",
            );
            assert.equal(left.stdout.trim(), "", `left on the VM:\n${left.stdout}`);
            const nft = (await vm.exec("nft list table inet pulumi_matrix")).stdout;
            assert.doesNotMatch(nft, /50000-50999|dport 3478|dport 5349/, nft);
            assert.deepEqual((await get("matrix.test", "/_matrix/client/versions")).names.sort(), ["DNS:element.test", "DNS:matrix.test"]);
            const after = await startTimestamps(vm, PROXY_UNITS);
            assert.notEqual(after["matrix-synapse.service"], before["matrix-synapse.service"], "Synapse did not restart without its TURN options");
            assert.equal(after["postgresql@15-main.service"], before["postgresql@15-main.service"]);
            assert.equal(after[NGINX], before[NGINX]);
            assert.equal(await nginxPid(), pid, "nginx restarted instead of reloading");
            assertNothingChanged(await stack.up("second up without TURN"));
        });

        /** What MatrixRTC leaves on the VM: units, configs, binaries, nginx's stream front. */
        const RTC_PATHS_ON_VM =
            "/etc/systemd/system/livekit-server.service /etc/systemd/system/lk-jwt-service.service /etc/pulumi-matrix/rtc /opt/pulumi-matrix/rtc /etc/nginx/modules-enabled/pulumi-matrix-stream.conf /etc/matrix-synapse/conf.d/46-rtc.yaml";

        it("MatrixRTC added with LiveKit's TURN on 443: both programs run from the verified releases, the certificate gains the TURN name, nginx's stream front takes 443 and routes it by name; a second up changes nothing", async function () {
            const r = rtcReleases.releases(`http://10.0.2.2:${rtcReleases.port}`);
            await stack.setConfig({
                rtc: "livekit",
                rtcLivekitSha256: r.livekit.sha256,
                rtcLivekitDownloadUrl: r.livekit.downloadUrl,
                rtcJwtServiceSha256: r.jwtService.sha256,
                rtcJwtServiceDownloadUrl: r.jwtService.downloadUrl,
                // As behind 1:1 NAT (AWS, GCP, Azure): the public address (a documentation one: no call is placed here, the
                // smoke suite places one) is not on the VM, whose interface holds qemu's 10.0.2.15: LiveKit's media address.
                rtcPublicAddress: "198.51.100.10",
                rtcLocalAddress: "10.0.2.15",
                rtcTurnDomain: "rtc-turn.test",
            });
            const up = await stack.up("up with MatrixRTC and LiveKit's TURN");
            timings.push(`up adding MatrixRTC with LiveKit's TURN: ${up.seconds} s`);
            assert.deepEqual([...rtcReleases.downloads].sort(), ["/livekit_1.13.5_linux_amd64.tar.gz", "/lk-jwt-service_linux_amd64"]);
            const active = await vm.exec("systemctl is-active livekit-server.service lk-jwt-service.service nginx.service");
            assert.deepEqual(active.stdout.trim().split("\n"), ["active", "active", "active"], active.stdout);
            // The web through the front: the homeserver, the focus in the well-known, the certificate with the TURN name.
            const versions = await get("matrix.test", "/_matrix/client/versions");
            assert.equal(versions.status, 200, versions.body);
            assert.deepEqual(versions.names.sort(), ["DNS:element.test", "DNS:matrix.test", "DNS:rtc-turn.test"]);
            const wk = JSON.parse((await get("matrix.test", "/.well-known/matrix/client")).body) as Record<string, unknown>;
            assert.deepEqual(wk["org.matrix.msc4143.rtc_foci"], [{ type: "livekit", livekit_service_url: "https://matrix.test/livekit/jwt" }]);
            assert.equal((await get("matrix.test", "/livekit/jwt/healthz")).status, 200);
            // 443 is the stream front's; LiveKit's TURN port listens, and only nginx is let in (the firewall opens 7881 and 7882, not 7883).
            const listening = (await vm.exec("ss -Hltnp")).stdout;
            assert.match(listening, /:443\s.*nginx/);
            assert.match(listening, /:7883\s.*livekit-server/);
            const nft = (await vm.exec("nft list table inet pulumi_matrix")).stdout;
            assert.match(nft, /tcp dport 7881 accept/);
            assert.match(nft, /udp dport 7882 accept/);
            assert.doesNotMatch(nft, /7883|30000-40000/);
            const livekitYaml = (await vm.exec("cat /etc/pulumi-matrix/rtc/livekit.yaml")).stdout;
            assert.match(livekitYaml, /external_tls: true/);
            assert.match(livekitYaml, /node_ip: 198\.51\.100\.10\n {2}ips:\n {4}includes:\n {6}- 10\.0\.2\.15\/32/);
            assertNothingChanged(await stack.up("second up with MatrixRTC"));
        });

        it("MatrixRTC removed: Synapse and the well-known stop advertising it; no unit, file, binary, port or stream front is left; 443 is nginx's web servers' again", async function () {
            await stack.removeConfig([
                "rtcLivekitSha256",
                "rtcLivekitDownloadUrl",
                "rtcJwtServiceSha256",
                "rtcJwtServiceDownloadUrl",
                "rtcPublicAddress",
                "rtcLocalAddress",
                "rtcTurnDomain",
            ]);
            await stack.setConfig({ rtc: "none" });
            const up = await stack.up("up without MatrixRTC");
            timings.push(`up removing MatrixRTC: ${up.seconds} s`);
            const left = await vm.exec(`for f in ${RTC_PATHS_ON_VM}; do [ -e $f ] && echo $f; done; true`);
            assert.equal(left.stdout.trim(), "", `left on the VM:\n${left.stdout}`);
            assert.equal((await vm.exec("systemctl is-active livekit-server.service lk-jwt-service.service || true")).stdout.trim(), "inactive\ninactive");
            const listening = (await vm.exec("ss -Hltun")).stdout;
            assert.doesNotMatch(listening, /:(7880|7881|7882|7883|8080)\s/, listening);
            assert.doesNotMatch((await vm.exec("nft list table inet pulumi_matrix")).stdout, /dport (7881|7882)/);
            const versions = await get("matrix.test", "/_matrix/client/versions");
            assert.equal(versions.status, 200, versions.body);
            assert.deepEqual(versions.names.sort(), ["DNS:element.test", "DNS:matrix.test"]);
            const wk = JSON.parse((await get("matrix.test", "/.well-known/matrix/client")).body) as Record<string, unknown>;
            assert.equal(wk["org.matrix.msc4143.rtc_foci"], undefined);
            assertNothingChanged(await stack.up("second up without MatrixRTC"));
        });
    });

    describe("operations: nightly backups to an SFTP target off the VM, an upgrade that takes a backup first, a downgrade refused, a move to a new VM", function () {
        const OLD = "1.163.1";
        const NEW = "1.163.2";
        const RESTIC_PASSWORD = "e2e-restic-password-0123456789";
        let vm: Vm;
        let stack: EngineStack;
        let sftp: SftpServer;
        let repo: string;
        /** The move's new VM and its stack (README: "Moving to a new VM"). */
        let next: Vm | undefined;
        let nextStack: EngineStack;
        let roomId: string;
        let mediaUri: string;
        const media = crypto.randomBytes(256 * 1024);
        const CAROL = "carol-password-e2e";
        /** The repository's snapshots, read on this machine from the SFTP server's directory. */
        const snapshots = () =>
            (
                JSON.parse(
                    execFileSync("restic", ["-r", repo, "snapshots", "--json", "--no-lock"], {
                        encoding: "utf8",
                        env: { ...process.env, RESTIC_PASSWORD },
                    }),
                ) as { id: string; time: string; tags?: string[] }[]
            ).map((x) => ({ id: x.id, time: Date.parse(x.time), tags: x.tags ?? [] }));
        /** The backup keys of both stacks: the VM reaches this machine's loopback at qemu's host address. */
        const backupConfig = () => ({
            backupRepository: `sftp://${sftp.user}@10.0.2.2:${sftp.port}/${repo}`,
            backupPassword: { secret: RESTIC_PASSWORD },
            backupSftpPrivateKey: { secret: sftp.clientKey },
            backupSftpKnownHosts: sftp.knownHosts.replace("[127.0.0.1]", "[10.0.2.2]"),
        });
        /** What a restore recorded on the VM (snapshot_id=, standby=). */
        const restoredMarker = async (v: Vm) => (await v.exec(`cat ${BACKUP_FILES.restoredMarker}`)).stdout;
        /** What Synapse's main process reports through its federation version endpoint on the VM. */
        const version = async () =>
            (JSON.parse((await vm.exec("curl -fsS http://127.0.0.1:8008/_matrix/federation/v1/version")).stdout) as { server: { version: string } }).server
                .version;

        before(async () => {
            sftp = await startSftpServer();
            repo = path.join(sftp.dir, "repo");
            vm = await bootVm({ name: "full-ops", memoryMb: 3072, log });
            // The VM reaches this machine's loopback at qemu's host address.
            stack = await EngineStack.create(
                dir,
                "ops",
                log,
                vmConfig(vm, {
                    synapseVersion: OLD,
                    ...backupConfig(),
                }),
            );
            const up = await stack.up(`first up with backups, Synapse ${OLD}`);
            timings.push(`first up with backups to SFTP, Synapse ${OLD}: ${up.seconds} s (Synapse install step: ${stepSeconds(up.stdout, SYNAPSE_INSTALL)} s)`);
            const t = await tunnel(vm, 8008);
            const shared = (await vm.exec(`cat ${REGISTRATION_SHARED_SECRET_FILE}`)).stdout.trim();
            await registerWithSharedSecret(`http://127.0.0.1:${t.port}`, shared, "carol", CAROL, false);
            t.close();
        });
        after(async () => {
            await next?.stop();
            await vm?.stop();
            await sftp?.stop();
        });

        it("the nightly backup's service sends a snapshot off the VM; restic check on the target passes; the timer is set", async function () {
            const run = await vm.exec(
                "systemctl start pulumi-matrix-backup.service; systemctl is-active pulumi-matrix-backup.service; systemctl show -p Result --value pulumi-matrix-backup.service",
            );
            assert.match(run.stdout, /success/, run.stdout + run.stderr);
            const taken = snapshots();
            assert.ok(taken.length >= 1, JSON.stringify(taken));
            const check = execFileSync("restic", ["-r", repo, "check", "--no-lock"], { encoding: "utf8", env: { ...process.env, RESTIC_PASSWORD } });
            assert.match(check, /no errors were found/);
            assert.equal((await vm.exec("systemctl is-enabled pulumi-matrix-backup.timer")).stdout.trim(), "enabled");
            // The repository's password and the SFTP key are root's alone on the VM.
            const modes = await vm.exec(
                "stat -c '%a %U' /etc/pulumi-matrix/backup /etc/pulumi-matrix/backup/restic-password /etc/pulumi-matrix/backup/sftp-key",
            );
            assert.deepEqual(modes.stdout.trim().split("\n"), ["700 root", "600 root", "600 root"], modes.stdout + modes.stderr);
        });

        it(`synapseVersion ${OLD} -> ${NEW}: the preview shows the upgrade plan; up backs up first (tagged synapse-${OLD}), switches, and Synapse and its workers answer on ${NEW}`, async function () {
            assert.equal(await version(), OLD);
            await stack.setConfig({ synapseVersion: NEW });
            const preview = await stack.preview(`preview synapseVersion ${NEW}`);
            assert.match(preview.stdout, /Upgrade plan, when the host runs an older Synapse than 1\.163\.2/);
            assert.match(preview.stdout, /pulumi-matrix-backup run --tag synapse-<old version>/);
            const before = Date.now();
            const up = await stack.up(`up synapseVersion ${NEW}`);
            timings.push(`upgrade ${OLD} -> ${NEW} (backup first): ${up.seconds} s`);
            assert.equal(await version(), NEW);
            const tagged = snapshots().filter((x) => x.tags.includes(`synapse-${OLD}`));
            assert.equal(tagged.length, 1, JSON.stringify(snapshots()));
            // Taken during this up, before the main process restarted onto the new release.
            const started = Date.parse((await vm.exec("systemctl show -p ActiveEnterTimestamp --value matrix-synapse.service")).stdout.trim());
            assert.ok(
                tagged[0].time >= before - 120_000 && tagged[0].time < started,
                `snapshot ${new Date(tagged[0].time).toISOString()}, Synapse started ${new Date(started).toISOString()}`,
            );
            const install = [...(await stack.commandOutputs())].find(([name]) => new RegExp(`^${SYNAPSE_INSTALL}$`).test(name));
            assert.ok(install, "no install step output");
            const out = install[1].stdout;
            const backedUp = out.search(new RegExp(`backup before the upgrade: snapshot [0-9a-f]+ \\(tag synapse-${OLD.replace(/\./g, "\\.")}\\)`));
            assert.ok(backedUp >= 0 && backedUp < out.indexOf("stopped matrix-synapse-worker@"), out);
            const active = await vm.exec(`systemctl is-active ${READER1} ${SENDER1}`);
            assert.deepEqual(active.stdout.trim().split("\n"), ["active", "active"], active.stdout);
            const t = await tunnel(vm, 8008);
            const carol = await loginWithPassword(`http://127.0.0.1:${t.port}`, "carol", CAROL);
            carol.client.stopClient();
            t.close();
            // The old release stays beside the new one, for a switch back.
            assert.equal(
                (await vm.exec(`test -d /opt/venvs/matrix-synapse-${OLD} && readlink -f /opt/venvs/matrix-synapse`)).stdout.trim(),
                `/opt/venvs/matrix-synapse-${NEW}`,
            );
        });

        it("a second up changes nothing", async function () {
            assertNothingChanged(await stack.up(`second up on ${NEW}`));
        });

        it(`a downgrade to ${OLD} is refused before anything changes; Synapse keeps running ${NEW}`, async function () {
            const before = await startTimestamps(vm, UNITS);
            await stack.setConfig({ synapseVersion: OLD });
            await assert.rejects(
                stack.up(`up synapseVersion ${OLD} (a downgrade)`),
                new RegExp(`Synapse ${NEW.replace(/\./g, "\\.")} is installed; refusing to downgrade to ${OLD.replace(/\./g, "\\.")}`),
            );
            assert.equal(await version(), NEW);
            assert.deepEqual(await startTimestamps(vm, UNITS), before);
            await stack.setConfig({ synapseVersion: NEW });
            const back = await stack.up(`up synapseVersion ${NEW} again`);
            assert.deepEqual(await startTimestamps(vm, UNITS), before, JSON.stringify(back.changes));
        });

        it("the move, prepared: a new VM's stack with restoreFrom, standby and the old key restores the newest snapshot and holds Synapse stopped; a second up changes nothing", async function () {
            // Users' data the move must carry: a room, its messages and a file, in the nightly backup.
            const t = await tunnel(vm, 8008);
            const base = `http://127.0.0.1:${t.port}`;
            const token = await passwordLogin(base, "carol", CAROL);
            roomId = (await clientApi(base, token, "POST", "/createRoom", { name: "the move" })).room_id as string;
            for (let i = 1; i <= 3; i++) await sendText(base, token, roomId, `before the nightly backup ${i}`);
            mediaUri = await uploadMedia(base, token, media);
            t.close();
            const nightly = await vm.exec("systemctl start pulumi-matrix-backup.service && systemctl show -p Result --value pulumi-matrix-backup.service");
            assert.equal(nightly.stdout.trim(), "success", nightly.stdout + nightly.stderr);
            const taken = snapshots().length;

            next = await bootVm({ name: "full-ops-new", memoryMb: 3072, log });
            const key = (await vm.exec("cat /etc/matrix-synapse/homeserver.signing.key")).stdout;
            nextStack = await EngineStack.create(
                dir,
                "ops-new",
                log,
                vmConfig(next, {
                    synapseVersion: NEW,
                    ...backupConfig(),
                    signingKey: { secret: key },
                    restoreFrom: "latest",
                    standby: "true",
                }),
            );
            const up = await nextStack.up("the new VM's first up: restoreFrom latest, standby");
            timings.push(`move, the new VM's first up in standby (restore included): ${up.seconds} s`);
            assert.match(await restoredMarker(next), /^standby=1$/m);
            const state = await next.exec("systemctl is-active matrix-synapse.service; systemctl is-enabled matrix-synapse.service pulumi-matrix-backup.timer");
            assert.deepEqual(state.stdout.trim().split("\n"), ["inactive", "disabled", "disabled"], state.stdout + state.stderr);
            // A standby sends nothing: the repository's newest snapshot stays the live server's.
            assert.equal(snapshots().length, taken);
            assertNothingChanged(await nextStack.up("the new VM's second up in standby"));
        });

        it("the switch: the old stack in standby stops Synapse and takes the final backup; the new stack out of standby restores it and starts with the old key, users, history and media; the downtime", async function () {
            const t = await tunnel(vm, 8008);
            const old = `http://127.0.0.1:${t.port}`;
            await sendText(old, await passwordLogin(old, "carol", CAROL), roomId, "after the nightly backup");
            t.close();
            const keyId = (await stack.outputs()).signingKeyId;

            const t0 = Date.now();
            await stack.setConfig({ standby: "true" });
            const oldUp = await stack.up("the switch, the old stack: standby");
            const final = snapshots().filter((x) => x.tags.includes("final"));
            assert.equal(final.length, 1, JSON.stringify(snapshots()));
            const oldState = await vm.exec("systemctl is-active matrix-synapse.service; systemctl is-enabled pulumi-matrix-backup.timer");
            assert.deepEqual(oldState.stdout.trim().split("\n"), ["inactive", "disabled"], oldState.stdout);

            await nextStack.setConfig({ standby: "false" });
            const newUp = await nextStack.up("the switch, the new stack: out of standby");
            const health = await next!.exec("for i in $(seq 1 300); do curl -fsS http://127.0.0.1:8008/health && exit 0; sleep 1; done; exit 1");
            assert.equal(health.code, 0, health.stderr);
            const t1 = Date.now();
            // Synapse's own stop and start on the two VMs (their clocks are this machine's, through qemu).
            // In seconds since the epoch (`@<seconds>`): systemd's default format is not one Date.parse reads.
            const unitTime = async (v: Vm, property: string) =>
                Number((await v.exec(`systemctl show -p ${property} --value --timestamp=unix matrix-synapse.service`)).stdout.trim().slice(1)) * 1000;
            const stopped = await unitTime(vm, "InactiveEnterTimestamp");
            const started = await unitTime(next!, "ActiveEnterTimestamp");
            timings.push(
                `move downtime: ${Math.round((t1 - t0) / 1000)} s from the old stack's up to the new server's /health (old up ${oldUp.seconds} s, new up ${newUp.seconds} s); ` +
                    `${Math.round((started - stopped) / 1000)} s from the old Synapse's stop to the new one's start`,
            );

            const marker = await restoredMarker(next!);
            assert.match(marker, new RegExp(`^snapshot_id=${final[0].id}`, "m"));
            assert.match(marker, /^standby=0$/m);
            const keys = await next!.exec("curl -fsS http://127.0.0.1:8008/_matrix/key/v2/server");
            assert.deepEqual(Object.keys(JSON.parse(keys.stdout).verify_keys), [`ed25519:${keyId}`]);
            const active = await next!.exec(
                `systemctl is-active matrix-synapse.service ${READER1} ${SENDER1}; systemctl is-enabled pulumi-matrix-backup.timer`,
            );
            assert.deepEqual(active.stdout.trim().split("\n"), ["active", "active", "active", "enabled"], active.stdout);
            const n = await tunnel(next!, 8008);
            const base = `http://127.0.0.1:${n.port}`;
            assert.deepEqual(await roomTexts(base, roomId, "carol", CAROL), [
                "before the nightly backup 1",
                "before the nightly backup 2",
                "before the nightly backup 3",
                "after the nightly backup",
            ]);
            const token = await passwordLogin(base, "carol", CAROL);
            assert.ok((await downloadMedia(base, token, mediaUri)).equals(media), "the file differs after the move");
            n.close();
            assertNothingChanged(await nextStack.up("the new stack's second up"));
        });
    });

    describe("adopting a Synapse installed by hand on the VM: the Debian package's layout, SQLite, its own key", function () {
        const OLD = "1.163.1";
        const SECRET = crypto.randomBytes(24).toString("hex");
        const users = { alice: "alice-password-e2e", bob: "bob-password-e2e" };
        const media = crypto.randomBytes(64 * 1024);
        let vm: Vm;
        let stack: EngineStack;
        let keyId: string;
        let roomId: string;
        let mediaUri: string;
        let mediaTimes: string;
        /** The media file's path and modification time on the VM (the adoption keeps both). */
        const mediaFileTime = async () => {
            const id = mediaUri.split("/").pop()!;
            return (await vm.exec(`stat -c '%n %Y' ${PACKAGED.mediaStore}/local_content/${id.slice(0, 2)}/${id.slice(2, 4)}/${id.slice(4)}`)).stdout.trim();
        };

        before(async () => {
            vm = await bootVm({ name: "full-adopt", memoryMb: 3072, log });
            await installPackagedSynapse(vm, OLD, "matrix.test", SECRET);
            const t = await tunnel(vm, PACKAGED.port);
            const base = `http://127.0.0.1:${t.port}`;
            for (const [u, pw] of Object.entries(users)) await registerWithSharedSecret(base, SECRET, u, pw, false);
            const alice = await passwordLogin(base, "alice", users.alice);
            roomId = (await clientApi(base, alice, "POST", "/createRoom", { name: "adopted", invite: ["@bob:matrix.test"] })).room_id as string;
            await clientApi(base, await passwordLogin(base, "bob", users.bob), "POST", `/join/${encodeURIComponent(roomId)}`, {});
            for (let i = 1; i <= 5; i++) await sendText(base, alice, roomId, `before the adoption ${i}`);
            mediaUri = await uploadMedia(base, alice, media);
            keyId = Object.keys(
                (JSON.parse((await vm.exec(`curl -fsS http://127.0.0.1:${PACKAGED.port}/_matrix/key/v2/server`)).stdout) as { verify_keys: object })
                    .verify_keys,
            )[0];
            t.close();
            mediaTimes = await mediaFileTime();
            // A pending background update (its index dropped, its row queued): synapse_port_db refuses a database with one.
            const pending = await vm.exec(
                `${PACKAGED.venv}/bin/python -c "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('DROP INDEX IF EXISTS room_account_data_room_id'); c.execute(\\"INSERT OR REPLACE INTO background_updates (update_name, progress_json) VALUES ('room_account_data_index_room_id', '{}')\\"); c.commit()" ${PACKAGED.database}`,
            );
            assert.equal(pending.code, 0, pending.stderr);
        });
        after(async () => {
            await vm?.stop();
        });

        it("a stack with another serverName is refused by the preflight before anything of Synapse is installed; the old server runs on", async function () {
            stack = await EngineStack.create(
                dir,
                "adopt",
                log,
                vmConfig(vm, { serverName: "other.test", publicBaseUrl: "https://other.test/", adoptFrom: PACKAGED.configDir }),
            );
            await assert.rejects(
                stack.up("up adopting with another serverName"),
                /its server_name is 'matrix\.test', but the stack's serverName is 'other\.test'/,
            );
            const state = await vm.exec(
                `systemctl is-active ${PACKAGED.unit}; systemctl show -p FragmentPath --value ${PACKAGED.unit}; test -d ${PACKAGED.venv} && ! test -L ${PACKAGED.venv} && echo venv; ls /opt/venvs`,
            );
            assert.deepEqual(state.stdout.trim().split("\n"), ["active", PACKAGED.unitFile, "venv", "matrix-synapse"], state.stdout + state.stderr);
        });

        it(`adopts it: the stack's Synapse (the pinned release, PostgreSQL, workers) keeps the server_name, key, users, history and media; the old unit, config and ${OLD} are kept aside`, async function () {
            await stack.setConfig({ serverName: "matrix.test", publicBaseUrl: "https://matrix.test/" });
            const up = await stack.up("up adopting the packaged Synapse");
            timings.push(
                `adoption of a SQLite Synapse ${OLD} (first up): ${up.seconds} s (Synapse install step: ${stepSeconds(up.stdout, SYNAPSE_INSTALL)} s)`,
            );
            assert.equal((await stack.outputs()).signingKeyId, keyId.replace(/^ed25519:/, ""));
            const keys = await vm.exec("curl -fsS http://127.0.0.1:8008/_matrix/key/v2/server");
            assert.deepEqual(Object.keys((JSON.parse(keys.stdout) as { verify_keys: object }).verify_keys), [keyId]);
            const state = await vm.exec(
                [
                    `systemctl is-active ${UNITS.join(" ")}`,
                    `systemctl show -p FragmentPath --value ${PACKAGED.unit}`,
                    `readlink -f ${PACKAGED.venv}`,
                    `test -d ${PACKAGED.venv}-${OLD} && echo kept`,
                    `test -f ${PACKAGED.database} && echo sqlite-kept`,
                    `grep -c sqlite3 ${PACKAGED.configDir}/homeserver.yaml.pre-adoption`,
                    `grep -A1 '^database:' ${PACKAGED.configDir}/homeserver.yaml | tail -n 1`,
                ].join("; "),
            );
            const out = state.stdout.trim().split("\n");
            assert.deepEqual(
                out.slice(0, UNITS.length),
                UNITS.map(() => "active"),
                state.stdout,
            );
            assert.notEqual(out[UNITS.length], PACKAGED.unitFile, "the stack's unit runs Synapse");
            assert.equal(out[UNITS.length + 1], `${PACKAGED.venv}-${DEFAULT_SYNAPSE_VERSION}`);
            assert.deepEqual(out.slice(UNITS.length + 2, UNITS.length + 5), ["kept", "sqlite-kept", "1"], state.stdout);
            assert.match(out[UNITS.length + 5], /name: psycopg2/);
            // The old server ran the code it started with until the adoption stopped it: no process of the package's
            // config (its log lines carry their own time; the stack's leave it to the journal) started on the stack's release.
            const journal = await vm.exec(
                `journalctl -u ${PACKAGED.unit} -o cat --no-pager | grep -E '^[0-9]{4}-[0-9]{2}-[0-9]{2} .* - Server .* version ' || true`,
            );
            assert.doesNotMatch(journal.stdout, new RegExp(`version ${DEFAULT_SYNAPSE_VERSION.replace(/\./g, "\\.")}$`, "m"), journal.stdout);
            assert.match(journal.stdout, new RegExp(`version ${OLD.replace(/\./g, "\\.")}$`, "m"), journal.stdout);
            const t = await tunnel(vm, 8008);
            const base = `http://127.0.0.1:${t.port}`;
            const texts = await roomTexts(base, roomId, "bob", users.bob);
            assert.deepEqual(
                texts,
                [1, 2, 3, 4, 5].map((i) => `before the adoption ${i}`),
            );
            const alice = await passwordLogin(base, "alice", users.alice);
            assert.ok((await downloadMedia(base, alice, mediaUri)).equals(media), "the file differs after the adoption");
            await sendText(base, alice, roomId, "after the adoption");
            t.close();
            assert.equal(await mediaFileTime(), mediaTimes, "the media file keeps its path and time");
        });

        it("a second up changes nothing", async function () {
            assertNothingChanged(await stack.up("second up after the adoption"));
        });
    });

    describe("monitoring on the VM: Prometheus, Alertmanager and the exporters from Debian, Synapse's recording rules left out", function () {
        let vm: Vm;
        let stack: EngineStack;
        /** Prometheus's API on the VM (GET, JSON's `data`). */
        const prometheus = async <T>(apiPath: string): Promise<T> => {
            const r = await vm.exec(`curl -fsS 'http://127.0.0.1:9090/api/v1/${apiPath}'`);
            assert.equal(r.code, 0, r.stderr);
            return (JSON.parse(r.stdout) as { data: T }).data;
        };
        /** An active target: its scrape job (`scrapePool`) and labels (Synapse's processes carry Synapse's own `job`: master, or the worker's role). */
        type Target = { scrapePool: string; labels: Record<string, string>; health: string; lastError: string };
        const targets = async () => (await prometheus<{ activeTargets: Target[] }>("targets?state=active")).activeTargets;
        /** Polls until `ok` holds for what `read` returns (every 3 s, up to `seconds`); the last value otherwise. */
        const until = async <T>(read: () => Promise<T>, ok: (v: T) => boolean, seconds: number): Promise<T> => {
            let v = await read();
            for (let waited = 0; !ok(v) && waited < seconds; waited += 3) {
                await new Promise((r) => setTimeout(r, 3000));
                v = await read();
            }
            return v;
        };

        before(async () => {
            vm = await bootVm({ name: "full-monitoring", memoryMb: 3072, log });
            // This machine reaches no GitHub: the recording rules (for Synapse's Grafana dashboard) are left out.
            stack = await EngineStack.create(dir, "monitoring", log, vmConfig(vm, { monitoring: "true", monitoringSynapseRulesUrl: "none" }));
            const up = await stack.up("first up with monitoring");
            timings.push(`first up with monitoring: ${up.seconds} s`);
        });
        after(async () => {
            await vm?.stop();
        });

        it("every target answers: Synapse, its workers, the node, PostgreSQL and Redis exporters, the health probe, Prometheus and Alertmanager; the library's alerts load", async function () {
            const all = await until(targets, (t) => t.length > 0 && t.every((x) => x.health === "up"), 180);
            assert.ok(
                all.every((x) => x.health === "up"),
                JSON.stringify(all.map((x) => [x.scrapePool, x.health, x.lastError])),
            );
            assert.deepEqual([...new Set(all.map((x) => x.scrapePool))].sort(), [
                "alertmanager",
                "node",
                "postgres",
                "prometheus",
                "redis",
                "synapse",
                "synapse_health",
                "synapse_workers",
            ]);
            // The probe's instance is what it probes; every other target is the homeserver's.
            assert.ok(
                all.filter((x) => x.scrapePool !== "synapse_health").every((x) => x.labels.instance === "matrix.test"),
                JSON.stringify(all.map((x) => x.labels)),
            );
            assert.deepEqual(
                all
                    .filter((x) => x.scrapePool === "synapse_workers")
                    .map((x) => `${x.labels.job}${x.labels.index}`)
                    .sort(),
                ["federation_reader1", "federation_sender1"],
            );
            const groups = (await prometheus<{ groups: { name: string; rules: { name: string; health: string }[] }[] }>("rules")).groups;
            assert.deepEqual(
                groups.map((g) => g.name),
                ["pulumi-matrix"],
            );
            assert.ok(groups[0].rules.length > 0 && groups[0].rules.every((r) => r.health === "ok"), JSON.stringify(groups[0].rules));
            assert.equal((await vm.exec(`ls ${MONITORING_FILES.rulesDir}`)).stdout.trim(), path.basename(MONITORING_FILES.alertRules));
        });

        it("a stopped federation reader is down in Prometheus and TargetDown is pending; running again, it is up", async function () {
            await vm.exec(`systemctl stop ${READER1}`);
            const readerUp = async () =>
                (
                    await prometheus<{ result: { value: [number, string] }[] }>(`query?query=${encodeURIComponent('up{job="federation_reader",index="1"}')}`)
                ).result.map((r) => r.value[1]);
            assert.ok((await until(readerUp, (v) => v.includes("0"), 90)).includes("0"));
            const alerts = async () => (await prometheus<{ alerts: { labels: { alertname: string }; state: string }[] }>("alerts")).alerts;
            const pending = await until(alerts, (a) => a.some((x) => x.labels.alertname === "TargetDown"), 60);
            assert.ok(
                pending.some((x) => x.labels.alertname === "TargetDown" && (x.state === "pending" || x.state === "firing")),
                JSON.stringify(pending),
            );
            await vm.exec(`systemctl start ${READER1}`);
            assert.ok((await until(readerUp, (v) => v.length > 0 && v.every((x) => x === "1"), 120)).every((x) => x === "1"));
        });

        it("a second up changes nothing", async function () {
            assertNothingChanged(await stack.up("second up with monitoring"));
        });
    });

    describe("the split-hosts example: PostgreSQL on a second VM over the private network", function () {
        let net: PrivateNetwork;
        let app: Vm;
        let db: Vm;
        before(async () => {
            net = await createPrivateNetwork();
            [app, db] = await Promise.all([
                bootVm({ name: "full-app", memoryMb: 3072, privateNetwork: net, log }),
                bootVm({ name: "full-db", memoryMb: 3072, privateNetwork: net, log }),
            ]);
            // The example logs into both VMs with one key (sshPrivateKey); each harness VM has its own: let the app VM's key in on the db VM too.
            const keyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "e2e-key-")), "id_ed25519");
            fs.writeFileSync(keyFile, app.connection().privateKey, { mode: 0o600 });
            const pub = execFileSync("ssh-keygen", ["-y", "-f", keyFile], { encoding: "utf8" });
            fs.rmSync(path.dirname(keyFile), { recursive: true, force: true });
            const added = await db.exec("cat >> /root/.ssh/authorized_keys", { stdin: pub });
            assert.equal(added.code, 0, added.stderr);
        });
        after(async () => {
            await Promise.all([app?.stop(), db?.stop()]);
            net?.close();
        });

        it("deploys as written; Synapse reaches PostgreSQL on the other VM; pg_hba and the firewall admit only the Synapse VM", async function () {
            const example = path.join(dir, "examples", "split-hosts");
            fs.mkdirSync(path.join(example, "node_modules"), { recursive: true });
            fs.symlinkSync(dir, path.join(example, "node_modules", "pulumi-matrix"));
            const a = app.connection();
            const d = db.connection();
            const stack = await EngineStack.create(example, "e2e", log, {
                appAddress: a.host,
                appSshPort: String(a.port),
                appHostKey: a.hostKey,
                dbAddress: d.host,
                dbSshPort: String(d.port),
                dbHostKey: d.hostKey,
                sshUser: "root",
                appPrivateIp: app.privateIp!,
                dbPrivateIp: db.privateIp!,
                sshPrivateKey: { secret: a.privateKey },
                serverName: "matrix.test",
                installMethod: "pip",
            });
            const up = await stack.up("split-hosts up");
            timings.push(`split-hosts example, two VMs: ${up.seconds} s`);
            assert.equal((await app.exec("curl -fsS http://127.0.0.1:8008/health")).stdout, "OK");
            const conns = await db.exec(
                "runuser -u postgres -- psql -Atc \"SELECT count(*) FROM pg_stat_activity WHERE datname = 'synapse' AND client_addr IS NOT NULL\"",
            );
            assert.ok(Number(conns.stdout.trim()) > 0, "no connection from the Synapse VM");
            const hba = await db.exec("sed -n '/BEGIN pulumi-matrix/,/END pulumi-matrix/p' /etc/postgresql/15/main/pg_hba.conf");
            assert.match(hba.stdout, new RegExp(`${app.privateIp!.replace(/\./g, "\\.")}/32`));
            assert.doesNotMatch(hba.stdout, /0\.0\.0\.0\/0/);
            const ruleset = await db.exec("nft list table inet pulumi_matrix");
            assert.match(ruleset.stdout, new RegExp(`ip saddr ${app.privateIp!.replace(/\./g, "\\.")} tcp dport 5432 accept`));
            const probe = (source: string) =>
                app.exec(
                    `python3 -c "import socket; socket.create_connection(('${db.privateIp}', 5432), timeout=5, source_address=('${source}', 0)); print('open')" 2>&1 | tail -n 1`,
                );
            await app.exec(`ip addr add 10.99.0.200/24 dev eth1 2>/dev/null || true`);
            assert.equal((await probe(app.privateIp!)).stdout.trim(), "open");
            assert.match((await probe("10.99.0.200")).stdout, /timed out/);
            await app.exec("ip addr del 10.99.0.200/24 dev eth1");
        });
    });
});
