// coturn as the library configures it, against the real programs: coturn
// from Debian, Synapse from PyPI (SQLite). The scripts are the very ones the
// TurnServer and SynapseHomeserver components send to a VM, run as root in
// namespaces of their own (test/support/integration/turnSandbox.ts): coturn's in a network
// namespace where the host's address is SERVER_ADDRESS (private, as on a VM
// behind NAT) and nothing routes out, with a systemctl stand-in that runs
// the real coturn from the unit drop-in the scripts wrote. Synapse is started
// by the test from the files its scripts and the TURN scripts wrote.
//
// Then, as a client would: credentials from /_matrix/client/v3/voip/turnServer,
// allocations with turnutils_uclient (from coturn's package), refusals of a
// wrong password and of relays to denied peers, TLS with the certificate's
// copy and its renewal through certbot's deploy hook.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { PROXY_FILES } from "../../src/model/proxy";
import { resolveAcmeSettings } from "../../src/model/proxy/acme";
import { resolveSynapseSettings, synapseFiles, SynapseSettings } from "../../src/model/synapse";
import { resolveTurnSettings, TurnSettings, turnSynapseFiles, turnUris } from "../../src/model/turn";
import { TURN_FILES } from "../../src/model/turn";
import { firewallFragmentPath } from "../../src/provision/host";
import { synapseConfigScript, synapseSecretsScript } from "../../src/provision/synapse";
import {
    turnFirewallOwner,
    turnRemovalScript,
    turnSecretScript,
    turnServerScript,
    turnSynapseConfigScript,
    turnSynapseRemovalScript,
    turnSynapseSecretScript,
} from "../../src/provision/turn";
import { WRITTEN_DIR } from "../../src/render/drift";
import { renderDeployHook } from "../../src/render/proxy";
import { signingKeyFromPem } from "../../src/render/synapse/signingKey";
import { renderCoturnDropIn } from "../../src/render/turn";
import { freePort } from "../support/integration/net";
import { makeTempDir, requireUser, run, sleep } from "../support/integration/processes";
import { registerWithSharedSecret, startSynapse, type SynapseProcess } from "../support/integration/synapse";
import { ensureSynapseVenv } from "../support/integration/synapse-venv";
import { PUBLIC_ADDRESS, SERVER_ADDRESS, TurnSandbox } from "../support/integration/turnSandbox";

const random = () => crypto.randomBytes(24).toString("hex");
const COMPONENT = 'TurnServer "test"';
/** coturn's own lineage (turnCertName("turn.test")): the test stands in for certbot and puts a certificate there. */
const LIVE = "/etc/letsencrypt/live/coturn-turn.test";

interface TurnServerResponse {
    username: string;
    password: string;
    uris: string[];
    ttl: number;
}

describe("coturn as the library configures it, with Synapse handing out its credentials", function () {
    let sandbox: TurnSandbox;
    let dir: string;
    let settings: SynapseSettings;
    let turn: TurnSettings;
    let synapse: SynapseProcess | undefined;
    let baseUrl: string;
    let accessToken: string;
    let credentials: TurnServerResponse;
    let firstCertificate: string;
    const sharedSecret = random();
    const registrationSharedSecret = random();
    const defaultsBefore = fs.existsSync("/etc/default/coturn") ? fs.readFileSync("/etc/default/coturn", "utf8") : undefined;
    const key = signingKeyFromPem(crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());

    /** A self-signed certificate for the TURN name in certbot's live directory, as certbot would have left it; its SHA-256 fingerprint. */
    async function issueCertificate(): Promise<string> {
        const live = sandbox.hostPath(LIVE);
        fs.mkdirSync(live, { recursive: true, mode: 0o700 });
        await run("openssl", [
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=turn.test",
            "-addext",
            "subjectAltName=DNS:turn.test",
            "-keyout",
            path.join(live, "privkey.pem"),
            "-out",
            path.join(live, "fullchain.pem"),
        ]);
        fs.copyFileSync(path.join(live, "fullchain.pem"), path.join(live, "cert.pem"));
        return new crypto.X509Certificate(fs.readFileSync(path.join(live, "fullchain.pem"))).fingerprint256;
    }

    /** The fingerprint of the certificate coturn serves on its TLS port. */
    async function servedCertificate(): Promise<string> {
        const r = await sandbox.inNetns("openssl", ["s_client", "-connect", `${SERVER_ADDRESS}:${turn.tlsPort}`, "-servername", turn.domain], { input: "" });
        const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0];
        assert.ok(pem, `no certificate from ${SERVER_ADDRESS}:${turn.tlsPort}:\n${r.stdout}\n${r.stderr}`);
        return new crypto.X509Certificate(pem).fingerprint256;
    }

    /** turnutils_uclient in coturn's network, against the server's own address. */
    function uclient(args: string[]): Promise<{ code: number; out: string }> {
        return sandbox.inNetns("turnutils_uclient", [...args, SERVER_ADDRESS], { timeoutMs: 30_000 }).then((r) => ({ code: r.code, out: r.stdout + r.stderr }));
    }

    /**
     * Credentials for a user of its own: coturn counts allocations per
     * username (user-quota), and allocations a test client leaves behind
     * live until they expire.
     */
    async function credentialsOf(localpart: string): Promise<TurnServerResponse> {
        const user = await registerWithSharedSecret(baseUrl, registrationSharedSecret, localpart, random(), false);
        const r = await fetch(`${baseUrl}/_matrix/client/v3/voip/turnServer`, { headers: { authorization: `Bearer ${user.access_token}` } });
        assert.equal(r.status, 200, await r.clone().text());
        return (await r.json()) as TurnServerResponse;
    }

    const scripts = () => ({
        server: turnServerScript(turn, "test"),
        secret: turnSecretScript(turn, sharedSecret),
        synapseSecret: turnSynapseSecretScript(settings, sharedSecret),
        synapseConfig: turnSynapseConfigScript(settings, turn),
    });

    /** Starts the test's Synapse on the files the scripts wrote (ensureSynapseVenv hands every caller the one virtualenv). */
    async function startTestSynapse(): Promise<void> {
        const f = synapseFiles(settings.paths);
        synapse = await startSynapse({
            venv: await ensureSynapseVenv(),
            configPaths: [f.homeserverYaml, f.confD + "/"],
            healthUrl: `${baseUrl}/health`,
            cwd: settings.paths.dataDir,
        });
    }

    before(async function () {
        const venv = ensureSynapseVenv();
        sandbox = new TurnSandbox("turn");
        await sandbox.ready;
        dir = makeTempDir("coturn-synapse");
        const port = await freePort();
        baseUrl = `http://127.0.0.1:${port}`;
        settings = resolveSynapseSettings("test", {
            serverName: "matrix.test",
            publicBaseUrl: `${baseUrl}/`,
            installMethod: "pip",
            httpPort: port,
            metrics: { enabled: false },
            // Guests exist, so that turn_allow_guests: false can be seen to keep credentials from them.
            allowGuestAccess: true,
            sqlite: {},
            paths: { configDir: `${dir}/etc`, dataDir: `${dir}/data`, venvDir: await venv, user: "root" },
        });
        firstCertificate = await issueCertificate();
        // The TURN name is on the certificate; the server's own address is private (relayIp), as behind NAT.
        turn = resolveTurnSettings(
            COMPONENT,
            // Listening on a public address too: relays to it are refused, relays between clients go through the private one.
            { domain: "turn.test", relayIp: SERVER_ADDRESS, listeningIps: [SERVER_ADDRESS, PUBLIC_ADDRESS] },
            { acme: resolveAcmeSettings(COMPONENT, { email: "admin@turn.test" }) },
        );
        assert.equal(turn.tls?.liveDir, LIVE);

        // The scripts in the order they run on a VM: coturn's in coturn's network; Synapse's own, then TURN's side of Synapse.
        const s = scripts();
        await sandbox.run(s.server, { netns: true });
        await sandbox.run(s.secret, { netns: true });
        await sandbox.run(
            synapseSecretsScript(settings, {
                macaroonSecretKey: random(),
                formSecret: random(),
                registrationSharedSecret,
                signingKey: key.fileLine,
                files: [],
            }),
        );
        await sandbox.run(synapseConfigScript(settings, {}, "test"));
        await sandbox.run(s.synapseSecret);
        await sandbox.run(s.synapseConfig);

        await startTestSynapse();
        const user = await registerWithSharedSecret(baseUrl, registrationSharedSecret, "alice", random(), false);
        accessToken = user.access_token;
    });

    after(async function () {
        await synapse?.stop();
        await sandbox?.stopCoturn();
    });

    it("runs coturn as turnserver from the file put together on the host; the secret is only in root's file and that file", function () {
        const pid = sandbox.coturnPid();
        assert.ok(pid, `coturn does not run:\n${sandbox.coturnLog()}`);
        const uid = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
        assert.equal(Number(uid), requireUser("turnserver").uid);
        const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
        // The drop-in's NoNewPrivileges=yes and empty CapabilityBoundingSet= (what the stand-in can apply of its sandbox).
        const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
        assert.match(status, /^NoNewPrivs:\s+1$/m);
        assert.match(status, /^CapBnd:\s+0+$/m);
        assert.match(status, /^CapEff:\s+0+$/m);
        assert.deepEqual(cmdline, ["/usr/bin/turnserver", "-c", TURN_FILES.conf, "--pidfile="]);

        const stat = (p: string) => {
            const st = fs.statSync(sandbox.hostPath(p));
            return `${(st.mode & 0o777).toString(8)} ${st.uid === 0 ? "root" : st.uid} ${st.gid === 0 ? "root" : st.gid === requireUser("turnserver").gid ? "turnserver" : st.gid}`;
        };
        const read = (p: string) => fs.readFileSync(sandbox.hostPath(p), "utf8");
        assert.equal(stat(TURN_FILES.dir), "750 root turnserver");
        assert.equal(stat(TURN_FILES.secret), "600 root root");
        assert.equal(stat(TURN_FILES.conf), "640 root turnserver");
        assert.equal(read(TURN_FILES.secret), `static-auth-secret=${sharedSecret}\n`);
        assert.ok(!read(TURN_FILES.readable).includes(sharedSecret));
        assert.equal(read(TURN_FILES.conf), read(TURN_FILES.readable) + read(TURN_FILES.secret));
        // The drift record keeps digests of the secret files, a copy of the readable one.
        const record = (p: string) => fs.readFileSync(path.join(sandbox.hostPath(WRITTEN_DIR), "records", p), "utf8").split(" ")[0];
        assert.equal(record(TURN_FILES.conf), "secret");
        assert.equal(record(TURN_FILES.secret), "secret");
        assert.equal(record(TURN_FILES.readable), "readable");
        assert.ok(!fs.existsSync(path.join(sandbox.hostPath(WRITTEN_DIR), "files", TURN_FILES.conf)));

        // Synapse's side: the secret in its secrets directory, the fragment names only its path.
        const t = turnSynapseFiles(settings.paths);
        assert.equal((fs.statSync(t.secret).mode & 0o777).toString(8), "640");
        assert.equal(fs.readFileSync(t.secret, "utf8"), `${sharedSecret}\n`);
        assert.ok(!fs.readFileSync(t.fragment, "utf8").includes(sharedSecret));
        assert.match(fs.readFileSync(t.fragment, "utf8"), /^turn_shared_secret_path: .*\/secrets\/turn_shared_secret$/m);

        // Logs (the journal on a VM): the config as coturn understood it, no secret.
        const log = sandbox.coturnLog();
        assert.doesNotMatch(log, /Bad configuration|CONFIG ERROR/i);
        assert.match(log, /Black listing: 10\.0\.0\.0-10\.255\.255\.255/);
        assert.match(log, /Black listing: fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff/);
        assert.match(log, new RegExp(`White listing: ${SERVER_ADDRESS.replace(/\./g, "\\.")}`));
        assert.ok(!log.includes(sharedSecret), "coturn logged the secret");
        assert.ok(!synapse!.log().includes(sharedSecret), "Synapse logged the secret");

        // Older packages start coturn only with this; the firewall opens exactly what coturn uses.
        assert.match(read("/etc/default/coturn"), /^TURNSERVER_ENABLED=1$/m);
        const fragment = read(firewallFragmentPath(turnFirewallOwner("test")));
        for (const rule of ["udp dport 3478", "tcp dport 3478", "udp dport 5349", "tcp dport 5349", "udp dport 49152-65535"])
            assert.match(fragment, new RegExp(`^add rule inet pulumi_matrix input ${rule} accept`, "m"), rule);
    });

    it("Synapse hands out credentials for the rendered URIs at /_matrix/client/v3/voip/turnServer", async function () {
        const r = await fetch(`${baseUrl}/_matrix/client/v3/voip/turnServer`, { headers: { authorization: `Bearer ${accessToken}` } });
        assert.equal(r.status, 200, await r.clone().text());
        credentials = (await r.json()) as TurnServerResponse;
        assert.deepEqual(credentials.uris, turnUris(turn));
        assert.deepEqual(credentials.uris, ["turn:turn.test?transport=udp", "turn:turn.test?transport=tcp", "turns:turn.test:5349?transport=tcp"]);
        assert.equal(credentials.ttl, 3600);
        const [expiry, user] = credentials.username.split(/:(.*)/s);
        assert.equal(user, "@alice:matrix.test");
        assert.ok(Math.abs(Number(expiry) - (Date.now() / 1000 + 3600)) < 120, credentials.username);
        assert.equal(credentials.password, crypto.createHmac("sha1", sharedSecret).update(credentials.username).digest("base64"));
        // Guests get none (turn_allow_guests: false; Synapse's own default is true).
        const guest = await fetch(`${baseUrl}/_matrix/client/v3/register?kind=guest`, {
            method: "POST",
            body: "{}",
            headers: { "content-type": "application/json" },
        });
        assert.equal(guest.status, 200, await guest.clone().text());
        const token = ((await guest.json()) as { access_token: string }).access_token;
        const g = await fetch(`${baseUrl}/_matrix/client/v3/voip/turnServer`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(g.status, 403, await g.clone().text());
        assert.equal(((await g.json()) as { errcode: string }).errcode, "M_GUEST_ACCESS_FORBIDDEN");
    });

    it("allocates with those credentials: two clients relayed by the server reach each other over UDP, TCP and DTLS", async function () {
        assert.ok(credentials, "needs the credentials of the test before");
        for (const [transport, flags] of [
            ["UDP", []],
            ["TCP", ["-t"]],
            ["DTLS", ["-S", "-p", String(turn.tlsPort)]],
        ] as const) {
            const r = await uclient(["-y", "-n", "3", ...flags, "-u", credentials.username, "-w", credentials.password]);
            const why = `${transport}:\n${r.out.slice(-2000)}`;
            assert.equal(r.code, 0, why);
            assert.match(r.out, /Total lost packets 0 \(0\.0+%\)/, why);
            // Every message one client sent through its relay reached the other one's relay and came back.
            const totals = [...r.out.matchAll(/start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/g)].pop();
            assert.ok(totals && Number(totals[1]) > 0 && totals[1] === totals[2], why);
        }
    });

    it("refuses a wrong password", async function () {
        const c = await credentialsOf("bob");
        const r = await uclient(["-y", "-n", "1", "-u", c.username, "-w", crypto.createHmac("sha1", "not the secret").update(c.username).digest("base64")]);
        assert.notEqual(r.code, 0, r.out);
        assert.match(r.out, /Cannot complete Allocation/);
    });

    it("refuses relays to denied peers: loopback, private (10.0.0.1), link-local (cloud metadata)", async function () {
        for (const [i, peer] of ["127.0.0.1", "127.0.0.2", "10.0.0.1", "192.168.1.1", "169.254.169.254"].entries()) {
            const c = await credentialsOf(`carol${i}`);
            const r = await uclient(["-c", "-n", "1", "-e", peer, "-u", c.username, "-w", c.password]);
            assert.notEqual(r.code, 0, `${peer}:\n${r.out.slice(-2000)}`);
            assert.match(r.out, /error 403 \(Forbidden IP\)/, `${peer}:\n${r.out.slice(-2000)}`);
        }
    });

    it("refuses relays to the server's own public address (a relay there would reach the host's own UDP services)", async function () {
        assert.match(sandbox.coturnLog(), new RegExp(`Black listing: ${PUBLIC_ADDRESS.replace(/\./g, "\\.")}`));
        const c = await credentialsOf("dave");
        const r = await uclient(["-c", "-n", "1", "-e", PUBLIC_ADDRESS, "-u", c.username, "-w", c.password]);
        assert.notEqual(r.code, 0, `${PUBLIC_ADDRESS}:\n${r.out.slice(-2000)}`);
        assert.match(r.out, /error 403 \(Forbidden IP\)/, `${PUBLIC_ADDRESS}:\n${r.out.slice(-2000)}`);
        // The private address it relays from stays allowed: the test above relayed between two clients through it.
        assert.match(sandbox.coturnLog(), new RegExp(`White listing: ${SERVER_ADDRESS.replace(/\./g, "\\.")}`));
    });

    it("serves TLS with its copy of the certificate; a renewal reaches coturn through certbot's deploy hook with a reload", async function () {
        assert.equal(await servedCertificate(), firstCertificate);
        const tls = (name: string) => {
            const st = fs.statSync(sandbox.hostPath(`${TURN_FILES.tlsDir}/${name}`));
            return `${(st.mode & 0o777).toString(8)} ${st.uid === requireUser("turnserver").uid ? "turnserver" : st.uid}`;
        };
        assert.equal(tls("fullchain.pem"), "640 turnserver");
        assert.equal(tls("privkey.pem"), "600 turnserver");

        const pid = sandbox.coturnPid();
        const renewed = await issueCertificate();
        assert.notEqual(renewed, firstCertificate);
        sandbox.reset();
        // What certbot runs after a renewal: the proxy's deploy hook, which runs coturn's hook.
        const out = await sandbox.run(renderDeployHook(PROXY_FILES.hooksDir), { netns: true, env: { RENEWED_LINEAGE: LIVE } });
        assert.match(out, /coturn: copied the certificate/);
        assert.deepEqual(
            sandbox.calls().filter((c) => c.includes("coturn")),
            ["reload coturn.service"],
        );
        assert.equal(sandbox.coturnPid(), pid, "coturn was restarted");
        let served = "";
        for (let i = 0; i < 50 && served !== renewed; i++) {
            served = await servedCertificate();
            if (served !== renewed) await sleep(100);
        }
        assert.equal(served, renewed);
        assert.match(sandbox.coturnLog(), /Reloading TLS certificates and keys/);
        // Another certificate's renewal is none of coturn's business.
        sandbox.reset();
        await sandbox.run(renderDeployHook(PROXY_FILES.hooksDir), { netns: true, env: { RENEWED_LINEAGE: "/etc/letsencrypt/live/other.test" } });
        // Nor is the web lineage's: coturn's copy comes from its own lineage alone.
        await sandbox.run(renderDeployHook(PROXY_FILES.hooksDir), { netns: true, env: { RENEWED_LINEAGE: "/etc/letsencrypt/live/matrix.test" } });
        assert.deepEqual(sandbox.calls(), []);
    });

    it("a second run of every script changes nothing and restarts nothing", async function () {
        const pid = sandbox.coturnPid();
        sandbox.reset();
        const s = scripts();
        const outputs = [
            await sandbox.run(s.server, { netns: true }),
            await sandbox.run(s.secret, { netns: true }),
            await sandbox.run(s.synapseSecret),
            await sandbox.run(s.synapseConfig),
        ].join("\n");
        assert.doesNotMatch(outputs, /updated |removed |restarting |starting |reloaded|copied/);
        assert.deepEqual(
            sandbox.calls().filter((c) => /^(start|stop|restart|reload) /.test(c)),
            [],
        );
        assert.equal(sandbox.coturnPid(), pid);
    });

    it("every system call coturn makes (start, allocations over UDP and DTLS, a certificate reload, stop) is one the drop-in's SystemCallFilter allows", async function () {
        // The filter as systemd expands it: @system-service with its nested groups, minus @privileged.
        const groups = new Map<string, string[]>();
        let current: string[] | undefined;
        for (const line of (await run("systemd-analyze", ["syscall-filter", "--no-pager"])).stdout.split("\n")) {
            if (/^@\S+$/.test(line)) groups.set(line, (current = []));
            else if (current && /^\s+[@a-z0-9_-]+$/.test(line)) current.push(line.trim());
        }
        const expand = (name: string, seen = new Set<string>()): string[] =>
            name.startsWith("@") ? (seen.has(name) ? [] : (seen.add(name), (groups.get(name) ?? []).flatMap((n) => expand(n, seen)))) : [name];
        const privileged = new Set(expand("@privileged"));
        const allowed = new Set(expand("@system-service").filter((n) => !privileged.has(n)));
        assert.ok(allowed.has("sendmsg") && !allowed.has("mount"), "systemd-analyze's groups were not read");

        const dropIn = renderCoturnDropIn(TURN_FILES.conf);
        assert.match(dropIn, /^SystemCallFilter=@system-service$/m);
        assert.match(dropIn, /^SystemCallFilter=~@privileged$/m);

        const c = await credentialsOf("erin");
        const trace = path.join(dir, "coturn.strace");
        await sandbox.run("systemctl stop coturn.service\n", { netns: true });
        try {
            // coturn as the unit runs it, traced; clients allocate and relay, coturn reloads its certificate, then stops.
            await sandbox.run(
                [
                    "set -e",
                    `strace -f -qq -o ${trace} setpriv --no-new-privs --bounding-set -all --inh-caps -all --reuid turnserver --regid turnserver --init-groups -- /usr/bin/turnserver -c ${TURN_FILES.conf} --pidfile= >/dev/null 2>&1 &`,
                    "tracer=$!",
                    `for _ in $(seq 100); do timeout 1 turnutils_stunclient -p ${turn.port} ${SERVER_ADDRESS} >/dev/null 2>&1 && break; sleep 0.2; done`,
                    `turnutils_uclient -y -n 3 -u ${c.username} -w ${c.password} ${SERVER_ADDRESS} >/dev/null 2>&1`,
                    `turnutils_uclient -y -n 3 -S -p ${turn.tlsPort} -u ${c.username} -w ${c.password} ${SERVER_ADDRESS} >/dev/null 2>&1`,
                    "coturn=$(ps -o pid= --ppid \"$tracer\" | tr -d ' ')",
                    'kill -USR2 "$coturn"; sleep 1',
                    'kill -TERM "$coturn"',
                    'wait "$tracer" || true',
                    "",
                ].join("\n"),
                { netns: true },
            );
        } finally {
            // Back as the unit runs it, for the steps below.
            await sandbox.run("systemctl start coturn.service\n", { netns: true });
        }
        assert.ok(sandbox.coturnPid());
        // From coturn's own execve on (systemd applies the filter just before it): every call, its name and result.
        const lines = fs.readFileSync(trace, "utf8").split("\n");
        fs.rmSync(trace);
        const start = lines.findIndex((l) => /execve\("\/usr\/bin\/turnserver"/.test(l) && / = 0$/.test(l));
        assert.ok(start >= 0, "no execve of turnserver in the trace");
        const calls = lines.slice(start + 1).flatMap((l) => {
            const m = /^\d+\s+([a-z0-9_]+)\(.*\) += (.*)$/.exec(l) ?? /^\d+\s+<\.\.\. ([a-z0-9_]+) resumed>.*\) += (.*)$/.exec(l);
            return m ? [{ name: m[1], result: m[2] }] : [];
        });
        const used = new Set(calls.map((x) => x.name));
        assert.ok(used.has("bind") && (used.has("recvmsg") || used.has("recvfrom")), [...used].join(" "));
        // Outside the filter, a call fails with EPERM (SystemCallErrorNumber=EPERM): harmless only where the kernel already refused it so.
        const refused = [...used].filter((n) => !allowed.has(n)).sort();
        const changed = refused.filter((n) => calls.some((x) => x.name === n && !/^-1 EPERM\b/.test(x.result)));
        assert.deepEqual(changed, [], `coturn calls outside the filter that succeed today: ${changed.join(" ")}`);
        // coturn, already running as turnserver, tries to drop supplementary groups; unprivileged, the kernel refuses it anyway.
        assert.deepEqual(
            refused,
            ["setgroups"].filter((n) => used.has(n)),
        );
    });

    it("taken away (TurnRemoval's steps): Synapse restarts without TURN and hands out no credentials; coturn stops, its files and firewall opening go; a second run changes nothing", async function () {
        sandbox.reset();
        const synapseOut = await sandbox.run(turnSynapseRemovalScript(settings));
        const turnFiles = turnSynapseFiles(settings.paths);
        assert.ok(!fs.existsSync(turnFiles.fragment), "Synapse's TURN options are still there");
        assert.ok(!fs.existsSync(turnFiles.secret), "Synapse's copy of the secret is still there");
        assert.match(synapseOut, /removed .*45-turn\.yaml/);
        assert.ok(sandbox.calls().includes("restart matrix-synapse.service"), sandbox.calls().join("\n"));
        // The restart the step asked for, done to the test's own Synapse: it starts without TURN and gives clients nothing.
        await synapse!.stop();
        await startTestSynapse();
        const r = await fetch(`${baseUrl}/_matrix/client/v3/voip/turnServer`, { headers: { authorization: `Bearer ${accessToken}` } });
        assert.equal(r.status, 200);
        assert.deepEqual(await r.json(), {});

        assert.ok(sandbox.coturnPid() !== undefined);
        sandbox.reset();
        const out = await sandbox.run(turnRemovalScript("test"), { netns: true });
        assert.equal(sandbox.coturnPid(), undefined, "coturn still runs");
        assert.deepEqual(
            sandbox.calls().filter((c) => /coturn|daemon-reload/.test(c)),
            ["disable coturn.service", "stop coturn.service", "daemon-reload"],
        );
        for (const p of [TURN_FILES.dir, TURN_FILES.dropIn, TURN_FILES.certificateHook, firewallFragmentPath(turnFirewallOwner("test"))])
            assert.ok(!fs.existsSync(sandbox.hostPath(p)), `${p} is still there`);
        assert.ok(!fs.existsSync(path.join(sandbox.hostPath(WRITTEN_DIR), "records", TURN_FILES.readable)), "the drift record still lists coturn's config");
        assert.match(out, /stopped coturn/);

        sandbox.reset();
        const again = (await sandbox.run(turnSynapseRemovalScript(settings))) + (await sandbox.run(turnRemovalScript("test"), { netns: true }));
        assert.doesNotMatch(again, /removed |stopped |restarting |reloaded/);
        assert.deepEqual(sandbox.calls(), []);
    });

    it("the drop-in's sandbox: systemd-analyze security rates Debian's coturn.service with it at most 2.0 (without: 9.0, UNSAFE); systemd-analyze verify finds nothing wrong", async function () {
        const root = makeTempDir("coturn-security");
        const unit = "/lib/systemd/system/coturn.service";
        fs.mkdirSync(path.join(root, path.dirname(unit)), { recursive: true });
        fs.copyFileSync(unit, path.join(root, unit));
        fs.mkdirSync(path.join(root, path.dirname(TURN_FILES.dropIn)), { recursive: true });
        fs.writeFileSync(path.join(root, TURN_FILES.dropIn), renderCoturnDropIn(TURN_FILES.conf));
        const r = await run("systemd-analyze", ["security", "--offline=true", `--root=${root}`, "--no-pager", "coturn.service"], { allowFailure: true });
        const exposure = /Overall exposure level for coturn\.service: (\d+\.\d+)/.exec(r.stdout + r.stderr)?.[1];
        assert.ok(exposure !== undefined, r.stdout + r.stderr);
        assert.ok(Number(exposure) <= 2.0, `exposure ${exposure}:\n${r.stdout}`);
        // Every directive of the drop-in is one this systemd knows (verify names an unknown key, a bad value, a missing binary).
        const units = makeTempDir("coturn-verify");
        fs.copyFileSync(unit, path.join(units, "coturn.service"));
        fs.mkdirSync(path.join(units, "coturn.service.d"));
        fs.writeFileSync(path.join(units, "coturn.service.d", "pulumi-matrix.conf"), renderCoturnDropIn(TURN_FILES.conf));
        const v = await run("systemd-analyze", ["verify", path.join(units, "coturn.service")], {
            allowFailure: true,
            env: { ...process.env, SYSTEMD_UNIT_PATH: `${units}:` },
        });
        assert.equal(v.code, 0, v.stdout + v.stderr);
        assert.equal((v.stdout + v.stderr).trim(), "");
    });

    it("left this machine's own coturn files alone", function () {
        assert.equal(fs.existsSync("/etc/default/coturn") ? fs.readFileSync("/etc/default/coturn", "utf8") : undefined, defaultsBefore);
        assert.ok(!fs.existsSync("/etc/coturn/pulumi-matrix"));
    });
});
