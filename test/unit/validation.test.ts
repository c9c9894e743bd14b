import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { MatrixStack } from "../../components/MatrixStack";
import { PostgresDatabase } from "../../components/PostgresDatabase";
import { SynapseHomeserver } from "../../components/SynapseHomeserver";
import { Host } from "../../components/Host";
import { PortRegistry, checkSupportedOs } from "../../src/model/host";
import { resolvePostgresSettings } from "../../src/model/postgres";
import { resolveSynapseSettings, synapseWarnings, SynapseOptions } from "../../src/model/synapse";
import { MATRIX_ORG_REPOSITORY } from "../../src/model/install";
import { mergeExtraConfig, renderHomeserverYaml } from "../../src/render/synapse/homeserver";
import { readStackConfig } from "../../src/model/stackConfig";
import { RecordingMocks, valueOf } from "../support/unit/mocks";
import { GOLDEN_PEERS, stackArgs } from "../support/unit/fixtures";

const synapse = (o: Partial<SynapseOptions>) => () => resolveSynapseSettings('SynapseHomeserver "s"', { serverName: "example.com", ...o });

/** The error names the component, the setting, the value and what is valid. */
function rejects(fn: () => unknown, setting: string, value: string, valid: RegExp) {
    assert.throws(fn, (e: Error) => {
        assert.match(e.message, new RegExp(`${setting.replace(/[.[\]]/g, "\\$&")} is ${value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
        assert.match(e.message, valid);
        return true;
    });
}

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

    it("ports, and port clashes on one host", () => {
        rejects(synapse({ httpPort: 0 }), "httpPort", "0", /1 to 65535/);
        rejects(synapse({ metrics: { port: 8008 } }), "metrics.port", "8008", /other than httpPort/);
        assert.throws(
            () => new MatrixStack("clash", { ...stackArgs({ httpPort: 5432, httpBindAddresses: ["127.0.0.1"] }) }),
            /SynapseHomeserver "clash-synapse": synapse http listener port is 5432; PostgresDatabase "clash-postgres" \(postgresql\) already uses tcp port 5432 on 127.0.0.1 of Host "clash-host"; choose another port/,
        );
        const ports = () => new PortRegistry('Host "h"');
        const r = ports();
        r.claim("A", [{ port: 80, protocol: "tcp", address: "*", owner: "a" }]);
        assert.throws(
            () => r.claim("B", [{ port: 80, protocol: "tcp", address: "10.0.0.1", owner: "b" }]),
            /B: b port is 80; A \(a\) already uses tcp port 80 on all addresses of Host "h"/,
        );
        const u = ports();
        u.claim("A", [{ port: 80, protocol: "tcp", address: "*", owner: "a" }]);
        assert.doesNotThrow(() => u.claim("B", [{ port: 80, protocol: "udp", address: "*", owner: "b" }]));
        const v = ports();
        v.claim("A", [{ port: 80, protocol: "tcp", address: "10.0.0.1", owner: "a" }]);
        assert.doesNotThrow(() => v.claim("B", [{ port: 80, protocol: "tcp", address: "10.0.0.2", owner: "b" }]));
    });

    it("versions", () => {
        rejects(synapse({ version: "latest" }), "version", '"latest"', /Synapse release such as 1\.163\.2/);
        assert.doesNotThrow(synapse({ version: "1.164.0rc1" }));
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

    it("enumerations and mutually exclusive options", () => {
        rejects(synapse({ registration: "open" as never }), "registration", '"open"', /"shared-secret", "token"/);
        rejects(synapse({ installMethod: "docker" as never }), "installMethod", '"docker"', /"apt", "pip"/);
        const host = new Host("h", { host: "203.0.113.1", privateKey: "k" });
        assert.throws(
            () => new SynapseHomeserver("s", { serverName: "example.com", host }),
            /SynapseHomeserver "s": database is not set, and neither is sqlite; expected exactly one/,
        );
        assert.throws(
            () => new PostgresDatabase("p", { host, external: { host: "db.example.com", database: "synapse", user: "synapse", password: "x" } }),
            /PostgresDatabase "p": host is set together with external; choose one/,
        );
        assert.throws(
            () =>
                new PostgresDatabase("p", {
                    memoryMb: 4096,
                    backup: { enabled: false },
                    external: { host: "db.example.com", database: "synapse", user: "synapse", password: "x" },
                }),
            /PostgresDatabase "p": memoryMb, backup is \{"memoryMb":4096,"backup":\{"enabled":false\}\}; these configure a server the library installs and do nothing with external/,
        );
        assert.throws(
            () =>
                new MatrixStack("m", {
                    ...stackArgs(),
                    postgres: {
                        host: { host: "203.0.113.2", privateKey: "k" },
                        reachableAt: "10.0.0.5",
                        external: { host: "db.example.com", database: "synapse", user: "synapse", password: "x" },
                    },
                }),
            /postgres.host is set together with postgres.external; choose one/,
        );
        assert.throws(
            () => new MatrixStack("m", { ...stackArgs(), postgres: { host: { host: "203.0.113.2", privateKey: "k" } } }),
            /MatrixStack "m": postgres.reachableAt is not set; with postgres.host it must be/,
        );
        assert.throws(() => resolvePostgresSettings('PostgresDatabase "p"', { allowedClients: ["10.0.0.0/24"] }), /add it to listenAddresses/);
    });

    it("extraConfig may not override managed keys or carry secrets", () => {
        assert.throws(
            () => mergeExtraConfig("S", { enable_registration: false }, { enable_registration: true }, []),
            /extraConfig is \{"enable_registration":true\}; enable_registration is managed by the library/,
        );
        assert.deepEqual(mergeExtraConfig("S", { enable_registration: false }, { enable_registration: true }, ["enable_registration"]), {
            enable_registration: true,
        });
        assert.throws(() => mergeExtraConfig("S", {}, { turn_shared_secret: "x" }, []), /secrets do not belong/);
        assert.doesNotThrow(() => mergeExtraConfig("S", {}, { turn_shared_secret_path: "/etc/x" }, []));
    });

    it("several errors are reported together", () => {
        assert.throws(synapse({ httpPort: -1, maxUploadSize: "x" }), (e: Error) => /httpPort/.test(e.message) && /maxUploadSize/.test(e.message));
    });

    it("host settings: SSH address, user, boot timeout, firewall rules", async () => {
        assert.throws(() => new Host("h", { host: "1.2.3.4", privateKey: "k", bootTimeout: "soon" }), /bootTimeout is "soon"; expected a duration/);
        assert.throws(
            () => new Host("h", { host: "1.2.3.4", privateKey: "k", firewall: { rules: [{ port: 10, toPort: 5, protocol: "udp", owner: "x" }] } }),
            /toPort is 5; expected a port >= 10/,
        );
        assert.throws(
            () => new Host("h", { host: "1.2.3.4", privateKey: "k", firewall: { rules: [{ port: 10, protocol: "tcp", sources: ["everyone"], owner: "x" }] } }),
            /sources is "everyone"/,
        );
        assert.throws(() => new Host("h", { host: "1.2.3.4", privateKey: "k", user: "Bad User" }), /user is "Bad User"/);
        assert.throws(
            () => checkSupportedOs('Host "h"', 'PRETTY_NAME="Ubuntu 20.04.6 LTS"\nID=ubuntu\nVERSION_ID="20.04"'),
            /the host's operating system is "Ubuntu 20.04.6 LTS"; supported are .*Ubuntu 24.04/,
        );
        assert.equal(checkSupportedOs("h", 'ID=ubuntu\nVERSION_ID="24.04"\nPRETTY_NAME="Ubuntu 24.04.1 LTS"').codename, "noble");
    });

    it("an empty private key, an unparseable signing key (not echoed), a plain-http public URL", async () => {
        assert.throws(() => new Host("h", { host: "1.2.3.4", privateKey: "" }), /Host "h": privateKey is empty; expected a private key in OpenSSH or PEM form/);
        const empty = new Host("e", { host: "1.2.3.4", privateKey: pulumi.secret(" ") });
        await assert.rejects(valueOf(pulumi.output(empty.connection.privateKey)), /Host "e": privateKey is empty/);
        const host = new Host("k", { host: "1.2.3.4", privateKey: "k" });
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

    it("an SSH address from an Output is checked when it is known", async () => {
        const h = new Host("h", { host: pulumi.output("bad host name!"), privateKey: "k" });
        await assert.rejects(valueOf(pulumi.output(h.connection.host)), /Host "h": host is "bad host name!"; expected an IP address or a DNS host name/);
    });

    it("stack config: required keys, numbers, booleans, lists and YAML", () => {
        const reader = (values: Record<string, string>) => ({ get: (k: string) => values[k] });
        assert.throws(
            () => readStackConfig(reader({ serverName: "example.com" })),
            /matrix:sshHost is not set; it is required; set it with `pulumi config set sshHost/,
        );
        assert.throws(
            () => readStackConfig(reader({ sshHost: "1.2.3.4", serverName: "example.com", presence: "yes" })),
            /matrix:presence is "yes"; expected true or false/,
        );
        assert.throws(
            () => readStackConfig(reader({ sshHost: "1.2.3.4", serverName: "example.com", cacheFactor: "lots" })),
            /matrix:cacheFactor is "lots"; expected a number/,
        );
        assert.throws(
            () => readStackConfig(reader({ sshHost: "1.2.3.4", serverName: "example.com", synapseExtraConfig: "- a\n- b" })),
            /matrix:synapseExtraConfig .* expected a YAML mapping/,
        );
        assert.throws(
            () => readStackConfig(reader({ sshHost: "1.2.3.4", serverName: "example.com", smtpHost: "smtp.example.com" })),
            /matrix:notifFrom is not set/,
        );
        const ok = readStackConfig(
            reader({
                sshHost: "1.2.3.4",
                serverName: "example.com",
                acmeEmail: "admin@example.com",
                publicBaseUrl: "",
                trustedKeyServers: '["matrix.org","example.org"]',
                synapseExtraConfig: "enable_media_repo: true",
            }),
        );
        assert.equal(ok.synapse.publicBaseUrl, undefined);
        assert.deepEqual(ok.synapse.trustedKeyServers, ["matrix.org", "example.org"]);
        assert.deepEqual(ok.synapse.extraConfig, { enable_media_repo: true });
    });
});
