import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { ConfigError, ConfigErrors } from "../../src/model/errors";
import { DNS_STAND_IN, planStack, StackPlanArgs } from "../../src/model/stack";
import { resolveSynapseSettings } from "../../src/model/synapse";
import { resolveWorkerPoolSettings } from "../../src/model/workers";
import { checkPoolPrivateAddresses, checkPoolReachable } from "../../src/model/workers/hosts";

/** A value another resource gives later (a cloud VM's address): the plan must only pass it along. */
class Later {
    constructor(readonly what: string) {}
}

function args(overrides: Partial<StackPlanArgs<Later>> = {}): StackPlanArgs<Later> {
    return {
        host: {},
        synapse: { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/" },
        proxy: { acme: { email: "admin@example.com" } },
        // Without MatrixRTC: its releases must be pinned (rtc.test.ts covers it).
        rtc: false,
        ...overrides,
    };
}

const plan = (a: StackPlanArgs<Later>) => planStack("dev", a, { stack: "prod" });

/** The ConfigErrors a plan throws, as `component: setting` lines. */
function problems(a: StackPlanArgs<Later>): string[] {
    try {
        plan(a);
    } catch (e) {
        if (e instanceof ConfigErrors) return e.errors.map((x) => `${x.component}: ${x.setting}`);
        if (e instanceof ConfigError) return [`${e.component}: ${e.setting}`];
        throw e;
    }
    assert.fail("expected the plan to refuse the arguments");
}

function claimed(p: ReturnType<typeof plan>, host = 'Host "dev-host"') {
    return p.ports[host].all().map((c) => `${c.component} ${c.protocol}/${c.port}${c.toPort ? `-${c.toPort}` : ""}@${c.address}`);
}

describe("the stack plan (pure, no Pulumi)", () => {
    it("single host: every part resolved once, with what workers imply (replication, Redis, the pool) and TURN's removal", () => {
        const p = plan(args());
        assert.equal(p.labels.synapse, 'SynapseHomeserver "dev-synapse"');
        assert.equal(p.host.user, "root");
        assert.equal(p.databaseHost, undefined);
        assert.deepEqual(p.postgres.kind === "local" && { port: p.postgres.settings.port, onDatabaseHost: p.postgres.onDatabaseHost }, {
            port: 5432,
            onDatabaseHost: false,
        });
        assert.deepEqual(p.synapse.replication, { port: 9093, bindAddresses: ["127.0.0.1"] });
        assert.deepEqual(
            p.workers?.workers.map((w) => w.name),
            ["federation_reader1", "federation_sender1"],
        );
        assert.equal(p.redis?.kind, "local");
        assert.deepEqual(p.proxy?.settings.certificateNames, ["matrix.example.com"]);
        assert.deepEqual(p.turn, { kind: "removal" });
        assert.equal(p.dns, undefined);
        assert.deepEqual(Object.keys(p.ports), ['Host "dev-host"']);
        assert.deepEqual(claimed(p), [
            'Host "dev-host" tcp/22@*',
            'ReverseProxy "dev-proxy" tcp/80@*',
            'ReverseProxy "dev-proxy" tcp/443@*',
            'ReverseProxy "dev-proxy" tcp/8448@*',
            'PostgresDatabase "dev-postgres" tcp/5432@127.0.0.1',
            'RedisServer "dev-redis" tcp/6379@127.0.0.1',
            'SynapseHomeserver "dev-synapse" tcp/8008@127.0.0.1',
            'SynapseHomeserver "dev-synapse" tcp/9000@127.0.0.1',
            'SynapseHomeserver "dev-synapse" tcp/9093@127.0.0.1',
            'WorkerPool "dev-workers" tcp/8100@127.0.0.1',
            'WorkerPool "dev-workers" tcp/10100@127.0.0.1',
            'WorkerPool "dev-workers" tcp/8120@127.0.0.1',
            'WorkerPool "dev-workers" tcp/10120@127.0.0.1',
        ]);
    });

    it("no workers ({}): a pool that only removes, no Redis, no replication listener; Redis settings are then an error", () => {
        const p = plan(args({ workers: { instances: {} } }));
        assert.deepEqual(p.workers?.workers, []);
        assert.equal(p.redis, undefined);
        assert.equal(p.synapse.replication, undefined);
        assert.deepEqual(problems(args({ workers: { instances: {} }, redis: { port: 6380 } })), ['MatrixStack "dev": redis.port']);
    });

    it("split hosts: PostgreSQL on the database VM, claimed there; postgres.reachableAt is required and may be known later", () => {
        const p = plan(args({ postgres: { host: { user: "debian" }, reachableAt: new Later("db private ip"), listenAddresses: ["127.0.0.1", "10.0.0.5"] } }));
        assert.equal(p.databaseHost?.user, "debian");
        assert.ok(p.postgres.kind === "local" && p.postgres.onDatabaseHost);
        assert.deepEqual(claimed(p, 'Host "dev-db-host"'), [
            'Host "dev-db-host" tcp/22@*',
            'PostgresDatabase "dev-postgres" tcp/5432@127.0.0.1',
            'PostgresDatabase "dev-postgres" tcp/5432@10.0.0.5',
        ]);
        assert.ok(!claimed(p).some((c) => c.startsWith("PostgresDatabase")));
        // The main host's 5432 is free for something else.
        assert.doesNotThrow(() => plan(args({ postgres: { host: {}, reachableAt: "10.0.0.5" }, synapse: { ...args().synapse, httpPort: 5432 } })));
        assert.deepEqual(problems(args({ postgres: { host: {} } })), ['MatrixStack "dev": postgres.reachableAt']);
    });

    it("external PostgreSQL: nothing installed or claimed; its settings are checked now when its host is known, later otherwise", () => {
        const external = { host: "db.example.com", database: "synapse", user: "synapse", sslMode: "require" as const };
        const p = plan(args({ postgres: { external } }));
        assert.ok(p.postgres.kind === "external");
        assert.deepEqual(p.postgres.server.now, {
            mode: "external",
            host: "db.example.com",
            port: 5432,
            database: "synapse",
            user: "synapse",
            sslMode: "require",
        });
        assert.ok(!claimed(p).some((c) => c.startsWith("PostgresDatabase")));
        const later = plan(args({ postgres: { external: { ...external, host: new Later("managed db") } } })).postgres;
        assert.ok(later.kind === "external" && later.server.now === undefined);
        assert.equal(later.server.at("10.0.0.7").host, "10.0.0.7");
        assert.throws(() => later.server.at("not a host!"), /PostgresDatabase "dev-postgres": external\.host is "not a host!"/);
        assert.deepEqual(problems(args({ postgres: { external: { ...external, port: 0 } } })), ['PostgresDatabase "dev-postgres": external.port']);
        assert.deepEqual(problems(args({ postgres: { external, memoryMb: 2048 } })), ['PostgresDatabase "dev-postgres": memoryMb']);
    });

    it("sqlite: no PostgreSQL, no workers by default (nor Redis), and PostgreSQL settings against it are an error", () => {
        const p = plan(args({ synapse: { ...args().synapse, sqlite: {} } }));
        assert.deepEqual(p.postgres, { kind: "sqlite" });
        assert.equal(p.workers, undefined);
        assert.equal(p.redis, undefined);
        assert.equal(p.synapse.replication, undefined);
        assert.deepEqual(problems(args({ synapse: { ...args().synapse, sqlite: {} }, postgres: { host: {}, reachableAt: "10.0.0.5" } })), [
            'MatrixStack "dev": postgres.host',
        ]);
    });

    it("no proxy (proxy: false): no nginx, coturn without TLS, and Element is refused", () => {
        const p = plan(args({ proxy: false, turn: { domain: "turn.example.com" } }));
        assert.equal(p.proxy, undefined);
        assert.ok(p.turn.kind === "server" && p.turn.settings.tls === undefined);
        assert.ok(!claimed(p).some((c) => c.startsWith("ReverseProxy")));
        assert.deepEqual(problems(args({ proxy: false, element: { domain: "element.example.com", version: "1.11.100", sha256: "a".repeat(64) } })), [
            'MatrixStack "dev": element',
        ]);
    });

    it("turn: coturn with a certificate of its own from the proxy's CA and its ports claimed; absent: the removal", () => {
        const p = plan(args({ turn: { domain: "turn.example.com" } }));
        // coturn's certificate is a lineage of its own: the web certificate does not have the TURN name.
        assert.deepEqual(p.proxy?.settings.certificateNames, ["matrix.example.com"]);
        // ... but nginx's port 80 answers its HTTP-01 challenges (it rejects every name it does not know).
        assert.deepEqual(p.proxy?.settings.challengeNames, ["turn.example.com"]);
        assert.deepEqual(plan(args()).proxy?.settings.challengeNames, []);
        assert.ok(p.turn.kind === "server");
        assert.deepEqual(p.turn.settings.tls, {
            certName: "coturn-turn.example.com",
            liveDir: "/etc/letsencrypt/live/coturn-turn.example.com",
            acme: p.proxy?.settings.acme,
        });
        assert.ok(claimed(p).includes('TurnServer "dev-turn" udp/49152-65535@*'));
        assert.deepEqual(plan(args()).turn, { kind: "removal" });
    });

    describe("DNS in each delegation mode, and what it needs of the proxy", () => {
        const apex = { serverName: "example.com", publicBaseUrl: "https://matrix.example.com/" };
        const dnsArgs = (dns: Partial<NonNullable<StackPlanArgs<Later>["dns"]>>, synapse = apex) =>
            args({ synapse, dns: { zone: { name: "example.com" }, ipv4: "203.0.113.10", ...dns } });

        it("none: the server_name is the homeserver's host; nothing added to the proxy", () => {
            const p = plan(dnsArgs({}, { serverName: "matrix.example.com", publicBaseUrl: "https://matrix.example.com/" }));
            assert.equal(p.dns?.settings.delegation, "none");
            assert.equal(p.dns?.cloudflare, false);
            assert.equal(p.dns?.settings.stack, "prod");
            assert.deepEqual(p.proxy?.settings.certificateNames, ["matrix.example.com"]);
            assert.equal(p.proxy?.settings.serverNameVhost, false);
        });

        it("well-known via nginx: the proxy serves the server_name's domain (vhost and certificate)", () => {
            const p = plan(dnsArgs({ delegation: "well-known" }));
            assert.equal(p.dns?.settings.wellKnownVia, "nginx");
            assert.equal(p.proxy?.settings.serverNameVhost, true);
            assert.deepEqual(p.proxy?.settings.certificateNames, ["matrix.example.com", "example.com"]);
            assert.deepEqual(problems({ ...dnsArgs({ delegation: "well-known" }), proxy: false }), ['MatrixStack "dev": dns.delegation']);
            const refused = { ...dnsArgs({ delegation: "well-known" }), proxy: { acme: { email: "admin@example.com" }, serverNameWellKnown: false } };
            assert.deepEqual(problems(refused), ['MatrixStack "dev": proxy.serverNameWellKnown']);
        });

        it("well-known via a Cloudflare worker: nothing added to the proxy", () => {
            const p = plan(dnsArgs({ delegation: "well-known", wellKnownVia: "worker", accountId: "0123456789abcdef0123456789abcdef", cloudflare: true }));
            assert.equal(p.dns?.settings.wellKnownVia, "worker");
            assert.equal(p.dns?.cloudflare, true);
            assert.equal(p.proxy?.settings.serverNameVhost, false);
            assert.deepEqual(p.proxy?.settings.certificateNames, ["matrix.example.com"]);
        });

        it("srv: the server_name on the certificate, not a vhost; srv with the legacy record too", () => {
            for (const legacySrv of [false, true]) {
                const p = plan(dnsArgs({ delegation: "srv", legacySrv }));
                assert.equal(p.dns?.settings.delegation, "srv");
                assert.equal(p.dns?.settings.legacySrv, legacySrv);
                assert.equal(p.proxy?.settings.serverNameVhost, false);
                assert.deepEqual(p.proxy?.settings.extraNames, ["example.com"]);
            }
        });

        it("addresses known later are stood in for; the host names of Element and TURN are in the record set", () => {
            const p = plan({
                ...dnsArgs({ delegation: "srv", ipv4: new Later("vm ip"), ipv6: "2001:db8::10" }),
                turn: { domain: "turn.example.com", port: 3479 },
            });
            assert.equal(p.dns?.addressesLater, true);
            assert.equal(p.dns?.settings.ipv4, DNS_STAND_IN.ipv4);
            assert.equal(p.dns?.settings.ipv6, DNS_STAND_IN.ipv6);
            assert.deepEqual(p.dns?.settings.turn, { host: "turn.example.com", port: 3479, tlsPort: 5349 });
        });
    });

    it("errors where settings meet name the MatrixStack argument the user wrote (port clashes: the setting that can move)", () => {
        const at = (a: StackPlanArgs<Later>) => {
            try {
                plan(a);
            } catch (e) {
                return (e as Error).message;
            }
            return "";
        };
        // A port the user chose is named against a default one, whichever was claimed first.
        assert.match(
            at(args({ redis: { port: 8008 } })),
            /^RedisServer "dev-redis": redis\.port is 8008; SynapseHomeserver "dev-synapse" \(synapse http listener\) already uses tcp port 8008/,
        );
        assert.match(
            at(args({ redis: { port: 8008 }, synapse: { ...args().synapse, httpPort: 8008 } })),
            /^SynapseHomeserver "dev-synapse": synapse\.httpPort is 8008; RedisServer "dev-redis" \(redis\) already uses tcp port 8008/,
        );
        assert.match(
            at(args({ workers: { basePort: 5432 } })),
            /WorkerPool "dev-workers": workers\.basePort is 5432; it puts the worker federation_reader1 http listener at port 5432, where PostgresDatabase "dev-postgres"/,
        );
        assert.match(
            at(args({ workers: { instances: [{ role: "federation_reader", port: 5432 }] } })),
            /WorkerPool "dev-workers": workers\.instances\[0\]\.port is 5432/,
        );
        assert.match(
            at(args({ turn: { domain: "turn.example.com", port: 8008 } })),
            /^TurnServer "dev-turn": turn\.port is 8008; SynapseHomeserver "dev-synapse"/,
        );
        assert.match(
            at(args({ turn: { domain: "turn.example.com", tlsPort: 8448 } })),
            /^TurnServer "dev-turn": turn\.tlsPort is 8448; ReverseProxy "dev-proxy" \(nginx\)/,
        );
        assert.match(at(args({ postgres: { port: 8443 }, proxy: { acme: { email: "admin@example.com" }, federationPort: 443 } })), /^$/);
        // A port the user set where a default worker port lands is blamed, not the base the user left alone.
        assert.match(
            at(args({ redis: { port: 8100 } })),
            /^RedisServer "dev-redis": redis\.port is 8100; WorkerPool "dev-workers" \(worker federation_reader1 http listener\) already uses tcp port 8100/,
        );
        // The host's own sshd: moved onto a service's port, or a service moved onto it.
        assert.match(
            at(args({ host: { firewall: { sshPort: 443 } } })),
            /^Host "dev-host": host\.firewall\.sshPort is 443; ReverseProxy "dev-proxy" \(nginx\) already uses tcp port 443/,
        );
        assert.match(at(args({ redis: { port: 22 } })), /^RedisServer "dev-redis": redis\.port is 22; Host "dev-host" \(sshd\) already uses tcp port 22/);
        assert.match(
            at(args({ postgres: { host: { firewall: { sshPort: 5432 } }, reachableAt: "10.0.0.5" } })),
            /Host "dev-db-host": postgres\.host\.firewall\.sshPort is 5432; PostgresDatabase "dev-postgres" \(postgresql\) already uses tcp port 5432/,
        );
        assert.match(
            at(args({ synapse: { ...args().synapse, httpPort: 443, httpBindAddresses: ["127.0.0.1"] } })),
            /SynapseHomeserver "dev-synapse": synapse\.httpPort is 443; ReverseProxy "dev-proxy" \(nginx\)/,
        );
    });

    it("labels DNS errors as what the user wrote: MatrixStack's dns.<option> without Cloudflare, CloudflareDns with it", () => {
        const dns = (cloudflare: boolean) =>
            args({
                synapse: { serverName: "example.com", publicBaseUrl: "https://matrix.other.org/" },
                dns: { zone: { name: "example.com" }, ipv4: "203.0.113.10", ttl: -5, cloudflare },
            });
        assert.deepEqual(problems(dns(false)).sort(), [
            'MatrixStack "dev": dns.delegation',
            'MatrixStack "dev": dns.ttl',
            'MatrixStack "dev": synapse.publicBaseUrl',
        ]);
        assert.deepEqual(problems(dns(true)).sort(), [
            'CloudflareDns "dev-dns": delegation',
            'CloudflareDns "dev-dns": publicBaseUrl',
            'CloudflareDns "dev-dns": ttl',
        ]);
    });

    it("reports every problem together, across components", () => {
        const p = problems(
            args({
                postgres: { host: {}, external: { host: "db.example.com", database: "synapse", user: "synapse" } },
                workers: { instances: {} },
                redis: { maxMemoryMb: 512 },
                proxy: false,
                element: { domain: "element.example.com", version: "1.11.100", sha256: "a".repeat(64) },
                turn: { domain: "not a name" },
                host: { port: 0 },
            }),
        );
        assert.deepEqual(p.sort(), [
            'Host "dev-host": port',
            'MatrixStack "dev": element',
            'MatrixStack "dev": postgres.host',
            'MatrixStack "dev": postgres.reachableAt',
            'MatrixStack "dev": redis.maxMemoryMb',
            'TurnServer "dev-turn": domain',
            'TurnServer "dev-turn": realm',
        ]);
    });

    it("MatrixStack only constructs from the plan: it imports nothing from src/render or src/provision", () => {
        const source = readFileSync(join(__dirname, "../../components/MatrixStack.ts"), "utf8");
        const imports = [...source.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
        assert.ok(imports.includes("../src/model/stack"));
        assert.deepEqual(
            imports.filter((i) => /src\/(render|provision)\//.test(i)),
            [],
        );
    });

    describe("remote workers: the pool's host checks", () => {
        const synapse = resolveSynapseSettings("s", { serverName: "example.com", replication: { bindAddresses: ["127.0.0.1", "10.0.0.4"] } });
        const pool = resolveWorkerPoolSettings(
            'WorkerPool "w"',
            { instances: [{ role: "federation_reader", host: 'Host "w2"' }, { role: "federation_sender" }] },
            synapse,
            'Host "vm"',
        );

        it("every host of a pool across hosts needs a private address; each one without is reported", () => {
            assert.doesNotThrow(() => checkPoolPrivateAddresses('WorkerPool "w"', pool, () => true));
            assert.throws(
                () => checkPoolPrivateAddresses('WorkerPool "w"', pool, () => false),
                (e: unknown) =>
                    e instanceof ConfigErrors &&
                    e.errors.map((x) => `${x.setting} ${String(x.value)}`).join("; ") === 'instances[1].host Host "vm"; instances[0].host Host "w2"',
            );
            const local = resolveWorkerPoolSettings('WorkerPool "w"', {}, synapse, 'Host "vm"');
            assert.doesNotThrow(() => checkPoolPrivateAddresses('WorkerPool "w"', local, () => false));
        });

        it("what the processes dial must not be on loopback, and replication must listen on the main host's private address", () => {
            const ok = {
                privateAddresses: { 'Host "vm"': "10.0.0.4", 'Host "w2"': "10.0.0.6" },
                replicationBindAddresses: ["127.0.0.1", "10.0.0.4"],
                redisHost: "10.0.0.4",
                redisElsewhere: false,
                databaseHost: "10.0.0.4",
            };
            assert.doesNotThrow(() => checkPoolReachable('WorkerPool "w"', pool, ok));
            assert.throws(
                () =>
                    checkPoolReachable('WorkerPool "w"', pool, {
                        ...ok,
                        redisHost: "127.0.0.1",
                        replicationBindAddresses: ["127.0.0.1"],
                        databaseHost: "localhost",
                    }),
                (e: unknown) =>
                    e instanceof ConfigErrors && e.errors.map((x) => x.setting).join(", ") === "redis, synapse.replication.bindAddresses, synapse.database",
            );
        });
    });
});
