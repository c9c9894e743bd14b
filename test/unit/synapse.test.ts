import * as assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";

import * as pulumi from "@pulumi/pulumi";

import { Host } from "../../components/Host";
import { MatrixStack } from "../../components/MatrixStack";
import { SynapseHomeserver } from "../../components/SynapseHomeserver";
import { readStackConfig } from "../../src/config/read";
import { ConfigError } from "../../src/model/errors";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { BLOCKED_IP_RANGES, resolveSynapseSettings, secretFilePath, SynapseOptions, synapseWarnings } from "../../src/model/synapse";
import { MATRIX_ORG_REPOSITORY } from "../../src/model/synapse/install";
import { isCidr } from "../../src/model/validate";
import { synapseAdminScript, synapseConfigScript, synapseInstallScript, synapsePeerSecrets, synapseSecretsScript } from "../../src/provision/synapse";
import {
    emailSecretFile,
    homeserverConfig,
    mergeExtraConfig,
    pgpassSecretFile,
    renderEmailSecretFragment,
    renderHomeserverYaml,
    renderLogConfig,
    renderPgpass,
} from "../../src/render/synapse/homeserver";
import { ed25519PublicKeyFromOpenssh, parseSigningKeyFile, signingKeyFromPem, signingKeyIdFor } from "../../src/render/synapse/signingKey";
import { renderSynapseMainUnit, renderSynapseTarget } from "../../src/render/synapse/units";
import { renderWorkerUnit } from "../../src/render/workers";
import { golden } from "../support/golden";
import { GOLDEN_PEERS, goldenOs, goldenSynapseSettings, stackArgs, TEST_HOST_KEY, TEST_SSH_KEY } from "../support/unit/fixtures";
import { RecordedResource, RecordingMocks, runWithMocks, valueOf } from "../support/unit/mocks";
import { deployStack as deploy, rejects, resolveSynapse as synapse } from "../support/unit/stack";

describe("bad input is refused before anything touches a VM", () => {
    before(() => pulumi.runtime.setMocks(new RecordingMocks(), "matrix", "test", false));

    it("server names and host names", () => {
        rejects(synapse({ serverName: "not a domain" }), "serverName", '"not a domain"', /domain of your Matrix IDs/);
        rejects(synapse({ serverName: "example.com:99999" }), "serverName", '"example.com:99999"', /host name/);
        assert.doesNotThrow(synapse({ serverName: "example.com:8448" }));
        assert.doesNotThrow(synapse({ serverName: "[2001:db8::1]" }));
        rejects(synapse({ trustedKeyServers: ["matrix org"] }), "trustedKeyServers", '"matrix org"', /server names/);
    });

    it("URLs", () => {
        rejects(synapse({ publicBaseUrl: "matrix.example.com" }), "publicBaseUrl", '"matrix.example.com"', /ending in \//);
        rejects(synapse({ publicBaseUrl: "https://matrix.example.com" }), "publicBaseUrl", '"https://matrix.example.com"', /ending in \//);
    });

    it("versions", () => {
        rejects(synapse({ version: "latest" }), "version", '"latest"', /Synapse release such as 1\.163\.2/);
        assert.doesNotThrow(synapse({ version: "1.164.0rc1", installMethod: "apt" }));
        // pip installs only a release whose dependencies are pinned with hashes in src/model/synapse/constraints/.
        assert.doesNotThrow(synapse({ version: "1.163.1" }));
        rejects(
            synapse({ version: "1.164.0rc1" }),
            "version",
            '"1.164.0rc1"',
            /installMethod "pip" installs only a release whose dependencies .*pins with hashes .*: 1\.163\.1, 1\.163\.2; set one of them, or use installMethod "apt"/,
        );
    });

    it("sizes", () => {
        rejects(synapse({ maxUploadSize: "50MB" }), "maxUploadSize", '"50MB"', /whole number followed by K, M or G/);
        rejects(synapse({ maxUploadSize: "500G" }), "maxUploadSize", '"500G"', /from 1K to 100G/);
        assert.throws(() => resolvePostgresSettings('PostgresDatabase "p"', { memoryMb: 100 }), /memoryMb is 100; expected a whole number of MiB from 256/);
    });

    it("emails", () => {
        rejects(
            synapse({ email: { smtpHost: "smtp.example.com", notifFrom: "Matrix <not-an-email>" } }),
            "email.notifFrom",
            '"Matrix <not-an-email>"',
            /noreply@example.com/,
        );
        rejects(synapse({ email: { smtpHost: "smtp example", notifFrom: "a@example.com" } }), "email.smtpHost", '"smtp example"', /SMTP server/);
    });

    it("paths", () => {
        rejects(synapse({ installMethod: "pip", paths: { dataDir: "relative/dir" } }), "paths.dataDir", '"relative/dir"', /absolute path/);
        rejects(synapse({ installMethod: "pip", paths: { configDir: "/etc/../tmp" } }), "paths.configDir", '"/etc/../tmp"', /no '\.\.'/);
        rejects(synapse({ installMethod: "apt", paths: { venvDir: "/opt/synapse" } }), "paths.venvDir", '"/opt/synapse"', /apt package fixes this/);
        assert.throws(() => resolvePostgresSettings('PostgresDatabase "p"', { backup: { directory: "backups" } }), /backup.directory is "backups"/);
    });

    it("an empty federationDomainWhitelist (the stack's declared default) federates with everyone: it is never rendered", () => {
        // Synapse reads `federation_domain_whitelist: []` as "federate with nobody"; the smoke suite found the
        // stack program's default sending nothing.
        const s = resolveSynapseSettings("s", { serverName: "example.com", federationDomainWhitelist: [] });
        assert.equal(s.federationDomainWhitelist, undefined);
        assert.doesNotMatch(renderHomeserverYaml("s", s, GOLDEN_PEERS), /federation_domain_whitelist/);
        assert.deepEqual(resolveSynapseSettings("s", { serverName: "example.com", federationDomainWhitelist: ["example.org"] }).federationDomainWhitelist, [
            "example.org",
        ]);
    });

    it("install method and the apt repository", () => {
        const apt = (r: Record<string, string>) => synapse({ installMethod: "apt", aptRepository: r });
        assert.equal(resolveSynapseSettings("s", { serverName: "example.com" }).installMethod, "pip", "the default installs from PyPI");
        assert.equal(resolveSynapseSettings("s", { serverName: "example.com" }).aptRepository, undefined);
        assert.deepEqual(resolveSynapseSettings("s", { serverName: "example.com", installMethod: "apt" }).aptRepository, MATRIX_ORG_REPOSITORY);
        assert.deepEqual(
            resolveSynapseSettings("s", {
                serverName: "example.com",
                installMethod: "apt",
                aptRepository: { url: "http://10.0.2.2:8080/debian/", fingerprint: "aaf9ae843a7584b5a3e4cd2bcf45a512de2da058" },
            }).aptRepository,
            { url: "http://10.0.2.2:8080/debian/", keyringUrl: MATRIX_ORG_REPOSITORY.keyringUrl, fingerprint: MATRIX_ORG_REPOSITORY.fingerprint },
            "unset fields keep matrix.org's; a fingerprint is compared in upper case",
        );
        rejects(
            apt({ url: "packages.matrix.org/debian/" }),
            "aptRepository.url",
            '"packages.matrix.org/debian/"',
            /http\(s\) URL of the repository's root \(where dists\/ is\), ending in \//,
        );
        rejects(apt({ url: "https://packages.matrix.org/debian" }), "aptRepository.url", '"https://packages.matrix.org/debian"', /ending in \//);
        rejects(apt({ url: "https://user:pw@example.com/debian/" }), "aptRepository.url", '"https://user:pw@example.com/debian/"', /http\(s\) URL/);
        rejects(
            apt({ keyringUrl: "ftp://example.com/k.gpg" }),
            "aptRepository.keyringUrl",
            '"ftp://example.com/k.gpg"',
            /http\(s\) URL of the repository's keyring file/,
        );
        rejects(apt({ keyringUrl: "https://example.com/a key.gpg" }), "aptRepository.keyringUrl", '"https://example.com/a key.gpg"', /keyring file/);
        rejects(apt({ fingerprint: "CF45A512DE2DA058" }), "aptRepository.fingerprint", '"CF45A512DE2DA058"', /40 hexadecimal digits without spaces/);
        rejects(apt({ fingerprint: "AAF9 AE84 3A75 84B5 A3E4  CD2B CF45 A512 DE2D A058" }), "aptRepository.fingerprint", '"AAF9 AE84', /without spaces/);
        rejects(
            synapse({ aptRepository: { url: "https://example.com/debian/" } }),
            "aptRepository",
            '{"url":"https://example.com/debian/"',
            /applies only to installMethod "apt"/,
        );
        rejects(synapse({ installMethod: "apt", serverName: "[2001:db8::1]" }), "serverName", '"[2001:db8::1]"', /rewrites the server_name line unquoted/);
        assert.doesNotThrow(synapse({ installMethod: "apt", serverName: "example.com:8448" }));
        assert.doesNotThrow(synapse({ installMethod: "pip", serverName: "[2001:db8::1]" }));
    });

    it("extraConfig may not override managed keys or carry secrets", () => {
        assert.throws(
            () => mergeExtraConfig("S", { enable_registration: false }, { enable_registration: true }, []),
            /extraConfig is \{"enable_registration":true\}; enable_registration is managed by the library/,
        );
        assert.deepEqual(mergeExtraConfig("S", { enable_registration: false }, { enable_registration: true }, ["enable_registration"]), {
            enable_registration: true,
        });
        // Secrets at any depth are refused when the settings are resolved: test/unit/synapseExtraSecrets.test.ts.
        assert.throws(synapse({ extraConfig: { turn_shared_secret: "x" } }), /extraConfig\.turn_shared_secret is \[secret, not shown\]; secrets do not belong/);
        assert.doesNotThrow(synapse({ extraConfig: { turn_shared_secret_path: "/etc/x" } }));
    });

    it("several errors are reported together", () => {
        assert.throws(synapse({ httpPort: -1, maxUploadSize: "x" }), (e: Error) => /httpPort/.test(e.message) && /maxUploadSize/.test(e.message));
    });

    it("an empty private key, an unparseable signing key (not echoed), a plain-http public URL", async () => {
        assert.throws(
            () => new Host("h", { host: "1.2.3.4", privateKey: "", hostKey: TEST_HOST_KEY }),
            /Host "h": privateKey is empty; expected a private key in OpenSSH or PEM form/,
        );
        const empty = new Host("e", { host: "1.2.3.4", privateKey: pulumi.secret(" "), hostKey: TEST_HOST_KEY });
        await assert.rejects(valueOf(pulumi.output(empty.connection.privateKey)), /Host "e": privateKey is empty/);
        const host = new Host("k", { host: "1.2.3.4", privateKey: "k", hostKey: TEST_HOST_KEY });
        const s = new SynapseHomeserver("s", { serverName: "example.com", host, sqlite: {}, signingKey: pulumi.secret("ed25519 a_x SECRETnotbase64!!") });
        await assert.rejects(valueOf(s.signingKeyId), (e: Error) => {
            assert.match(e.message, /SynapseHomeserver "s": signingKey is \[secret, not shown\]; expected the content of a Synapse signing key file/);
            assert.doesNotMatch(e.message, /SECRET/);
            return true;
        });
        assert.deepEqual(synapseWarnings(synapse({ publicBaseUrl: "http://matrix.example.com/" })()).length, 1);
        assert.match(
            synapseWarnings(synapse({ publicBaseUrl: "http://matrix.example.com/" })())[0],
            /publicBaseUrl is "http:\/\/matrix.example.com\/": clients would send passwords/,
        );
        assert.deepEqual(synapseWarnings(synapse({ publicBaseUrl: "http://127.0.0.1:8008/" })()), []);
        assert.deepEqual(synapseWarnings(synapse({})()), []);
    });
});

export type { RecordedResource };

describe("MatrixStack under Pulumi mocks", () => {
    it("outputs the key id derived from the signing key and an admin user id", async () => {
        const { result } = await deploy();
        assert.match(await valueOf(result.synapse.signingKeyId), /^a_[a-z]{4}$/);
        assert.equal(await valueOf(result.synapse.adminUserId!), "@admin:example.com");
        assert.equal(await valueOf(result.synapse.version), "1.163.2");
    });
});

/** Which resources would update: those whose inputs differ between two runs. */
function changed(a: RecordingMocks, b: RecordingMocks): string[] {
    const before = new Map(a.resources.map((r) => [`${r.type}/${r.name}`, JSON.stringify(r.inputs)]));
    return b.resources.filter((r) => before.get(`${r.type}/${r.name}`) !== JSON.stringify(r.inputs)).map((r) => r.name);
}

async function run(overrides = {}) {
    const { mocks } = await runWithMocks(
        () => new MatrixStack("prod", stackArgs(overrides)),
        (s) => [s.synapse.signingKeyId],
    );
    return mocks;
}

describe("what a change re-runs", () => {
    it("the same settings twice: nothing changes", async () => {
        assert.deepEqual(changed(await run(), await run()), []);
    });

    it("maxUploadSize: Synapse's config command (which restarts Synapse) and nginx's (client_max_body_size follows), not PostgreSQL's", async () => {
        const before = await run();
        const after = await run({ maxUploadSize: "100M" });
        assert.deepEqual(changed(before, after).sort(), ["prod-proxy-nginx", "prod-synapse-config"]);
        const diff = (name: string) => {
            const lines = (m: RecordingMocks) => new Set(String(m.byName(name).inputs.stdin).split("\n"));
            const [a, b] = [lines(before), lines(after)];
            return [...b].filter((l) => !a.has(l));
        };
        assert.deepEqual(diff("prod-proxy-nginx"), ["    client_max_body_size 100M;"]);
    });

    it("a new Synapse version: the install and config commands", async () => {
        assert.deepEqual(changed(await run(), await run({ version: "1.163.1" })).sort(), ["prod-synapse-config", "prod-synapse-install"]);
    });
});

describe("signing key conversion", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const pem = privateKey.export({ format: "pem", type: "pkcs8" }).toString();

    it("turns a PKCS#8 PEM into Synapse's one-line key file with an unpadded 43-character seed", () => {
        const k = signingKeyFromPem(pem);
        assert.match(k.fileLine, /^ed25519 a_[a-z]{4} [A-Za-z0-9+/]{43}\n$/);
        const der = privateKey.export({ format: "der", type: "pkcs8" });
        assert.equal(Buffer.from(k.fileLine.split(" ")[2].trim(), "base64").toString("hex"), der.subarray(der.length - 32).toString("hex"));
    });

    it("publishes the public key of the same key pair", () => {
        const raw = publicKey.export({ format: "der", type: "spki" }).subarray(12);
        assert.equal(signingKeyFromPem(pem).publicKey, raw.toString("base64").replace(/=+$/, ""));
    });

    it("derives the same key id from the OpenSSH public key (what the component uses) as from the private key", () => {
        const raw = publicKey.export({ format: "der", type: "spki" }).subarray(12);
        const len = (b: Buffer) => {
            const l = Buffer.alloc(4);
            l.writeUInt32BE(b.length);
            return Buffer.concat([l, b]);
        };
        const openssh = `ssh-ed25519 ${Buffer.concat([len(Buffer.from("ssh-ed25519")), len(raw)]).toString("base64")}`;
        assert.equal(signingKeyIdFor(ed25519PublicKeyFromOpenssh(openssh)), signingKeyFromPem(pem).keyId);
    });

    it("is stable for one key and differs for another", () => {
        assert.equal(signingKeyFromPem(pem).fileLine, signingKeyFromPem(pem).fileLine);
        const other = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
        assert.notEqual(signingKeyFromPem(other).fileLine, signingKeyFromPem(pem).fileLine);
    });

    it("imports an existing Synapse key file and signs like the original", () => {
        const line = signingKeyFromPem(pem).fileLine.replace(/ a_[a-z]{4} /, " a_Xyz9 ");
        const parsed = parseSigningKeyFile(`\n${line}`);
        assert.equal(parsed.keyId, "a_Xyz9");
        assert.equal(parsed.publicKey, signingKeyFromPem(pem).publicKey);
        const sig = sign(null, Buffer.from("event"), privateKey);
        const raw = Buffer.from(parsed.publicKey + "=", "base64");
        const pub = createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw]), format: "der", type: "spki" });
        assert.ok(verify(null, Buffer.from("event"), pub, sig));
    });

    it("refuses what is not a Synapse key line", () => {
        assert.throws(() => parseSigningKeyFile("ssh-ed25519 AAAA"), /signingKey is \[secret, not shown\]; expected the content of a Synapse signing key file/);
        assert.throws(
            () => signingKeyFromPem(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" }).toString()),
            /Ed25519/,
        );
    });
});

/** What a stack config key reaches, and the settings that decide destroy and a redeploy to the same host. */
describe("protectSigningKey and allowSigningKeyReplacement", () => {
    const base = {
        sshHost: "203.0.113.10",
        sshPrivateKey: TEST_SSH_KEY,
        sshHostKey: TEST_HOST_KEY,
        serverName: "example.com",
        acmeEmail: "admin@example.com",
        rtc: "none",
    };
    const read = (extra: Record<string, string>) => readStackConfig({ get: (k) => ({ ...base, ...extra })[k as keyof typeof base] });

    it("default to protect (true) and to refuse a replacement (false)", () => {
        const s = resolveSynapseSettings("t", { serverName: "example.com" });
        assert.equal(s.protectSigningKey, true);
        assert.equal(s.allowSigningKeyReplacement, false);
    });

    it("are read from matrix:protectSigningKey and matrix:allowSigningKeyReplacement", () => {
        const o = read({ protectSigningKey: "false", allowSigningKeyReplacement: "true" }).synapse;
        assert.equal(o.protectSigningKey, false);
        assert.equal(o.allowSigningKeyReplacement, true);
        assert.throws(() => read({ protectSigningKey: "no" }), { message: 'matrix:protectSigningKey is "no"; expected true or false' });
    });

    async function protectOfSigningKey(overrides: Parameters<typeof stackArgs>[0]) {
        const seen = new Map<string, boolean | undefined>();
        const record: pulumi.ResourceTransformation = (a) => {
            seen.set(a.name, a.opts.protect);
            return undefined;
        };
        await runWithMocks(
            () => new MatrixStack("prod", stackArgs(overrides), { transformations: [record] }),
            (s) => [s.synapse.signingKeyId],
        );
        assert.ok(seen.has("prod-synapse-signing-key"), [...seen.keys()].join(", "));
        return seen.get("prod-synapse-signing-key");
    }

    it("protect the generated signing key unless protectSigningKey is false", async () => {
        assert.equal(await protectOfSigningKey({}), true);
        assert.equal(await protectOfSigningKey({ protectSigningKey: false }), false);
    });

    it("the secrets script refuses a different host key unless allowSigningKeyReplacement is set", () => {
        const script = (allow: boolean) =>
            synapseSecretsScript(
                resolveSynapseSettings("t", { serverName: "example.com", allowSigningKeyReplacement: allow }),
                { macaroonSecretKey: "m", formSecret: "f", registrationSharedSecret: "r", signingKey: "ed25519 a_abcd SEED", files: [] },
                'SynapseHomeserver "prod-synapse"',
            );
        assert.match(script(false), /SynapseHomeserver "prod-synapse": this host already has a different signing key; nothing was changed\./);
        assert.match(script(false), /this deployment'\\''s key is ed25519:a_abcd\./);
        assert.doesNotMatch(script(true), /nothing was changed/);
        for (const allow of [false, true]) {
            // The guard runs before anything is written; only ids are printed.
            const s = script(allow);
            assert.ok(s.indexOf("pm_key_new=") < s.indexOf("pm_write "), "guard before the first write");
            assert.doesNotMatch(
                s
                    .split("\n")
                    .filter((l) => /echo|printf .*>&2/.test(l))
                    .join("\n"),
                /SEED/,
            );
        }
    });
});

describe("the signing key guard's message", () => {
    it("names the stack's own protected key to unprotect when the host's key is imported instead", async () => {
        const urn = "urn:pulumi:dev::matrix::matrix:index:MatrixStack$matrix:index:SynapseHomeserver$tls:index/privateKey:PrivateKey::dev-synapse-signing-key";
        const key = "ed25519 a_abcd " + "A".repeat(43);
        const text = synapseSecretsScript(goldenSynapseSettings(), {
            macaroonSecretKey: "m",
            formSecret: "f",
            registrationSharedSecret: "r",
            signingKey: key,
            files: [],
            protectedKeyUrn: urn,
        });
        assert.ok(text.includes("pulumi state unprotect --yes") && text.includes(urn), "no unprotect line");
        assert.doesNotMatch(
            synapseSecretsScript(goldenSynapseSettings(), {
                macaroonSecretKey: "m",
                formSecret: "f",
                registrationSharedSecret: "r",
                signingKey: key,
                files: [],
            }),
            /state unprotect/,
        );
    });
});

describe("synapse: golden files (update with `npm run golden:update`, review the diff)", () => {
    const s = goldenSynapseSettings;
    golden("synapse", "homeserver.yaml", () => renderHomeserverYaml("golden", s(), GOLDEN_PEERS));
    golden("synapse", "log.yaml", () => renderLogConfig(s()));
    golden("synapse", "50-email-secret.yaml", () => renderEmailSecretFragment(s(), "<smtp password>"));
    golden("synapse", "pgpass", () => renderPgpass(GOLDEN_PEERS.database!, "<database password>"));
    golden("synapse", "matrix-synapse.service", () => renderSynapseMainUnit(s(), ["postgresql.service"]));
    golden("synapse", "matrix-synapse.target", () => renderSynapseTarget());
    golden("synapse", "scripts/synapse-install-pip.sh", () => synapseInstallScript(s(), goldenOs()));
    golden("synapse", "scripts/synapse-install-apt.sh", () => synapseInstallScript({ ...s(), installMethod: "apt", paths: { ...s().paths } }, goldenOs()));
    golden("synapse", "scripts/synapse-config.sh", () => synapseConfigScript(s(), GOLDEN_PEERS, "golden"));
    // Secret-bearing scripts, with placeholders where the secrets go.
    golden("synapse", "scripts/synapse-secrets.sh", () =>
        synapseSecretsScript(s(), {
            macaroonSecretKey: "<macaroon secret key>",
            formSecret: "<form secret>",
            registrationSharedSecret: "<registration shared secret>",
            signingKey: "ed25519 a_abcd <seed>",
            files: [pgpassSecretFile(GOLDEN_PEERS.database!, "<database password>"), emailSecretFile(s(), "<smtp password>")],
        }),
    );
    golden("synapse", "scripts/synapse-admin.sh", () => synapseAdminScript(s(), "admin", "<admin password>"));
});

describe("blocked address ranges: URL previews and outbound requests (issue 19, item 10)", () => {
    const yaml = (o: Partial<SynapseOptions>) => homeserverConfig(resolveSynapseSettings("t", { serverName: "example.com", ...o }), GOLDEN_PEERS);
    const newRanges = ["0.0.0.0/8", "240.0.0.0/4", "::/128", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/32", "2002::/16"];

    it("the list covers Synapse's missing ranges and every entry is a CIDR network", () => {
        for (const r of newRanges) assert.ok(BLOCKED_IP_RANGES.includes(r), r);
        for (const r of BLOCKED_IP_RANGES) assert.ok(isCidr(r), r);
    });

    it("both options hold every range of the list", () => {
        const c = yaml({ urlPreviews: { enabled: true } });
        assert.deepEqual(c.url_preview_ip_range_blacklist, [...BLOCKED_IP_RANGES]);
        assert.deepEqual(c.ip_range_blacklist, [...BLOCKED_IP_RANGES]);
        const text = renderHomeserverYaml("t", resolveSynapseSettings("t", { serverName: "example.com", urlPreviews: { enabled: true } }), GOLDEN_PEERS);
        for (const r of newRanges) assert.equal(text.split(`- ${r}\n`).length - 1, 2, `${r} in both lists`);
    });

    it("outbound requests are blocked even with URL previews off", () => {
        const c = yaml({});
        assert.equal(c.url_preview_ip_range_blacklist, undefined);
        assert.deepEqual(c.ip_range_blacklist, [...BLOCKED_IP_RANGES]);
    });

    it("a user's ranges are added, never replace the list; an empty list adds nothing", () => {
        const c = yaml({ urlPreviews: { enabled: true, ipRangeBlacklist: ["203.0.114.0/24", "10.0.0.0/8"] }, ipRangeBlacklist: ["2a01:4f8::/32"] });
        assert.deepEqual(c.url_preview_ip_range_blacklist, [...BLOCKED_IP_RANGES, "203.0.114.0/24"]);
        assert.deepEqual(c.ip_range_blacklist, [...BLOCKED_IP_RANGES, "2a01:4f8::/32"]);
        const empty = yaml({ urlPreviews: { enabled: true, ipRangeBlacklist: [] }, ipRangeBlacklist: [] });
        assert.deepEqual(empty.url_preview_ip_range_blacklist, [...BLOCKED_IP_RANGES]);
        assert.deepEqual(empty.ip_range_blacklist, [...BLOCKED_IP_RANGES]);
    });

    it("an empty or invalid entry is refused, naming the option", () => {
        rejects(
            synapse({ urlPreviews: { enabled: true, ipRangeBlacklist: [""] } }),
            "urlPreviews.ipRangeBlacklist",
            '""',
            /CIDR networks such as 10\.0\.0\.0\/8/,
        );
        rejects(synapse({ urlPreviews: { ipRangeBlacklist: ["10.0.0.0/33"] } }), "urlPreviews.ipRangeBlacklist", '"10.0.0.0/33"', /CIDR networks/);
        rejects(synapse({ ipRangeBlacklist: ["intranet.example.com"] }), "ipRangeBlacklist", '"intranet.example.com"', /added to the built-in blocked ranges/);
        rejects(synapse({ ipRangeBlacklist: [" "] }), "ipRangeBlacklist", '" "', /CIDR networks/);
        rejects(synapse({ ipRangeBlacklist: "10.0.0.0/8" as unknown as string[] }), "ipRangeBlacklist", '"10.0.0.0/8"', /as a list/);
    });
});

describe("the sandbox of every Synapse unit, main and workers (issue 19, Synapse's hardened override)", () => {
    const s = () => resolveSynapseSettings("S", { serverName: "example.com" });
    const HARDENED = [
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "NoNewPrivileges=true",
        "PrivateDevices=true",
        "PrivateUsers=true",
        "ProtectKernelLogs=true",
        "ProtectClock=true",
        "ProtectHostname=true",
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces=true",
        "RestrictSUIDSGID=true",
        "LockPersonality=true",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources @obsolete",
    ];
    for (const [name, unit] of [
        ["matrix-synapse.service", () => renderSynapseMainUnit(s())],
        ["matrix-synapse-worker@.service", () => renderWorkerUnit(s())],
    ] as const)
        it(name, () => {
            const lines = unit().split("\n");
            for (const l of HARDENED) assert.ok(lines.includes(l), `${name}: ${l}`);
            // Python needs writable, executable memory (ctypes/cffi callbacks): never denied.
            assert.ok(!lines.some((l) => l.startsWith("MemoryDenyWriteExecute=true")));
        });
});

describe("secret file names: one plain name inside secrets/ or conf.d/ (issue 19, secretFiles names)", () => {
    const s = () => resolveSynapseSettings("S", { serverName: "example.com" });
    for (const name of ["../../cron.d/x", "a/b", "..", ".", ".hidden", "", "x y", "name\n", "ä", "a".repeat(129)])
        it(`${JSON.stringify(name.slice(0, 20))} is refused before any script is made`, () => {
            assert.throws(
                () => synapsePeerSecrets(s(), "peer-secrets", [{ name, kind: "secret", content: "x" }], []),
                (e: unknown) => e instanceof ConfigError && e.setting === "name" && /plain file name of letters, digits and \._-/.test(e.message),
            );
        });
    it("the library's own names pass; a conf.d fragment must end in .yaml", () => {
        assert.equal(secretFilePath(s().paths, { name: "turn_shared_secret", kind: "secret" }), "/etc/matrix-synapse/secrets/turn_shared_secret");
        assert.equal(secretFilePath(s().paths, { name: "50-email-secret.yaml", kind: "fragment" }), "/etc/matrix-synapse/conf.d/50-email-secret.yaml");
        assert.throws(() => secretFilePath(s().paths, { name: "50-email", kind: "fragment" }), /ending in \.yaml/);
    });
});

describe("purges: forgotten rooms and media retention in homeserver.yaml (issue 23)", () => {
    const base = { serverName: "example.com", installMethod: "pip" as const };
    const yamlOf = (o: Partial<SynapseOptions>) => renderHomeserverYaml("t", resolveSynapseSettings("t", { ...base, ...o }), GOLDEN_PEERS);

    it("purges forgotten rooms after 28 days by default; media retention is off", () => {
        const y = yamlOf({});
        assert.match(y, /^forgotten_room_retention_period: 28d$/m);
        assert.doesNotMatch(y, /media_retention/);
    });

    it("renders the lifetimes under media_retention with Synapse's names, each only when set", () => {
        assert.match(yamlOf({ forgottenRoomRetentionPeriod: "2w" }), /^forgotten_room_retention_period: 2w$/m);
        assert.match(
            yamlOf({ mediaRetention: { localMediaLifetime: "1y", remoteMediaLifetime: "90d" } }),
            /^media_retention:\n {2}local_media_lifetime: 1y\n {2}remote_media_lifetime: 90d$/m,
        );
        const remoteOnly = yamlOf({ mediaRetention: { remoteMediaLifetime: "30d" } });
        assert.match(remoteOnly, /^media_retention:\n {2}remote_media_lifetime: 30d$/m);
        assert.doesNotMatch(remoteOnly, /local_media_lifetime/);
    });

    for (const [options, expected] of [
        [{ forgottenRoomRetentionPeriod: "23h" }, /forgottenRoomRetentionPeriod is "23h"; expected a duration of at least one day/],
        [{ forgottenRoomRetentionPeriod: "28 days" }, /forgottenRoomRetentionPeriod is "28 days"; expected a duration/],
        [{ mediaRetention: { localMediaLifetime: "3600s" } }, /mediaRetention\.localMediaLifetime is "3600s"; expected a duration of at least one day/],
        [{ mediaRetention: { remoteMediaLifetime: "0d" } }, /mediaRetention\.remoteMediaLifetime is "0d"; expected a duration/],
    ] as const) {
        it(`refuses ${JSON.stringify(options)}, naming the option`, () => {
            assert.throws(() => resolveSynapseSettings("t", { ...base, ...options }), expected);
        });
    }

    it("accepts exactly one day in any of Synapse's units", () => {
        for (const v of ["86400s", "1440m", "24h", "1d", "1w", "1y"])
            assert.doesNotThrow(() => resolveSynapseSettings("t", { ...base, forgottenRoomRetentionPeriod: v }));
    });
});
