import * as assert from "node:assert/strict";
import { STACK_CONFIG_KEYS, STACK_KEYS, StackConfigKey } from "../../src/config/keys";
import { TEST_SSH_KEY } from "./fixtures";
import { programError } from "./programRun";

/** A value a key refuses, the other keys it needs to mean anything, and what the error must say is valid. */
interface Bad {
    readonly value: string;
    readonly with?: Record<string, string>;
    readonly valid: RegExp;
}

const MAIL = { smtpHost: "smtp.example.com", notifFrom: "noreply@example.com" };
const PG = { postgresExternalHost: "db.example.com", postgresExternalPassword: "pw" };
const REDIS = { redisExternalHost: "redis.example.com" };
const ELEMENT = { elementDomain: "element.example.com", elementVersion: "1.11.100", elementSha256: "0".repeat(64) };
const TURN = { turnDomain: "turn.example.com" };
const DNS = { dnsZone: "example.com", dnsIpv4: "203.0.113.10" };

/**
 * Bad values for every key of the table (the type makes leaving a key out
 * a compile error); `none` says why a key has no value it refuses.
 */
const BAD: Record<StackConfigKey, readonly Bad[] | { none: string }> = {
    sshHost: [{ value: "bad host!", valid: /expected an IP address or a DNS host name/ }],
    sshPort: [
        { value: "70000", valid: /expected a whole number from 1 to 65535/ },
        { value: "ssh", valid: /expected a whole number, such as 22/ },
    ],
    sshUser: [{ value: "Bad User", valid: /expected a Unix user name/ }],
    sshPrivateKey: [{ value: "  \n", valid: /expected a private key/ }],
    sshHostKey: [{ value: "not-a-key", valid: /expected the VM's SSH host public key/ }],
    reapply: { none: "any value is a valid marker: a new one re-runs every script" },
    firewallSshPort: [{ value: "0", valid: /expected a whole number from 1 to 65535/ }],
    ntpServers: [
        { value: '["bad host!"]', valid: /expected host names or addresses/ },
        { value: "pool.ntp.org", valid: /expected a list/ },
    ],
    serverName: [{ value: "not a domain!", valid: /expected the domain of your Matrix IDs/ }],
    publicBaseUrl: [{ value: "ftp://matrix.example.com/", valid: /expected an http\(s\) URL/ }],
    synapseVersion: [{ value: "latest", valid: /expected a Synapse release such as/ }],
    installMethod: [{ value: "snap", valid: /expected one of "apt", "pip"/ }],
    maxUploadSize: [{ value: "huge", valid: /expected a size such as 50M/ }],
    registration: [{ value: "open", valid: /expected one of "shared-secret", "token"/ }],
    allowGuestAccess: [{ value: "yes", valid: /expected true or false/ }],
    urlPreviews: [{ value: "yes", valid: /expected true or false/ }],
    presence: [{ value: "yes", valid: /expected true or false/ }],
    cacheFactor: [
        { value: "0", valid: /expected a number greater than 0/ },
        { value: "lots", valid: /expected a number/ },
    ],
    trustedKeyServers: [{ value: '["not a server!"]', valid: /expected server names/ }],
    federationDomainWhitelist: [{ value: '["not a server!"]', valid: /expected server names/ }],
    reportStats: [{ value: "yes", valid: /expected true or false/ }],
    enableMetrics: [{ value: "yes", valid: /expected true or false/ }],
    logLevel: [{ value: "LOUD", valid: /expected one of "DEBUG"/ }],
    adminUser: [{ value: "Admin!", valid: /expected a Matrix user localpart/ }],
    signingKey: [{ value: "ed25519 a_x notakey", valid: /expected/ }],
    protectSigningKey: [{ value: "yes", valid: /expected true or false/ }],
    allowSigningKeyReplacement: [{ value: "yes", valid: /expected true or false/ }],
    synapseExtraConfig: [{ value: "- a\n- b", valid: /expected a YAML mapping of homeserver.yaml options/ }],
    synapseAllowOverride: { none: "any homeserver.yaml key: one the library does not manage needs no override, and naming it changes nothing" },
    smtpHost: [{ value: "bad host!", with: { notifFrom: MAIL.notifFrom }, valid: /expected the SMTP server's host name/ }],
    smtpPort: [{ value: "0", with: MAIL, valid: /expected a whole number from 1 to 65535/ }],
    smtpUser: [{ value: "bad\nuser", with: MAIL, valid: /expected the SMTP user name on one line/ }],
    smtpPassword: [{ value: "bad\npassword", with: MAIL, valid: /expected the SMTP password on one line/ }],
    notifFrom: [{ value: "nobody", with: { smtpHost: MAIL.smtpHost }, valid: /expected a sender such as/ }],
    useSqlite: [{ value: "yes", valid: /expected true or false/ }],
    postgresMemoryMb: [{ value: "100", valid: /expected a whole number of MiB/ }],
    postgresBackup: [{ value: "yes", valid: /expected true or false/ }],
    postgresBackupRetention: [{ value: "0", valid: /expected a whole number from 1 to 366/ }],
    postgresBackupDirectory: [{ value: "backups", valid: /expected an absolute path/ }],
    postgresExternalHost: [{ value: "bad host!", with: { postgresExternalPassword: "pw" }, valid: /expected/ }],
    postgresExternalPort: [{ value: "0", with: PG, valid: /expected a whole number from 1 to 65535/ }],
    postgresExternalDatabase: [{ value: "Bad-Name", with: PG, valid: /expected/ }],
    postgresExternalUser: [{ value: "Bad-Name", with: PG, valid: /expected/ }],
    postgresExternalPassword: [{ value: "bad\npassword", with: { postgresExternalHost: PG.postgresExternalHost }, valid: /expected/ }],
    workers: [
        { value: "{typing: 2}", valid: /expected 0 or 1/ },
        { value: "[federation_reader]", valid: /expected a YAML mapping of worker roles to counts/ },
    ],
    workerBasePort: [{ value: "0", valid: /expected a whole number from 1 to 65535/ }],
    redisPort: [{ value: "0", valid: /expected a whole number from 1 to 65535/ }],
    redisMaxMemoryMb: [{ value: "1", valid: /expected a whole number of MiB from 16/ }],
    redisExternalHost: [{ value: "bad host!", valid: /expected an IP address or DNS host name of the Redis server/ }],
    redisExternalPort: [{ value: "0", with: REDIS, valid: /expected a whole number from 1 to 65535/ }],
    redisExternalPassword: [{ value: "bad\npassword", with: REDIS, valid: /expected/ }],
    redisExternalTls: [{ value: "yes", with: REDIS, valid: /expected true or false/ }],
    proxy: [{ value: "apache", valid: /expected "nginx" .* or "none"/ }],
    acmeEmail: [{ value: "nobody", valid: /expected/ }],
    acmeDirectoryUrl: [{ value: "ftp://ca.example.com/dir", valid: /expected/ }],
    acmeCaBundle: [{ value: "not a pem", valid: /expected/ }],
    acmeChallenge: [{ value: "tls-alpn-01", valid: /expected "http-01" .* or "dns-01-cloudflare"/ }],
    acmeCloudflareApiToken: [{ value: "bad token", with: { acmeChallenge: "dns-01-cloudflare" }, valid: /expected/ }],
    federationPort: [{ value: "8449", valid: /expected/ }],
    adminAllowList: [{ value: '["everyone"]', valid: /expected/ }],
    serverNameWellKnown: [{ value: "yes", valid: /expected true or false/ }],
    elementDomain: [{ value: "bad domain!", with: { elementVersion: ELEMENT.elementVersion, elementSha256: ELEMENT.elementSha256 }, valid: /expected/ }],
    elementVersion: [{ value: "latest", with: { elementDomain: ELEMENT.elementDomain, elementSha256: ELEMENT.elementSha256 }, valid: /expected/ }],
    elementSha256: [{ value: "abc", with: { elementDomain: ELEMENT.elementDomain, elementVersion: ELEMENT.elementVersion }, valid: /expected/ }],
    elementDownloadUrl: [{ value: "ftp://mirror.example.com/e.tgz", with: ELEMENT, valid: /expected/ }],
    elementBrand: [{ value: "bad\nbrand", with: ELEMENT, valid: /expected/ }],
    elementDefaultTheme: [{ value: "blue", with: ELEMENT, valid: /expected/ }],
    turnDomain: [{ value: "bad domain!", valid: /expected/ }],
    turnRelayPortMin: [{ value: "100", with: TURN, valid: /expected/ }],
    turnRelayPortMax: [{ value: "70000", with: TURN, valid: /expected/ }],
    turnExternalIp: [{ value: "not an ip", with: TURN, valid: /expected/ }],
    turnRelayIp: [{ value: "not an ip", with: { ...TURN, turnExternalIp: "203.0.113.10" }, valid: /expected/ }],
    turnUserLifetime: [{ value: "forever", with: TURN, valid: /expected/ }],
    turnAllowGuests: [{ value: "yes", with: TURN, valid: /expected true or false/ }],
    dnsZone: [{ value: "bad zone!", with: { dnsIpv4: DNS.dnsIpv4 }, valid: /expected/ }],
    dnsIpv4: [{ value: "not an ip", with: { dnsZone: DNS.dnsZone }, valid: /expected/ }],
    dnsIpv6: [{ value: "not an ip", with: DNS, valid: /expected/ }],
    dnsDelegation: [{ value: "cname", with: DNS, valid: /expected/ }],
    dnsWellKnownVia: [{ value: "apache", with: { ...DNS, dnsDelegation: "well-known" }, valid: /expected/ }],
    cloudflareAccountId: [{ value: "not an id", with: { ...DNS, dnsDelegation: "well-known", dnsWellKnownVia: "worker" }, valid: /expected/ }],
    dnsLegacySrv: [{ value: "yes", with: DNS, valid: /expected true or false/ }],
    dnsTtl: [{ value: "5", with: DNS, valid: /expected/ }],
    dnsCloudflare: [{ value: "yes", with: DNS, valid: /expected true or false/ }],
};

const BASE = {
    sshHost: "203.0.113.10",
    sshPrivateKey: TEST_SSH_KEY,
    serverName: "example.com",
    publicBaseUrl: "https://matrix.example.com/",
    acmeEmail: "admin@example.com",
};

describe("every stack key's bad values are refused naming matrix:<key>, the value and what is valid", () => {
    for (const key of STACK_CONFIG_KEYS) {
        const bad = BAD[key];
        if ("none" in bad) continue;
        for (const { value, with: others, valid } of bad) {
            it(`${key} = ${JSON.stringify(value)}`, async () => {
                const secret = STACK_KEYS[key].type === "secret";
                const secrets = ["sshPrivateKey", ...Object.keys(others ?? {}).filter((k) => STACK_KEYS[k as StackConfigKey].type === "secret")];
                if (secret && key !== "sshPrivateKey") secrets.push(key);
                const { message, mocks } = await programError({ ...BASE, ...others, [key]: value }, secrets, 0);
                if (process.env.SHOW) console.log(`${key}: ${message}`);
                const first = message.split("\n")[0];
                assert.ok(first.startsWith(`matrix:${key} is `) || first.startsWith(`matrix:${key}.`), `begins with matrix:${key}: ${message}`);
                if (secret) {
                    // A secret is never shown; an empty one may say so.
                    assert.match(first, new RegExp(`^matrix:${key} is (\\[secret, not shown\\]|empty); `));
                    if (value.trim()) assert.ok(!message.includes(value.trim()), `a secret is shown: ${message}`);
                } else {
                    // The value as written: the text, the number, or (in a list) the item that is wrong.
                    const items = STACK_KEYS[key].type === "list" && value.startsWith("[") ? (JSON.parse(value) as string[]) : [];
                    const shown = [JSON.stringify(value), ...(Number.isFinite(Number(value)) ? [value] : []), ...items.map((i) => JSON.stringify(i))];
                    // Inside a YAML key's value, the value at the path the message names (`matrix:workers.typing is 2`).
                    if (STACK_KEYS[key].type === "yaml" && first.startsWith(`matrix:${key}.`)) shown.push(...value.split(/[^\w.-]+/).filter(Boolean));
                    assert.ok(
                        shown.some((v) => first.includes(` is ${v};`) || first.includes(` is ${v} `)),
                        `the value (${shown.join(" or ")}): ${message}`,
                    );
                }
                assert.match(first, valid);
                assert.deepEqual(
                    mocks.resources.filter((r) => r.type === "command:remote:Command").map((r) => r.name),
                    [],
                    "no command for the VM",
                );
            });
        }
    }
});
