import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

import { parse } from "yaml";

import { partOf, STACK_CONFIG_KEYS, STACK_KEYS, StackConfigKey, StackKey, StackPart } from "../../src/config/keys";
import { readStackConfig } from "../../src/config/read";
import { BACKUP_DEFAULTS } from "../../src/model/backup";
import { DNS_DEFAULTS } from "../../src/model/dns";
import { resolveElementWebSettings } from "../../src/model/element";
import { resolveHostSettings } from "../../src/model/host";
import { MAINTENANCE_DEFAULTS } from "../../src/model/maintenance";
import { MONITORING_DEFAULTS } from "../../src/model/monitoring";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { PROXY_DEFAULTS, resolveReverseProxySettings } from "../../src/model/proxy";
import { resolveRedisSettings } from "../../src/model/redis";
import { RTC_DEFAULTS } from "../../src/model/rtc";
import { resolveSynapseSettings } from "../../src/model/synapse";
import { resolveTurnSettings } from "../../src/model/turn";
import { resolveWorkerPoolSettings } from "../../src/model/workers";
import { declaredConfig } from "../support/unit/programRun";
import { readmeBlock } from "../support/vm/engine";
import { quickstartScript } from "../support/vm/quickstart";

const ROOT = path.join(__dirname, "..", "..");

describe("the Pulumi project", () => {
    const project = parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"));
    const declared = Object.keys(project.config).map((k) => k.replace(/^matrix:/, ""));
    const declaration = (key: string) => project.config[`matrix:${key}`] as { type: string; default?: unknown; secret?: boolean } | undefined;
    const spec = (key: string): StackKey => STACK_KEYS[key as StackConfigKey];

    it("runs the tests on Node.js 22 or newer (the node devDependency)", () => {
        assert.ok(Number(process.versions.node.split(".")[0]) >= 22, `node ${process.versions.node}`);
        assert.equal(JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).engines.node, ">=22");
    });

    it("runs src/program.ts on Node.js with a local state backend", () => {
        assert.equal(project.name, "matrix");
        assert.equal(project.runtime.name, "nodejs");
        assert.equal(project.main, "src/program.ts");
        assert.match(project.backend.url, /^file:\/\/\.\//);
        assert.ok(fs.readFileSync(path.join(ROOT, ".gitignore"), "utf8").includes(".pulumi-state/*"));
        assert.ok(fs.existsSync(path.join(ROOT, ".pulumi-state", ".gitkeep")), "the state directory exists in a fresh clone");
    });

    it("chooses another backend with PULUMI_BACKEND_URL (it wins over backend.url), never with `pulumi login` (it does not)", () => {
        // The comment above `backend:` in Pulumi.yaml, and the README's quickstart paragraph and section.
        const yamlText = fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8");
        const comment = /((?:^#.*\n)+)backend:/m.exec(yamlText)?.[1] ?? "";
        assert.match(comment, /wins over `pulumi login`/);
        assert.match(comment, /PULUMI_BACKEND_URL/);
        const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8").replace(/\s*\n\s*/g, " ");
        const quickstart = readme.slice(readme.indexOf("## Quickstart"), readme.indexOf("```", readme.indexOf("## Quickstart")));
        assert.match(quickstart, /set `PULUMI_BACKEND_URL` \(`pulumi login` alone does not move it: see \[Where the state lives\]\(#where-the-state-lives\)\)/);
        assert.match(
            readme,
            /### Where the state lives `Pulumi.yaml` sets `backend.url: file:\/\/\.\/\.pulumi-state`, and Pulumi takes a stack's backend from, in this order: the `PULUMI_BACKEND_URL` environment variable, the project's `backend.url`, the backend of the last `pulumi login`\./,
        );
        assert.doesNotMatch(readme, /`pulumi login` chooses another backend|cloud-url: \$\{\{/);
    });

    it("keeps src/ free of Pulumi imports except the two entry points", () => {
        const walk = (d: string): string[] =>
            fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
        const offenders = walk(path.join(ROOT, "src"))
            .filter((f) => f.endsWith(".ts") && !/src\/(index|program)\.ts$/.test(f))
            .filter((f) => /from "@pulumi\//.test(fs.readFileSync(f, "utf8")));
        assert.deepEqual(offenders, []);
    });

    it("keeps the stack config adapter (src/config) above the model: src/model imports nothing from it", () => {
        const model = path.join(ROOT, "src", "model");
        const offenders = fs
            .readdirSync(model)
            .filter((f) => f.endsWith(".ts"))
            .filter((f) => /from "\.\.\/config\//.test(fs.readFileSync(path.join(model, f), "utf8")));
        assert.deepEqual(offenders, []);
        assert.ok(!fs.existsSync(path.join(model, "stackConfig.ts")), "the key table lives in src/config/keys.ts");
    });

    it("declares every key of the program's table (STACK_KEYS), in the same order, and no other", () => {
        assert.deepEqual(STACK_CONFIG_KEYS, declared);
    });

    it("declares each key with the Pulumi type of its table entry", () => {
        const pulumiType = {
            string: "string",
            integer: "integer",
            number: "string",
            boolean: "boolean",
            switch: "boolean",
            list: "array",
            yaml: "string",
            secret: "string",
        } as const;
        for (const key of STACK_CONFIG_KEYS) {
            assert.equal(declaration(key)?.type, pulumiType[spec(key).type], `${key}: type`);
            // Only a secret every stack must set is declared secret: a secret declaration cannot take a default, so the CLI requires it.
            const alwaysRequired = spec(key).required !== undefined && spec(key).onlyWith === undefined;
            assert.equal(declaration(key)?.secret === true, spec(key).type === "secret" && alwaysRequired, `${key}: secret`);
            if (spec(key).type === "secret" && !alwaysRequired) assert.equal(declaration(key)?.default, "", `${key}: an optional secret defaults to ""`);
        }
    });

    it("requires (declares without a default) exactly the keys every stack must set, so a stack from Pulumi.example.yaml passes the CLI's check", () => {
        const withoutDefault = STACK_CONFIG_KEYS.filter((k) => declaration(k)?.default === undefined);
        // A key required only while another key is (or is not) in effect is declared with a default: the program checks it.
        const required = STACK_CONFIG_KEYS.filter((k) => spec(k).required !== undefined && spec(k).onlyWith === undefined && spec(k).notWith === undefined);
        assert.deepEqual(withoutDefault, required);
        assert.deepEqual(required, ["sshHost", "sshPrivateKey", "serverName"]);
        // The example sets every required key but the private key, which it shows as a comment (`pulumi config set --secret` writes it).
        const example = parse(fs.readFileSync(path.join(ROOT, "Pulumi.example.yaml"), "utf8")).config as Record<string, unknown>;
        assert.deepEqual(
            required.filter((k) => example[`matrix:${k}`] === undefined),
            ["sshPrivateKey"],
        );
    });

    it("the table's rules between keys name keys that exist and say what those keys mean", () => {
        for (const key of STACK_CONFIG_KEYS) {
            const s = spec(key);
            if (s.onlyWith !== undefined) assert.ok(spec(s.onlyWith)?.whenUnset, `${key}: onlyWith ${s.onlyWith}`);
            for (const o of s.notWith ?? []) assert.ok(spec(o)?.whenSet, `${key}: notWith ${o}`);
        }
    });

    it("declares the library's own defaults: each default in one place", () => {
        // The library is the authority: each component's settings resolved from empty options by its model.
        // Synapse needs a serverName and an email block to resolve; keys set from those have no declared default.
        const postgres = resolvePostgresSettings("PostgresDatabase", {});
        const synapse = resolveSynapseSettings("SynapseHomeserver", {
            serverName: "example.com",
            email: { smtpHost: "smtp.example.com", notifFrom: "noreply@example.com" },
        });
        const redis = resolveRedisSettings("RedisServer", {});
        const resolved: Record<StackPart, unknown> = {
            host: resolveHostSettings("Host", {}),
            postgres: postgres,
            synapse: synapse,
            workers: resolveWorkerPoolSettings(
                "WorkerPool",
                {},
                resolveSynapseSettings("SynapseHomeserver", { serverName: "example.com", replication: {} }),
                "Host",
            ),
            redis: redis,
            proxy: resolveReverseProxySettings(
                "ReverseProxy",
                { acme: { email: "admin@example.com" } },
                { serverName: "example.com", publicBaseUrl: synapse.publicBaseUrl, maxUploadSize: synapse.maxUploadSize },
            ),
            dns: { ...DNS_DEFAULTS, legacySrv: false, cloudflare: false },
            turn: resolveTurnSettings("TurnServer", { domain: "turn.example.com" }),
            // Off unless set, and no alert receiver unless given (the list key declares []).
            monitoring: { ...MONITORING_DEFAULTS, enabled: false, alertEmail: { to: [] } },
            backup: BACKUP_DEFAULTS,
            adopt: {},
            // Each timer on with the maintenance switch, with the model's defaults.
            maintenance: {
                enabled: false,
                compressor: { enabled: true, ...MAINTENANCE_DEFAULTS.compressor },
                mediaCache: { enabled: true, ...MAINTENANCE_DEFAULTS.mediaCache },
                emptyRooms: { enabled: true, ...MAINTENANCE_DEFAULTS.emptyRooms },
            },
            rtc: {
                ...RTC_DEFAULTS,
                mode: "livekit",
                livekit: { version: RTC_DEFAULTS.livekit.version },
                jwtService: { version: RTC_DEFAULTS.jwtService.version },
                turn: { port: RTC_DEFAULTS.turnPort, relayPorts: RTC_DEFAULTS.turnRelayPorts },
            },
            element: resolveElementWebSettings(
                "ElementWeb",
                { domain: "element.example.org", version: "1.11.100", sha256: "0".repeat(64) },
                { serverName: "example.com", publicBaseUrl: synapse.publicBaseUrl },
            ),
        };
        const at = (o: unknown, p: string) => p.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], o);
        // Keys whose comparison needs a conversion (declared value -> library value):
        const conversions: Record<string, { declared: (d: unknown) => unknown; library: unknown }> = {
            // Pulumi has no decimal type: declared as the string "0.5".
            cacheFactor: { declared: Number, library: synapse.cacheFactor },
            // The library leaves the whitelist out (everyone); the stack config declares that as [].
            federationDomainWhitelist: { declared: (d) => d, library: synapse.federationDomainWhitelist ?? [] },
            // A switch: the library's default database is PostgreSQL, i.e. no sqlite.
            useSqlite: { declared: (d) => d, library: synapse.database.kind === "sqlite" },
            // An external server's port, database and role default as an installed server's.
            postgresExternalPort: { declared: (d) => d, library: postgres.port },
            postgresExternalDatabase: { declared: (d) => d, library: postgres.database },
            postgresExternalUser: { declared: (d) => d, library: postgres.user },
            // An external Redis's port defaults as an installed one's; TLS is off unless asked for.
            redisExternalPort: { declared: (d) => d, library: redis.port },
            redisExternalTls: { declared: (d) => d, library: false },
            // The stack's switch: nginx unless "none".
            proxy: { declared: (d) => d, library: "nginx" },
            // The stack's switch: MatrixRTC with LiveKit unless "none".
            rtc: { declared: (d) => d, library: "livekit" },
            // The well-known vhost on the server_name's domain is off unless asked for.
            serverNameWellKnown: { declared: (d) => d, library: PROXY_DEFAULTS.serverNameWellKnown },
        };
        const compared: string[] = [];
        for (const key of STACK_CONFIG_KEYS) {
            const d = declaration(key)?.default;
            // "" means "the library's default", whatever it is (derived, like publicBaseUrl, or pinned, like synapseVersion).
            if (d === undefined || d === "") continue;
            const c = conversions[key];
            const library = c ? c.library : at(resolved[partOf(key)], spec(key).setting.rest.toString());
            assert.deepEqual(
                c ? c.declared(d) : d,
                library,
                `Pulumi.yaml declares ${key} default ${JSON.stringify(d)}; the library's default is ${JSON.stringify(library)}`,
            );
            compared.push(key);
        }
        assert.deepEqual(
            Object.keys(conversions).filter((k) => !compared.includes(k)),
            [],
            "conversions for keys that are not compared",
        );
        assert.ok(compared.length >= 20, `compared only ${compared.join(", ")}`);
    });

    it("reads the declared defaults, as Pulumi fills them in, as not set: no key contradicts another", () => {
        const defaults = declaredConfig();
        const read = (extra: Record<string, string>) =>
            readStackConfig({
                get: (k) => ({ ...defaults, sshHost: "203.0.113.10", serverName: "example.com", acmeEmail: "admin@example.com", rtc: "none", ...extra })[k],
            });
        assert.equal(read({}).synapse.email, undefined);
        assert.equal(read({}).postgres.external, undefined);
        assert.deepEqual(read({ postgresExternalHost: "db.example.com" }).postgres.external, {
            host: "db.example.com",
            port: 5432,
            database: "synapse",
            user: "synapse",
        });
        assert.deepEqual(read({ useSqlite: "true" }).synapse.sqlite, {});
    });

    it("declares each key with a type Pulumi knows and a description; secrets have no default", () => {
        for (const [k, v] of Object.entries(project.config) as [string, Record<string, unknown>][]) {
            assert.ok(k.startsWith("matrix:"), k);
            assert.ok(["string", "integer", "boolean", "array"].includes(String(v.type)), `${k}: type ${v.type}`);
            assert.ok(typeof v.description === "string" && v.description.length > 10, `${k}: description`);
            if (v.secret) assert.equal(v.default, undefined, `${k}: a secret with a default`);
        }
    });

    it("documents every key in the README and in Pulumi.example.yaml", () => {
        const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
        const example = fs.readFileSync(path.join(ROOT, "Pulumi.example.yaml"), "utf8");
        for (const k of declared) {
            assert.ok(readme.includes(`\`${k}\``), `README lacks ${k}`);
            assert.ok(example.includes(`matrix:${k}`), `Pulumi.example.yaml lacks ${k}`);
        }
    });
});

describe("the README quickstart", () => {
    it("is a block the e2e suite can follow line by line (it runs it against a VM)", () => {
        const script = quickstartScript(
            readmeBlock("## Quickstart"),
            { port: 2222, keyFile: "/tmp/key", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBa6yTPVw8Ss6B7Bb1D0X8ATh3X0qgH/dEqnDq9sQ1lu" },
            {
                acmeDirectoryUrl: "https://10.0.2.2:14000/dir",
                acmeCaFile: "/tmp/ca.pem",
                element: { version: "1.11.999", sha256: "a".repeat(64), downloadUrl: "http://10.0.2.2:8000/element-v{version}.tar.gz" },
                rtc: {
                    livekit: { sha256: "b".repeat(64), downloadUrl: "http://10.0.2.2:8001/livekit_{version}_linux_{arch}.tar.gz" },
                    jwtService: { sha256: "c".repeat(64), downloadUrl: "http://10.0.2.2:8001/lk-jwt-service_linux_{arch}" },
                    publicAddress: "203.0.113.10",
                },
            },
        );
        assert.match(script, /^pulumi stack init dev$/m);
        assert.match(script, /^pulumi config set acmeDirectoryUrl https:\/\/10\.0\.2\.2:14000\/dir$/m);
        assert.match(script, /^pulumi config set acmeCaBundle < \/tmp\/ca\.pem$/m);
        assert.match(script, /^pulumi config set elementSha256 a{64}$/m);
        // MatrixRTC as the README sets it up, from releases served to the VM.
        assert.match(script, /^pulumi config set rtcLivekitSha256 b{64}$/m);
        assert.match(script, /^pulumi config set rtcJwtServiceSha256 c{64}$/m);
        assert.match(script, /^pulumi config set rtcLivekitDownloadUrl http:\/\/10\.0\.2\.2:8001\/livekit_\{version\}_linux_\{arch\}\.tar\.gz$/m);
        assert.match(script, /^pulumi config set rtcPublicAddress 203\.0\.113\.10$/m);
        assert.doesNotMatch(script, /rtc none/);
        assert.match(script, /^pulumi config set sshPort 2222$/m);
        assert.match(script, /^pulumi config set sshHostKey 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBa6y\S+'$/m);
        assert.match(script, /^pulumi up$/m);
    });
});
