import * as assert from "node:assert/strict";

import * as pulumi from "@pulumi/pulumi";

import { Host } from "../../components/Host";
import { MatrixStack } from "../../components/MatrixStack";
import { PostgresDatabase } from "../../components/PostgresDatabase";
import { RedisServer } from "../../components/RedisServer";
import { SynapseHomeserver } from "../../components/SynapseHomeserver";
import { WorkerPool } from "../../components/WorkerPool";
import { ConfigError } from "../../src/model/errors";
import { resolveSynapseSettings, SynapseSettings } from "../../src/model/synapse";
import {
    DEFAULT_WORKERS,
    nodeExporterHosts,
    resolveWorkerPoolSettings,
    servesRequests,
    WORKER_ROLE_SPECS,
    WORKER_ROLES,
    WORKER_STREAMS,
    workerFirewallRules,
    workerListeners,
    WorkerPoolOptions,
    workerPortClaims,
    WorkerRole,
} from "../../src/model/workers";
import { routeRequest, WORKER_ROUTES } from "../../src/model/workers/routes";
import { workerConfigScript, workerSecretsScript, workerSendersStopScript } from "../../src/provision/workers";
import { sharedWorkerConfig, workerConfig } from "../../src/render/workers";
import {
    renderFederationSendersYaml,
    renderRouteTable,
    renderSharedWorkerYaml,
    renderWorkerList,
    renderWorkerUnit,
    renderWorkerYaml,
} from "../../src/render/workers";
import { golden } from "../support/golden";
import {
    GOLDEN_REMOTE_WORKER_PEERS,
    GOLDEN_WORKER_PEERS,
    goldenRemoteWorkerPool,
    goldenScrapedRemoteWorkerPool,
    goldenWorkerPool,
    goldenWorkerSynapse,
    stackArgs,
    TEST_HOST_KEY,
    TEST_SSH_KEY,
} from "../support/unit/fixtures";
import { GOLDEN_PEERS } from "../support/unit/fixtures";
import { RecordingMocks, runWithMocks, valueOf } from "../support/unit/mocks";
import { twoHostHomeserver } from "../support/unit/twoHosts";

/** The federation paths a generic worker serves, as ../shared/REFERENCE.md lists them (from Synapse's docs/workers.md). */
const REFERENCE_FEDERATION = [
    "^/_matrix/federation/v1/version$",
    "^/_matrix/federation/v1/event/",
    "^/_matrix/federation/v1/state/",
    "^/_matrix/federation/v1/state_ids/",
    "^/_matrix/federation/v1/backfill/",
    "^/_matrix/federation/v1/get_missing_events/",
    "^/_matrix/federation/v1/publicRooms",
    "^/_matrix/federation/v1/query/",
    "^/_matrix/federation/v1/make_join/",
    "^/_matrix/federation/v1/make_leave/",
    "^/_matrix/federation/(v1|v2)/send_join/",
    "^/_matrix/federation/(v1|v2)/send_leave/",
    "^/_matrix/federation/v1/make_knock/",
    "^/_matrix/federation/v1/send_knock/",
    "^/_matrix/federation/(v1|v2)/invite/",
    "^/_matrix/federation/v1/event_auth/",
    "^/_matrix/federation/v1/timestamp_to_event/",
    "^/_matrix/federation/v1/exchange_third_party_invite/",
    "^/_matrix/federation/v1/user/devices/",
    "^/_matrix/key/v2/query",
    "^/_matrix/federation/v1/hierarchy/",
    "^/_matrix/federation/v1/send/",
];

const synapse = () => goldenWorkerSynapse();
const pool = (o: WorkerPoolOptions, s: SynapseSettings = synapse()) => resolveWorkerPoolSettings('WorkerPool "p"', o, s, 'Host "vm"');
const only =
    (...roles: WorkerRole[]) =>
    (r: WorkerRole) =>
        roles.includes(r);

describe("the route table (WORKER_ROUTES)", () => {
    it("every regex compiles and matches each of its examples", () => {
        for (const r of WORKER_ROUTES) {
            const re = new RegExp(r.pattern);
            assert.ok(r.pattern.startsWith("^/"), r.pattern);
            assert.ok(r.examples.length > 0, `${r.pattern} has no example`);
            for (const e of r.examples) assert.match(e, re, `${r.pattern} does not match its example ${e}`);
        }
    });

    it("no route is shadowed by an earlier one in nginx's first-match order", () => {
        for (const [i, r] of WORKER_ROUTES.entries()) {
            for (const e of r.examples) {
                const first = WORKER_ROUTES.findIndex((x) => new RegExp(x.pattern).test(e));
                assert.equal(
                    first,
                    i,
                    `${e} (${r.pattern}, ${r.targets[0].role}) is taken by ${WORKER_ROUTES[first].pattern} (${WORKER_ROUTES[first].targets[0].role})`,
                );
            }
        }
        const patterns = WORKER_ROUTES.map((r) => r.pattern);
        assert.deepEqual(
            patterns.filter((p, i) => patterns.indexOf(p) !== i),
            [],
            "a pattern is listed twice",
        );
    });

    it("has every federation path a federation reader serves, each routed to federation_reader", () => {
        for (const p of REFERENCE_FEDERATION) {
            const route = WORKER_ROUTES.find((r) => r.pattern === p);
            assert.ok(route, `missing ${p}`);
            assert.deepEqual(
                route.targets.map((t) => t.role),
                ["federation_reader"],
                p,
            );
        }
        assert.deepEqual(
            WORKER_ROUTES.filter((r) => r.targets.some((t) => t.role === "federation_reader"))
                .map((r) => r.pattern)
                .sort(),
            [...REFERENCE_FEDERATION].sort(),
        );
    });

    it("sticks inbound transactions by source IP, sync by user, event sending and /messages by room, SSO to one process", () => {
        const sticky = (path: string) => routeRequest(path, "GET", () => true).route?.sticky;
        assert.equal(sticky("/_matrix/federation/v1/send/123"), "source_ip");
        assert.equal(sticky("/_matrix/federation/v1/state/!r:example.com"), "none");
        assert.equal(sticky("/_matrix/client/v3/sync"), "user");
        assert.equal(sticky("/_matrix/client/r0/initialSync"), "user");
        assert.equal(sticky("/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"), "user");
        assert.equal(sticky("/_matrix/client/v3/rooms/!r:example.com/send/m.room.message/1"), "room");
        assert.equal(sticky("/_matrix/client/v3/rooms/!r:example.com/messages"), "room");
        assert.equal(sticky("/_matrix/client/v3/login/sso/redirect"), "single");
        assert.equal(sticky("/_synapse/client/oidc/callback"), "single");
    });

    it("sends stream writers' paths to their writer, roles without workers fall back in order, then to the main process", () => {
        const typing = "/_matrix/client/v3/rooms/!r:example.com/typing/@u:example.com";
        assert.equal(routeRequest(typing, "PUT", only("typing", "client_reader")).role, "typing");
        assert.equal(routeRequest(typing, "PUT", only("client_reader")).role, "main");
        const devices = "/_matrix/client/v3/devices/ABC";
        assert.equal(routeRequest(devices, "PUT", only("device_lists", "client_reader")).role, "device_lists");
        assert.equal(routeRequest(devices, "PUT", only("client_reader")).role, "client_reader");
        // Push rules: the writer takes every method; a client reader only reads.
        const rules = "/_matrix/client/v3/pushrules/global/override/x";
        assert.equal(routeRequest(rules, "PUT", only("client_reader")).role, "main");
        assert.equal(routeRequest(rules, "GET", only("client_reader")).role, "client_reader");
        assert.equal(routeRequest(rules, "PUT", only("push_rules", "client_reader")).role, "push_rules");
        assert.equal(routeRequest("/_matrix/federation/v1/version", "GET", only()).role, "main");
        assert.equal(routeRequest("/_synapse/admin/v1/register", "GET", () => true).role, "main");
        assert.equal(routeRequest("/_matrix/media/v3/upload", "POST", only("media_repository")).role, "media_repository");
    });

    it("sends native sliding sync (Element X) to a sync worker when the pool has one, else to the main process", () => {
        const sliding = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync";
        assert.equal(routeRequest(sliding, "POST", only("synchrotron", "client_reader")).role, "synchrotron");
        assert.equal(routeRequest(sliding, "POST", only("client_reader")).role, "main");
    });

    it("routes only to roles whose listener serves requests, and every such role has routes", () => {
        const routed = new Set(WORKER_ROUTES.flatMap((r) => r.targets.map((t) => t.role)));
        for (const role of routed) assert.ok(servesRequests(role), `${role} has routes but no request listener`);
        for (const role of WORKER_ROLES.filter(servesRequests)) assert.ok(routed.has(role), `${role} serves requests but has no route`);
        // Federation paths go to the federation resource, media to media, the rest to client.
        for (const r of WORKER_ROUTES) {
            for (const t of r.targets) {
                const res = WORKER_ROLE_SPECS[t.role].resources;
                assert.ok(res.length > 0, `${t.role}`);
            }
        }
    });
});

/** The streams of Synapse's WriterLocations (synapse/config/workers.py, 1.152 and later). */
const SYNAPSE_STREAMS = [
    "events",
    "typing",
    "to_device",
    "account_data",
    "receipts",
    "presence",
    "push_rules",
    "device_lists",
    "thread_subscriptions",
    "quarantined_media_changes",
];

describe("stream writers", () => {
    it("knows every stream Synapse has, with Synapse's writer counts", () => {
        assert.deepEqual(Object.keys(WORKER_STREAMS).sort(), [...SYNAPSE_STREAMS].sort());
        for (const role of WORKER_ROLES)
            for (const stream of WORKER_ROLE_SPECS[role].streams ?? [])
                if (WORKER_STREAMS[stream] === "one")
                    assert.equal(WORKER_ROLE_SPECS[role].instances, "one", `${role} writes ${stream}, which takes one writer`);
    });

    it("quarantine_media is served by a writer of quarantined_media_changes (Synapse 1.152+), or by the main process", () => {
        const quarantine = "/_synapse/admin/v1/quarantine_media/example.com/abc";
        assert.equal(routeRequest(quarantine, "POST", () => true).route?.writes, "quarantined_media_changes");
        assert.equal(routeRequest(quarantine, "POST", only()).role, "main");
    });

    it("every worker that serves a route whose server must write a stream is that stream's writer, in instance_map, with a replication listener", () => {
        const needing = WORKER_ROUTES.filter((r) => r.writes);
        assert.ok(needing.length > 0);
        for (const route of needing) {
            for (const target of route.targets) {
                const p = pool({ instances: { [target.role]: WORKER_ROLE_SPECS[target.role].instances === "many" ? 2 : 1 } });
                for (const e of route.examples)
                    for (const method of target.methods ?? (["GET", "POST", "PUT", "DELETE"] as const))
                        assert.equal(routeRequest(e, method, only(target.role)).role, target.role, `${method} ${e}`);
                const config = sharedWorkerConfig(p, synapse(), GOLDEN_WORKER_PEERS) as {
                    stream_writers?: Record<string, string[]>;
                    instance_map: Record<string, { port: number }>;
                };
                const names = p.workers.map((w) => w.name);
                assert.deepEqual(config.stream_writers?.[route.writes!], names, `${route.pattern}: ${target.role} must write ${route.writes}`);
                for (const w of p.workers) {
                    assert.equal(config.instance_map[w.name]?.port, w.replicationPort, `${w.name} in instance_map`);
                    const listeners = workerConfig(p, w, synapse(), GOLDEN_WORKER_PEERS).worker_listeners as { resources?: { names: string[] }[] }[];
                    assert.ok(
                        listeners.some((l) => l.resources?.some((r) => r.names.includes("replication"))),
                        `${w.name} has a replication listener`,
                    );
                }
            }
        }
    });
});

describe("WorkerPool settings: Synapse's rules, with errors naming the setting, the value and what is valid", () => {
    it("defaults to one federation_reader and one federation_sender, on stable default ports", () => {
        const s = pool({});
        assert.deepEqual(DEFAULT_WORKERS, { federation_reader: 1, federation_sender: 1 });
        assert.deepEqual(
            s.workers.map((w) => [w.name, w.role, w.port, w.metricsPort, w.replicationPort]),
            [
                ["federation_reader1", "federation_reader", 8100, 10100, undefined],
                ["federation_sender1", "federation_sender", 8120, 10120, undefined],
            ],
        );
        // A role's ports stay where they are when another role's count changes.
        assert.equal(pool({ instances: { federation_reader: 5, federation_sender: 1 } }).workers.find((w) => w.role === "federation_sender")!.port, 8120);
        assert.equal(pool({ instances: { typing: 1 } }).workers[0].replicationPort, 9320);
    });

    it("accepts every role; several instances where Synapse shares the work (receipts and device_lists have several writers)", () => {
        const all = Object.fromEntries(WORKER_ROLES.map((r) => [r, WORKER_ROLE_SPECS[r].instances === "many" ? 2 : 1]));
        const s = pool({ instances: all });
        assert.equal(s.workers.length, WORKER_ROLES.length + WORKER_ROLES.filter((r) => WORKER_ROLE_SPECS[r].instances === "many").length);
        assert.equal(WORKER_ROLE_SPECS.receipts.instances, "many");
        assert.equal(WORKER_ROLE_SPECS.device_lists.instances, "many");
        assert.equal(WORKER_ROLE_SPECS.event_persister.instances, "many");
        for (const r of ["typing", "to_device", "account_data", "presence", "push_rules", "background", "user_dir", "appservice"] as const)
            assert.equal(WORKER_ROLE_SPECS[r].instances, "one", r);
    });

    it("refuses a second instance of a role Synapse takes one of", () => {
        assert.throws(
            () => pool({ instances: { typing: 2 } }),
            /WorkerPool "p": instances\.typing is 2; expected 0 or 1: Synapse takes exactly one typing worker \(stream_writers\.typing\)/,
        );
        assert.throws(
            () => pool({ instances: [{ role: "background" }, { role: "background", name: "bg" }] }),
            /instances\[1\]\.count is 1; instances\[0\] already has the background worker; Synapse takes exactly one \(run_background_tasks_on\)/,
        );
    });

    it("refuses duplicate names, reserved and malformed names, unknown roles", () => {
        assert.throws(
            () =>
                pool({
                    instances: [
                        { role: "federation_reader", name: "fed" },
                        { role: "federation_sender", name: "fed" },
                    ],
                }),
            /instances\[1\] is "fed"; the worker name fed is already used by instances\[0\]; worker names must be unique/,
        );
        assert.throws(
            () => pool({ instances: [{ role: "client_reader", name: "main" }] }),
            /instances\[0\]\.name is "main"; expected a worker name .* other than main and master/,
        );
        assert.throws(() => pool({ instances: [{ role: "client_reader", name: "Bad-Name" }] }), /instances\[0\]\.name is "Bad-Name"/);
        assert.throws(
            () => pool({ instances: { federation_writer: 1 } as never }),
            /instances\.federation_writer is "federation_writer"; expected a role: one of federation_reader, /,
        );
        assert.throws(
            () => pool({ instances: [{ role: "frontend_proxy" as WorkerRole }] }),
            /instances\[0\]\.role is "frontend_proxy"; expected one of "federation_reader"/,
        );
        assert.throws(() => pool({ instances: { federation_reader: -1 } }), /instances\.federation_reader is -1; expected a whole number from 0 to 500/);
    });

    it("still takes the former option name workers (deprecated), naming it in errors; both at once is refused", () => {
        assert.deepEqual(
            pool({ workers: { federation_reader: 2 } }).workers.map((w) => w.name),
            pool({ instances: { federation_reader: 2 } }).workers.map((w) => w.name),
        );
        assert.throws(() => pool({ workers: { typing: 2 } }), /WorkerPool "p": workers\.typing is 2; expected 0 or 1/);
        assert.throws(
            () => pool({ instances: { federation_reader: 1 }, workers: { federation_reader: 1 } }),
            /^ConfigError: WorkerPool "p": workers is \{"federation_reader":1\}; expected instances alone: workers is its former name; keep instances$/,
        );
    });

    it("refuses ports that clash within the pool or do not fit", () => {
        assert.throws(
            () =>
                pool({
                    instances: [
                        { role: "federation_reader", port: 9000 },
                        { role: "client_reader", port: 9000 },
                    ],
                }),
            /WorkerPool "p": instances\[1\]\.port is 9000; WorkerPool "p" \(worker federation_reader1 http listener\) already uses tcp port 9000/,
        );
        assert.throws(
            () => pool({ instances: [{ role: "federation_reader", port: 65000 }] }),
            /instances\[0\]\.port is 65000; worker federation_reader1's listeners would reach port 67000 .*expected HTTP ports that keep every listener at or below 65535/,
        );
        assert.throws(
            () => pool({ basePort: 64000, workers: { typing: 1 } }),
            /basePort is 64000; worker typing1's listeners would reach port 66220 .*expected a basePort that keeps every listener at or below 65535, e.g\. 8100/,
        );
        assert.throws(
            () => pool({ instances: { federation_reader: 21 } }),
            /instances\.federation_reader is 21; with default ports a role has room for 20 workers \(8100-8119\)/,
        );
        assert.throws(() => pool({ basePort: 0 }), /basePort is 0; expected a whole number from 1 to 65535/);
    });

    it("refuses workers Synapse cannot have: SQLite, no replication listener, extraConfig of the pool's options; media workers on two hosts", () => {
        const base = { serverName: "example.com", replication: {} };
        assert.throws(
            () => pool({}, resolveSynapseSettings("s", { ...base, sqlite: {} })),
            /instances is \["federation_reader1","federation_sender1"\]; workers need PostgreSQL/,
        );
        assert.throws(
            () => pool({}, resolveSynapseSettings("s", { serverName: "example.com" })),
            /synapse\.replication is not set; workers need the main process's replication listener/,
        );
        assert.throws(
            () => pool({}, resolveSynapseSettings("s", { ...base, extraConfig: { instance_map: {} } })),
            /synapse\.extraConfig is \["instance_map"\]; instance_map is written by the WorkerPool/,
        );
        assert.throws(
            () => pool({ instances: [{ role: "media_repository" }, { role: "media_repository", name: "m2", host: 'Host "w2"' }] }),
            /instances\[1\]\.host is "Host \\"w2\\""; media_repository workers must all run on one host/,
        );
        assert.doesNotThrow(() => pool({ instances: {} }, resolveSynapseSettings("s", { serverName: "example.com", sqlite: {} })));
    });
});

describe("the shared worker config", () => {
    const s = goldenWorkerPool();
    const config = sharedWorkerConfig(s, synapse(), GOLDEN_WORKER_PEERS);

    it("has instance_map with the main process and every stream writer, redis with password_path, the replication secret's path", () => {
        assert.deepEqual(config.instance_map, {
            main: { host: "127.0.0.1", port: 9093 },
            event_persister1: { host: "127.0.0.1", port: 9200 },
            media_repository1: { host: "127.0.0.1", port: 9220 },
            typing1: { host: "127.0.0.1", port: 9320 },
        });
        assert.deepEqual(config.redis, { enabled: true, host: "127.0.0.1", port: 6379, password_path: "/etc/matrix-synapse/secrets/redis_password" });
        assert.equal(config.worker_replication_secret_path, "/etc/matrix-synapse/secrets/worker_replication_secret");
        assert.deepEqual(config.stream_writers, {
            events: ["event_persister1"],
            quarantined_media_changes: ["media_repository1"],
            typing: ["typing1"],
        });
        assert.equal(config.run_background_tasks_on, "background1");
        assert.equal(config.media_instance_running_background_jobs, "media_repository1");
        assert.equal(config.enable_media_repo, false);
        // The media worker turns its own media repository back on.
        assert.equal(
            workerConfig(
                s,
                s.workers.find((w) => w.role === "media_repository")!,
                synapse(),
                GOLDEN_WORKER_PEERS,
            ).enable_media_repo,
            true,
        );
    });

    it("names pushers, the user directory and appservice workers; TLS and a CA for an external Redis", () => {
        const p = pool({ instances: { pusher: 2, user_dir: 1, appservice: 1 } });
        const c = sharedWorkerConfig(p, synapse(), {
            ...GOLDEN_WORKER_PEERS,
            redis: { host: "redis.example.com", port: 6380, tls: true, user: "synapse", caCertificate: "PEM" },
        });
        assert.deepEqual(c.pusher_instances, ["pusher1", "pusher2"]);
        assert.equal(c.update_user_directory_from_worker, "user_dir1");
        assert.equal(c.notify_appservices_from_worker, "appservice1");
        assert.deepEqual(c.redis, {
            enabled: true,
            host: "redis.example.com",
            port: 6380,
            username: "synapse",
            password_path: "/etc/matrix-synapse/secrets/redis_password",
            use_tls: true,
            ca_file: "/etc/matrix-synapse/redis-ca.pem",
        });
    });

    it("uses no key current Synapse refuses, and the generic worker app only", () => {
        const text = JSON.stringify([config, ...s.workers.map((w) => workerConfig(s, w, synapse(), GOLDEN_WORKER_PEERS))]);
        for (const refused of ["worker_replication_host", "worker_replication_http_port", "worker_replication_port", "send_federation", "worker_daemonize"])
            assert.ok(!text.includes(refused), refused);
        assert.deepEqual([...new Set(s.workers.map((w) => workerConfig(s, w, synapse(), GOLDEN_WORKER_PEERS).worker_app))], ["synapse.app.generic_worker"]);
    });

    it("across hosts: instance_map on private addresses, replication opened to the pool's hosts only, requests to Synapse's host only", () => {
        const r = goldenRemoteWorkerPool();
        const c = sharedWorkerConfig(r, synapse(), GOLDEN_REMOTE_WORKER_PEERS);
        assert.deepEqual(c.instance_map, { main: { host: "10.0.0.4", port: 9093 }, event_persister1: { host: "10.0.0.6", port: 9200 } });
        const addr = (h: string) => GOLDEN_REMOTE_WORKER_PEERS.privateAddresses[h];
        assert.deepEqual(
            workerFirewallRules(r, 'Host "vm"', addr, 9093).map((x) => [x.port, x.sources]),
            [[9093, ["10.0.0.6/32"]]],
        );
        assert.deepEqual(
            workerFirewallRules(r, 'Host "w2"', addr, 9093).map((x) => [x.port, x.sources]),
            [
                [8100, ["10.0.0.4/32"]],
                [8101, ["10.0.0.4/32"]],
                [9200, ["10.0.0.4/32"]],
            ],
        );
        assert.deepEqual(workerFirewallRules(goldenWorkerPool(), 'Host "vm"', addr, 9093), []);
    });
});

describe("a worker's request listener trusts X-Forwarded-For: never on every address (issue 19, bind addresses)", () => {
    for (const wildcard of ["0.0.0.0", "::"])
        it(`a pool host whose private address is ${wildcard} is refused, naming the host`, () => {
            const peers = { ...GOLDEN_REMOTE_WORKER_PEERS, privateAddresses: { ...GOLDEN_REMOTE_WORKER_PEERS.privateAddresses, 'Host "w2"': wildcard } };
            const r = goldenRemoteWorkerPool();
            const reader = r.workers.find((w) => w.role === "federation_reader")!;
            assert.throws(
                () => workerConfig(r, reader, synapse(), peers),
                (e: unknown) =>
                    e instanceof ConfigError &&
                    e.component === 'Host "w2"' &&
                    e.setting === "privateAddress" &&
                    /request listener binds it and trusts the X-Forwarded-For header/.test(e.message),
            );
        });
    it("the main listener: httpBindAddresses 0.0.0.0 or :: is refused; a private address is not", () => {
        for (const wildcard of ["0.0.0.0", "::"])
            assert.throws(
                () => resolveSynapseSettings("S", { serverName: "example.com", httpBindAddresses: ["127.0.0.1", wildcard] }),
                /httpBindAddresses is "(0\.0\.0\.0|::)"; .*X-Forwarded-For/,
            );
        assert.doesNotThrow(() => resolveSynapseSettings("S", { serverName: "example.com", httpBindAddresses: ["127.0.0.1", "10.0.0.4"] }));
    });
});

describe("RedisServer and WorkerPool as components", () => {
    const host = () => new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
    const synapseOn = (h: Host, extra: object = {}) =>
        new SynapseHomeserver("synapse", { host: h, database: new PostgresDatabase("pg", { host: h }), serverName: "example.com", replication: {}, ...extra });

    it("the default stack has Redis, one federation reader and one federation sender; their scripts run after Synapse's", async () => {
        const { mocks, result } = await runWithMocks(
            () => new MatrixStack("prod", stackArgs()),
            (s) => [s.synapse.signingKeyId, s.workers!.upstreams],
        );
        const seq = (n: string) => mocks.byName(n).seq;
        for (const n of ["prod-redis-server", "prod-redis-secrets", "prod-workers-secrets", "prod-workers-config"])
            assert.ok(
                mocks.resources.some((r) => r.name === n),
                n,
            );
        assert.ok(seq("prod-redis-server") < seq("prod-redis-secrets"));
        assert.ok(seq("prod-redis-secrets") < seq("prod-workers-secrets"));
        assert.ok(seq("prod-synapse-config") < seq("prod-workers-secrets"));
        assert.ok(seq("prod-workers-secrets") < seq("prod-workers-config"));
        assert.deepEqual(
            result.workers!.settings.workers.map((w) => w.name),
            ["federation_reader1", "federation_sender1"],
        );
        assert.deepEqual(await valueOf(result.workers!.upstreams), [{ name: "federation_reader1", role: "federation_reader", url: "http://127.0.0.1:8100" }]);
        const hs = String(mocks.byName("prod-synapse-config").inputs.stdin);
        assert.match(hs, /- port: 9093\n {4}bind_addresses:\n {6}- 127\.0\.0\.1\n {4}type: http\n {4}resources:\n {6}- names:\n {10}- replication/);
        const config = String(mocks.byName("prod-workers-config").inputs.stdin);
        assert.match(config, /federation_sender_instances:\n {2}- federation_sender1/);
        assert.match(config, /password_path: \/etc\/matrix-synapse\/secrets\/redis_password/);
        // Secrets travel only in the secret commands.
        assert.ok(mocks.byName("prod-workers-secrets").secretInputs.includes("stdin"));
        assert.equal(mocks.byName("prod-workers-secrets").inputs.logging, "none");
        assert.ok(mocks.byName("prod-redis-secrets").secretInputs.includes("stdin"));
        assert.doesNotMatch(String(mocks.byName("prod-redis-server").inputs.stdin), /requirepass [A-Za-z0-9]/);
    });

    it("a change of workers re-runs only the pool's config command and nginx's (its upstreams)", async () => {
        const stdin = async (args: ReturnType<typeof stackArgs>) => {
            const { mocks } = await runWithMocks(
                () => new MatrixStack("prod", args),
                (s) => [s.synapse.signingKeyId],
            );
            return Object.fromEntries(mocks.resources.filter((r) => r.type === "command:remote:Command").map((r) => [r.name, String(r.inputs.stdin)]));
        };
        const before = await stdin(stackArgs());
        const after = await stdin({ ...stackArgs(), workers: { instances: { federation_reader: 2, federation_sender: 1 } } });
        assert.deepEqual(
            Object.keys(after).filter((k) => after[k] !== before[k]),
            ["prod-proxy-nginx", "prod-workers-config"],
        );
        assert.match(after["prod-proxy-nginx"], /upstream pm_federation_reader \{\n {4}server 127\.0\.0\.1:8100;\n {4}server 127\.0\.0\.1:8101;/);
    });

    it("without workers ({}), no Redis and no replication listener; the pool only removes an earlier pool's files", async () => {
        const { mocks } = await runWithMocks(
            () => new MatrixStack("prod", { ...stackArgs(), workers: { instances: {} } }),
            (s) => [s.synapse.signingKeyId],
        );
        assert.ok(!mocks.resources.some((r) => r.name.startsWith("prod-redis")));
        assert.ok(!mocks.resources.some((r) => r.name === "prod-workers-secrets"));
        assert.doesNotMatch(String(mocks.byName("prod-synapse-config").inputs.stdin), /replication/);
        assert.match(String(mocks.byName("prod-workers-config").inputs.stdin), /^pm_prune workers-shared$/m);
        const sqlite = await runWithMocks(
            () => new MatrixStack("lite", { ...stackArgs({ sqlite: {} }), postgres: undefined }),
            (s) => [s.synapse.signingKeyId],
        );
        assert.ok(!sqlite.mocks.resources.some((r) => /workers|redis/.test(r.name)), "SQLite: no workers by default");
    });

    it("bad input fails before anything is built: no Redis, a port taken on the host, Redis settings without workers, workers with SQLite", async () => {
        await runWithMocks(() => {
            const h = host();
            const s = synapseOn(h);
            assert.throws(
                () => new WorkerPool("w", { synapse: s }),
                /WorkerPool "w": redis is not set; workers talk to each other through Redis: give the WorkerPool a RedisServer/,
            );
            const redis = new RedisServer("r", { host: h });
            assert.throws(
                () => new WorkerPool("w2", { synapse: s, redis, instances: [{ role: "federation_reader", port: 5432 }] }),
                /WorkerPool "w2": instances\[0\]\.port is 5432; PostgresDatabase "pg" \(postgresql\) already uses tcp port 5432 on 127\.0\.0\.1 of Host "vm"; choose another port/,
            );
            assert.throws(() => new RedisServer("r2", { host: h }), /RedisServer "r2": port is 6379; RedisServer "r" \(redis\) already uses tcp port 6379/);
            assert.throws(
                () => new RedisServer("r3", { host: h, external: { host: "redis.example.com" } }),
                /RedisServer "r3": host is set together with external; choose one/,
            );
        });
        assert.throws(
            () => new MatrixStack("x", { ...stackArgs(), workers: { instances: {} }, redis: { maxMemoryMb: 512 } }),
            /MatrixStack "x": redis\.maxMemoryMb is set; Redis serves only Synapse's workers, and there are none/,
        );
        assert.throws(
            () => new MatrixStack("y", { ...stackArgs({ sqlite: {} }), postgres: undefined, workers: { instances: { federation_reader: 1 } } }),
            /WorkerPool "y-workers": instances is \["federation_reader1"\]; workers need PostgreSQL/,
        );
        assert.throws(
            () => new MatrixStack("z", { ...stackArgs(), workers: { instances: { federation_reader: 1, federation_sender: 1 }, basePort: 5432 } }),
            /WorkerPool "z-workers": workers\.basePort is 5432; it puts the worker federation_reader1 http listener at port 5432, where PostgresDatabase "z-postgres" \(postgresql\) already uses tcp port 5432 on 127\.0\.0\.1 of Host "z-host"/,
        );
    });

    it("a worker on another host needs both hosts' private addresses; then Synapse is installed there and replication is opened to the pool only", async () => {
        await runWithMocks(() => {
            const h = host();
            const w2 = new Host("w2", { host: "203.0.113.11", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const s = synapseOn(h);
            const redis = new RedisServer("r", { host: h });
            assert.throws(
                () => new WorkerPool("w", { synapse: s, redis, instances: [{ role: "federation_reader", host: w2 }] }),
                /WorkerPool "w": synapse is "Host \\"vm\\""; workers on other hosts than Synapse's reach each other over a private network: give Host "vm" a privateAddress/,
            );
            const h2 = new Host("vm2", { host: "203.0.113.12", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY, privateAddress: "10.0.0.4" });
            const s2 = new SynapseHomeserver("synapse2", {
                host: h2,
                database: new PostgresDatabase("pg2", { host: h2 }),
                serverName: "example.com",
                replication: {},
            });
            assert.throws(
                () => new WorkerPool("w3", { synapse: s2, redis: new RedisServer("r2", { host: h2 }), instances: [{ role: "federation_reader", host: w2 }] }),
                /WorkerPool "w3": instances\[0\]\.host is "Host \\"w2\\""; workers on other hosts than Synapse's reach each other over a private network: give Host "w2" a privateAddress/,
            );
        });
        const { mocks } = await runWithMocks(
            () => {
                const { w2, synapse: s, redis } = twoHostHomeserver();
                return new WorkerPool("w", {
                    synapse: s,
                    redis,
                    instances: [{ role: "federation_sender" }, { role: "federation_reader", count: 2, host: w2 }],
                });
            },
            (p) => [p.upstreams],
        );
        const names = mocks.resources.filter((r) => r.type === "command:remote:Command").map((r) => r.name);
        for (const n of ["w-w2-install", "w-w2-synapse-secrets", "w-w2-senders", "w-w2-secrets", "w-w2-config", "w-secrets", "w-config"])
            assert.ok(names.includes(n), n);
        const seq = (n: string) => mocks.byName(n).seq;
        assert.ok(seq("w-w2-senders") < seq("w-config"), "remote senders stop before the main host's config");
        assert.ok(seq("w-config") < seq("w-w2-config"), "the main host first");
        assert.equal((mocks.byName("w-w2-config").inputs.connection as { host: string }).host, "203.0.113.11");
        const remote = String(mocks.byName("w-w2-config").inputs.stdin);
        assert.match(remote, /add rule inet pulumi_matrix input ip saddr \{ 10\.0\.0\.4\/32 \} tcp dport 8100 accept/);
        assert.match(remote, /systemctl disable --now -q matrix-synapse\.service/);
        assert.match(String(mocks.byName("w-config").inputs.stdin), /add rule inet pulumi_matrix input ip saddr \{ 10\.0\.0\.6\/32 \} tcp dport 9093 accept/);
        assert.match(String(mocks.byName("w-config").inputs.stdin), /instance_map:\n {2}main:\n {4}host: 10\.0\.0\.4/);
        assert.ok(mocks.byName("w-w2-synapse-secrets").secretInputs.includes("stdin"));
    });

    it("across hosts, Redis, PostgreSQL and the replication listener on loopback are refused once the addresses are known", async () => {
        const mocks = new RecordingMocks();
        await pulumi.runtime.setMocks(mocks, "matrix", "test", false);
        const h = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY, privateAddress: "10.0.0.4" });
        const w2 = new Host("w2", { host: "203.0.113.11", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY, privateAddress: "10.0.0.6" });
        const s = new SynapseHomeserver("synapse", { host: h, database: new PostgresDatabase("pg", { host: h }), serverName: "example.com", replication: {} });
        const pool = new WorkerPool("w", { synapse: s, redis: new RedisServer("r", { host: h }), instances: [{ role: "federation_reader", host: w2 }] });
        await assert.rejects(
            valueOf(pool.upstreams),
            /WorkerPool "w": redis is "127\.0\.0\.1"; Synapse processes on other hosts than Redis's cannot reach it on loopback/,
        );
    });
});

describe("workers' metrics scraped from another host (metricsScrapedFrom, issue 23)", () => {
    const addr = (h: string) => GOLDEN_REMOTE_WORKER_PEERS.privateAddresses[h];
    const metricsOf = (s: ReturnType<typeof goldenRemoteWorkerPool>) =>
        s.workers.map((w) => `${w.name}@${workerListeners(s, w, addr).find((l) => l.purpose === "metrics")!.address}`);

    it("workers on other hosts bind their metrics listener to their private address; those on the scraping host keep loopback", () => {
        assert.deepEqual(metricsOf(goldenScrapedRemoteWorkerPool()), [
            "federation_sender1@127.0.0.1",
            "federation_reader1@10.0.0.6",
            "federation_reader2@10.0.0.6",
            "event_persister1@10.0.0.6",
        ]);
        // Without it every metrics listener stays on loopback, wherever the worker runs.
        assert.ok(metricsOf(goldenRemoteWorkerPool()).every((m) => m.endsWith("@127.0.0.1")));
        const yaml = renderWorkerYaml(
            goldenScrapedRemoteWorkerPool(),
            goldenScrapedRemoteWorkerPool().workers[1],
            goldenWorkerSynapse(),
            GOLDEN_REMOTE_WORKER_PEERS,
        );
        assert.match(yaml, /- type: metrics\n {4}port: 10100\n {4}bind_addresses:\n {6}- 10\.0\.0\.6\n/);
    });

    it("the worker host's firewall opens each metrics port to the scraping host's address alone; Synapse's host opens nothing more", () => {
        const s = goldenScrapedRemoteWorkerPool();
        assert.deepEqual(
            workerFirewallRules(s, 'Host "w2"', addr, 9093).map((x) => [x.owner, x.port, x.sources]),
            [
                ["worker federation_reader1 requests", 8100, ["10.0.0.4/32"]],
                ["worker federation_reader1 metrics", 10100, ["10.0.0.4/32"]],
                ["worker federation_reader2 requests", 8101, ["10.0.0.4/32"]],
                ["worker federation_reader2 metrics", 10101, ["10.0.0.4/32"]],
                ["worker event_persister1 replication", 9200, ["10.0.0.4/32"]],
                ["worker event_persister1 metrics", 10200, ["10.0.0.4/32"]],
                // The host's node exporter (its disks and failed units), to the same host alone.
                ["node exporter", 9100, ["10.0.0.4/32"]],
            ],
        );
        assert.deepEqual(
            workerFirewallRules(s, 'Host "vm"', addr, 9093).map((x) => x.owner),
            ["synapse replication"],
        );
        // Taken away again: no metrics or node exporter opening on any host.
        for (const h of ['Host "vm"', 'Host "w2"'])
            assert.ok(workerFirewallRules(goldenRemoteWorkerPool(), h, addr, 9093).every((r) => !r.owner.endsWith("metrics") && r.owner !== "node exporter"));
    });

    it("a worker host whose metrics are scraped runs the node exporter on its private address; Synapse's host leaves its own to monitoring", () => {
        const s = goldenScrapedRemoteWorkerPool();
        assert.deepEqual(nodeExporterHosts(s), ['Host "w2"']);
        assert.deepEqual(nodeExporterHosts(goldenRemoteWorkerPool()), []);
        // A Prometheus outside the pool: Synapse's host's workers bind their private address, but its node is not the pool's.
        assert.deepEqual(nodeExporterHosts({ ...s, metricsScrapedFrom: 'Host "mon"' }), ['Host "w2"']);
        assert.deepEqual(nodeExporterHosts({ ...s, metricsScrapedFrom: 'Host "mon"', workers: s.workers.filter((w) => w.host === 'Host "vm"') }), []);
        assert.ok(workerPortClaims(s, 'Host "w2"', addr).some((c) => c.port === 9100 && c.address === "10.0.0.6" && c.owner.startsWith("node exporter")));
        assert.ok(!workerPortClaims(s, 'Host "vm"', addr).some((c) => c.port === 9100));
        const peers = GOLDEN_REMOTE_WORKER_PEERS;
        const synapse = { ...goldenWorkerSynapse(), replication: { port: 9093, bindAddresses: ["127.0.0.1", "10.0.0.4"] } };
        const o = { component: "golden", synapsePeers: GOLDEN_PEERS };
        const there = workerConfigScript(s, synapse, 'Host "w2"', peers, o);
        assert.match(there, /pm_apt_install prometheus-node-exporter/);
        assert.match(there, /pm_write workers-node-exporter \/etc\/default\/prometheus-node-exporter /);
        assert.match(there, /ARGS="--web\.listen-address=10\.0\.0\.6:9100 --collector\.systemd --collector\.systemd\.unit-include=\(pulumi-\)\?matrix-\.\+ /);
        assert.match(there, /http:\/\/10\.0\.0\.6:9100\/metrics/);
        assert.doesNotMatch(workerConfigScript(s, synapse, 'Host "vm"', peers, o), /node-exporter/);
        // metricsScrapedFrom removed: the set the pool wrote goes, and the exporter is stopped and disabled.
        const removed = workerConfigScript(goldenRemoteWorkerPool(), synapse, 'Host "w2"', peers, o);
        assert.doesNotMatch(removed, /pm_apt_install prometheus-node-exporter/);
        assert.match(removed, /systemctl disable -q --now prometheus-node-exporter\.service/);
    });

    it("a Prometheus on a host outside the pool: even workers on Synapse's host bind their private address, opened to it alone", () => {
        const s = resolveWorkerPoolSettings("P", { instances: { federation_reader: 1 }, metricsScrapedFrom: 'Host "mon"' }, goldenWorkerSynapse(), 'Host "vm"');
        const a = (h: string) => ({ 'Host "vm"': "10.0.0.4", 'Host "mon"': "10.0.0.9" })[h]!;
        assert.deepEqual(
            workerListeners(s, s.workers[0], a).map((l) => `${l.purpose}@${l.address}:${l.port}`),
            ["requests@127.0.0.1:8100", "metrics@10.0.0.4:10100"],
        );
        assert.deepEqual(workerFirewallRules(s, 'Host "vm"', a, 9093), [
            { port: 10100, protocol: "tcp", sources: ["10.0.0.9/32"], owner: "worker federation_reader1 metrics" },
        ]);
        assert.deepEqual(
            workerPortClaims(s, 'Host "vm"', a).map((c) => `${c.owner}@${c.address}:${c.port}`),
            ["worker federation_reader1 http listener@127.0.0.1:8100", "worker federation_reader1 metrics listener@10.0.0.4:10100"],
        );
    });

    for (const wildcard of ["0.0.0.0", "::"])
        it(`a worker host whose private address is ${wildcard} is refused for the metrics listener too, naming the host`, () => {
            const s = goldenScrapedRemoteWorkerPool();
            const sender = resolveWorkerPoolSettings(
                "P",
                { instances: [{ role: "federation_sender", host: 'Host "w2"' }], metricsScrapedFrom: 'Host "vm"' },
                goldenWorkerSynapse(),
                'Host "vm"',
            );
            assert.throws(
                () => workerListeners(sender, sender.workers[0], (h) => (h === 'Host "w2"' ? wildcard : "10.0.0.4")),
                (e: unknown) =>
                    e instanceof ConfigError &&
                    e.component === 'Host "w2"' &&
                    e.setting === "privateAddress" &&
                    /metrics listener binds it for the Prometheus on Host "vm", so it must never bind every address/.test(e.message),
            );
            assert.ok(s.workers.length);
        });

    it("refuses metricsScrapedFrom while Synapse's metrics are disabled, naming the option", () => {
        assert.throws(
            () =>
                resolveWorkerPoolSettings(
                    'WorkerPool "w"',
                    { instances: { federation_reader: 1 }, metricsScrapedFrom: 'Host "vm"' },
                    { ...goldenWorkerSynapse(), metrics: { ...goldenWorkerSynapse().metrics, enabled: false } },
                    'Host "vm"',
                ),
            /WorkerPool "w": metricsScrapedFrom is "Host \\"vm\\""; the workers have no metrics listener while Synapse's metrics are disabled/,
        );
    });

    it("as a component: the scraping Host and each worker host need a private address; the worker host's config binds and opens metrics", async () => {
        await runWithMocks(() => {
            const h = new Host("vm", { host: "203.0.113.10", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const mon = new Host("mon", { host: "203.0.113.13", privateKey: TEST_SSH_KEY, hostKey: TEST_HOST_KEY });
            const s = new SynapseHomeserver("synapse", {
                host: h,
                database: new PostgresDatabase("pg", { host: h }),
                serverName: "example.com",
                replication: {},
            });
            assert.throws(
                () =>
                    new WorkerPool("w", { synapse: s, redis: new RedisServer("r", { host: h }), instances: { federation_reader: 1 }, metricsScrapedFrom: mon }),
                (e: unknown) =>
                    e instanceof Error &&
                    /WorkerPool "w": metricsScrapedFrom is "Host \\"mon\\""; the workers' metrics listeners on other hosts are opened to this host's private address alone: give Host "mon" a privateAddress/.test(
                        e.message,
                    ) &&
                    /WorkerPool "w": metricsScrapedFrom is "Host \\"mon\\""; the metrics listeners of federation_reader1 on Host "vm" bind its private address for the Prometheus on Host "mon": give Host "vm" a privateAddress/.test(
                        e.message,
                    ),
            );
        });
        const { mocks, result } = await runWithMocks(
            () => {
                const { vm: h, w2, synapse: s, redis } = twoHostHomeserver();
                return new WorkerPool("w", { synapse: s, redis, instances: [{ role: "federation_reader", host: w2 }], metricsScrapedFrom: h });
            },
            (p) => [p.upstreams, p.prometheusScrapeConfig],
        );
        const remote = String(mocks.byName("w-w2-config").inputs.stdin);
        assert.match(
            remote,
            /add rule inet pulumi_matrix input ip saddr \{ 10\.0\.0\.4\/32 \} tcp dport 10100 accept comment "worker federation_reader1 metrics"/,
        );
        assert.match(remote, /- type: metrics\n {4}port: 10100\n {4}bind_addresses:\n {6}- 10\.0\.0\.6\n/);
        assert.doesNotMatch(String(mocks.byName("w-config").inputs.stdin), /tcp dport 10100/);
        assert.match(String(await valueOf(result.prometheusScrapeConfig)), /- 10\.0\.0\.6:10100\n/);
    });
});

describe("workers: golden files (update with `npm run golden:update`, review the diff)", () => {
    const ws = goldenWorkerSynapse;
    const pool = goldenWorkerPool;
    const remote = goldenRemoteWorkerPool;
    for (const w of pool().workers) {
        golden("workers", `workers/${w.name}.yaml`, () =>
            renderWorkerYaml(
                pool(),
                pool().workers.find((x) => x.name === w.name)!,
                ws(),
                GOLDEN_WORKER_PEERS,
            ),
        );
    }
    golden("workers", "remote/federation_reader1.yaml", () => renderWorkerYaml(remote(), remote().workers[1], ws(), GOLDEN_REMOTE_WORKER_PEERS));
    golden("workers", "remote/event_persister1.yaml", () => renderWorkerYaml(remote(), remote().workers[3], ws(), GOLDEN_REMOTE_WORKER_PEERS));
    golden("workers", "conf.d/40-workers.yaml", () => renderSharedWorkerYaml(pool(), ws(), GOLDEN_WORKER_PEERS));
    golden("workers", "conf.d/41-federation-senders.yaml", () => renderFederationSendersYaml(pool()));
    golden("workers", "remote/40-workers.yaml", () => renderSharedWorkerYaml(remote(), ws(), GOLDEN_REMOTE_WORKER_PEERS));
    golden("workers", "processes.list", () => renderWorkerList(pool(), pool().mainHost, GOLDEN_WORKER_PEERS));
    golden("workers", "routes.tsv", () => renderRouteTable());
    golden("workers", "matrix-synapse-worker@.service", () => renderWorkerUnit(ws()));
    golden("workers", "scripts/workers-secrets.sh", () =>
        workerSecretsScript(pool(), ws(), pool().mainHost, { replicationSecret: "<replication secret>", redisPassword: "<redis password>" }),
    );
    golden("workers", "scripts/workers-config.sh", () =>
        workerConfigScript(pool(), ws(), pool().mainHost, GOLDEN_WORKER_PEERS, { component: 'WorkerPool "golden"', synapsePeers: GOLDEN_PEERS }),
    );
    golden("workers", "scripts/workers-config-remote.sh", () =>
        workerConfigScript(
            remote(),
            { ...ws(), replication: { port: 9093, bindAddresses: ["127.0.0.1", "10.0.0.4"] } },
            'Host "w2"',
            GOLDEN_REMOTE_WORKER_PEERS,
            {
                component: 'WorkerPool "golden"',
                synapsePeers: { database: { ...GOLDEN_PEERS.database!, host: "10.0.0.4" } },
            },
        ),
    );
    golden("workers", "scripts/workers-senders-stop.sh", () => workerSendersStopScript(remote()));
    golden("workers", "remote-metrics/federation_reader1.yaml", () =>
        renderWorkerYaml(goldenScrapedRemoteWorkerPool(), goldenScrapedRemoteWorkerPool().workers[1], ws(), GOLDEN_REMOTE_WORKER_PEERS),
    );
    golden("workers", "scripts/workers-config-remote-metrics.sh", () =>
        workerConfigScript(
            goldenScrapedRemoteWorkerPool(),
            { ...ws(), replication: { port: 9093, bindAddresses: ["127.0.0.1", "10.0.0.4"] } },
            'Host "w2"',
            GOLDEN_REMOTE_WORKER_PEERS,
            {
                component: 'WorkerPool "golden"',
                synapsePeers: { database: { ...GOLDEN_PEERS.database!, host: "10.0.0.4" } },
            },
        ),
    );
});
