/**
 * E2E full (npm run test:e2e:full, not in CI): changes, a replaced VM, and
 * PostgreSQL on a second VM over a private network.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PrivateNetwork, Vm, bootVm, createPrivateNetwork, ensureBaseImage } from "./harness";
import { Deployment, deploy, startTimestamps, tunnel, vmStackArgs } from "./deploy";
import { loginWithPassword } from "../integration/support/client";
import { registerWithSharedSecret } from "../integration/support/synapse";

const log = (s: string) => process.stderr.write(`      [e2e] ${s}\n`);
const full = process.env.E2E_FULL === "1" ? describe : describe.skip;

full("e2e full", function () {
    this.timeout(90 * 60_000);
    const timings: string[] = [];
    before(async () => {
        await ensureBaseImage(log);
    });
    after(() => {
        for (const t of timings) log(`timing: ${t}`);
    });

    describe("one VM, then its replacement", function () {
        let vm: Vm;
        let first: Deployment;
        const state = new Map<string, Record<string, any>>();
        const dump = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "e2e-dump-")), "synapse.dump");

        before(async () => {
            vm = await bootVm({ name: "full-a", memoryMb: 3072, log });
            first = await deploy(vmStackArgs(vm), state, log);
            timings.push(`first deployment: ${first.seconds} s`);
        });
        after(async () => {
            await vm?.stop();
        });

        it("a changed maxUploadSize restarts Synapse and nothing else", async function () {
            const units = ["matrix-synapse.service", "postgresql@15-main.service", "pulumi-matrix-firewall.service"];
            const before = await startTimestamps(vm, units);
            const again = await deploy(vmStackArgs(vm, { maxUploadSize: "100M" }), state, log);
            const after = await startTimestamps(vm, units);
            assert.notEqual(after["matrix-synapse.service"], before["matrix-synapse.service"]);
            assert.equal(after["postgresql@15-main.service"], before["postgresql@15-main.service"]);
            assert.equal(after["pulumi-matrix-firewall.service"], before["pulumi-matrix-firewall.service"]);
            assert.match((await vm.exec("grep max_upload_size /etc/matrix-synapse/homeserver.yaml")).stdout, /100M/);
            assert.equal(again.outputs.signingKeyId, first.outputs.signingKeyId);
        });

        it("a replaced VM with the same Pulumi-side keys and a restored dump keeps the key id and the users", async function () {
            const t = await tunnel(vm, 8008);
            await registerWithSharedSecret(`http://127.0.0.1:${t.port}`, first.outputs.registrationSharedSecret, "bob", "bob-password-e2e", false);
            t.close();
            // The nightly dump service, run now.
            const r = await vm.exec("systemctl start pulumi-matrix-pg-backup.service && ls -1 /var/backups/pulumi-matrix/postgres/");
            assert.equal(r.code, 0, r.stderr);
            const file = r.stdout.trim().split("\n").pop()!;
            assert.match(file, /^synapse-\d{8}T\d{6}Z\.dump$/);
            const data = await vm.exec(`base64 -w0 /var/backups/pulumi-matrix/postgres/${file}`);
            fs.writeFileSync(dump, Buffer.from(data.stdout, "base64"));
            await vm.stop();

            vm = await bootVm({ name: "full-b", memoryMb: 3072, log });
            // Restore before Synapse's first start: the operator's step when moving a server.
            const args = vmStackArgs(vm);
            const restored = await deploy({ ...args, synapse: { ...args.synapse } }, state, log);
            await vm.exec("systemctl stop matrix-synapse.service");
            const put = await vm.exec(`base64 -d > /tmp/synapse.dump && runuser -u postgres -- pg_restore --clean --if-exists -d synapse /tmp/synapse.dump`, {
                stdin: fs.readFileSync(dump).toString("base64"),
            });
            assert.equal(put.code, 0, put.stderr);
            await vm.exec("systemctl start matrix-synapse.service");
            assert.equal(restored.outputs.signingKeyId, first.outputs.signingKeyId);
            const keys = await vm.exec("for i in $(seq 1 120); do curl -fsS http://127.0.0.1:8008/_matrix/key/v2/server && exit 0; sleep 1; done; exit 1");
            assert.deepEqual(Object.keys(JSON.parse(keys.stdout).verify_keys), [`ed25519:${first.outputs.signingKeyId}`]);
            const t2 = await tunnel(vm, 8008);
            const bob = await loginWithPassword(`http://127.0.0.1:${t2.port}`, "bob", "bob-password-e2e");
            assert.equal(bob.userId, "@bob:matrix.test");
            bob.client.stopClient();
            t2.close();
        });
    });

    describe("PostgreSQL on a second VM over the private network", function () {
        let net: PrivateNetwork;
        let app: Vm;
        let db: Vm;
        before(async () => {
            net = await createPrivateNetwork();
            [app, db] = await Promise.all([
                bootVm({ name: "full-app", memoryMb: 3072, privateNetwork: net, log }),
                bootVm({ name: "full-db", memoryMb: 2048, privateNetwork: net, log }),
            ]);
        });
        after(async () => {
            await Promise.all([app?.stop(), db?.stop()]);
            net?.close();
        });

        it("Synapse reaches PostgreSQL on the other VM; pg_hba and the firewall admit only the private network", async function () {
            const dbConn = db.connection();
            const args = vmStackArgs(
                app,
                {},
                {
                    postgres: {
                        host: {
                            host: dbConn.host,
                            port: dbConn.port,
                            user: dbConn.user,
                            privateKey: dbConn.privateKey,
                            hostKey: dbConn.hostKey,
                            ntpServers: ["10.0.2.2"],
                        },
                        reachableAt: db.privateIp!,
                        listenAddresses: ["127.0.0.1", db.privateIp!],
                        allowedClients: [`${app.privateIp}/32`],
                    },
                },
            );
            const d = await deploy(args, new Map(), log);
            timings.push(`two-host deployment: ${d.seconds} s`);
            const health = await app.exec("curl -fsS http://127.0.0.1:8008/health");
            assert.equal(health.stdout, "OK");
            const conns = await db.exec(
                "runuser -u postgres -- psql -Atc \"SELECT count(*) FROM pg_stat_activity WHERE datname = 'synapse' AND client_addr IS NOT NULL\"",
            );
            assert.ok(Number(conns.stdout.trim()) > 0, "no connection from the Synapse VM");
            const hba = await db.exec("sed -n '/BEGIN pulumi-matrix/,/END pulumi-matrix/p' /etc/postgresql/15/main/pg_hba.conf");
            assert.match(hba.stdout, new RegExp(`${app.privateIp!.replace(/\./g, "\\.")}/32`));
            assert.doesNotMatch(hba.stdout, /0\.0\.0\.0\/0/);
            const ruleset = await db.exec("nft list table inet pulumi_matrix");
            assert.match(ruleset.stdout, new RegExp(`ip saddr ${app.privateIp!.replace(/\./g, "\\.")} tcp dport 5432 accept`));
            // From the allowed address the port answers; from another address on the same network it does not.
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
