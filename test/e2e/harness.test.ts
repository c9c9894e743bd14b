/**
 * Self-test of the e2e VM harness: a real VM from the cached Debian image,
 * outbound apt/HTTPS through the host's proxy, the executing Pulumi mocks
 * (tls, random, remote commands, CopyToRemote, failures) and a private
 * network between two VMs.
 *
 * Run: npx mocha --config test/e2e/.mocharc.json test/e2e/harness.test.ts
 * (as root, after scripts/e2e-deps.sh)
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ExecutingMocks, PrivateNetwork, Vm, bootVm, createPrivateNetwork, ensureBaseImage, freeTcpPort, runProgram, settle } from "./harness";

const log = (s: string) => process.stderr.write(`      [e2e] ${s}\n`);

describe("e2e harness", function () {
    this.timeout(30 * 60_000);

    before(async function () {
        const img = await ensureBaseImage(log);
        log(`base image ${img.key} (${img.cached ? "cached" : `built in ${img.buildSeconds}s`}), kernel ${img.kernelVersion}`);
    });

    describe("one VM", function () {
        let vm: Vm;

        before(async function () {
            vm = await bootVm({ name: "harness-one", log });
            log(`boot-to-SSH ${vm.bootSeconds}s (${vm.accel})`);
        });

        after(async function () {
            await vm?.stop();
        });

        it("reaches a fully running systemd with a unique host key", async function () {
            const r = await vm.exec("systemctl is-system-running --wait; systemctl --failed --no-legend --plain");
            assert.equal(r.stdout.trim(), "running", `system state:\n${r.stdout}${r.stderr}`);
            const hk = await vm.exec("cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub; hostname");
            assert.equal(hk.stdout, `${vm.hostKey}\n${vm.name}\n`);
            assert.match(vm.hostKey, /^ssh-ed25519 AAAA\S+$/);
            assert.match(vm.privateKeyPem, /BEGIN OPENSSH PRIVATE KEY/);
        });

        it("runs commands as root with stdin, exit codes and stderr", async function () {
            const r = await vm.exec("id -u; cat; echo oops >&2; exit 7", { stdin: "from stdin\n" });
            assert.deepEqual(r, { code: 7, stdout: "0\nfrom stdin\n", stderr: "oops\n" });
            await assert.rejects(vm.exec("sleep 30", { timeoutMs: 1000 }), /timed out/);
        });

        it("reaches Debian's archive with apt-get", async function () {
            const r = await vm.exec("apt-get update -q 2>&1", { timeoutMs: 600_000 });
            assert.equal(r.code, 0, r.stdout + r.stderr);
            const p = await vm.exec("apt-get install -y -q --no-install-recommends jq >/dev/null 2>&1 && jq -n 1+1", { timeoutMs: 600_000 });
            assert.equal(p.stdout.trim(), "2", p.stdout + p.stderr);
        });

        it("reaches PyPI over HTTPS through the proxy (host CA trusted by curl and python)", async function () {
            const r = await vm.exec("curl -sS https://pypi.org/simple/pip/ -o /dev/null -w '%{http_code}'", { timeoutMs: 120_000 });
            assert.equal(r.code, 0, r.stderr);
            assert.equal(r.stdout, "200");
            const py = await vm.exec(`python3 -c "import urllib.request; print(urllib.request.urlopen('https://pypi.org/simple/six/').status)"`, {
                timeoutMs: 120_000,
            });
            assert.equal(py.stdout.trim(), "200", py.stderr);
            const pip = await vm.exec("cat /etc/pip.conf");
            assert.match(pip.stdout, /cert\s*=\s*\/etc\/ssl\/certs\/ca-certificates.crt/);
        });

        it("runs a Pulumi program under the executing mocks", async function () {
            const state = new Map<string, Record<string, any>>();
            const mocks = new ExecutingMocks({ state, log });
            const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "e2e-assets-"));
            fs.writeFileSync(path.join(tmp, "file.txt"), "file asset\n");
            fs.mkdirSync(path.join(tmp, "tree", "sub"), { recursive: true });
            fs.writeFileSync(path.join(tmp, "tree", "sub", "a.txt"), "archive member\n");
            const conn = vm.connection();
            try {
                class Probe extends pulumi.ComponentResource {
                    readback: pulumi.Output<string>;
                    constructor(name: string, secretText: pulumi.Input<string>, opts?: pulumi.ComponentResourceOptions) {
                        super("harness:test:Probe", name, {}, opts);
                        const wait = new command.remote.Command(
                            `${name}-wait`,
                            {
                                connection: { ...conn, dialErrorLimit: -1, perDialTimeout: 5 },
                                create: "test -d /root",
                            },
                            { parent: this },
                        );
                        const write = new command.remote.Command(
                            `${name}-write`,
                            {
                                connection: conn,
                                create: "umask 077; mkdir -p /etc/probe && cat > /etc/probe/secret.txt && echo written",
                                stdin: secretText,
                                logging: "none",
                            },
                            { parent: this, dependsOn: [wait] },
                        );
                        const read = new command.remote.Command(
                            `${name}-read`,
                            {
                                connection: conn,
                                create: pulumi.interpolate`test "${write.stdout}" = written && cat /etc/probe/secret.txt && echo && stat -c %a /etc/probe/secret.txt`,
                            },
                            { parent: this, dependsOn: [write] },
                        );
                        this.readback = read.stdout;
                        this.registerOutputs({ readback: this.readback });
                    }
                }

                const result = await runProgram(() => {
                    const key = new tls.PrivateKey("harness-key", { algorithm: "ED25519" });
                    const password = new random.RandomPassword("harness-password", { length: 32, special: false });
                    const probe = new Probe("probe", password.result);
                    const copies = [
                        new command.remote.CopyToRemote("copy-string", {
                            connection: conn,
                            source: new pulumi.asset.StringAsset("string asset\n"),
                            remotePath: "/srv/copy/string.txt",
                        }),
                        new command.remote.CopyToRemote("copy-file", {
                            connection: conn,
                            source: new pulumi.asset.FileAsset(path.join(tmp, "file.txt")),
                            remotePath: "/srv/copy/file.txt",
                        }),
                        new command.remote.CopyToRemote("copy-dir", {
                            connection: conn,
                            source: new pulumi.asset.FileArchive(path.join(tmp, "tree")),
                            remotePath: "/srv/copy/tree",
                        }),
                    ];
                    const pubkey = new command.remote.Command("install-key", {
                        connection: conn,
                        create: "cat >> /root/.ssh/authorized_keys && echo ok",
                        stdin: key.publicKeyOpenssh,
                    });
                    const list = new command.remote.Command(
                        "list-copies",
                        {
                            connection: conn,
                            create: "cd /srv/copy && find . -type f | sort && cat string.txt file.txt tree/sub/a.txt",
                        },
                        { dependsOn: copies },
                    );
                    return {
                        readback: probe.readback,
                        password: password.result,
                        privateKeyPem: key.privateKeyPem,
                        privateKeyOpenssh: key.privateKeyOpenssh,
                        publicKeyOpenssh: key.publicKeyOpenssh,
                        installed: pubkey.stdout,
                        listing: list.stdout,
                        passwordIsSecret: pulumi.isSecret(password.result),
                    };
                }, mocks);

                const pw = await settle(result.password);
                assert.match(pw, /^[A-Za-z0-9]{32}$/);
                assert.equal(await result.passwordIsSecret, true);
                assert.equal(await settle(result.readback), `${pw}\n600`);
                assert.match(await settle(result.privateKeyPem), /^-----BEGIN PRIVATE KEY-----\n/);
                assert.match(await settle(result.publicKeyOpenssh), /^ssh-ed25519 AAAA\S+\n$/);
                assert.equal(await settle(result.installed), "ok");
                assert.equal(await settle(result.listing), "./file.txt\n./string.txt\n./tree/sub/a.txt\nstring asset\nfile asset\narchive member");

                // the generated key really logs in (tls.PrivateKey's OpenSSH output)
                const viaNewKey = await runProgram(
                    () => ({
                        who: new command.remote.Command("whoami-new-key", {
                            connection: { ...conn, privateKey: result.privateKeyOpenssh },
                            create: "whoami",
                        }).stdout,
                    }),
                    new ExecutingMocks({ state }),
                );
                assert.equal(await settle(viaNewKey.who), "root");

                // a second run with the same state reuses random/tls values, commands run again
                const again = new ExecutingMocks({ state });
                const second = await runProgram(
                    () => ({
                        password: new random.RandomPassword("harness-password", { length: 32, special: false }).result,
                        date: new command.remote.Command("again", { connection: conn, create: "cat /etc/probe/secret.txt" }).stdout,
                    }),
                    again,
                );
                assert.equal(await settle(second.password), pw);
                assert.equal(await settle(second.date), pw);

                // timeline: every resource has times, the component groups its commands
                const t = mocks.timings();
                assert.ok(t.every((e) => e.end !== undefined && e.end >= e.start));
                const probeSummary = mocks.summary().find((s) => s.name === "probe");
                assert.ok(probeSummary, mocks.summaryText());
                assert.equal(probeSummary.resources, 3);
                assert.equal(probeSummary.type, "harness:test:Probe");
                const write = mocks.resources.find((r) => r.name === "probe-write")!;
                assert.ok(write.secretInputs.includes("stdin"), `secret inputs: ${write.secretInputs}`);
                log(`summary:\n${mocks.summaryText()}`);
            } finally {
                fs.rmSync(tmp, { recursive: true, force: true });
            }
        });

        it("fails a program clearly when a command exits non-zero", async function () {
            const conn = vm.connection();
            const mocks = new ExecutingMocks();
            let after = false;
            await assert.rejects(
                runProgram(() => {
                    const bad = new command.remote.Command("bad-step", {
                        connection: conn,
                        create: "echo about to fail; echo 'no such thing' >&2; exit 1",
                    });
                    const next = new command.remote.Command("after-bad", { connection: conn, create: "echo never" }, { dependsOn: [bad] });
                    next.stdout.apply(() => (after = true));
                    return { out: next.stdout };
                }, mocks),
                (e: Error) => {
                    assert.match(
                        e.message,
                        /remote\.Command "bad-step" \(urn:pulumi:stack::project::command:remote:Command::bad-step\) failed: command exited with code 1/,
                    );
                    assert.match(e.message, /no such thing\nabout to fail/);
                    return true;
                },
            );
            assert.equal(after, false, "a dependent of the failed command must not run");
            assert.ok(!mocks.resources.some((r) => r.name === "after-bad"), "dependent was registered");

            // secrets: no output in the error when logging is "none"
            await assert.rejects(
                runProgram(() => {
                    new command.remote.Command("secret-step", {
                        connection: conn,
                        create: "echo hunter2-secret; exit 4",
                        logging: "none",
                    });
                    return {};
                }, new ExecutingMocks()),
                (e: Error) => {
                    assert.match(e.message, /secret-step.*exited with code 4/);
                    assert.doesNotMatch(e.message, /hunter2/);
                    return true;
                },
            );

            // a wrong host key is refused, not retried forever
            const other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
            await assert.rejects(
                runProgram(() => {
                    new command.remote.Command("wrong-hostkey", { connection: { ...conn, hostKey: other }, create: "true" });
                    return {};
                }, new ExecutingMocks()),
                /Host key verification failed/,
            );
        });

        it("gives up dialing a closed port after dialErrorLimit attempts", async function () {
            const port = await freeTcpPort();
            const started = Date.now();
            await assert.rejects(
                runProgram(() => {
                    new command.remote.Command("nobody-home", {
                        connection: { host: "127.0.0.1", port, user: "root", privateKey: vm.privateKeyPem, dialErrorLimit: 2, perDialTimeout: 2 },
                        create: "true",
                    });
                    return {};
                }, new ExecutingMocks()),
                /Connection refused[\s\S]*gave up after 2 dial attempt/,
            );
            assert.ok(Date.now() - started < 30_000);
        });
    });

    describe("private network", function () {
        let net: PrivateNetwork;
        let vms: Vm[] = [];

        before(async function () {
            net = await createPrivateNetwork();
            vms = await Promise.all([
                bootVm({ name: "harness-p1", privateNetwork: net, forwardTcp: [8080], log }),
                bootVm({ name: "harness-p2", privateNetwork: net, log }),
            ]);
        });

        after(async function () {
            await Promise.all(vms.map((v) => v.stop()));
            net?.close();
        });

        it("lets two VMs reach each other on 10.99.0.0/24", async function () {
            const [a, b] = vms;
            assert.match(a.privateIp ?? "", /^10\.99\.0\.\d+$/);
            assert.notEqual(a.privateIp, b.privateIp);
            const ab = await a.exec(`ping -c 3 -W 3 ${b.privateIp}`);
            assert.equal(ab.code, 0, ab.stdout + ab.stderr);
            const ba = await b.exec(`ping -c 3 -W 3 ${a.privateIp}`);
            assert.equal(ba.code, 0, ba.stdout + ba.stderr);
            // TCP across the private network, and a guest port forwarded to the host's loopback
            await a.exec("nohup python3 -m http.server 8080 --bind 0.0.0.0 >/dev/null 2>&1 &");
            const tcp = await b.exec(
                `for i in $(seq 1 30); do curl -sf -o /dev/null -w '%{http_code}' http://${a.privateIp}:8080/ && exit 0; sleep 1; done; exit 1`,
            );
            assert.equal(tcp.stdout, "200", tcp.stderr);
            const res = await fetch(`http://127.0.0.1:${a.forwardedPort(8080)}/`);
            assert.equal(res.status, 200);
        });

        it("runs a remote.Command through a bastion (connection.proxy)", async function () {
            const [a, b] = vms;
            const out = await runProgram(
                () => ({
                    where: new command.remote.Command("via-bastion", {
                        connection: {
                            host: b.privateIp!,
                            port: 22,
                            user: "root",
                            privateKey: b.privateKeyPem,
                            hostKey: b.hostKey,
                            proxy: { ...a.connection() },
                        },
                        create: "hostname; ip -4 -o addr show dev eth1 | awk '{print $4}'",
                    }).stdout,
                }),
                new ExecutingMocks(),
            );
            assert.equal(await settle(out.where), `${b.name}\n${b.privateIp}/24`);
        });
    });
});
