import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { BlockList } from "node:net";

import * as pulumi from "@pulumi/pulumi";

import { Host } from "../../components/Host";
import { MatrixStack } from "../../components/MatrixStack";
import { ReverseProxy } from "../../components/ReverseProxy";
import { SynapseHomeserver } from "../../components/SynapseHomeserver";
import { TurnRemoval } from "../../components/TurnRemoval";
import { TurnServer, TurnServerArgs } from "../../components/TurnServer";
import { ConfigError, ConfigErrors } from "../../src/model/errors";
import { resolveReverseProxySettings } from "../../src/model/proxy";
import { resolveAcmeSettings } from "../../src/model/proxy/acme";
import { DEFAULT_SYNAPSE_PATHS, resolveSynapseSettings } from "../../src/model/synapse";
import { DENIED_PEER_RANGES, resolveTurnSettings, TURN_FILES, turnFirewallRules, TurnOptions, turnPortClaims, turnUris } from "../../src/model/turn";
import { certificateScript } from "../../src/provision/proxy";
import {
    turnCertificateScript,
    turnRemovalScript,
    turnSecretScript,
    turnServerScript,
    turnSynapseConfigScript,
    turnSynapseRemovalScript,
    turnSynapseSecretScript,
} from "../../src/provision/turn";
import {
    cidrToRange,
    renderCoturnCertificateHook,
    renderCoturnConf,
    renderCoturnDropIn,
    renderCoturnSecretConf,
    renderTurnSynapseYaml,
} from "../../src/render/turn";
import { golden } from "../support/golden";
import { stackArgs, TEST_HOST_KEY, TEST_SSH_KEY } from "../support/unit/fixtures";
import { goldenSynapseSettings } from "../support/unit/fixtures";
import { RecordingMocks, runWithMocks, valueOf } from "../support/unit/mocks";

const C = 'TurnServer "turn"';
const ACME = resolveAcmeSettings(C, { email: "admin@example.com" });
/** `tls`: with a certificate from the proxy's CA (coturn's own lineage). */
const resolve = (o: Partial<TurnOptions> = {}, tls = false) => resolveTurnSettings(C, { domain: "turn.example.com", ...o }, tls ? { acme: ACME } : undefined);

/** The error names the component, the setting, the value and what is valid. */
function rejects(f: () => unknown, message: RegExp): void {
    assert.throws(f, (e: Error) => {
        assert.ok(e instanceof ConfigError || e instanceof ConfigErrors, `${e.name}: ${e.message}`);
        assert.match(e.message, /^TurnServer "turn": /);
        assert.match(e.message, message);
        return true;
    });
}

/**
 * The denied-peer list of ../shared/REFERENCE.md ("TURN"), written out here
 * independently of the library's table: each network with its first and
 * last address.
 */
const REFERENCE_DENIED: [string, string, string][] = [
    // IPv4 private
    ["10.0.0.0/8", "10.0.0.0", "10.255.255.255"],
    ["172.16.0.0/12", "172.16.0.0", "172.31.255.255"],
    ["192.168.0.0/16", "192.168.0.0", "192.168.255.255"],
    // CGNAT
    ["100.64.0.0/10", "100.64.0.0", "100.127.255.255"],
    // loopback, link-local
    ["127.0.0.0/8", "127.0.0.0", "127.255.255.255"],
    ["169.254.0.0/16", "169.254.0.0", "169.254.255.255"],
    // benchmark, documentation
    ["198.18.0.0/15", "198.18.0.0", "198.19.255.255"],
    ["192.0.2.0/24", "192.0.2.0", "192.0.2.255"],
    ["198.51.100.0/24", "198.51.100.0", "198.51.100.255"],
    ["203.0.113.0/24", "203.0.113.0", "203.0.113.255"],
    // multicast, reserved, "this network", IETF assignments, 6to4 anycast
    ["224.0.0.0/4", "224.0.0.0", "239.255.255.255"],
    ["240.0.0.0/4", "240.0.0.0", "255.255.255.255"],
    ["0.0.0.0/8", "0.0.0.0", "0.255.255.255"],
    ["192.0.0.0/24", "192.0.0.0", "192.0.0.255"],
    ["192.88.99.0/24", "192.88.99.0", "192.88.99.255"],
    // IPv6
    ["::1/128", "::1", "::1"],
    ["64:ff9b::/96", "64:ff9b::", "64:ff9b::ffff:ffff"],
    ["::ffff:0:0/96", "::ffff:0.0.0.0", "::ffff:255.255.255.255"],
    ["100::/64", "100::", "100::ffff:ffff:ffff:ffff"],
    ["2001::/32", "2001::", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff"],
    ["2002::/16", "2002::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
    ["fc00::/7", "fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
    ["fe80::/10", "fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
];

/** The rendered config's `key=value` lines for one key. */
function values(conf: string, key: string): string[] {
    return conf
        .split("\n")
        .filter((l) => l.startsWith(`${key}=`))
        .map((l) => l.slice(key.length + 1));
}

/**
 * coturn's denied-peer-ip lines (`a` or `a-b`) as block lists, one per
 * family: node's BlockList would match every IPv4 address against the
 * IPv4-mapped IPv6 range, so the families are kept apart.
 */
function deniedList(conf: string): { check(address: string, family: "ipv4" | "ipv6"): boolean } {
    const lists = { ipv4: new BlockList(), ipv6: new BlockList() };
    for (const v of values(conf, "denied-peer-ip")) {
        const [first, last] = v.split("-");
        const family = first.includes(":") ? "ipv6" : "ipv4";
        if (last === undefined) lists[family].addAddress(first, family);
        else lists[family].addRange(first, last, family);
    }
    return { check: (address, family) => lists[family].check(address, family) };
}

describe("TurnServer: settings", () => {
    it("fills the defaults: 3478 and 5349, relays on 49152-65535, quotas 12/1200, 1h credentials, no guests, realm = domain", () => {
        const s = resolve();
        assert.equal(s.realm, "turn.example.com");
        assert.equal(s.port, 3478);
        assert.equal(s.tlsPort, 5349);
        assert.deepEqual(s.relayPorts, { min: 49152, max: 65535 });
        assert.equal(s.userQuota, 12);
        assert.equal(s.totalQuota, 1200);
        assert.equal(s.userLifetime, "1h");
        assert.equal(s.allowGuests, false);
        assert.equal(s.tls, undefined);
        assert.deepEqual(s.listeningIps, []);
    });

    it("refuses each bad input with setting, value and what is valid", () => {
        rejects(() => resolve({ externalIp: "2001:db8::10" }), /externalIp is "2001:db8::10"; expected an IPv4 address such as 203\.0\.113\.10/);
        rejects(() => resolve({ externalIp: "turn.example.com" }), /externalIp is "turn\.example\.com"; expected the host's public IPv4 address/);
        rejects(() => resolve({ relayIp: "fd00::5" }), /relayIp is "fd00::5"; expected an IPv4 address/);
        rejects(() => resolve({ relayPorts: { min: 80, max: 2000 } }), /relayPorts\.min is 80; expected a whole number from 1024 to 65535/);
        rejects(() => resolve({ relayPorts: { min: 50000, max: 70000 } }), /relayPorts\.max is 70000; expected a whole number from 1024 to 65535/);
        rejects(() => resolve({ relayPorts: { min: 60000, max: 50000 } }), /relayPorts is \{"min":60000,"max":50000\}; expected min <= max/);
        rejects(
            () => resolve({ relayPorts: { min: 3000, max: 4000 } }),
            /relayPorts is \{"min":3000,"max":4000\}; expected a range without coturn's own port 3478/,
        );
        rejects(
            () => resolve({ relayPorts: { min: 5000, max: 6000 } }, true),
            /relayPorts is \{"min":5000,"max":6000\}; expected a range without coturn's own tlsPort 5349/,
        );
        rejects(() => resolve({ domain: "turn" }), /domain is "turn"; expected the DNS name clients dial/);
        rejects(() => resolve({ domain: "203.0.113.10" }), /domain is "203\.0\.113\.10"; expected the DNS name/);
        rejects(() => resolve({ realm: "not a realm" }), /realm is "not a realm"; expected a DNS name/);
        rejects(() => resolve({ port: 0 }), /port is 0; expected a whole number from 1 to 65535/);
        rejects(() => resolve({ tlsPort: 3478 }, true), /tlsPort is 3478; expected a port other than port \(3478\)/);
        rejects(() => resolve({ listeningIps: ["0.0.0.0"] }), /listeningIps is "0\.0\.0\.0"; expected specific IP addresses/);
        rejects(() => resolve({ allowedPeerIps: ["10.0.0.0/8"] }), /allowedPeerIps is "10\.0\.0\.0\/8"; expected single IP addresses/);
        rejects(() => resolve({ userQuota: 0 }), /userQuota is 0; expected a whole number from 1/);
        rejects(() => resolve({ userQuota: 50, totalQuota: 10 }), /userQuota is 50; expected at most totalQuota \(10\)/);
        rejects(() => resolve({ userLifetime: "1 hour" }), /userLifetime is "1 hour"; expected a duration such as 1h/);
        rejects(() => resolve({ maxBps: -1 }), /maxBps is -1; expected a whole number of bytes per second, such as 1000000 \(8 Mbit\/s\), or 0 for no limit/);
        rejects(() => resolve({ bpsCapacity: 1.5 }), /bpsCapacity is 1\.5; expected a whole number of bytes per second/);
    });

    it("reports every problem at once", () => {
        assert.throws(
            () => resolve({ externalIp: "::1", relayPorts: { min: 9, max: 8 }, userLifetime: "x" }),
            (e: Error) => e instanceof ConfigErrors && e.errors.length === 4,
        );
    });

    it("claims and opens the listening ports on UDP and TCP, TLS/DTLS only with a certificate, and the relay range on UDP", () => {
        assert.deepEqual(
            turnFirewallRules(resolve()).map((r) => `${r.protocol} ${r.port}${r.toPort ? `-${r.toPort}` : ""}`),
            ["udp 3478", "tcp 3478", "udp 49152-65535"],
        );
        const tls = resolve({ relayPorts: { min: 40000, max: 40999 }, listeningIps: ["203.0.113.10"] }, true);
        assert.deepEqual(
            turnFirewallRules(tls).map((r) => `${r.protocol} ${r.port}${r.toPort ? `-${r.toPort}` : ""}`),
            ["udp 3478", "tcp 3478", "udp 5349", "tcp 5349", "udp 40000-40999"],
        );
        assert.deepEqual(
            turnPortClaims(tls).map((c) => `${c.protocol} ${c.address}:${c.port}${c.toPort ? `-${c.toPort}` : ""}`),
            ["udp 203.0.113.10:3478", "tcp 203.0.113.10:3478", "udp 203.0.113.10:5349", "tcp 203.0.113.10:5349", "udp *:40000-40999"],
        );
        assert.ok(turnPortClaims(resolve()).every((c) => c.address === "*"));
    });

    it("gives Synapse turn: URIs for UDP and TCP, turns: on the TLS port with a certificate, the port only when it is not 3478", () => {
        assert.deepEqual(turnUris(resolve()), ["turn:turn.example.com?transport=udp", "turn:turn.example.com?transport=tcp"]);
        assert.deepEqual(turnUris(resolve({}, true)), [
            "turn:turn.example.com?transport=udp",
            "turn:turn.example.com?transport=tcp",
            "turns:turn.example.com:5349?transport=tcp",
        ]);
        assert.deepEqual(turnUris(resolve({ port: 3479, tlsPort: 443 }, true)), [
            "turn:turn.example.com:3479?transport=udp",
            "turn:turn.example.com:3479?transport=tcp",
            "turns:turn.example.com:443?transport=tcp",
        ]);
    });
});

describe("TurnServer: rendered files", () => {
    const tls = resolve({ relayIp: "10.0.0.5", externalIp: "203.0.113.10", allowedPeerIps: ["10.0.0.7"] }, true);
    const conf = renderCoturnConf(tls, TURN_FILES);

    it("denies every range of REFERENCE's denied-peer list, and nothing on the public internet", () => {
        const denied = deniedList(conf);
        for (const [cidr, first, last] of REFERENCE_DENIED) {
            const family = first.includes(":") ? "ipv6" : "ipv4";
            // The table is right about its own networks...
            const ref = new BlockList();
            ref.addSubnet(cidr.split("/")[0], Number(cidr.split("/")[1]), family);
            assert.ok(ref.check(first, family) && ref.check(last, family), `${cidr}: ${first} and ${last} are in it`);
            // ... and the rendered config denies all of each.
            assert.ok(denied.check(first, family), `${cidr}: ${first} is not denied`);
            assert.ok(denied.check(last, family), `${cidr}: ${last} is not denied`);
        }
        for (const [a, family] of [
            ["8.8.8.8", "ipv4"],
            ["1.1.1.1", "ipv4"],
            ["100.128.0.1", "ipv4"],
            ["172.32.0.1", "ipv4"],
            ["2606:4700::1111", "ipv6"],
            ["2a00:1450::1", "ipv6"],
        ] as const)
            assert.ok(!denied.check(a, family), `${a} (public) is denied`);
    });

    it("writes each range as coturn takes it (first-last), one table entry per line with its reason", () => {
        // Every range, and the server's own public address (externalIp).
        assert.equal(values(conf, "denied-peer-ip").length, DENIED_PEER_RANGES.length + 1);
        assert.equal(cidrToRange("10.0.0.0/8"), "10.0.0.0-10.255.255.255");
        assert.equal(cidrToRange("::1/128"), "::1");
        assert.equal(cidrToRange("fe80::/10"), "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
        assert.equal(cidrToRange("::ffff:0:0/96"), "::ffff:0:0-::ffff:ffff:ffff");
        assert.equal(cidrToRange("2001::/32"), "2001::-2001:0:ffff:ffff:ffff:ffff:ffff:ffff");
        assert.match(conf, /^# 169\.254\.0\.0\/16: link-local \(cloud metadata services\)\ndenied-peer-ip=169\.254\.0\.0-169\.254\.255\.255$/m);
    });

    it("refuses relays to the server's own public addresses (externalIp, public listeningIps) unless allowedPeerIps lists them", () => {
        assert.deepEqual(values(conf, "denied-peer-ip").slice(DENIED_PEER_RANGES.length), ["203.0.113.10"]);
        const own = renderCoturnConf(
            resolve({ listeningIps: ["8.8.4.4", "2a00:1450::5", "10.1.2.3"], externalIp: "9.9.9.9", relayIp: "10.1.2.3" }),
            TURN_FILES,
        );
        assert.deepEqual(values(own, "denied-peer-ip").slice(DENIED_PEER_RANGES.length), ["8.8.4.4", "2a00:1450::5", "9.9.9.9"]);
        assert.deepEqual(values(own, "allowed-peer-ip"), ["10.1.2.3"]);
        const optedIn = renderCoturnConf(resolve({ externalIp: "9.9.9.9", allowedPeerIps: ["9.9.9.9"] }), TURN_FILES);
        assert.deepEqual(values(optedIn, "denied-peer-ip").length, DENIED_PEER_RANGES.length);
        assert.deepEqual(values(optedIn, "allowed-peer-ip"), ["9.9.9.9"]);
    });

    it("TLS 1.2 and 1.3 only, with Mozilla's intermediate TLS 1.2 ciphers; a bandwidth limit per session (max-bps), and one for the server when set", () => {
        assert.deepEqual(values(conf, "cipher-list"), [
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
        ]);
        for (const f of ["no-tlsv1", "no-tlsv1_1"]) assert.match(conf, new RegExp(`^${f}$`, "m"));
        assert.deepEqual(values(conf, "max-bps"), ["1000000"]);
        assert.deepEqual(values(conf, "bps-capacity"), []);
        const limited = renderCoturnConf(resolve({ maxBps: 0, bpsCapacity: 50_000_000 }), TURN_FILES);
        assert.deepEqual(values(limited, "max-bps"), []);
        assert.deepEqual(values(limited, "bps-capacity"), ["50000000"]);
        // Without TLS there is no cipher list to set.
        assert.deepEqual(values(renderCoturnConf(resolve(), TURN_FILES), "cipher-list"), []);
    });

    it("allows the server's own private addresses and allowedPeerIps, after the denied list", () => {
        assert.deepEqual(values(conf, "allowed-peer-ip"), ["10.0.0.5", "10.0.0.7"]);
        assert.ok(conf.lastIndexOf("denied-peer-ip=") < conf.indexOf("allowed-peer-ip="));
        assert.deepEqual(values(renderCoturnConf(resolve({ listeningIps: ["192.168.1.5"] }), TURN_FILES), "allowed-peer-ip"), ["192.168.1.5"]);
        assert.deepEqual(values(renderCoturnConf(resolve(), TURN_FILES), "allowed-peer-ip"), []);
    });

    it("has the hardening of REFERENCE: REST-API secret auth, realm, UDP relays only, no multicast peers, quotas, no CLI, no admin, journal logs", () => {
        const flags = conf.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
        for (const f of [
            "use-auth-secret",
            "realm=turn.example.com",
            "no-tcp-relay",
            "no-multicast-peers",
            "user-quota=12",
            "total-quota=1200",
            "no-cli",
            "log-file=stdout",
            "listening-port=3478",
            "tls-listening-port=5349",
            "min-port=49152",
            "max-port=65535",
            "relay-ip=10.0.0.5",
            "external-ip=203.0.113.10/10.0.0.5",
            `cert=${TURN_FILES.tlsDir}/fullchain.pem`,
            `pkey=${TURN_FILES.tlsDir}/privkey.pem`,
        ])
            assert.ok(flags.includes(f), `missing ${f}`);
        for (const f of ["web-admin", "prometheus", "syslog", "no-stdout-log", "allow-loopback-peers", "lt-cred-mech", "no-tls", "no-dtls"])
            assert.ok(!flags.some((l) => l === f || l.startsWith(`${f}=`)), `has ${f}`);
        assert.ok(!flags.some((l) => l.startsWith("static-auth-secret")), "the readable part has the secret line");
        assert.ok(conf.endsWith("\n"), "the secret line appended on the host starts a line");
        const plain = renderCoturnConf(resolve({ externalIp: "203.0.113.10" }), TURN_FILES);
        assert.deepEqual(values(plain, "external-ip"), ["203.0.113.10"]);
        for (const f of ["no-tls", "no-dtls"]) assert.match(plain, new RegExp(`^${f}$`, "m"));
        assert.doesNotMatch(plain, /^(cert|pkey|tls-listening-port)=/m);
    });

    it("the secret line, the drop-in, the certificate hook and Synapse's fragment", () => {
        assert.equal(renderCoturnSecretConf("A".repeat(48)), `static-auth-secret=${"A".repeat(48)}\n`);
        assert.throws(() => renderCoturnSecretConf("a b"), /16 to 512 letters/);
        const dropIn = renderCoturnDropIn(TURN_FILES.conf);
        assert.match(dropIn, /^ExecStart=\nExecStart=\/usr\/bin\/turnserver -c \/etc\/coturn\/pulumi-matrix\/turnserver\.conf --pidfile=$/m);
        assert.match(dropIn, /^ExecReload=\/bin\/kill -USR2 \$MAINPID$/m);
        // In the foreground as turnserver, whatever unit the package ships; low ports only when configured.
        for (const line of ["Type=simple", "PIDFile=", "User=turnserver", "Group=turnserver", "Restart=on-failure"])
            assert.match(dropIn, new RegExp(`^${line}$`, "m"));
        assert.match(dropIn, /^AmbientCapabilities=$/m);
        assert.match(dropIn, /^CapabilityBoundingSet=$/m);
        assert.match(turnServerScript(resolve({ tlsPort: 443 }, true), "turn"), /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m);
        const hook = renderCoturnCertificateHook("/etc/letsencrypt/live/matrix.example.com", TURN_FILES.tlsDir);
        assert.match(hook, /^\[ "\$\{RENEWED_LINEAGE:-\}" = \/etc\/letsencrypt\/live\/matrix\.example\.com \] \|\| exit 0$/m);
        assert.match(hook, /copy \/etc\/letsencrypt\/live\/matrix\.example\.com\/privkey\.pem \/etc\/coturn\/pulumi-matrix\/tls\/privkey\.pem 0600/);
        assert.match(hook, /systemctl reload coturn\.service/);
        execFileSync("sh", ["-n"], { input: hook });
        assert.equal(
            renderTurnSynapseYaml(tls, DEFAULT_SYNAPSE_PATHS).replace(/^#.*\n/gm, ""),
            [
                "turn_uris:",
                "  - turn:turn.example.com?transport=udp",
                "  - turn:turn.example.com?transport=tcp",
                "  - turns:turn.example.com:5349?transport=tcp",
                "turn_shared_secret_path: /etc/matrix-synapse/secrets/turn_shared_secret",
                "turn_user_lifetime: 1h",
                "turn_allow_guests: false",
                "",
            ].join("\n"),
        );
    });

    it("renders byte-identical output for the same settings", () => {
        assert.equal(renderCoturnConf(tls, TURN_FILES), conf);
        assert.equal(turnServerScript(tls, "turn"), turnServerScript(tls, "turn"));
    });
});

describe("TurnServer: scripts", () => {
    const s = resolve({}, true);
    const synapse = resolveSynapseSettings("s", { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/" });
    const SECRET = "SECRETturnsharedsecret0123456789";

    it("the certificate step gets coturn's own lineage (the TURN name alone) from the proxy's CA, HTTP-01 or DNS-01, and hands a new one to coturn's hook", () => {
        const cert = turnCertificateScript(s);
        assert.match(
            cert,
            / --webroot -w \/var\/www\/pulumi-matrix-acme --cert-name coturn-turn\.example\.com -d turn\.example\.com --key-type ecdsa --no-directory-hooks "\$pm_when"/,
        );
        assert.match(cert, /cat \/var\/lib\/pulumi-matrix\/acme-request-coturn/);
        assert.match(cert, /^ {4}RENEWED_LINEAGE=\/etc\/letsencrypt\/live\/coturn-turn\.example\.com \/etc\/pulumi-matrix\/certificate-hooks\.d\/coturn$/m);
        // Never the web lineage, never its names.
        assert.doesNotMatch(cert, /matrix\.example\.com/);
        const dns = turnCertificateScript(
            resolveTurnSettings(
                C,
                { domain: "turn.example.com" },
                { acme: resolveAcmeSettings(C, { email: "admin@example.com", challenge: "dns-01-cloudflare" }) },
            ),
        );
        assert.match(
            dns,
            / --dns-cloudflare --dns-cloudflare-credentials \/etc\/pulumi-matrix\/acme-cloudflare\.ini --dns-cloudflare-propagation-seconds 30 --cert-name coturn-turn\.example\.com -d turn\.example\.com /,
        );
        assert.throws(() => turnCertificateScript(resolve()), /TLS is off/);
        // The hook copies coturn's lineage only.
        assert.match(
            renderCoturnCertificateHook(s.tls!.liveDir, TURN_FILES.tlsDir),
            /^\[ "\$\{RENEWED_LINEAGE:-\}" = \/etc\/letsencrypt\/live\/coturn-turn\.example\.com \] \|\| exit 0$/m,
        );
    });

    it("the web certificate step reloads nginx alone: it never runs the services' hooks, so a hook an earlier release left for the web lineage cannot copy the web key", () => {
        const proxy = resolveReverseProxySettings(
            "p",
            { acme: { email: "admin@example.com" } },
            { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", maxUploadSize: "50M" },
        );
        const web = certificateScript(proxy);
        assert.match(web, / --cert-name matrix\.example\.com -d matrix\.example\.com --key-type/);
        // The deploy hook is written (for certbot's renewals), never run by the step.
        assert.doesNotMatch(web, /^\s*RENEWED_LINEAGE=\S+ \/|^\s*\/etc\/letsencrypt\/renewal-hooks\/deploy\/pulumi-matrix$/m);
        assert.match(web, /^ {4}systemctl reload nginx\.service$/m);
    });

    it("the drop-in sandboxes coturn: no capability, no new privileges, read-only system but its database, system calls and address families of a network service", () => {
        const dropIn = renderCoturnDropIn(TURN_FILES.conf);
        for (const line of [
            "CapabilityBoundingSet=",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ReadWritePaths=/var/lib/turn",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "PrivateDevices=yes",
            "ProtectKernelTunables=yes",
            "ProtectControlGroups=yes",
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
            "RestrictNamespaces=yes",
            "MemoryDenyWriteExecute=yes",
            "SystemCallArchitectures=native",
            "SystemCallFilter=@system-service",
            "SystemCallFilter=~@privileged",
        ])
            assert.match(dropIn, new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`, "m"), line);
        const low = renderCoturnDropIn(TURN_FILES.conf, true);
        assert.match(low, /^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
        assert.match(low, /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m);
    });

    it("the server step installs, enables and health-checks coturn, sets TURNSERVER_ENABLED, opens the firewall, and carries no secret", () => {
        const server = turnServerScript(s, "turn");
        assert.match(server, /^pm_apt_install coturn$/m);
        assert.match(server, /TURNSERVER_ENABLED=1/);
        assert.match(server, /systemctl enable -q coturn\.service/);
        assert.match(server, /timeout 2 turnutils_stunclient -p 3478 127\.0\.0\.1/);
        assert.match(server, /add rule inet pulumi_matrix input udp dport 49152-65535 accept comment "coturn relay"/);
        assert.match(server, /add rule inet pulumi_matrix input tcp dport 5349 accept comment "coturn TLS\/DTLS"/);
        assert.match(server, /RENEWED_LINEAGE=\/etc\/letsencrypt\/live\/coturn-turn\.example\.com \/etc\/pulumi-matrix\/certificate-hooks\.d\/coturn/);
        // The file coturn reads is put together on the host; the readable step never has the secret.
        assert.match(
            server,
            /cat \/etc\/coturn\/pulumi-matrix\/readable\.conf \/etc\/coturn\/pulumi-matrix\/secret\.conf \| pm_write coturn-assembled \S+ 0640 root turnserver secret/,
        );
        assert.doesNotMatch(server, /static-auth-secret=/);
        // Without a certificate: no hook, and coturn's old copy goes.
        const plain = turnServerScript(resolve(), "turn");
        assert.doesNotMatch(plain, /certificate-hooks\.d\/coturn <</);
        assert.match(plain, /rm -rf \/etc\/coturn\/pulumi-matrix\/tls/);
        // ... and so does its certificate lineage, where this library asked for one.
        for (const script of [plain, turnRemovalScript("turn")]) {
            assert.match(script, /^if \[ -e \/var\/lib\/pulumi-matrix\/acme-request-coturn \]; then$/m);
            assert.match(script, /for pm_conf in \/etc\/letsencrypt\/renewal\/coturn-\*\.conf; do/);
            assert.match(script, /certbot delete --non-interactive --cert-name "\$pm_lineage"/);
        }
        assert.doesNotMatch(turnServerScript(s, "turn"), /certbot delete/);
    });

    it("the secret steps keep the secret in root's and Synapse's files, recorded as digests only", () => {
        const secret = turnSecretScript(s, SECRET);
        assert.match(
            secret,
            new RegExp(`pm_write coturn-secret /etc/coturn/pulumi-matrix/secret\\.conf 0600 root root secret <<'PM_EOF'\\nstatic-auth-secret=${SECRET}\\n`),
        );
        const synapseSecret = turnSynapseSecretScript(synapse, SECRET);
        assert.match(
            synapseSecret,
            new RegExp(`pm_write turn-synapse-secret /etc/matrix-synapse/secrets/turn_shared_secret 0640 root matrix-synapse secret <<'PM_EOF'\\n${SECRET}\\n`),
        );
        const config = turnSynapseConfigScript(synapse, s);
        assert.match(config, /pm_write turn-synapse-config \/etc\/matrix-synapse\/conf\.d\/45-turn\.yaml 0640 root matrix-synapse readable/);
        assert.match(config, /systemctl restart matrix-synapse\.service/);
        assert.doesNotMatch(config, new RegExp(SECRET));
        for (const t of [turnServerScript(s, "turn"), secret, synapseSecret, config]) execFileSync("bash", ["-n"], { input: t });
    });

    it("the removal steps prune every file set TURN's steps write, by the same names, and stop and disable coturn first", () => {
        const sets = (t: string, verb: string) => [...t.matchAll(new RegExp(`^\\s*${verb} (\\S+)`, "gm"))].map((m) => m[1]);
        const written = [turnServerScript(s, "turn"), turnSecretScript(s, SECRET)].flatMap((t) => sets(t, "pm_write"));
        const synapseWritten = [turnSynapseSecretScript(synapse, SECRET), turnSynapseConfigScript(synapse, s)].flatMap((t) => sets(t, "pm_write"));
        const removal = turnRemovalScript("turn");
        const synapseRemoval = turnSynapseRemovalScript(synapse);
        // The firewall fragment is written by pm_write too, under the component's name.
        assert.ok(written.includes("firewall-coturnserver-turn"), written.join(" "));
        for (const set of new Set(written)) assert.ok(sets(removal, "pm_prune").includes(set), `coturn's removal does not prune ${set}`);
        for (const set of new Set(synapseWritten)) assert.ok(sets(synapseRemoval, "pm_prune").includes(set), `Synapse's removal does not prune ${set}`);
        assert.deepEqual(sets(removal, "pm_write"), []);
        assert.deepEqual(sets(synapseRemoval, "pm_write"), []);
        // coturn stops before its files go; the firewall reloads once its fragment is gone; Synapse restarts without its TURN options.
        assert.ok(removal.indexOf("systemctl stop coturn.service") < removal.indexOf("pm_prune coturn-config"));
        assert.match(removal, /systemctl disable -q coturn\.service/);
        assert.match(removal, /rm -rf -- \/etc\/coturn\/pulumi-matrix;/);
        assert.match(removal, /systemctl reload pulumi-matrix-firewall\.service/);
        assert.match(synapseRemoval, /if pm_changed turn-synapse-config; then\n[^]*systemctl restart matrix-synapse\.service/);
        for (const t of [removal, synapseRemoval]) execFileSync("bash", ["-n"], { input: t });
    });
});

describe("TurnServer as a component", () => {
    const stack = (o: Partial<TurnServerArgs> & { proxy?: boolean; certificateNames?: string[] } = {}) => {
        const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
        const synapse = new SynapseHomeserver("synapse", { host, serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", sqlite: {} });
        const { proxy, certificateNames, ...args } = o;
        const certificate = proxy
            ? new ReverseProxy("proxy", {
                  synapse,
                  acme: { email: "admin@example.com" },
                  ...(certificateNames ? { extraCertificateNames: certificateNames } : {}),
              })
            : undefined;
        const turn = new TurnServer("turn", { synapse, domain: "turn.example.com", ...(certificate ? { certificate } : {}), ...args });
        return { host, synapse, turn };
    };
    const commands = (mocks: RecordingMocks) => mocks.resources.filter((r) => r.type === "command:remote:Command");

    it("runs its steps after the host bootstrap and after Synapse; secrets only in secret commands", async () => {
        const { mocks, result } = await runWithMocks(
            () => stack({ proxy: true }),
            (r) => [r.turn.uris, r.turn.sharedSecret, r.synapse.signingKeyId],
        );
        const seq = (n: string) => mocks.byName(n).seq;
        const mine = commands(mocks)
            .filter((r) => r.name.startsWith("turn-"))
            .map((r) => r.name);
        assert.deepEqual(mine.sort(), ["turn-certificate", "turn-secrets", "turn-server", "turn-synapse-config", "turn-synapse-secrets"]);
        assert.ok(seq("vm-bootstrap") < seq("turn-server"));
        assert.ok(seq("proxy-certificate") < seq("turn-server"), "TLS: after nginx answers challenges and the web certificate step ran");
        assert.ok(seq("turn-server") < seq("turn-certificate"), "coturn's own certificate after the hook that copies it");
        assert.ok(seq("turn-certificate") < seq("turn-secrets"));
        // coturn's lineage: the TURN name alone; the web lineage does not have it.
        const certificate = String(mocks.byName("turn-certificate").inputs.stdin);
        assert.match(certificate, / --cert-name coturn-turn\.example\.com -d turn\.example\.com --key-type ecdsa /);
        assert.match(certificate, /RENEWED_LINEAGE=\/etc\/letsencrypt\/live\/coturn-turn\.example\.com \/etc\/pulumi-matrix\/certificate-hooks\.d\/coturn/);
        assert.doesNotMatch(String(mocks.byName("proxy-certificate").inputs.stdin), /turn\.example\.com/);
        assert.ok(seq("synapse-config") < seq("turn-synapse-secrets"), "after Synapse is up");
        assert.ok(seq("turn-synapse-secrets") < seq("turn-synapse-config"));
        assert.ok(seq("turn-secrets") < seq("turn-synapse-config"));

        const secret = await valueOf(result.turn.sharedSecret);
        assert.match(secret, /^SECRET/);
        for (const r of commands(mocks)) {
            const stdin = String(r.inputs.stdin);
            const isSecret = r.secretInputs.includes("stdin");
            if (["turn-secrets", "turn-synapse-secrets"].includes(r.name)) {
                assert.ok(isSecret, `${r.name}: stdin is not secret`);
                assert.equal(r.inputs.logging, "none", r.name);
                assert.ok(stdin.includes(secret), `${r.name} does not carry the secret`);
            } else if (!isSecret) {
                assert.ok(!stdin.includes(secret), `${r.name}: the TURN secret in a readable script`);
            }
            // Never on a command line.
            assert.ok(!String(r.inputs.create).includes(secret), `${r.name}: the secret on a command line`);
        }
        assert.deepEqual(await valueOf(result.turn.uris), [
            "turn:turn.example.com?transport=udp",
            "turn:turn.example.com?transport=tcp",
            "turns:turn.example.com:5349?transport=tcp",
        ]);
        assert.match(String(mocks.byName("turn-synapse-config").inputs.stdin), /turns:turn\.example\.com:5349\?transport=tcp/);
        // The shared secret is a secret output of the component.
        assert.equal(await (result.turn.sharedSecret as unknown as { isSecret: Promise<boolean> }).isSecret, true);
    });

    it("claims its ports and its relay range on the host: a clash names both components; UDP ports in the relay range clash, before or after it", async () => {
        await runWithMocks(() => {
            const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const synapse = new SynapseHomeserver("synapse", { host, serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", sqlite: {} });
            host.claimPorts('Other "dns"', [{ port: 50000, protocol: "udp", address: "*", owner: "a UDP service" }]);
            rejects(
                () => new TurnServer("turn", { synapse, domain: "turn.example.com" }),
                /relayPorts is 49152-65535; Other "dns" \(a UDP service\) already uses udp port 50000 on all addresses of Host "vm"; choose a range without it/,
            );
            // A TCP listener in the range does not clash: relays are UDP only.
            host.claimPorts('Other "web"', [{ port: 60000, protocol: "tcp", address: "*", owner: "web" }]);
            new TurnServer("turn2", { synapse, domain: "turn.example.com", relayPorts: { min: 55000, max: 65000 } });
            // Whatever comes later cannot take a UDP port in the relay range either.
            assert.throws(
                () => host.claimPorts('Other "late"', [{ port: 56000, protocol: "udp", address: "127.0.0.1", owner: "late UDP" }]),
                /^ConfigError: Other "late": late UDP port is 56000; TurnServer "turn2" \(coturn relay\) already uses udp ports 55000-65000 on all addresses of Host "vm"; choose another port$/,
            );
            assert.throws(
                () => new TurnServer("turn3", { synapse, domain: "turn.example.com", port: 3478, relayPorts: { min: 40000, max: 40100 } }),
                /TurnServer "turn3": port is 3478; TurnServer "turn2" \(coturn\) already uses udp port 3478/,
            );
        });
    });

    it("TLS needs coturn on the proxy's host", async () => {
        await runWithMocks(() => {
            const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const other = new Host("turnvm", { host: "203.0.113.11", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const synapse = new SynapseHomeserver("synapse", { host, serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", sqlite: {} });
            const certificate = new ReverseProxy("proxy", { synapse, acme: { email: "admin@example.com" } });
            rejects(
                () => new TurnServer("turn", { synapse, host: other, domain: "turn.example.com", certificate }),
                /certificate is "matrix\.example\.com"; the certificate is on the reverse proxy's host \(Synapse's, Host "vm"\), coturn on Host "turnvm"/,
            );
        });
    });

    it("on a host of its own: coturn's steps there, Synapse's on Synapse's host", async () => {
        const { mocks } = await runWithMocks(() => {
            const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const other = new Host("turnvm", { host: "203.0.113.11", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const synapse = new SynapseHomeserver("synapse", { host, serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", sqlite: {} });
            return new TurnServer("turn", { synapse, host: other, domain: "turn.example.com", externalIp: "198.51.100.7" });
        });
        const target = (n: string) => String(mocks.byName(n).inputs.stdin).split("\n")[0];
        assert.equal(target("turn-server"), "# target: root@203.0.113.11:22, host key ssh-ed25519 SHA256:JDIwoXQEmvo8v+gcPbp+Q9pZlOkq5sfKWzKzEGeLjos");
        assert.equal(target("turn-secrets"), "# target: root@203.0.113.11:22, host key ssh-ed25519 SHA256:JDIwoXQEmvo8v+gcPbp+Q9pZlOkq5sfKWzKzEGeLjos");
        assert.equal(target("turn-synapse-secrets"), "# target: root@203.0.113.10:22, host key ssh-ed25519 SHA256:JDIwoXQEmvo8v+gcPbp+Q9pZlOkq5sfKWzKzEGeLjos");
        assert.equal(target("turn-synapse-config"), "# target: root@203.0.113.10:22, host key ssh-ed25519 SHA256:JDIwoXQEmvo8v+gcPbp+Q9pZlOkq5sfKWzKzEGeLjos");
        assert.ok(mocks.byName("turnvm-bootstrap").seq < mocks.byName("turn-server").seq);
        assert.match(String(mocks.byName("turn-server").inputs.stdin), /^external-ip=198\.51\.100\.7$/m);
    });
});

describe("MatrixStack's turn", () => {
    it("gives coturn a certificate of its own (TLS on 5349; the web certificate stays without the TURN domain), runs coturn's steps, and adds its records to the zone", async () => {
        const { mocks, result } = await runWithMocks(
            () =>
                new MatrixStack("prod", {
                    ...stackArgs(),
                    turn: { domain: "turn.example.com" },
                    dns: { zone: { name: "example.com" }, ipv4: "203.0.113.10", delegation: "srv" },
                }),
        );
        assert.deepEqual(result.proxy!.certificateNames, ["matrix.example.com", "example.com"]);
        assert.deepEqual(result.turn!.settings.tls?.liveDir, "/etc/letsencrypt/live/coturn-turn.example.com");
        for (const step of ["prod-turn-server", "prod-turn-certificate", "prod-turn-secrets", "prod-turn-synapse-secrets", "prod-turn-synapse-config"])
            assert.ok(mocks.byName(step), step);
        assert.match(await valueOf(result.zoneFile!), /^_turns\._tcp +300 IN SRV +10 5 5349 turn\.example\.com\. /m);
        assert.equal(result.turnRemoval, undefined);
        assert.ok(!mocks.resources.some((r) => r.name.startsWith("prod-turn-removal")), "a removal beside a TURN server");
    });

    it("without turn, takes away an earlier deployment's: Synapse's step after Synapse and the workers, coturn's after it and the certificate; the fragment is the one TurnServer wrote", async () => {
        const { mocks, result } = await runWithMocks(() => new MatrixStack("prod", stackArgs()));
        assert.ok(result.turnRemoval);
        assert.equal(result.turn, undefined);
        const seq = (n: string) => mocks.byName(n).seq;
        assert.ok(seq("prod-synapse-config") < seq("prod-turn-removal-synapse-config"));
        assert.ok(seq("prod-workers-config") < seq("prod-turn-removal-synapse-config"), "never restarts Synapse's processes at once with the pool");
        assert.ok(seq("prod-turn-removal-synapse-config") < seq("prod-turn-removal-server"), "Synapse stops handing out credentials before coturn stops");
        assert.ok(seq("prod-proxy-certificate") < seq("prod-turn-removal-server"), "the certificate hook goes after the certificate step ran");
        const server = String(mocks.byName("prod-turn-removal-server").inputs.stdin);
        assert.match(server, new RegExp(`pm_prune firewall-coturnserver-prod-turn\n`));
        assert.equal(turnServerScript(resolve(), "prod-turn").includes("pm_write firewall-coturnserver-prod-turn "), true);
        // Nothing secret, nothing that installs.
        for (const n of ["prod-turn-removal-server", "prod-turn-removal-synapse-config"]) {
            assert.ok(!mocks.byName(n).secretInputs.includes("stdin"), n);
            assert.doesNotMatch(String(mocks.byName(n).inputs.stdin), /^\s*(pm_apt_install|pm_write) /m);
        }
    });

    it("TurnRemoval names the TurnServer it takes away", async () => {
        await runWithMocks(() => {
            const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const synapse = new SynapseHomeserver("synapse", { host, serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", sqlite: {} });
            assert.throws(
                () => new TurnRemoval("gone", { synapse, turnName: "" }),
                /^ConfigError: TurnRemoval "gone": turnName is ""; expected the name the removed TurnServer was constructed with$/,
            );
            assert.throws(
                () => new TurnRemoval("both", { synapse, turnName: "a", coturnName: "a" }),
                /^ConfigError: TurnRemoval "both": coturnName is "a"; expected turnName alone: coturnName is its former name; keep turnName$/,
            );
        });
    });

    it("TurnRemoval still takes the former coturnName, and prunes the same firewall fragment", async () => {
        const { mocks } = await runWithMocks(() => {
            const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const synapse = new SynapseHomeserver("synapse", { host, serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", sqlite: {} });
            new TurnRemoval("old", { synapse, coturnName: "prod-turn" });
        });
        assert.match(String(mocks.byName("old-server").inputs.stdin), /pm_prune firewall-coturnserver-prod-turn\n/);
    });

    it("the renamed components alias their former type, so a deployed stack keeps them and their children", async () => {
        const urns = (r: object) => Promise.all(((r as { __aliases: pulumi.Output<string>[] }).__aliases ?? []).map(valueOf));
        const { result } = await runWithMocks(() => {
            const host = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const synapse = new SynapseHomeserver("synapse", { host, serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", sqlite: {} });
            const turn = new TurnServer("turn", { synapse, domain: "turn.example.com" }, { aliases: [{ name: "older" }] });
            const removal = new TurnRemoval("gone", { synapse, turnName: "turn" });
            return { turn, removal };
        });
        const turnAliases = await urns(result.turn);
        assert.ok(turnAliases.includes("urn:pulumi:test::matrix::matrix:index:CoturnServer::turn"), turnAliases.join(", "));
        assert.ok(turnAliases.includes("urn:pulumi:test::matrix::matrix:index:TurnServer::older"), "the caller's own aliases are kept");
        assert.deepEqual(await urns(result.removal), ["urn:pulumi:test::matrix::matrix:index:CoturnRemoval::gone"]);
    });
});

describe("coturn: golden files (update with `npm run golden:update`, review the diff)", () => {
    const turn = () =>
        resolveTurnSettings(
            'TurnServer "golden"',
            { domain: "turn.example.com", relayIp: "10.0.0.5", externalIp: "203.0.113.10", allowedPeerIps: ["10.0.0.7"] },
            { acme: resolveAcmeSettings('TurnServer "golden"', { email: "admin@example.com" }) },
        );
    const plainTurn = () =>
        resolveTurnSettings('TurnServer "golden"', {
            domain: "turn.example.com",
            port: 3479,
            listeningIps: ["203.0.113.10", "2001:db8::10"],
            relayPorts: { min: 40000, max: 49999 },
            userQuota: 4,
            totalQuota: 400,
            userLifetime: "30m",
            allowGuests: true,
        });
    const s = goldenSynapseSettings;
    golden("turn", "readable.conf", () => renderCoturnConf(turn(), TURN_FILES));
    golden("turn", "readable-plain.conf", () => renderCoturnConf(plainTurn(), TURN_FILES));
    golden("turn", "secret.conf", () => renderCoturnSecretConf("turn-shared-secret-placeholder"));
    golden("turn", "coturn.service.d/pulumi-matrix.conf", () => renderCoturnDropIn(TURN_FILES.conf));
    golden("turn", "certificate-hook.sh", () => renderCoturnCertificateHook(turn().tls!.liveDir, TURN_FILES.tlsDir));
    golden("turn", "synapse/45-turn.yaml", () => renderTurnSynapseYaml(turn(), s().paths));
    golden("turn", "synapse/45-turn-plain.yaml", () => renderTurnSynapseYaml(plainTurn(), s().paths));
    golden("turn", "scripts/coturn-server.sh", () => turnServerScript(turn(), "golden"));
    golden("turn", "scripts/coturn-certificate.sh", () => turnCertificateScript(turn()));
    golden("turn", "scripts/coturn-server-plain.sh", () => turnServerScript(plainTurn(), "golden"));
    golden("turn", "scripts/coturn-secret.sh", () => turnSecretScript(turn(), "turn-shared-secret-placeholder"));
    golden("turn", "scripts/turn-synapse-secret.sh", () => turnSynapseSecretScript(s(), "<turn shared secret>"));
    golden("turn", "scripts/turn-synapse-config.sh", () => turnSynapseConfigScript(s(), turn()));
    golden("turn", "scripts/coturn-removal.sh", () => turnRemovalScript("golden"));
    golden("turn", "scripts/turn-synapse-removal.sh", () => turnSynapseRemovalScript(s()));
});
