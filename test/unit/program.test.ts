import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";

import { StackConfigError } from "../../src/config/errors";
import { partOf, STACK_CONFIG_KEYS, STACK_KEYS, STACK_PARTS } from "../../src/config/keys";
import { readStackConfig } from "../../src/config/read";
import { inStackConfigTerms, stackKeyFor } from "../../src/config/translate";
import { ConfigError, ConfigErrors } from "../../src/model/errors";
import { TEST_HOST_KEY, TEST_SSH_KEY } from "../support/unit/fixtures";
import { RecordingMocks, valueOf } from "../support/unit/mocks";
import { declaredConfig, programError, runProgram } from "../support/unit/programRun";

/** The program's warnings while it runs `f`. */
async function warnings(f: () => Promise<unknown>): Promise<string[]> {
    const seen: string[] = [];
    const log = pulumi.log as { warn: typeof pulumi.log.warn };
    const original = log.warn;
    log.warn = async (msg: string) => {
        seen.push(msg);
    };
    try {
        await f();
    } finally {
        log.warn = original;
    }
    return seen;
}

describe("the stack program (src/program.ts)", () => {
    const base = {
        sshHost: "203.0.113.10",
        sshPrivateKey: TEST_SSH_KEY,
        sshHostKey: TEST_HOST_KEY,
        serverName: "example.com",
        publicBaseUrl: "https://matrix.example.com/",
        adminUser: "admin",
        acmeEmail: "admin@example.com",
        // Without MatrixRTC: its releases must be pinned (rtc.test.ts covers it).
        rtc: "none",
    };

    it("builds a MatrixStack from stack config and exports its outputs", async () => {
        const { program } = await runProgram({ ...base, maxUploadSize: "100M", trustedKeyServers: '["matrix.org"]' }, ["sshPrivateKey"]);
        assert.equal(await valueOf(program.serverName), "example.com");
        assert.equal(await valueOf(program.publicBaseUrl), "https://matrix.example.com/");
        assert.match(String(await valueOf(program.signingKeyId)), /^a_[a-z]{4}$/);
        assert.equal(await valueOf(program.adminUserId), "@admin:example.com");
        assert.equal(await pulumi.isSecret(program.adminPassword), true);
        assert.equal(await valueOf(program.hostOs), "Debian GNU/Linux 12 (bookworm)");
        // The registration shared secret creates admin accounts: it stays on the host, never a stack output.
        assert.ok(!("registrationSharedSecret" in program), "registrationSharedSecret is a stack output");
        for (const [name, value] of Object.entries(program))
            if (pulumi.Output.isInstance(value)) assert.notEqual(name.toLowerCase(), "registrationsharedsecret");
    });

    it("treats the declared empty defaults as unset", async () => {
        const { program } = await runProgram({ ...base, publicBaseUrl: "", synapseVersion: "", smtpHost: "", signingKey: "", postgresExternalHost: "" }, [
            "sshPrivateKey",
        ]);
        assert.equal(await valueOf(program.publicBaseUrl), "https://example.com/");
        assert.equal(await valueOf(program.synapseVersion), "1.163.2");
    });

    it("runs with every declared default filled in, as the CLI hands them over; with monitoring or maintenance switched on alone too", async () => {
        for (const on of [{}, { monitoring: "true" }, { maintenance: "true" }] as Record<string, string>[]) {
            const { program } = await runProgram({ ...declaredConfig(), ...base, ...on }, ["sshPrivateKey"]);
            assert.equal(await valueOf(program.serverName), "example.com", JSON.stringify(on));
        }
    });

    it("imports an existing signing key from secret config", async () => {
        const line = "ed25519 a_OLDk " + Buffer.alloc(32, 7).toString("base64").replace(/=+$/, "");
        const { program } = await runProgram({ ...base, signingKey: line }, ["sshPrivateKey", "signingKey"]);
        assert.equal(await valueOf(program.signingKeyId), "a_OLDk");
    });

    it("uses an external PostgreSQL server with its secret password, the other PostgreSQL keys at their defaults", async () => {
        const { mocks } = await runProgram(
            { ...base, postgresExternalHost: "db.example.com", postgresExternalPassword: "pw", postgresMemoryMb: "1024", postgresBackup: "true" },
            ["sshPrivateKey", "postgresExternalPassword"],
        );
        await new Promise((r) => setTimeout(r, 50));
        assert.ok(!mocks.resources.some((r) => r.name.includes("postgres-server")), "nothing installed for the database");
    });

    describe("errors name the matrix: key the user set", () => {
        // One bad value per key a component validates when it is constructed; the message keeps the component's `expected`.
        const cases: [Record<string, string>, RegExp][] = [
            [{ sshHost: "bad host!" }, /^matrix:sshHost is "bad host!"; expected an IP address or a DNS host name/],
            [{ sshPort: "70000" }, /^matrix:sshPort is 70000; expected a whole number from 1 to 65535/],
            [{ sshUser: "Bad User" }, /^matrix:sshUser is "Bad User"; expected a Unix user name/],
            [{ firewallSshPort: "0" }, /^matrix:firewallSshPort is 0; expected a whole number from 1 to 65535/],
            [{ ntpServers: '["bad host!"]' }, /^matrix:ntpServers is "bad host!"; expected host names or addresses/],
            [{ serverName: "not a domain!" }, /^matrix:serverName is "not a domain!"; expected the domain of your Matrix IDs/],
            [{ publicBaseUrl: "ftp://matrix.example.com/" }, /^matrix:publicBaseUrl is "ftp:\/\/matrix.example.com\/"; expected an http\(s\) URL/],
            [{ synapseVersion: "latest" }, /^matrix:synapseVersion is "latest"; expected a Synapse release such as/],
            [{ installMethod: "snap" }, /^matrix:installMethod is "snap"; expected one of "apt", "pip"/],
            [{ maxUploadSize: "huge" }, /^matrix:maxUploadSize is "huge"; expected a size such as 50M/],
            [{ registration: "open" }, /^matrix:registration is "open"; expected one of "shared-secret", "token"/],
            [{ cacheFactor: "0" }, /^matrix:cacheFactor is 0; expected a number greater than 0/],
            [{ trustedKeyServers: '["not a server!"]' }, /^matrix:trustedKeyServers is "not a server!"; expected server names/],
            [{ federationDomainWhitelist: '["not a server!"]' }, /^matrix:federationDomainWhitelist is "not a server!"; expected server names/],
            [{ logLevel: "LOUD" }, /^matrix:logLevel is "LOUD"; expected one of "DEBUG"/],
            [{ adminUser: "Admin!" }, /^matrix:adminUser is "Admin!"; expected a Matrix user localpart/],
            [{ smtpHost: "bad host!", notifFrom: "noreply@example.com" }, /^matrix:smtpHost is "bad host!"; expected the SMTP server's host name/],
            [
                { smtpHost: "smtp.example.com", smtpPort: "0", notifFrom: "noreply@example.com" },
                /^matrix:smtpPort is 0; expected a whole number from 1 to 65535/,
            ],
            [{ smtpHost: "smtp.example.com", notifFrom: "nobody" }, /^matrix:notifFrom is "nobody"; expected a sender such as/],
            [{ postgresMemoryMb: "100" }, /^matrix:postgresMemoryMb is 100; expected a whole number of MiB/],
            [{ postgresBackupRetention: "0" }, /^matrix:postgresBackupRetention is 0; expected a whole number from 1 to 366/],
            [{ postgresBackupDirectory: "backups" }, /^matrix:postgresBackupDirectory is "backups"; expected an absolute path/],
            [{ workers: "{typing: 2}" }, /^matrix:workers\.typing is 2; expected 0 or 1: Synapse takes exactly one typing worker \(stream_writers\.typing\)/],
            [
                { workers: "{federation_writer: 1}" },
                /^matrix:workers\.federation_writer is "federation_writer"; expected a role: one of federation_reader, federation_sender, /,
            ],
            [
                { workers: "[federation_reader]" },
                /^matrix:workers is "\[federation_reader\]"; expected a YAML mapping of worker roles to counts, such as "\{federation_reader: 2, federation_sender: 1\}"/,
            ],
            [{ workerBasePort: "0" }, /^matrix:workerBasePort is 0; expected a whole number from 1 to 65535/],
            [{ redisPort: "0" }, /^matrix:redisPort is 0; expected a whole number from 1 to 65535/],
            [{ redisMaxMemoryMb: "1" }, /^matrix:redisMaxMemoryMb is 1; expected a whole number of MiB from 16/],
            [{ redisExternalHost: "bad host!" }, /^matrix:redisExternalHost is "bad host!"; expected an IP address or DNS host name of the Redis server/],
            [{ redisExternalHost: "redis.example.com", redisExternalPort: "0" }, /^matrix:redisExternalPort is 0; expected a whole number from 1 to 65535/],
        ];
        for (const [config, expected] of cases) {
            it(`${expected.source.slice(1).split(" is ")[0]} (${Object.keys(config).join(", ")} set)`, async () => {
                const { message, mocks } = await programError({ ...base, ...config });
                assert.match(message, expected);
                // Host is built first: its errors come before any command. (Later components: see the pending test below.)
                if (/^matrix:(ssh|firewall|ntp)/.test(message))
                    assert.deepEqual(
                        mocks.resources.filter((r) => r.type === "command:remote:Command").map((r) => r.name),
                        [],
                        "no command on the VM",
                    );
            });
        }

        // MatrixStack constructs Host (registering its probe and bootstrap commands) before PostgresDatabase and
        // SynapseHomeserver check their settings; until every child's plain settings are checked before the first is built,
        // a bad Synapse or PostgreSQL value fails after commands for the VM were registered.
        it("a bad Synapse or PostgreSQL value fails before any command for the VM is registered", async () => {
            for (const config of [
                { maxUploadSize: "huge" },
                { postgresMemoryMb: "100" },
                { workers: "{typing: 2}" },
                { redisPort: "0" },
                { workerBasePort: "5432" },
                { redisExternalHost: "bad host!" },
            ] as Record<string, string>[]) {
                const { mocks } = await programError({ ...base, ...config });
                assert.deepEqual(
                    mocks.resources.filter((r) => r.type === "command:remote:Command").map((r) => r.name),
                    [],
                    JSON.stringify(config),
                );
            }
        });

        it("secrets: an empty private key, an unparseable signing key (not echoed)", async () => {
            assert.match((await programError({ ...base, sshPrivateKey: "  \n" })).message, /^matrix:sshPrivateKey is empty; expected a private key/);
            const bad = await programError({ ...base, signingKey: "ed25519 a_x notakey-SECRETISH" }, ["sshPrivateKey", "signingKey"]);
            assert.match(bad.message, /^matrix:signingKey is \[secret, not shown\]; expected/);
            assert.doesNotMatch(bad.message, /SECRETISH/);
        });

        it("a secret set in plain text is refused, naming the key and the command, never the value", async () => {
            const line = "ed25519 a_OLDk " + Buffer.alloc(32, 7).toString("base64").replace(/=+$/, "");
            const mail = { smtpHost: "smtp.example.com", notifFrom: "noreply@example.com" };
            const external = { postgresExternalHost: "db.example.com" };
            const cases: [Record<string, string>, string[], string][] = [
                [{ sshPrivateKey: TEST_SSH_KEY }, [], "sshPrivateKey < ~/.ssh/id_ed25519"],
                [{ signingKey: line }, ["sshPrivateKey"], "signingKey < homeserver.signing.key"],
                [{ ...mail, smtpPassword: "PLAINpw" }, ["sshPrivateKey"], "smtpPassword ..."],
                [{ ...external, postgresExternalPassword: "PLAINpw" }, ["sshPrivateKey"], "postgresExternalPassword ..."],
            ];
            for (const [config, secretKeys, command] of cases) {
                const { message, mocks } = await programError({ ...base, ...config }, secretKeys);
                const key = command.split(" ")[0];
                assert.equal(
                    message,
                    `matrix:${key} is set in plain text; it is a secret and must be stored encrypted: set it again with \`pulumi config set --secret ${command}\``,
                );
                assert.doesNotMatch(message, /PLAIN|SECRET|a_OLDk/);
                assert.deepEqual(mocks.resources, [], "nothing is built");
            }
        });

        it("several errors at once, each translated", async () => {
            const { error, message } = await programError({ ...base, maxUploadSize: "huge", cacheFactor: "0" });
            assert.ok(error instanceof ConfigErrors);
            assert.deepEqual(
                error.errors.map((e) => (e as StackConfigError).key),
                ["maxUploadSize", "cacheFactor"],
            );
            assert.match(message, /^matrix:maxUploadSize is "huge"; expected a size.*\nmatrix:cacheFactor is 0; expected a number/);
        });

        it("required keys and values that are not of the key's type", async () => {
            assert.match(
                (await programError({ sshPrivateKey: TEST_SSH_KEY, serverName: "example.com" })).message,
                /^matrix:sshHost is not set; it is required; set it with `pulumi config set sshHost 203.0.113.10`/,
            );
            assert.match(
                (await programError({ sshHost: "203.0.113.10", serverName: "example.com" }, [])).message,
                /^matrix:sshPrivateKey is not set; it is required; set it with `pulumi config set --secret sshPrivateKey < ~\/.ssh\/id_ed25519`/,
            );
            assert.match(
                (await programError({ ...base, postgresExternalHost: "db.example.com" })).message,
                /^matrix:postgresExternalPassword is not set; it is required with matrix:postgresExternalHost; set it with `pulumi config set --secret postgresExternalPassword`/,
            );
            assert.match((await programError({ ...base, sshPort: "ssh" })).message, /^matrix:sshPort is "ssh"; expected a whole number, such as 22/);
        });

        // PostgresDatabase names an external server's settings `host`, `port`, ... rather than `external.host`, ...:
        // until it uses the option paths, these errors keep the component's words.
        it("an external server's settings", async () => {
            const ext = { ...base, postgresExternalHost: "db.example.com", postgresExternalPassword: "pw" };
            const secrets = ["sshPrivateKey", "postgresExternalPassword"];
            assert.match(
                (await programError({ ...ext, postgresExternalHost: "bad host!" }, secrets)).message,
                /^matrix:postgresExternalHost is "bad host!"; expected/,
            );
            assert.match((await programError({ ...ext, postgresExternalPort: "0" }, secrets)).message, /^matrix:postgresExternalPort is 0; expected/);
            assert.match(
                (await programError({ ...ext, postgresExternalDatabase: "Bad-Name" }, secrets)).message,
                /^matrix:postgresExternalDatabase is "Bad-Name"; expected/,
            );
            assert.match(
                (await programError({ ...ext, postgresExternalUser: "Bad-Name" }, secrets)).message,
                /^matrix:postgresExternalUser is "Bad-Name"; expected/,
            );
        });
    });

    describe("contradictory keys are errors naming both, before anything is built", () => {
        const ext = { ...base, postgresExternalHost: "db.example.com", postgresExternalPassword: "pw" };
        const extSecrets = ["sshPrivateKey", "postgresExternalPassword"];
        const expectContradiction = async (config: Record<string, string>, secrets: string[], expected: RegExp) => {
            const { message, mocks } = await programError(config, secrets);
            assert.match(message, expected);
            assert.deepEqual(
                mocks.resources.map((r) => r.name),
                [],
                "nothing built",
            );
        };

        for (const [key, value] of [
            ["postgresMemoryMb", "2048"],
            ["postgresBackup", "false"],
            ["postgresBackupRetention", "14"],
            ["postgresBackupDirectory", "/srv/dumps"],
        ]) {
            it(`postgresExternalHost with ${key}`, async () => {
                await expectContradiction(
                    { ...ext, [key]: value },
                    extSecrets,
                    new RegExp(
                        `^matrix:${key} is ${JSON.stringify(value === "/srv/dumps" ? value : JSON.parse(value)).replace(/\//g, "\\/")}; it contradicts matrix:postgresExternalHost, which is "db.example.com" \\(an existing PostgreSQL server is used and the stack installs none\\); remove one of them`,
                    ),
                );
            });
        }

        it("useSqlite with postgresExternalHost, or with settings of the PostgreSQL it then does not install", async () => {
            await expectContradiction(
                { ...ext, useSqlite: "true" },
                extSecrets,
                /^matrix:useSqlite is true; it contradicts matrix:postgresExternalHost, which is "db.example.com"/,
            );
            await expectContradiction(
                { ...base, useSqlite: "true", postgresMemoryMb: "2048" },
                ["sshPrivateKey"],
                /^matrix:postgresMemoryMb is 2048; it contradicts matrix:useSqlite, which is true \(Synapse keeps its data in SQLite and uses no PostgreSQL\)/,
            );
        });

        it("SMTP keys without smtpHost", async () => {
            const without = /it does nothing without matrix:smtpHost, which is not set \(no mail is sent\); set smtpHost too, or remove/;
            await expectContradiction(
                { ...base, smtpUser: "matrix@example.com" },
                ["sshPrivateKey"],
                new RegExp(`^matrix:smtpUser is "matrix@example.com"; ${without.source}`),
            );
            await expectContradiction(
                { ...base, notifFrom: "noreply@example.com" },
                ["sshPrivateKey"],
                new RegExp(`^matrix:notifFrom is "noreply@example.com"; ${without.source}`),
            );
            await expectContradiction({ ...base, smtpPort: "2525" }, ["sshPrivateKey"], new RegExp(`^matrix:smtpPort is 2525; ${without.source}`));
            const secret = await programError({ ...base, smtpPassword: "hunter2" }, ["sshPrivateKey", "smtpPassword"]);
            assert.match(secret.message, new RegExp(`^matrix:smtpPassword is \\[secret, not shown\\]; ${without.source}`));
            assert.doesNotMatch(secret.message, /hunter2/);
        });

        it("external server keys without postgresExternalHost", async () => {
            await expectContradiction(
                { ...base, postgresExternalPort: "5433" },
                ["sshPrivateKey"],
                /^matrix:postgresExternalPort is 5433; it does nothing without matrix:postgresExternalHost, which is not set \(the stack installs PostgreSQL itself\)/,
            );
        });

        it("reports every contradiction at once", async () => {
            const { error } = await programError({ ...ext, postgresMemoryMb: "2048", postgresBackup: "false", smtpUser: "u" }, extSecrets);
            assert.ok(error instanceof ConfigErrors);
            assert.deepEqual(
                error.errors.map((e) => (e as StackConfigError).key),
                ["smtpUser", "postgresMemoryMb", "postgresBackup"],
            );
        });

        it("a value equal to the declared default is not a contradiction (Pulumi fills declared defaults in)", async () => {
            const { program } = await runProgram(
                {
                    ...ext,
                    postgresMemoryMb: "1024",
                    postgresBackup: "true",
                    postgresBackupRetention: "7",
                    postgresBackupDirectory: "/var/backups/pulumi-matrix/postgres",
                    smtpPort: "587",
                    smtpUser: "",
                    notifFrom: "",
                    useSqlite: "false",
                },
                extSecrets,
            );
            assert.equal(await valueOf(program.serverName), "example.com");
        });
    });

    describe("workers and Redis", () => {
        const commands = (mocks: RecordingMocks) => mocks.resources.filter((r) => r.type === "command:remote:Command").map((r) => r.name);

        it("runs one federation reader and one federation sender with Redis on the VM by default; workers sets them by role", async () => {
            const { mocks } = await runProgram(base, ["sshPrivateKey"]);
            await new Promise((r) => setTimeout(r, 100));
            for (const n of ["dev-redis-server", "dev-redis-secrets", "dev-workers-secrets", "dev-workers-config"]) assert.ok(commands(mocks).includes(n), n);
            assert.match(String(mocks.byName("dev-workers-config").inputs.stdin), /# 2 workers on this host: federation_reader1, federation_sender1/);
            const more = await runProgram({ ...base, workers: "{federation_reader: 2, federation_sender: 1, client_reader: 1}" }, ["sshPrivateKey"]);
            await new Promise((r) => setTimeout(r, 100));
            assert.match(
                String(more.mocks.byName("dev-workers-config").inputs.stdin),
                /# 4 workers on this host: federation_reader1, federation_reader2, federation_sender1, client_reader1/,
            );
        });

        it("workers {} runs Synapse alone: no Redis, and the pool's config step removes an earlier pool's workers", async () => {
            const { mocks } = await runProgram({ ...base, workers: "{}", redisPort: "6379", redisMaxMemoryMb: "256" }, ["sshPrivateKey"]);
            await new Promise((r) => setTimeout(r, 100));
            assert.ok(!commands(mocks).some((n) => n.startsWith("dev-redis")));
            assert.match(String(mocks.byName("dev-workers-config").inputs.stdin), /# 0 workers on this host: none/);
            const { message } = await programError({ ...base, workers: "{}", redisMaxMemoryMb: "512" });
            assert.match(message, /^matrix:redisMaxMemoryMb is 512; Redis serves only Synapse's workers, and there are none/);
        });

        it("useSqlite runs no workers unless asked for, and then says they need PostgreSQL", async () => {
            const { mocks } = await runProgram({ ...base, useSqlite: "true" }, ["sshPrivateKey"]);
            await new Promise((r) => setTimeout(r, 100));
            assert.ok(!commands(mocks).some((n) => /workers|redis/.test(n)));
            assert.match(
                (await programError({ ...base, useSqlite: "true", workers: "{federation_reader: 1}" })).message,
                /^matrix:workers is \["federation_reader1"\]; workers need PostgreSQL, and Synapse is set to SQLite/,
            );
        });

        it("an existing Redis: nothing installed for it, its password a secret file, TLS when asked; local Redis keys contradict it", async () => {
            const { mocks } = await runProgram(
                { ...base, redisExternalHost: "redis.example.com", redisExternalPassword: "SECRETredis", redisExternalTls: "true", redisPort: "6379" },
                ["sshPrivateKey", "redisExternalPassword"],
            );
            await new Promise((r) => setTimeout(r, 100));
            assert.ok(!commands(mocks).some((n) => n.startsWith("dev-redis")));
            const config = String(mocks.byName("dev-workers-config").inputs.stdin);
            assert.match(
                config,
                /redis:\n {2}enabled: true\n {2}host: redis\.example\.com\n {2}port: 6379\n {2}password_path: \/etc\/matrix-synapse\/secrets\/redis_password\n {2}use_tls: true/,
            );
            assert.doesNotMatch(config, /SECRETredis/);
            assert.ok(mocks.byName("dev-workers-secrets").secretInputs.includes("stdin"));
            assert.match(
                (await programError({ ...base, redisExternalHost: "redis.example.com", redisPort: "6380" })).message,
                /^matrix:redisPort is 6380; it contradicts matrix:redisExternalHost, which is "redis\.example\.com" \(an existing Redis is used and the stack installs none\)/,
            );
            assert.match(
                (await programError({ ...base, redisExternalTls: "true" })).message,
                /^matrix:redisExternalTls is true; it does nothing without matrix:redisExternalHost, which is not set \(the stack installs Redis itself\)/,
            );
        });
    });

    it("warns about smtpUser without smtpPassword", async () => {
        const email = { ...base, smtpHost: "smtp.example.com", notifFrom: "noreply@example.com", smtpUser: "matrix@example.com" };
        assert.deepEqual(await warnings(() => runProgram(email, ["sshPrivateKey"])), [
            "matrix:smtpUser is set but matrix:smtpPassword is not; set it with `pulumi config set --secret smtpPassword`",
        ]);
        assert.deepEqual(await warnings(() => runProgram({ ...email, smtpPassword: "pw" }, ["sshPrivateKey", "smtpPassword"])), []);
    });
});

describe("the stack config table (STACK_KEYS)", () => {
    const component = {
        Host: 'Host "dev-host"',
        PostgresDatabase: 'PostgresDatabase "dev-postgres"',
        SynapseHomeserver: 'SynapseHomeserver "dev-synapse"',
        WorkerPool: 'WorkerPool "dev-workers"',
        RedisServer: 'RedisServer "dev-redis"',
        ReverseProxy: 'ReverseProxy "dev-proxy"',
        ElementWeb: 'ElementWeb "dev-element"',
        CloudflareDns: 'CloudflareDns "dev-dns"',
        TurnServer: 'TurnServer "dev-turn"',
        MonitoringServer: 'MonitoringServer "dev-monitoring"',
        SynapseBackup: 'SynapseBackup "dev-backup"',
        SynapseMaintenance: 'SynapseMaintenance "dev-maintenance"',
        RtcServer: 'RtcServer "dev-rtc"',
        SynapseAdoption: 'SynapseAdoption "dev-adopt"',
    };

    it("translates a component's error about every mapped setting into its key, keeping value and expected", () => {
        for (const key of STACK_CONFIG_KEYS) {
            const original = new ConfigError(component[STACK_PARTS[partOf(key)]], STACK_KEYS[key].setting.rest.toString(), "v", "expected w");
            const translated = inStackConfigTerms(original);
            assert.ok(translated instanceof StackConfigError, key);
            // A secret's value is never shown, even when a component's error would.
            const shown = STACK_KEYS[key].type === "secret" ? "[secret, not shown]" : '"v"';
            assert.equal(translated.message, `matrix:${key} is ${shown}; expected w`);
            assert.equal(translated.key, key);
            assert.equal(translated.original, original);
        }
    });

    it("maps each component setting to one key only", () => {
        const seen = STACK_CONFIG_KEYS.map((k) => String(STACK_KEYS[k].setting));
        assert.deepEqual(
            seen.filter((s, i) => seen.indexOf(s) !== i),
            [],
        );
    });

    it("names the keys the issue asks for", () => {
        assert.equal(stackKeyFor(component.SynapseHomeserver, "version"), "synapseVersion");
        assert.equal(stackKeyFor(component.SynapseHomeserver, "maxUploadSize"), "maxUploadSize");
        assert.equal(stackKeyFor(component.SynapseHomeserver, "metrics.enabled"), "enableMetrics");
        assert.equal(stackKeyFor(component.SynapseHomeserver, "email.smtpHost"), "smtpHost");
        assert.equal(stackKeyFor(component.PostgresDatabase, "memoryMb"), "postgresMemoryMb");
        assert.equal(stackKeyFor(component.Host, "port"), "sshPort");
        assert.equal(stackKeyFor(component.Host, "firewall.sshPort"), "firewallSshPort");
        assert.equal(stackKeyFor("Host", "privateKey"), "sshPrivateKey");
        // The component's kind must match, not only the setting.
        assert.equal(stackKeyFor(component.PostgresDatabase, "port"), undefined);
        assert.equal(stackKeyFor('MatrixStack "dev"', "host"), undefined);
    });

    it("leaves errors without a key, and other errors, as they are; translates ConfigErrors one by one", () => {
        const unmapped = new ConfigError(component.SynapseHomeserver, "metrics.port", 8008, "expected a port other than httpPort (8008)");
        assert.equal(inStackConfigTerms(unmapped), unmapped);
        const other = new Error("boom");
        assert.equal(inStackConfigTerms(other), other);
        const both = inStackConfigTerms(new ConfigErrors([new ConfigError(component.Host, "user", "X", "expected a user"), unmapped]));
        assert.ok(both instanceof ConfigErrors);
        assert.equal(both.message, `matrix:sshUser is "X"; expected a user\n${unmapped.message}`);
    });

    it("reads Pulumi.example.yaml without an error", () => {
        const example = parse(fs.readFileSync(path.join(__dirname, "..", "..", "Pulumi.example.yaml"), "utf8")).config as Record<string, unknown>;
        const values = Object.fromEntries(Object.entries(example).map(([k, v]) => [k.replace(/^matrix:/, ""), typeof v === "string" ? v : JSON.stringify(v)]));
        const options = readStackConfig({ get: (k) => values[k] });
        assert.equal(options.synapse.email?.smtpHost, "smtp.example.com");
        assert.equal(options.postgres.memoryMb, 2048);
        assert.deepEqual(options.host.firewall, { sshPort: 22 });
    });

    it("runs the program with every key of Pulumi.example.yaml (proxy, Element, TURN, DNS together)", async () => {
        const example = parse(fs.readFileSync(path.join(__dirname, "..", "..", "Pulumi.example.yaml"), "utf8")).config as Record<string, unknown>;
        const values = Object.fromEntries(
            Object.entries(example)
                .filter(([, v]) => typeof v !== "object")
                .map(([k, v]) => [k.replace(/^matrix:/, ""), String(v)]),
        );
        const { mocks, program } = await runProgram({ ...values, sshPrivateKey: TEST_SSH_KEY }, ["sshPrivateKey"]);
        const zone = String(await valueOf(program.zoneFile as pulumi.Output<string>));
        assert.match(zone, /^_turns\._tcp +300 IN SRV +10 5 5349 turn\.example\.com\. /m);
        assert.match(zone, /^@ +300 IN A +203\.0\.113\.10 /m, "well-known via nginx: the apex points to the VM");
        // LiveKit's TURN name is on the certificate (nginx ends its TLS) and gets its address records.
        assert.deepEqual(program.certificateNames as unknown as string[], ["matrix.example.com", "example.com", "element.example.com", "rtc-turn.example.com"]);
        assert.match(zone, /^rtc-turn +300 IN A +203\.0\.113\.10 /m);
        // Commands register once what they wait for has: give them a moment.
        const steps = ["dev-proxy-nginx", "dev-element-install", "dev-turn-server", "dev-monitoring-server"];
        for (let i = 0; i < 50 && !steps.every((n) => mocks.resources.some((r) => r.name === n)); i++) await new Promise((r) => setTimeout(r, 100));
        for (const step of steps)
            assert.ok(
                mocks.resources.some((r) => r.name === step),
                `${step}: ${mocks.resources.map((r) => r.name).join(" ")}`,
            );
    });
});
