import * as assert from "node:assert/strict";

import { resolveDnsSettings } from "../../src/model/dns";
import { resolveElementWebSettings } from "../../src/model/element";
import { ConfigError, ConfigErrors } from "../../src/model/errors";
import { resolveHostSettings } from "../../src/model/host";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { resolveReverseProxySettings } from "../../src/model/proxy";
import { resolveRedisSettings } from "../../src/model/redis";
import { resolveSynapseSettings } from "../../src/model/synapse";
import { resolveTurnSettings } from "../../src/model/turn";
import { resolveWorkerPoolSettings, WorkerPoolOptions } from "../../src/model/workers";

/** The errors a call throws, flattened (a ConfigErrors holds several). */
function errorsOf(fn: () => unknown): ConfigError[] {
    try {
        fn();
    } catch (e) {
        if (e instanceof ConfigErrors) return e.errors;
        if (e instanceof ConfigError) return [e];
        throw e;
    }
    return [];
}

/** Every versioned option: how it is set, what the projects really tag, and forms no release has. */
const VERSIONED: { name: string; set: (v: unknown) => unknown; valid: string[]; invalid: unknown[] }[] = [
    {
        name: "SynapseHomeserver version",
        // The apt method: the pip method also refuses a well-formed release without pinned dependencies (synapse.test.ts).
        set: (version) => resolveSynapseSettings("SynapseHomeserver", { serverName: "example.com", version: version as string, installMethod: "apt" }),
        valid: ["1.163.2", "1.164.0rc1", "1.0.0", "2.0.0rc12"],
        invalid: ["latest", "1.163", "v1.163.2", "1.163.2-rc1", "1.163.2rc", "01.163.2", "1.163.2 ", "1.163.2.1", "", 1.163, "1.164.0rc0"],
    },
    {
        name: "ElementWeb version",
        set: (version) =>
            resolveElementWebSettings(
                "ElementWeb",
                { domain: "element.example.com", version: version as string, sha256: "0".repeat(64) },
                { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/" },
            ),
        valid: ["1.11.100", "1.12.8", "1.11.101-rc.0", "2.0.0"],
        invalid: ["latest", "1.11", "v1.11.100", "1.11.100rc1", "1.11.100-rc1", "01.11.100", "1.11.100.1", "", 1.11],
    },
];

describe("versions: a form no release can have is refused, saying what a valid one looks like", () => {
    for (const v of VERSIONED)
        it(v.name, () => {
            for (const good of v.valid) assert.doesNotThrow(() => v.set(good), `${v.name} ${good}`);
            for (const bad of v.invalid) {
                const errs = errorsOf(() => v.set(bad)).filter((e) => e.setting === "version");
                assert.equal(errs.length, 1, `${v.name} ${JSON.stringify(bad)} is refused`);
                assert.match(errs[0].message, /version is .*; expected .* release such as \d+\.\d+\.\d+ .*MAJOR\.MINOR\.PATCH/);
            }
        });
});

describe("Synapse's extraConfig that stops outbound federation or names processes that do not exist", () => {
    const synapseWith = (extraConfig: Record<string, unknown>) =>
        resolveSynapseSettings("SynapseHomeserver", { serverName: "example.com", replication: {}, extraConfig });
    const DUTY_SWITCHES = ["send_federation", "start_pushers", "notify_appservices", "update_user_directory"];
    const INSTANCE_OPTIONS: Record<string, (name: string) => unknown> = {
        federation_sender_instances: (n) => [n],
        pusher_instances: (n) => [n],
        run_background_tasks_on: (n) => n,
        update_user_directory_from_worker: (n) => n,
        notify_appservices_from_worker: (n) => n,
        media_instance_running_background_jobs: (n) => n,
        stream_writers: (n) => ({ events: [n] }),
        instance_map: (n) => ({ [n]: { host: "127.0.0.1", port: 9999 } }),
    };

    it("refuses each legacy switch set to false (the duty would stop), naming the setting and what to do", () => {
        for (const key of DUTY_SWITCHES) {
            const errs = errorsOf(() => synapseWith({ [key]: false }));
            assert.equal(errs.length, 1, key);
            assert.equal(errs[0].setting, `extraConfig.${key}`);
            assert.match(errs[0].message, new RegExp(`extraConfig\\.${key} is false; expected it left out \\(or true\\): false would stop `));
            assert.doesNotThrow(() => synapseWith({ [key]: true }), key);
        }
    });

    it("refuses each option that names processes when it names one that does not exist; the main process is fine", () => {
        for (const [key, value] of Object.entries(INSTANCE_OPTIONS)) {
            const errs = errorsOf(() => synapseWith({ [key]: value("ghost1") }));
            assert.equal(errs.length, 1, key);
            assert.equal(errs[0].setting, `extraConfig.${key}`);
            assert.match(errs[0].message, /it names ghost1, and no such Synapse process exists: valid is only the main process \("main"\)/, key);
            for (const main of ["main", "master"]) assert.doesNotThrow(() => synapseWith({ [key]: value(main) }), `${key} ${main}`);
        }
        assert.doesNotThrow(() => synapseWith({ federation_sender_instances: [] }));
    });

    it("with a WorkerPool: refuses the options it writes (an empty sender list while it has senders too), and restricting outbound federation to processes outside instance_map", () => {
        const pool = (workers: WorkerPoolOptions["workers"], extraConfig: Record<string, unknown>) => () =>
            resolveWorkerPoolSettings("WorkerPool", { workers }, synapseWith(extraConfig), 'Host "vm"');
        for (const key of ["federation_sender_instances", "send_federation", "stream_writers"]) {
            const errs = errorsOf(pool({ federation_sender: 2 }, { [key]: key === "send_federation" ? true : [] }));
            assert.equal(errs.length, 1, key);
            assert.match(
                errs[0].message,
                new RegExp(`synapse\\.extraConfig is \\["${key}"\\]; ${key} is written by the WorkerPool .*remove it from extraConfig`),
            );
        }
        const restricted = (workers: WorkerPoolOptions["workers"], value: unknown) => errorsOf(pool(workers, { outbound_federation_restricted_to: value }));
        assert.deepEqual(restricted({ federation_sender: 1 }, ["master"]), []);
        assert.deepEqual(restricted({ event_persister: 1 }, ["master", "event_persister1"]), []);
        assert.deepEqual(restricted({ federation_sender: 1 }, []), []);
        for (const [workers, value] of [
            [{ federation_sender: 1 }, ["federation_sender1"]],
            [{ federation_sender: 1 }, ["main"]],
            [{ federation_sender: 1 }, "master"],
            [{}, ["master"]],
        ] as [WorkerPoolOptions["workers"], unknown][]) {
            const errs = restricted(workers, value);
            assert.equal(errs.length, 1, JSON.stringify([workers, value]));
            assert.equal(errs[0].setting, "synapse.extraConfig.outbound_federation_restricted_to");
            assert.match(errs[0].message, /; expected (a list of processes in instance_map: master|it left out)/);
        }
    });
});

const HS = { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/" };
const PROXY_HS = { ...HS, maxUploadSize: "50M" };
const ELEMENT = { domain: "element.example.com", version: "1.11.100", sha256: "0".repeat(64) };
const DNS = { zone: { name: "example.com" }, serverName: "example.com", publicBaseUrl: "https://matrix.example.com/", ipv4: "203.0.113.10", stack: "prod" };
const SYN = { serverName: "example.com" };

/**
 * One bad value for every validated option of each model's Options type:
 * [component, the option path the error must name, the call]. The value
 * written is the one the error must show.
 */
const BAD: [string, string, () => unknown][] = [
    // host
    ["Host", "port", () => resolveHostSettings("Host", { port: 0 })],
    ["Host", "user", () => resolveHostSettings("Host", { user: "Root User" })],
    ["Host", "bootTimeout", () => resolveHostSettings("Host", { bootTimeout: "soon" })],
    ["Host", "firewall.sshPort", () => resolveHostSettings("Host", { firewall: { sshPort: 70000 } })],
    ["Host", "firewall.rules[0].port", () => resolveHostSettings("Host", { firewall: { rules: [{ port: 0, protocol: "tcp", owner: "me" }] } })],
    ["Host", "firewall.rules[0].toPort", () => resolveHostSettings("Host", { firewall: { rules: [{ port: 100, toPort: 50, protocol: "tcp", owner: "me" }] } })],
    ["Host", "firewall.rules[0].protocol", () => resolveHostSettings("Host", { firewall: { rules: [{ port: 100, protocol: "icmp" as never, owner: "me" }] } })],
    [
        "Host",
        "firewall.rules[0].sources",
        () => resolveHostSettings("Host", { firewall: { rules: [{ port: 100, protocol: "tcp", owner: "me", sources: ["anywhere"] }] } }),
    ],
    ["Host", "ntpServers", () => resolveHostSettings("Host", { ntpServers: ["not a host"] })],
    ["Host", "extraPackages", () => resolveHostSettings("Host", { extraPackages: ["Bad Package"] })],
    // postgres
    ["PostgresDatabase", "database", () => resolvePostgresSettings("PostgresDatabase", { database: "Bad-Name" })],
    ["PostgresDatabase", "user", () => resolvePostgresSettings("PostgresDatabase", { user: "Bad-Name" })],
    ["PostgresDatabase", "port", () => resolvePostgresSettings("PostgresDatabase", { port: 0 })],
    ["PostgresDatabase", "memoryMb", () => resolvePostgresSettings("PostgresDatabase", { memoryMb: 1 })],
    ["PostgresDatabase", "listenAddresses", () => resolvePostgresSettings("PostgresDatabase", { listenAddresses: ["db.example.com"] })],
    ["PostgresDatabase", "allowedClients", () => resolvePostgresSettings("PostgresDatabase", { allowedClients: ["everyone"], listenAddresses: ["10.0.0.5"] })],
    ["PostgresDatabase", "backup.directory", () => resolvePostgresSettings("PostgresDatabase", { backup: { directory: "relative/dir" } })],
    ["PostgresDatabase", "backup.retention", () => resolvePostgresSettings("PostgresDatabase", { backup: { retention: 0 } })],
    ["PostgresDatabase", "backup.schedule", () => resolvePostgresSettings("PostgresDatabase", { backup: { schedule: "whenever\n" } })],
    // synapse
    ["SynapseHomeserver", "serverName", () => resolveSynapseSettings("SynapseHomeserver", { serverName: "not a name" })],
    ["SynapseHomeserver", "publicBaseUrl", () => resolveSynapseSettings("SynapseHomeserver", { ...SYN, publicBaseUrl: "matrix.example.com" })],
    ["SynapseHomeserver", "version", () => resolveSynapseSettings("SynapseHomeserver", { ...SYN, version: "latest" })],
    ["SynapseHomeserver", "httpPort", () => resolveSynapseSettings("SynapseHomeserver", { ...SYN, httpPort: 0 })],
    ["SynapseHomeserver", "httpBindAddresses", () => resolveSynapseSettings("SynapseHomeserver", { ...SYN, httpBindAddresses: ["localhost"] })],
    ["SynapseHomeserver", "maxUploadSize", () => resolveSynapseSettings("SynapseHomeserver", { ...SYN, maxUploadSize: "50MB" })],
    ["SynapseHomeserver", "registration", () => resolveSynapseSettings("SynapseHomeserver", { ...SYN, registration: "open" as never })],
    ["SynapseHomeserver", "cacheFactor", () => resolveSynapseSettings("SynapseHomeserver", { ...SYN, cacheFactor: 0 })],
    ["SynapseHomeserver", "trustedKeyServers", () => resolveSynapseSettings("SynapseHomeserver", { ...SYN, trustedKeyServers: ["not a server"] })],
    [
        "SynapseHomeserver",
        "federationDomainWhitelist",
        () => resolveSynapseSettings("SynapseHomeserver", { ...SYN, federationDomainWhitelist: ["not a server"] }),
    ],
    ["SynapseHomeserver", "logLevel", () => resolveSynapseSettings("SynapseHomeserver", { ...SYN, logLevel: "LOUD" as never })],
    ["SynapseHomeserver", "replication.port", () => resolveSynapseSettings("SynapseHomeserver", { ...SYN, replication: { port: 0 } })],
    [
        "SynapseHomeserver",
        "replication.bindAddresses",
        () => resolveSynapseSettings("SynapseHomeserver", { ...SYN, replication: { bindAddresses: ["0.0.0.0"] } }),
    ],
    [
        "SynapseHomeserver",
        "extraConfig.send_federation",
        () => resolveSynapseSettings("SynapseHomeserver", { ...SYN, extraConfig: { send_federation: false } }),
    ],
    // redis
    ["RedisServer", "port", () => resolveRedisSettings("RedisServer", { port: 0 })],
    ["RedisServer", "bindAddresses", () => resolveRedisSettings("RedisServer", { bindAddresses: ["0.0.0.0"] })],
    ["RedisServer", "maxMemoryMb", () => resolveRedisSettings("RedisServer", { maxMemoryMb: 1 })],
    ["RedisServer", "allowedClients", () => resolveRedisSettings("RedisServer", { allowedClients: ["everyone"], bindAddresses: ["127.0.0.1", "10.0.0.5"] })],
    // workers
    ["WorkerPool", "basePort", () => resolveWorkerPoolSettings("WorkerPool", { basePort: 0 }, resolveSynapseSettings("s", { ...SYN, replication: {} }), "h")],
    [
        "WorkerPool",
        "instances.typing",
        () => resolveWorkerPoolSettings("WorkerPool", { instances: { typing: 2 } }, resolveSynapseSettings("s", { ...SYN, replication: {} }), "h"),
    ],
    [
        "WorkerPool",
        "instances.frontend",
        () => resolveWorkerPoolSettings("WorkerPool", { instances: { frontend: 1 } as never }, resolveSynapseSettings("s", { ...SYN, replication: {} }), "h"),
    ],
    [
        "WorkerPool",
        "instances[0].name",
        () =>
            resolveWorkerPoolSettings(
                "WorkerPool",
                { instances: [{ role: "pusher", name: "Main" }] },
                resolveSynapseSettings("s", { ...SYN, replication: {} }),
                "h",
            ),
    ],
    [
        "WorkerPool",
        "instances[0].port",
        () =>
            resolveWorkerPoolSettings(
                "WorkerPool",
                { instances: [{ role: "pusher", port: 0 }] },
                resolveSynapseSettings("s", { ...SYN, replication: {} }),
                "h",
            ),
    ],
    [
        "WorkerPool",
        "instances[0].role",
        () =>
            resolveWorkerPoolSettings(
                "WorkerPool",
                { instances: [{ role: "frontend" as never }] },
                resolveSynapseSettings("s", { ...SYN, replication: {} }),
                "h",
            ),
    ],
    // proxy and acme
    [
        "ReverseProxy",
        "federationPort",
        () => resolveReverseProxySettings("ReverseProxy", { acme: { email: "a@example.com" }, federationPort: 8443 as never }, PROXY_HS),
    ],
    [
        "ReverseProxy",
        "adminAllowList",
        () => resolveReverseProxySettings("ReverseProxy", { acme: { email: "a@example.com" }, adminAllowList: ["office"] }, PROXY_HS),
    ],
    [
        "ReverseProxy",
        "listenAddresses",
        () => resolveReverseProxySettings("ReverseProxy", { acme: { email: "a@example.com" }, listenAddresses: ["0.0.0.0"] }, PROXY_HS),
    ],
    [
        "ReverseProxy",
        "extraCertificateNames",
        () => resolveReverseProxySettings("ReverseProxy", { acme: { email: "a@example.com" }, extraCertificateNames: ["not a name"] }, PROXY_HS),
    ],
    ["ReverseProxy", "acme.email", () => resolveReverseProxySettings("ReverseProxy", { acme: { email: "nobody" } }, PROXY_HS)],
    [
        "ReverseProxy",
        "acme.directoryUrl",
        () => resolveReverseProxySettings("ReverseProxy", { acme: { email: "a@example.com", directoryUrl: "ftp://ca" } }, PROXY_HS),
    ],
    [
        "ReverseProxy",
        "acme.keyType",
        () => resolveReverseProxySettings("ReverseProxy", { acme: { email: "a@example.com", keyType: "dsa" as never } }, PROXY_HS),
    ],
    [
        "ReverseProxy",
        "acme.challenge",
        () => resolveReverseProxySettings("ReverseProxy", { acme: { email: "a@example.com", challenge: "tls-alpn-01" as never } }, PROXY_HS),
    ],
    ["ReverseProxy", "acme.caBundle", () => resolveReverseProxySettings("ReverseProxy", { acme: { email: "a@example.com", caBundle: "not a PEM" } }, PROXY_HS)],
    // element
    ["ElementWeb", "domain", () => resolveElementWebSettings("ElementWeb", { ...ELEMENT, domain: "not a name" }, HS)],
    ["ElementWeb", "version", () => resolveElementWebSettings("ElementWeb", { ...ELEMENT, version: "latest" }, HS)],
    ["ElementWeb", "sha256", () => resolveElementWebSettings("ElementWeb", { ...ELEMENT, sha256: "abc" }, HS)],
    ["ElementWeb", "downloadUrl", () => resolveElementWebSettings("ElementWeb", { ...ELEMENT, downloadUrl: "ftp://x/{version}" }, HS)],
    ["ElementWeb", "brand", () => resolveElementWebSettings("ElementWeb", { ...ELEMENT, brand: "" }, HS)],
    ["ElementWeb", "defaultTheme", () => resolveElementWebSettings("ElementWeb", { ...ELEMENT, defaultTheme: "blue" as never }, HS)],
    ["ElementWeb", "disableGuests", () => resolveElementWebSettings("ElementWeb", { ...ELEMENT, disableGuests: "yes" as never }, HS)],
    ["ElementWeb", "disableCustomUrls", () => resolveElementWebSettings("ElementWeb", { ...ELEMENT, disableCustomUrls: "yes" as never }, HS)],
    ["ElementWeb", "roomDirectoryServers", () => resolveElementWebSettings("ElementWeb", { ...ELEMENT, roomDirectoryServers: ["not a server"] }, HS)],
    ["ElementWeb", "keepVersions", () => resolveElementWebSettings("ElementWeb", { ...ELEMENT, keepVersions: 0 }, HS)],
    ["ElementWeb", "extraConfig", () => resolveElementWebSettings("ElementWeb", { ...ELEMENT, extraConfig: { default_server_name: "x" } }, HS)],
    ["ElementWeb", "paths.root", () => resolveElementWebSettings("ElementWeb", { ...ELEMENT, paths: { root: "relative" } }, HS)],
    // coturn
    ["TurnServer", "domain", () => resolveTurnSettings("TurnServer", { domain: "not a name" })],
    ["TurnServer", "realm", () => resolveTurnSettings("TurnServer", { domain: "turn.example.com", realm: "not a realm" })],
    ["TurnServer", "port", () => resolveTurnSettings("TurnServer", { domain: "turn.example.com", port: 0 })],
    ["TurnServer", "tlsPort", () => resolveTurnSettings("TurnServer", { domain: "turn.example.com", tlsPort: 0 })],
    ["TurnServer", "relayPorts.min", () => resolveTurnSettings("TurnServer", { domain: "turn.example.com", relayPorts: { min: 0 } })],
    ["TurnServer", "relayPorts.max", () => resolveTurnSettings("TurnServer", { domain: "turn.example.com", relayPorts: { max: 70000 } })],
    ["TurnServer", "listeningIps", () => resolveTurnSettings("TurnServer", { domain: "turn.example.com", listeningIps: ["0.0.0.0"] })],
    ["TurnServer", "relayIp", () => resolveTurnSettings("TurnServer", { domain: "turn.example.com", relayIp: "turn" })],
    ["TurnServer", "externalIp", () => resolveTurnSettings("TurnServer", { domain: "turn.example.com", externalIp: "outside" })],
    ["TurnServer", "allowedPeerIps", () => resolveTurnSettings("TurnServer", { domain: "turn.example.com", allowedPeerIps: ["peer"] })],
    ["TurnServer", "userQuota", () => resolveTurnSettings("TurnServer", { domain: "turn.example.com", userQuota: 0 })],
    ["TurnServer", "totalQuota", () => resolveTurnSettings("TurnServer", { domain: "turn.example.com", totalQuota: 0 })],
    ["TurnServer", "userLifetime", () => resolveTurnSettings("TurnServer", { domain: "turn.example.com", userLifetime: "forever" })],
    ["TurnServer", "allowGuests", () => resolveTurnSettings("TurnServer", { domain: "turn.example.com", allowGuests: "yes" as never })],
    // dns
    ["Dns", "zone.name", () => resolveDnsSettings("Dns", { ...DNS, zone: { name: "not a zone" } })],
    ["Dns", "serverName", () => resolveDnsSettings("Dns", { ...DNS, serverName: "not a name" })],
    ["Dns", "publicBaseUrl", () => resolveDnsSettings("Dns", { ...DNS, publicBaseUrl: "https://matrix.other.org/" })],
    ["Dns", "ipv4", () => resolveDnsSettings("Dns", { ...DNS, ipv4: "2001:db8::1" })],
    ["Dns", "ipv6", () => resolveDnsSettings("Dns", { ...DNS, ipv6: "203.0.113.9" })],
    ["Dns", "elementDomain", () => resolveDnsSettings("Dns", { ...DNS, elementDomain: "not a name" })],
    ["Dns", "turnHost", () => resolveDnsSettings("Dns", { ...DNS, turnHost: "not a name" })],
    ["Dns", "turnPort", () => resolveDnsSettings("Dns", { ...DNS, turnHost: "turn.example.com", turnPort: 0 })],
    ["Dns", "ttl", () => resolveDnsSettings("Dns", { ...DNS, ttl: 0 })],
    ["Dns", "delegation", () => resolveDnsSettings("Dns", { ...DNS, delegation: "cname" as never })],
    ["Dns", "wellKnownVia", () => resolveDnsSettings("Dns", { ...DNS, delegation: "well-known", wellKnownVia: "apache" as never })],
    ["Dns", "federationPort", () => resolveDnsSettings("Dns", { ...DNS, delegation: "srv", federationPort: 0 })],
    ["Dns", "stack", () => resolveDnsSettings("Dns", { ...DNS, stack: "" })],
];

describe("every validated option of every model: the error names the component, the option, the value and what is valid", () => {
    for (const [component, setting, call] of BAD)
        it(`${component} ${setting}`, () => {
            const errs = errorsOf(call);
            const err = errs.find((e) => e.setting === setting);
            assert.ok(err, `no error names ${setting}: ${errs.map((e) => e.message).join(" | ") || "accepted"}`);
            assert.equal(err.component, component);
            assert.ok(err.message.startsWith(`${component}: ${setting} is `), err.message);
            assert.match(err.expected, /expected|must be|one of|e\.g\.|such as|valid/, err.message);
        });
});

describe("an error about a value the model derived names the option the user wrote", () => {
    it("the public base URL made from serverName: the proxy names serverName and its value, and says to set publicBaseUrl", () => {
        const proxy = (o: { serverName: string; publicBaseUrl?: string }) => () =>
            resolveReverseProxySettings("ReverseProxy", { acme: { email: "a@example.com" } }, resolveSynapseSettings("SynapseHomeserver", o));
        const derived = errorsOf(proxy({ serverName: "example.com:8448" }));
        assert.equal(derived.length, 1);
        assert.equal(derived[0].setting, "synapse.serverName");
        assert.match(
            derived[0].message,
            /synapse\.serverName is "example\.com:8448"; publicBaseUrl is left out, so it is "https:\/\/example\.com:8448\/", made from serverName, and that URL fails: .*; set publicBaseUrl, such as https:\/\/matrix\.example\.com\//,
        );
        const written = errorsOf(proxy({ serverName: "example.com", publicBaseUrl: "https://matrix.example.com:8443/" }));
        assert.equal(written.length, 1);
        assert.equal(written[0].setting, "synapse.publicBaseUrl");
        assert.deepEqual(errorsOf(proxy({ serverName: "example.com" })), []);
    });
});
