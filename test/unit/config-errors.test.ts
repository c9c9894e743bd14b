import * as assert from "node:assert/strict";

import { StackConfigError } from "../../src/config/errors";
import { partOf, STACK_CONFIG_KEYS, STACK_KEYS, STACK_PARTS, StackConfigKey } from "../../src/config/keys";
import { inStackConfigTerms, stackValues } from "../../src/config/translate";
import { ConfigError } from "../../src/model/errors";
import { TEST_HOST_KEY, TEST_SSH_KEY } from "../support/unit/fixtures";
import { programError } from "../support/unit/programRun";

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
const RTC = { rtc: "livekit", rtcLivekitSha256: "a".repeat(64), rtcJwtServiceSha256: "b".repeat(64) };
const DNS = { dnsZone: "example.com", dnsIpv4: "203.0.113.10" };
const MONITORING = { monitoring: "true" };
const BACKUP = {
    backupRepository: "s3:https://s3.example.com/matrix-backups",
    backupPassword: "restic-password",
    backupS3AccessKeyId: "AKIDEXAMPLE",
    backupS3SecretAccessKey: "s3-secret",
};
const KNOWN_HOSTS = "[backup.example.com]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBa6yTPVw8Ss6B7Bb1D0X8ATh3X0qgH/dEqnDq9sQ1lu";
const SFTP = { backupRepository: "sftp:backup@backup.example.com:/srv/restic", backupPassword: "restic-password", backupSftpPrivateKey: TEST_SSH_KEY };
const MAINT = { maintenance: "true" };

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
    sshHostKey: [
        { value: "not-a-key", valid: /expected the VM's SSH host public key/ },
        // Two lines: the second would land in the header of every script run as root.
        { value: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBa6yTPVw8Ss6B7Bb1D0X8ATh3X0qgH/dEqnDq9sQ1lu\ntouch /tmp/pwned", valid: /on one line/ },
        // Its data says ssh-ed25519, not ssh-rsa.
        { value: "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIBa6yTPVw8Ss6B7Bb1D0X8ATh3X0qgH/dEqnDq9sQ1lu", valid: /whose data says "ssh-ed25519", not ssh-rsa/ },
    ],
    sshAcceptAnyHostKey: [{ value: "yes", valid: /expected true or false/ }],
    reapply: { none: "any value is a valid marker: a new one re-runs every script" },
    firewallSshPort: [{ value: "0", valid: /expected a whole number from 1 to 65535/ }],
    ntpServers: [
        { value: '["bad host!"]', valid: /expected host names or addresses/ },
        { value: "pool.ntp.org", valid: /expected a list, set item by item: `pulumi config set --path .ntpServers\[0\]. <first>`/ },
    ],
    journalSystemMaxUse: [
        { value: "2GB", valid: /expected a size: a whole number with K, M, G or T, such as 500M or 2G/ },
        { value: "0M", valid: /expected a size/ },
    ],
    journalMaxRetentionSec: [
        { value: "12h", valid: /expected an age of at least one day/ },
        { value: "30 days", valid: /expected an age of at least one day: a whole number with h, d or w/ },
    ],
    serverName: [{ value: "not a domain!", valid: /expected the domain of your Matrix IDs/ }],
    publicBaseUrl: [{ value: "ftp://matrix.example.com/", valid: /expected an http\(s\) URL/ }],
    synapseVersion: [{ value: "latest", valid: /expected a Synapse release such as/ }],
    installMethod: [{ value: "snap", valid: /expected one of "apt", "pip"/ }],
    synapseRollback: [
        { value: "undo", valid: /expected one of "stop", "restore"/ },
        { value: "restore", valid: /restores the backup taken before the upgrade: .*add a backup, or use rollback "stop"/ },
    ],
    maxUploadSize: [{ value: "huge", valid: /expected a size such as 50M/ }],
    registration: [{ value: "open", valid: /expected one of "shared-secret", "token"/ }],
    allowGuestAccess: [{ value: "yes", valid: /expected true or false/ }],
    urlPreviews: [{ value: "yes", valid: /expected true or false/ }],
    presence: [{ value: "yes", valid: /expected true or false/ }],
    forgottenRoomRetentionPeriod: [
        { value: "12h", valid: /expected a duration of at least one day: a whole number with s, m, h, d, w or y/ },
        { value: "28 days", valid: /expected a duration of at least one day/ },
    ],
    localMediaLifetime: [{ value: "1h", valid: /expected a duration of at least one day/ }],
    remoteMediaLifetime: [{ value: "90", valid: /expected a duration of at least one day/ }],
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
    postgresDatabase: [{ value: "Synapse-DB", valid: /expected a lower-case SQL name such as synapse/ }],
    postgresUser: [{ value: "synapse user", valid: /expected a lower-case SQL role name such as synapse/ }],
    postgresBackup: [{ value: "yes", valid: /expected true or false/ }],
    postgresBackupRetention: [{ value: "0", valid: /expected a whole number from 1 to 366/ }],
    postgresBackupDirectory: [{ value: "backups", valid: /expected an absolute path/ }],
    postgresExternalHost: [{ value: "bad host!", with: { postgresExternalPassword: "pw" }, valid: /expected/ }],
    postgresExternalPort: [{ value: "0", with: PG, valid: /expected a whole number from 1 to 65535/ }],
    postgresExternalDatabase: [{ value: "Bad-Name", with: PG, valid: /expected/ }],
    postgresExternalUser: [{ value: "Bad-Name", with: PG, valid: /expected/ }],
    postgresExternalPassword: [{ value: "bad\npassword", with: { postgresExternalHost: PG.postgresExternalHost }, valid: /expected/ }],
    postgresExternalSslMode: [{ value: "allow", with: PG, valid: /expected one of "disable", "prefer", "require", "verify-ca", "verify-full"/ }],
    postgresExternalCaCert: [{ value: "not a certificate", with: PG, valid: /expected one or more PEM certificates/ }],
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
    maintenance: [{ value: "yes", valid: /expected true or false/ }],
    maintenanceCompressor: [
        { value: "yes", with: MAINT, valid: /expected true or false/ },
        // SQLite: no compressor (and no purges).
        { value: "true", with: { ...MAINT, useSqlite: "true" }, valid: /the compressor works on PostgreSQL only, and Synapse uses SQLite/ },
    ],
    maintenanceCompressorSchedule: [{ value: "every 'day'", with: MAINT, valid: /expected a systemd calendar expression/ }],
    maintenanceCompressorChunkSize: [
        { value: "0", with: MAINT, valid: /expected a whole number from 1 to 100000/ },
        { value: "50", with: MAINT, valid: /expected at least the first level's size \(100\)/ },
    ],
    maintenanceCompressorChunks: [{ value: "0", with: MAINT, valid: /expected a whole number from 1 to 100000/ }],
    maintenanceCompressorBinaryUrl: [
        { value: "http://example.com/c", with: { ...MAINT, maintenanceCompressorBinarySha256: "0".repeat(64) }, valid: /expected an https:\/\/ URL/ },
        // A URL without its SHA-256.
        { value: "https://example.com/c", with: MAINT, valid: /expected compressor.binarySha256 with it .*a binary downloaded without it is refused/ },
    ],
    maintenanceCompressorBinarySha256: [
        { value: "abc", with: { ...MAINT, maintenanceCompressorBinaryUrl: "https://example.com/c" }, valid: /expected the binary's SHA-256/ },
        { value: "0".repeat(64), with: MAINT, valid: /expected it only together with compressor.binaryUrl/ },
    ],
    maintenanceMediaCache: [
        { value: "yes", with: MAINT, valid: /expected true or false/ },
        { value: "true", with: { ...MAINT, useSqlite: "true", maintenanceCompressor: "false" }, valid: /the purges are for PostgreSQL deployments/ },
    ],
    maintenanceMediaCacheDays: [{ value: "0", with: MAINT, valid: /at least 1 \(retention under one day is refused\)/ }],
    maintenanceMediaCacheSchedule: [{ value: "x\\y", with: MAINT, valid: /expected a systemd calendar expression/ }],
    maintenanceEmptyRooms: [{ value: "yes", with: MAINT, valid: /expected true or false/ }],
    maintenanceEmptyRoomsDays: [{ value: "0", with: MAINT, valid: /retention under one day is refused/ }],
    maintenanceEmptyRoomsDryRun: [{ value: "yes", with: MAINT, valid: /expected true or false/ }],
    maintenanceEmptyRoomsSchedule: [{ value: "daily; reboot", with: MAINT, valid: /expected a systemd calendar expression/ }],
    dnsZone: [{ value: "bad zone!", with: { dnsIpv4: DNS.dnsIpv4 }, valid: /expected/ }],
    dnsIpv4: [{ value: "not an ip", with: { dnsZone: DNS.dnsZone }, valid: /expected/ }],
    dnsIpv6: [{ value: "not an ip", with: DNS, valid: /expected/ }],
    dnsDelegation: [{ value: "cname", with: DNS, valid: /expected/ }],
    dnsWellKnownVia: [{ value: "apache", with: { ...DNS, dnsDelegation: "well-known" }, valid: /expected/ }],
    cloudflareAccountId: [{ value: "not an id", with: { ...DNS, dnsDelegation: "well-known", dnsWellKnownVia: "worker" }, valid: /expected/ }],
    dnsLegacySrv: [{ value: "yes", with: DNS, valid: /expected true or false/ }],
    dnsTtl: [{ value: "5", with: DNS, valid: /expected/ }],
    dnsCloudflare: [{ value: "yes", with: DNS, valid: /expected true or false/ }],
    dnsTakeOver: [
        {
            value: "[a, b]",
            with: { ...DNS, dnsCloudflare: "true" },
            valid: /expected a YAML mapping of resource keys to Cloudflare ids|expected the other stack's dnsCloudflareIds output/,
        },
        {
            value: "{a-www.example.com: 0123456789abcdef0123456789abcdef/0123456789abcdef0123456789abcdef}",
            with: { ...DNS, dnsCloudflare: "true", dnsDelegation: "srv" },
            valid: /^matrix:dnsTakeOver\.a-www\.example\.com is .*; this record set has no such resource; its keys are a-matrix\.example\.com, srv-_matrix-fed\._tcp\.example\.com/,
        },
        {
            value: "{a-matrix.example.com: 42}",
            with: { ...DNS, dnsCloudflare: "true", dnsDelegation: "srv" },
            valid: /^matrix:dnsTakeOver\.a-matrix\.example\.com is 42; expected <zone id>\/<record id>/,
        },
    ],
    monitoring: [{ value: "yes", valid: /expected true or false/ }],
    // A receiver without SMTP, and a sender without a receiver: monitoring.test.ts.
    monitoringAlertEmail: [{ value: '["not an address"]', with: { ...MONITORING, ...MAIL }, valid: /expected e-mail addresses such as ops@example\.com/ }],
    monitoringAlertFrom: [
        { value: "nobody", with: { ...MONITORING, ...MAIL, monitoringAlertEmail: '["ops@example.com"]' }, valid: /expected a sender such as/ },
    ],
    monitoringAlertRoom: [
        { value: "ops", with: MONITORING, valid: /expected the room's ID \(!abc, or !abc:example\.com in rooms before version 12\) or alias/ },
    ],
    monitoringAlertRoomUser: [{ value: "Alerts Bot", with: { ...MONITORING, monitoringAlertRoom: "#ops:example.com" }, valid: /expected the bot's localpart/ }],
    monitoringRetention: [{ value: "forever", with: MONITORING, valid: /expected a whole number with h, d, w or y/ }],
    monitoringPrometheusPort: [{ value: "70000", with: MONITORING, valid: /expected a whole number from 1 to 65535/ }],
    monitoringAlertmanagerPort: [{ value: "9093", with: MONITORING, valid: /port 9093/ }],
    monitoringSynapseRulesUrl: [
        { value: "ftp://mirror.example.com/synapse-v2.rules", with: MONITORING, valid: /expected an http\(s\) URL of Synapse's synapse-v2\.rules .*, or none/ },
        { value: "https://mirror.example.com/a b.rules", with: MONITORING, valid: /expected an http\(s\) URL/ },
    ],
    backupRepository: [
        {
            value: "ftp://backup.example.com/matrix",
            with: { backupPassword: "pw" },
            valid: /expected a restic repository off this host: sftp:user@host:\/path/,
        },
        { value: "/srv/restic", with: { backupPassword: "pw" }, valid: /only SFTP and S3-compatible targets/ },
    ],
    backupPassword: [{ value: "two\nlines", with: { ...BACKUP }, valid: /expected the restic repository's password on one line/ }],
    backupSftpPrivateKey: { none: "any text is passed on as the key (its absence is an error: see the cases where settings meet)" },
    backupSftpKnownHosts: [{ value: "backup.example.com", with: SFTP, valid: /known_hosts lines/ }],
    backupS3AccessKeyId: { none: "any text is passed on (its absence is an error: see the cases where settings meet)" },
    backupS3SecretAccessKey: { none: "any text is passed on (its absence is an error: see the cases where settings meet)" },
    backupSchedule: [{ value: "every night!", with: BACKUP, valid: /expected a systemd OnCalendar expression/ }],
    backupCheckSchedule: [{ value: "weekly?", with: BACKUP, valid: /expected a systemd OnCalendar expression/ }],
    backupKeepDaily: [{ value: "0", with: BACKUP, valid: /expected at least one day kept/ }],
    backupKeepWeekly: [{ value: "-1", with: BACKUP, valid: /expected a whole number from 0 to 1200/ }],
    backupKeepMonthly: [{ value: "-2", with: BACKUP, valid: /expected a whole number from 0 to 1200/ }],
    backupDirectory: [
        { value: "/var/lib/matrix-synapse/backup", with: BACKUP, valid: /expected a directory outside Synapse's data directory/ },
        { value: "backups", with: BACKUP, valid: /expected an absolute path/ },
    ],
    backupKeepLocalCopy: [{ value: "yes", with: BACKUP, valid: /expected true or false/ }],
    standby: [{ value: "yes", with: BACKUP, valid: /expected true or false/ }],
    restoreFrom: [{ value: "yesterday", with: BACKUP, valid: /expected a restic snapshot id .* or "latest"/ }],
    adoptFrom: [{ value: "etc/matrix-synapse", valid: /expected an absolute path such as \/etc\/matrix-synapse/ }],
    adoptPostgres: [{ value: "copy", with: { adoptFrom: "/etc/matrix-synapse" }, valid: /expected one of "dump", "in-place"/ }],
    rtc: [{ value: "jitsi", valid: /expected "livekit" \(the default/ }],
    rtcDomain: [{ value: "bad domain!", with: RTC, valid: /expected a DNS name/ }],
    rtcLivekitVersion: [{ value: "v1.13.5", with: RTC, valid: /expected a livekit-server release such as 1\.13\.5/ }],
    rtcLivekitSha256: [{ value: "abc", with: RTC, valid: /expected the SHA-256 of the livekit-server 1\.13\.5 release file/ }],
    rtcLivekitDownloadUrl: [{ value: "ftp://example.com/x", with: RTC, valid: /expected an http\(s\) URL/ }],
    rtcJwtServiceVersion: [{ value: "latest", with: RTC, valid: /expected a lk-jwt-service release/ }],
    rtcJwtServiceSha256: [{ value: "z".repeat(64), with: RTC, valid: /expected the SHA-256 of the lk-jwt-service/ }],
    rtcJwtServiceDownloadUrl: [{ value: "not a url", with: RTC, valid: /expected an http\(s\) URL/ }],
    rtcArchitecture: [{ value: "riscv64", with: RTC, valid: /expected one of "amd64", "arm64"/ }],
    rtcPublicAddress: [
        { value: "10.0.0.5", with: RTC, valid: /expected the host's public IP address/ },
        { value: "127.0.0.1", with: RTC, valid: /not a private, loopback or link-local address/ },
    ],
    rtcLocalAddress: [
        { value: "127.0.0.1", with: RTC, valid: /expected an IP address of the host's own network interface that carries the media/ },
        { value: "fe80::1", with: RTC, valid: /not loopback, link-local, multicast or unspecified/ },
        { value: "eth0", with: RTC, valid: /such as 10\.0\.0\.5 behind 1:1 NAT/ },
    ],
    rtcTcpPort: [
        { value: "70000", with: RTC, valid: /expected a whole number from 1 to 65535/ },
        { value: "7880", with: RTC, valid: /expected a port other than port \(7880\)/ },
    ],
    rtcUdpPort: [{ value: "0", with: RTC, valid: /expected a whole number from 1 to 65535/ }],
    rtcTurnDomain: [
        { value: "not a name!", with: RTC, valid: /expected a DNS name of its own such as turn\.example\.com/ },
        {
            value: "matrix.example.com",
            with: RTC,
            valid: /it is the homeserver's domain: nginx sends every TLS connection for the TURN name to the TURN server/,
        },
    ],
    rtcTurnPort: [
        { value: "0", with: { ...RTC, rtcTurnDomain: "turn.example.com" }, valid: /expected a whole number from 1 to 65535/ },
        { value: "7881", with: { ...RTC, rtcTurnDomain: "turn.example.com" }, valid: /expected a port other than tcpPort \(7881\)/ },
    ],
    rtcTurnRelayPortMin: [
        { value: "40001", with: { ...RTC, rtcTurnDomain: "turn.example.com" }, valid: /expected min <= max/ },
        { value: "7800", with: { ...RTC, rtcTurnDomain: "turn.example.com" }, valid: /expected a range without the SFU's ICE\/UDP port 7882/ },
    ],
    rtcTurnRelayPortMax: [{ value: "30100", with: { ...RTC, rtcTurnDomain: "turn.example.com" }, valid: /expected at least 200 ports: two per participant/ }],
};

const BASE = {
    sshHost: "203.0.113.10",
    sshPrivateKey: TEST_SSH_KEY,
    sshHostKey: TEST_HOST_KEY,
    serverName: "example.com",
    publicBaseUrl: "https://matrix.example.com/",
    acmeEmail: "admin@example.com",
    // Without MatrixRTC unless a case turns it on (RTC below): its releases must be pinned.
    rtc: "none",
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
                    // The value as written: the text, the number or boolean, or (in a list) the item that is wrong.
                    const items = STACK_KEYS[key].type === "list" && value.startsWith("[") ? (JSON.parse(value) as string[]) : [];
                    const shown = [
                        JSON.stringify(value),
                        ...(Number.isFinite(Number(value)) || value === "true" || value === "false" ? [value] : []),
                        ...items.map((i) => JSON.stringify(i)),
                    ];
                    // Inside a YAML key's value, the value at the path the message names (`matrix:workers.typing is 2`).
                    if (STACK_KEYS[key].type === "yaml" && first.startsWith(`matrix:${key}.`))
                        shown.push(...value.split(/[^\w./-]+/).flatMap((v) => (v ? [v, JSON.stringify(v)] : [])));
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

describe("errors where settings meet, or about settings the user never wrote, name the key the user set", () => {
    const cases: [string, Record<string, string>, RegExp][] = [
        // Port clashes: the key whose value clashes, whichever component's claim found it.
        [
            "a Redis port Synapse uses",
            { redisPort: "8008" },
            /^matrix:redisPort is 8008; in RedisServer "dev-redis" redis\.port: SynapseHomeserver "dev-synapse" \(synapse http listener\) already uses .*choose another port/,
        ],
        [
            "an SSH port nginx serves on",
            { firewallSshPort: "443" },
            /^matrix:firewallSshPort is 443; .*ReverseProxy "dev-proxy" \(nginx\) already uses tcp port 443/,
        ],
        ["a Redis port sshd listens on", { redisPort: "22" }, /^matrix:redisPort is 22; .*Host "dev-host" \(sshd\) already uses tcp port 22/],
        [
            "a Redis port PostgreSQL uses",
            { redisPort: "5432" },
            /^matrix:redisPort is 5432; in RedisServer "dev-redis" redis\.port: PostgresDatabase "dev-postgres" .*choose another port/,
        ],
        [
            "a worker port base PostgreSQL uses",
            { workerBasePort: "5432" },
            /^matrix:workerBasePort is 5432; in WorkerPool "dev-workers" workers\.basePort: it puts the worker federation_reader1 http listener at port 5432, where PostgresDatabase "dev-postgres"/,
        ],
        // A port derived from the base (federation_sender1 at base + 20), and a base too high, reported by a worker or its role.
        [
            "a worker port derived from the base",
            { workerBasePort: "7988" },
            /^matrix:workerBasePort is 7988; in WorkerPool "dev-workers" workers\.basePort: it puts the worker federation_sender1 http listener at port 8008, where SynapseHomeserver "dev-synapse"/,
        ],
        [
            "a worker port base too high",
            { workerBasePort: "65530" },
            /^matrix:workerBasePort is 65530; worker federation_reader1's listeners would reach port 67530 .*expected a basePort that keeps every listener at or below 65535/,
        ],
        [
            "a relay range over coturn's TLS port",
            { turnDomain: "turn.example.com", turnRelayPortMin: "5000", turnRelayPortMax: "9000" },
            /^matrix:turnRelayPortMin is 5000; with matrix:turnRelayPortMax 9000; in TurnServer "dev-turn" relayPorts is \{"min":5000,"max":9000\}: expected a range without coturn's own tlsPort 5349/,
        ],
        // Derived settings: the certificate's names, a URL from the server name.
        [
            "a TURN domain that is no DNS name (coturn's own certificate is for it)",
            { turnDomain: "bad domain!" },
            /^matrix:turnDomain is "bad domain!"; expected the DNS name clients dial, such as turn\.example\.com$/m,
        ],
        [
            "a server name whose URL is outside the DNS zone",
            { publicBaseUrl: "", dnsZone: "other.org", dnsIpv4: "203.0.113.10" },
            /^matrix:serverName is "example.com"; publicBaseUrl follows from it \("https:\/\/example.com\/"\); in MatrixStack "dev" synapse.publicBaseUrl is "https:\/\/example.com\/": expected a name in the zone other.org/,
        ],
        [
            "a public URL outside the DNS zone",
            { dnsZone: "other.org", dnsIpv4: "203.0.113.10", dnsDelegation: "srv" },
            /^matrix:publicBaseUrl is "https:\/\/matrix.example.com\/"; expected a name in the zone other.org/,
        ],
        // MatrixStack's rules across components, named by its args.
        [
            "synapseExtraConfig against the worker pool",
            { synapseExtraConfig: "send_federation: false" },
            /^matrix:synapseExtraConfig\.send_federation is false; expected it left out \(or true\): false would stop outbound federation/,
        ],
        // Backups: a target without its credentials, and a database they cannot dump.
        [
            "an SFTP repository without its key",
            { backupRepository: "sftp:backup@backup.example.com:/srv/restic", backupPassword: "pw", backupSftpKnownHosts: KNOWN_HOSTS },
            /^matrix:backupSftpPrivateKey is not set; an SFTP repository needs the private key of its SSH user/m,
        ],
        [
            "an S3 repository without its keys",
            { backupRepository: "s3:https://s3.example.com/matrix-backups", backupPassword: "pw" },
            /^matrix:backupS3AccessKeyId is not set; an S3 repository needs its access key id[^]*^matrix:backupS3SecretAccessKey is not set/m,
        ],
        [
            "backups with SQLite",
            { ...BACKUP, useSqlite: "true", workers: "{}" },
            /^matrix:backupRepository is "s3:https:\/\/s3\.example\.com\/matrix-backups"; .*in MatrixStack "dev" backup: backups need PostgreSQL installed on Synapse's host \(pg_dump and pg_restore run there\), not SQLite/,
        ],
        [
            "workers with SQLite",
            { useSqlite: "true", workers: "{federation_reader: 1}" },
            /^matrix:workers is \["federation_reader1"\]; workers need PostgreSQL/,
        ],
    ];
    for (const key of ["redisPort", "redisMaxMemoryMb", "redisExternalHost"] as const) {
        const value = key === "redisExternalHost" ? "redis.example.com" : key === "redisPort" ? "6380" : "512";
        cases.push([
            `${key} without workers`,
            { workers: "{}", [key]: value },
            new RegExp(
                `^matrix:${key} is ${JSON.stringify(key === "redisExternalHost" ? value : Number(value))}; (in MatrixStack "dev" redis\\.external: )?Redis serves only Synapse's workers, and there are none`,
            ),
        ]);
    }
    for (const [what, config, expected] of cases) {
        it(what, async () => {
            const secrets = ["sshPrivateKey", ...Object.keys(config).filter((k) => STACK_KEYS[k as StackConfigKey]?.type === "secret")];
            const { message, mocks } = await programError({ ...BASE, ...config }, secrets, 0);
            assert.match(message, expected);
            assert.deepEqual(
                mocks.resources.filter((r) => r.type === "command:remote:Command").map((r) => r.name),
                [],
                "no command for the VM",
            );
        });
    }
});

describe("a component's error about any key's setting comes back as the key (every key)", () => {
    const child = (key: StackConfigKey) => `${STACK_PARTS[partOf(key)]} "dev-${partOf(key)}"`;
    const cases: [string, (key: StackConfigKey) => ConfigError][] = [
        ["named by the component", (key) => new ConfigError(child(key), String(STACK_KEYS[key].setting.rest), "v", "expected w")],
        ["named by MatrixStack's args", (key) => new ConfigError('MatrixStack "dev"', String(STACK_KEYS[key].setting), "v", "expected w")],
        // The stack plan (or a component) names another component's setting as MatrixStack's args do.
        ["named by another component", (key) => new ConfigError('Host "dev-host"', String(STACK_KEYS[key].setting), "v", "expected w")],
    ];
    for (const [what, error] of cases) {
        it(what, () => {
            for (const key of STACK_CONFIG_KEYS) {
                const translated = inStackConfigTerms(error(key), { values: new Map() });
                assert.ok(translated instanceof StackConfigError, `${key}: ${String(translated)}`);
                assert.equal(translated.key, key);
                const shown = STACK_KEYS[key].type === "secret" ? "[secret, not shown]" : '"v"';
                assert.match(translated.message, new RegExp(`^matrix:${key} is ${shown.replace(/[[\]]/g, "\\$&")}; (in .*: )?expected w$`));
            }
        });
    }

    it("a secret's value is never shown, whatever the component's error carried", () => {
        const raw = { get: (k: string) => ({ smtpHost: "smtp.example.com", smtpPassword: "SECRETpw" })[k] };
        const e = inStackConfigTerms(new ConfigError('SynapseHomeserver "dev-synapse"', "smtpPassword", "SECRETpw", "expected w"), stackValues(raw));
        assert.equal((e as Error).message, "matrix:smtpPassword is [secret, not shown]; expected w");
        // Nor found by its value: a secret matches no error's value.
        const other = new ConfigError('Host "dev-host"', "some phrase", "SECRETpw", "expected w");
        assert.equal(inStackConfigTerms(other, stackValues(raw)), other);
    });

    it("a group of settings named by MatrixStack or a component: the keys the user set in it, else all of them", () => {
        const e = new ConfigError('MatrixStack "dev"', "turn.relayPorts", { min: 49152, max: 65535 }, "expected a range without port 50000");
        assert.equal(
            (inStackConfigTerms(e, { values: new Map() }) as Error).message,
            'matrix:turnRelayPortMin is 49152; with matrix:turnRelayPortMax 65535; in MatrixStack "dev" turn.relayPorts is {"min":49152,"max":65535}: expected a range without port 50000',
        );
        const set = new Map<StackConfigKey, unknown>([["turnRelayPortMax", 60000]]);
        const own = new ConfigError('TurnServer "dev-turn"', "relayPorts", { min: 49152, max: 60000 }, "expected w");
        assert.equal(
            (inStackConfigTerms(own, { values: set }) as Error).message,
            'matrix:turnRelayPortMax is 60000; in TurnServer "dev-turn" relayPorts is {"min":49152,"max":60000}: expected w',
        );
    });

    it("leaves an error no key explains as it is", () => {
        const e = new ConfigError('SynapseHomeserver "dev-synapse"', "metrics.port", 8008, "expected a port other than httpPort (8008)");
        assert.equal(inStackConfigTerms(e, { values: new Map() }), e);
    });
});

describe("values known before deploying", () => {
    it("are checked together, before anything is built (the private key, the admin, an external PostgreSQL)", async () => {
        const { message, mocks } = await programError(
            {
                ...BASE,
                sshPrivateKey: " ",
                adminUser: "Admin!",
                postgresExternalHost: "db.example.com",
                postgresExternalPassword: "pw",
                postgresExternalUser: "Bad-Name",
            },
            ["sshPrivateKey", "postgresExternalPassword"],
        );
        assert.deepEqual(
            message.split("\n").map((l) => l.split(" is ")[0]),
            ["matrix:sshPrivateKey", "matrix:adminUser", "matrix:postgresExternalUser"],
        );
        assert.deepEqual(mocks.resources, [], "nothing is built");
    });
});
