import { AdoptOptions } from "../model/adopt";
import { BackupOptions } from "../model/backup";
import { DnsOptions } from "../model/dns";
import { ElementWebOptions } from "../model/element";
import { HostOptions, parseHostKey } from "../model/host";
import { MaintenanceOptions } from "../model/maintenance";
import { MonitoringOptions } from "../model/monitoring";
import { PostgresExternalSettings, PostgresOptions } from "../model/postgres";
import { ReverseProxyOptions } from "../model/proxy";
import { RedisOptions } from "../model/redis";
import { RtcOptions } from "../model/rtc";
import { STACK_COMPONENTS } from "../model/stack";
import { SynapseOptions } from "../model/synapse";
import { TurnOptions } from "../model/turn";
import { WorkerPoolOptions } from "../model/workers";
import { at as atPath, SettingPath } from "./settingPath";

/**
 * The stack config of Pulumi.yaml (keys in the `matrix:` namespace): one
 * table, the only place a key is written. From it come Pulumi.yaml's
 * `config:` block, the README's key table and Pulumi.example.yaml
 * (`npm run config:update`), the reading of a stack's config into
 * MatrixStack's args (read.ts), and the translation of every error back
 * into the key a user wrote (`matrix:<key>`). Defaults are not written
 * here: they are the models' own (defaults.ts).
 */

/** MatrixStack's args as the stack config fills them; `S` is how secrets arrive (an Output in the program). */
export interface StackOptions<S> {
    host: HostOptions & { host: string; hostKey?: string; acceptAnyHostKey?: boolean; reapply?: string; privateKey: S };
    synapse: SynapseOptions & { adminUser?: string; signingKey?: S; smtpPassword?: S };
    postgres: PostgresOptions & {
        external?: {
            host: string;
            port?: number;
            database: string;
            user: string;
            password: S;
            sslMode?: PostgresExternalSettings["sslMode"];
            caCertificate?: string;
        };
    };
    /** The WorkerPool's options; `workers` only when the key is set (otherwise the stack's default pool). */
    workers: WorkerPoolOptions;
    /** Redis's options; `external` with redisExternalHost. */
    redis: RedisOptions & { external?: { host: string; port?: number; password?: S; tls?: boolean } };
    /** The reverse proxy's options; `mode` is `nginx` (the default) or `none` (no proxy: the other options are then refused). */
    proxy: Partial<ReverseProxyOptions> & { mode?: string; cloudflareApiToken?: S };
    /** Element's options; only with elementDomain. */
    element?: ElementWebOptions;
    /** coturn's options; only with turnDomain. */
    turn?: TurnOptions;
    /** Backups; only with backupRepository. */
    backup?: BackupOptions & { password: S; sftpPrivateKey?: S; s3AccessKeyId?: S; s3SecretAccessKey?: S };
    /** Adopting the Synapse installed on the VM; only with adoptFrom. */
    adopt?: AdoptOptions;
    /** The maintenance timers; only with the maintenance switch. */
    maintenance?: MaintenanceOptions;
    /** MatrixRTC's options; `mode` is `livekit` (the default, with the proxy) or `none`. */
    rtc: Partial<RtcOptions> & { mode?: string };
    /** DNS: the record set (and Cloudflare with dnsCloudflare); only with dnsZone. */
    dns?: Omit<DnsOptions, "serverName" | "publicBaseUrl"> & { ipv4: string; cloudflare?: boolean };
    /** Prometheus, Alertmanager and the exporters; only with monitoring. */
    monitoring?: MonitoringOptions;
}

/** The part of MatrixStack's args a key sets. */
export type StackPart = keyof StackOptions<unknown>;

/**
 * The component each part of MatrixStack's args becomes (the plan's table:
 * its kind, as its errors name it; MatrixStack names it `<stack>-<part>`).
 */
export const STACK_PARTS = STACK_COMPONENTS satisfies Record<StackPart, string>;

/** A setting of MatrixStack's args, named by a typed accessor (`(o) => o.synapse.email.smtpHost`). */
const at = (read: Parameters<typeof atPath<StackOptions<string>>>[0]): SettingPath => atPath<StackOptions<string>>(read);

/** How a key's text is read. */
export type StackKeyType =
    | "string"
    /** Pulumi type integer. */
    | "integer"
    /** A decimal number; declared as a Pulumi string (Pulumi has no decimal type). */
    | "number"
    | "boolean"
    /** A boolean that turns an option group on: true sets the setting to `{}` (useSqlite -> sqlite: {}). */
    | "switch"
    /** A list of strings (Pulumi type array). */
    | "list"
    /** A YAML mapping, given as a string. */
    | "yaml"
    /** A string Pulumi keeps encrypted; read by the program as a secret, never as plain text. */
    | "secret";

export interface StackKey {
    /** Starts a section of Pulumi.example.yaml (`# --- <section> ---`). */
    readonly section?: string;
    readonly type: StackKeyType;
    /** The setting of MatrixStack's args the key sets; below its first segment, the component's own setting as its errors name it. */
    readonly setting: SettingPath;
    /** The key must be set (when it applies at all); the value shown in the hint `pulumi config set <key> <value>`. */
    readonly required?: string;
    /** The key only means something while this key is in effect; set without it, it is an error. */
    readonly onlyWith?: string;
    /** The key contradicts these keys: both in effect is an error. */
    readonly notWith?: readonly string[];
    /** What this key in effect means, for errors about keys that contradict it. */
    readonly whenSet?: string;
    /** What this key not in effect means, for errors about keys that need it. */
    readonly whenUnset?: string;
    /** How a secret's value is given in the hint `pulumi config set --secret <key> <hint>` (default `required`, else `...`). */
    readonly hint?: string;
    /** For a YAML key: what the mapping holds and an example, for its errors (default: homeserver.yaml options). */
    readonly yaml?: { holds: string; example: string };
    /**
     * A check of the key's own value beyond its type, for what no component
     * checks before deploying (a secret's form, the stack's own switches):
     * returns what would be valid when the value is not.
     */
    readonly check?: (value: unknown) => string | undefined;
    /** Left unset, the key's setting follows from this key (publicBaseUrl from serverName): errors about it name that key. */
    readonly derivedFrom?: string;
    /** Settings of a part the key's value decides without naming it (workers' ports from workerBasePort): errors about them name the key. */
    readonly derives?: (part: string, setting: string) => boolean;
    /** Pulumi.yaml's description (plain text). */
    readonly description: string;
    /** The README's "what it does" (Markdown). */
    readonly doc: string;
    /** The README's default column when it is not the default itself (a derived or absent default, in words). */
    readonly defaultDoc?: string;
    /**
     * The default Pulumi.yaml declares when it is not the library's: "" where the library's
     * default moves with the library (the pinned Synapse release), so a stack follows it.
     */
    readonly declaredDefault?: string;
    /** Pulumi.example.yaml: the comment above the key and its value (a secret's value is shown as a comment). */
    readonly example: { readonly comment?: readonly string[]; readonly value?: string | readonly string[] };
}

/** A value that must be one line: a password or name written into a file on the VM line by line. */
const oneLine = (what: string) => (v: unknown) => (typeof v === "string" && /[\r\n]/.test(v) ? `expected ${what} on one line, without line breaks` : undefined);

const LOCAL_POSTGRES = ["postgresExternalHost", "useSqlite"] as const;
const LOCAL_REDIS = ["redisExternalHost"] as const;
const WITH_PROXY = ["proxy"] as const;
const WITH_RTC = ["proxy", "rtc"] as const;

/**
 * Every key of the stack config, in Pulumi.yaml's order. A key is "in
 * effect" when it is set to something other than its default (Pulumi fills
 * declared defaults in, so a value equal to the default means "not set").
 */
export const STACK_KEYS = {
    sshHost: {
        section: "The VM",
        type: "string",
        setting: at((o) => o.host.host),
        required: "203.0.113.10",
        description: "Address (IP or DNS name) of the VM that SSH dials.",
        doc: "address SSH dials",
        example: { comment: ["Address SSH dials: the VM's public IP or DNS name."], value: "203.0.113.10" },
    },
    sshPort: {
        type: "integer",
        setting: at((o) => o.host.port),
        description: "SSH port the client dials.",
        doc: "SSH port the client dials",
        example: { comment: ["SSH port the client dials (default 22)."], value: "22" },
    },
    sshUser: {
        type: "string",
        setting: at((o) => o.host.user),
        description: "Login user; root or a user with passwordless sudo.",
        doc: "login user; root or a passwordless sudoer",
        example: { comment: ["Login user: root, or a user with passwordless sudo such as debian or ubuntu (default root)."], value: "debian" },
    },
    sshPrivateKey: {
        type: "secret",
        setting: at((o) => o.host.privateKey),
        required: "< ~/.ssh/id_ed25519",
        description: "Private SSH key for the VM (set with `pulumi config set --secret sshPrivateKey < key`).",
        doc: "private key for the VM",
        example: { comment: ["The private key, encrypted by `pulumi config set --secret sshPrivateKey < key`."] },
    },
    sshHostKey: {
        type: "string",
        setting: at((o) => o.host.hostKey),
        check: (v) => {
            const parsed = parseHostKey(v);
            return "error" in parsed
                ? `expected the VM's SSH host public key on one line, such as ssh-ed25519 AAAAC3Nza... (this is ${parsed.error})`
                : undefined;
        },
        description:
            "The VM's SSH host public key (ssh-ed25519 AAAA..., one line), which SSH verifies before sending anything; required unless sshAcceptAnyHostKey is true.",
        doc: "the VM's SSH host public key (`ssh-ed25519 AAAA...`, one line), verified before any script is sent; required unless `sshAcceptAnyHostKey` is true. Get it out of band: see [Host key](#host-key-verify-the-vm)",
        defaultDoc: "required",
        example: {
            comment: [
                "The VM's host key, verified before any script (and its secrets) is sent; required unless sshAcceptAnyHostKey is true.",
                "Read it out of band: the cloud console's boot log, or a key you generated and injected with cloud-init (README: Host key).",
            ],
            value: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBa6yTPVw8Ss6B7Bb1D0X8ATh3X0qgH/dEqnDq9sQ1lu",
        },
    },
    sshAcceptAnyHostKey: {
        type: "boolean",
        setting: at((o) => o.host.acceptAnyHostKey),
        description: "Connect without verifying the VM's SSH host key (not recommended: anyone on the network path could receive every secret).",
        doc: "connect without verifying the VM's host key: anyone on the network path could receive every script and secret; warned on every run. Not recommended",
        example: { comment: ["Connect without verifying the host key (default false; not recommended, warned on every run)."], value: "false" },
    },
    reapply: {
        type: "string",
        setting: at((o) => o.host.reapply),
        description: "Any value; a new one re-runs every script on the VM, which rewrites files edited there and restarts only what they affect.",
        doc: "any value; a new one re-runs every script, which rewrites files edited on the VM and restarts only what they affect (see [Drift](#drift-see-and-undo-edits-made-on-the-vm))",
        example: { comment: ["A new value re-runs every script, which rewrites files edited on the VM (see `sudo pulumi-matrix-drift` there)."], value: "" },
    },
    firewallSshPort: {
        type: "integer",
        setting: at((o) => o.host.firewall.sshPort),
        description: "Port sshd listens on inside the VM; always kept open by the firewall.",
        doc: "port sshd listens on inside the VM; always open",
        example: { comment: ["Port sshd listens on inside the VM; the firewall always keeps it open (default 22)."], value: "22" },
    },
    ntpServers: {
        type: "list",
        setting: at((o) => o.host.ntpServers),
        description: "NTP servers for systemd-timesyncd (empty keeps the distribution's).",
        doc: "NTP servers for systemd-timesyncd",
        defaultDoc: "distribution's",
        example: {
            comment: ["NTP servers for systemd-timesyncd (default: the distribution's pool)."],
            value: ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"],
        },
    },
    journalSystemMaxUse: {
        type: "string",
        setting: at((o) => o.host.journal.systemMaxUse),
        description: "Most disk space the systemd journal may use (journald's SystemMaxUse), such as 500M or 2G.",
        doc: "most disk space the systemd journal may use (journald's `SystemMaxUse`), such as `500M` or `2G`",
        example: { comment: ["Most disk space the systemd journal may use (default 1G)."], value: "1G" },
    },
    journalMaxRetentionSec: {
        type: "string",
        setting: at((o) => o.host.journal.maxRetentionSec),
        description: "Journal entries older than this are deleted (journald's MaxRetentionSec), at least one day, such as 30d or 2w.",
        doc: "journal entries older than this are deleted (journald's `MaxRetentionSec`); at least one day, such as `30d` or `2w`",
        example: { comment: ["Journal entries older than this are deleted; at least one day (default 30d: logs hold users' IP addresses)."], value: "30d" },
    },
    serverName: {
        section: "Synapse",
        type: "string",
        setting: at((o) => o.synapse.serverName),
        required: "example.com",
        description: "The domain of your Matrix IDs (@alice:example.com -> example.com). Can never change later.",
        doc: "domain of your Matrix IDs; can never change after the first start",
        example: { comment: ["The domain of your Matrix IDs (@alice:example.com). It can never change later."], value: "example.com" },
    },
    publicBaseUrl: {
        type: "string",
        setting: at((o) => o.synapse.publicBaseUrl),
        derivedFrom: "serverName",
        description: "URL clients use to reach Synapse (default https://<serverName>/).",
        doc: "URL clients use",
        defaultDoc: "`https://<serverName>/`",
        example: { comment: ["Where clients reach Synapse (default https://<serverName>/)."], value: "https://matrix.example.com/" },
    },
    synapseVersion: {
        type: "string",
        setting: at((o) => o.synapse.version),
        // The library pins the release it is tested with; "" lets a stack follow the pin when the library moves.
        declaredDefault: "",
        description: "Synapse release to install (default the release this library is tested with); upgrades in place.",
        doc: "Synapse release; a change upgrades in place, downgrades are refused",
        example: { comment: ["Synapse release; changing it upgrades in place (default: the release this library is tested with)."], value: "1.163.2" },
    },
    synapseRollback: {
        type: "string",
        setting: at((o) => o.synapse.rollback),
        defaultDoc: "`stop`",
        description:
            "stop or restore: what an upgrade does when the new release fails after migrating the database beyond what the old release reads (restore needs backup).",
        doc: "`stop` (default) or `restore` (the backup taken before the upgrade; needs `backup`): see [Upgrading and rolling back](#upgrading-and-rolling-back)",
        example: {
            comment: [
                "When an upgrade fails after migrating the database beyond what the old release reads: stop (default: Synapse",
                "stays stopped and the pre-upgrade backup is named) or restore (that backup is restored; needs backup).",
            ],
            value: "stop",
        },
    },
    installMethod: {
        type: "string",
        setting: at((o) => o.synapse.installMethod),
        description:
            "pip (virtualenv from PyPI, exactly the pinned release, any architecture) or apt (matrix.org Debian package, amd64, only the release its repository serves).",
        doc: "`pip` (virtualenv from PyPI) or `apt` (matrix.org's Debian package); see [Install methods](#install-methods)",
        example: {
            comment: [
                "pip: a virtualenv from PyPI, exactly the pinned release (default); apt: matrix.org's Debian package",
                "(amd64, and only the release its repository serves). See the README's install methods.",
            ],
            value: "pip",
        },
    },
    maxUploadSize: {
        type: "string",
        setting: at((o) => o.synapse.maxUploadSize),
        description: "Largest upload, like 50M (K, M or G).",
        doc: "largest upload (`K`, `M`, `G`)",
        example: { comment: ["Largest upload (default 50M)."], value: "100M" },
    },
    registration: {
        type: "string",
        setting: at((o) => o.synapse.registration),
        description: "shared-secret (no public sign-up) or token (sign-up with registration tokens).",
        doc: "`shared-secret`: no public sign-up, accounts via the admin API; `token`: sign-up with registration tokens",
        example: { comment: ["shared-secret: no public sign-up (default); token: sign-up with registration tokens."], value: "shared-secret" },
    },
    allowGuestAccess: {
        type: "boolean",
        setting: at((o) => o.synapse.allowGuestAccess),
        description: "Allow guest accounts.",
        doc: "guest accounts",
        example: { comment: ["Guest accounts (default false)."], value: "false" },
    },
    urlPreviews: {
        type: "boolean",
        setting: at((o) => o.synapse.urlPreviews.enabled),
        description: "URL previews (never fetched from private or special address ranges).",
        doc: "URL previews; private, loopback, link-local, CGNAT, documentation and multicast ranges are never fetched",
        example: { comment: ["URL previews; private and special address ranges are never fetched (default false)."], value: "false" },
    },
    presence: {
        type: "boolean",
        setting: at((o) => o.synapse.presence),
        description: "Presence (online/offline status of users).",
        doc: "online/offline status",
        example: { comment: ["Presence (default true)."], value: "true" },
    },
    forgottenRoomRetentionPeriod: {
        type: "string",
        setting: at((o) => o.synapse.forgottenRoomRetentionPeriod),
        description: "How long a room all local users have forgotten is kept before Synapse purges it (forgotten_room_retention_period); at least 1d.",
        doc: "how long a room every local user has forgotten is kept before Synapse purges it (`forgotten_room_retention_period`); at least one day, such as `28d`",
        example: { comment: ["Rooms every local user has forgotten are purged after this long (default 28d; at least 1d)."], value: "28d" },
    },
    localMediaLifetime: {
        type: "string",
        setting: at((o) => o.synapse.mediaRetention.localMediaLifetime),
        description: "Delete media uploaded by local users that nobody accessed for this long (media_retention.local_media_lifetime); empty keeps it.",
        doc: "delete media your users uploaded once nobody accessed it for this long (`media_retention.local_media_lifetime`); at least one day. It cannot be fetched again",
        defaultDoc: "kept for ever",
        example: { comment: ["Delete local users' uploads nobody accessed for this long (default: kept for ever; at least 1d)."], value: "" },
    },
    remoteMediaLifetime: {
        type: "string",
        setting: at((o) => o.synapse.mediaRetention.remoteMediaLifetime),
        description: "Delete cached media from other servers that nobody accessed for this long (media_retention.remote_media_lifetime); empty keeps it.",
        doc: "delete cached media from other servers once nobody accessed it for this long (`media_retention.remote_media_lifetime`); at least one day; fetched again when needed",
        defaultDoc: "kept for ever",
        example: { comment: ["Delete cached remote media nobody accessed for this long (default: kept for ever; at least 1d)."], value: "90d" },
    },
    cacheFactor: {
        type: "number",
        setting: at((o) => o.synapse.cacheFactor),
        description: "caches.global_factor, scales all of Synapse's caches.",
        doc: "`caches.global_factor`",
        example: { comment: ["caches.global_factor (default 0.5); raise it on a server with memory to spare."], value: "1.0" },
    },
    trustedKeyServers: {
        type: "list",
        setting: at((o) => o.synapse.trustedKeyServers),
        description: "Servers trusted to vouch for other servers' keys.",
        doc: "key notaries (with the default, Synapse's reminder about matrix.org is silenced)",
        example: { comment: ["Servers trusted to vouch for other servers' keys (default [matrix.org])."], value: ["matrix.org"] },
    },
    federationDomainWhitelist: {
        type: "list",
        setting: at((o) => o.synapse.federationDomainWhitelist),
        description: "Only federate with these servers (empty = everyone).",
        doc: "only federate with these servers",
        defaultDoc: "everyone",
        example: { comment: ["Federate only with these servers (default: everyone)."], value: [] },
    },
    reportStats: {
        type: "boolean",
        setting: at((o) => o.synapse.reportStats),
        description: "Send anonymous usage statistics to matrix.org.",
        doc: "anonymous statistics to matrix.org",
        example: { comment: ["Anonymous usage statistics to matrix.org (default false)."], value: "false" },
    },
    enableMetrics: {
        type: "boolean",
        setting: at((o) => o.synapse.metrics.enabled),
        description: "Prometheus metrics on 127.0.0.1:9000.",
        doc: "Prometheus metrics on `127.0.0.1:9000`",
        example: { comment: ["Prometheus metrics on 127.0.0.1:9000 (default true)."], value: "true" },
    },
    logLevel: {
        type: "string",
        setting: at((o) => o.synapse.logLevel),
        description: "DEBUG, INFO, WARNING or ERROR.",
        doc: "`DEBUG`, `INFO`, `WARNING`, `ERROR` (logs go to the journal: `journalctl -u matrix-synapse`)",
        example: { comment: ["Log level in the journal (default INFO)."], value: "INFO" },
    },
    adminUser: {
        type: "string",
        setting: at((o) => o.synapse.adminUser),
        description: "Localpart of an admin account created once (its password is the stack output adminPassword).",
        doc: "localpart of an admin created once; the `adminPassword` output always logs in (see [The admin password](#the-admin-password))",
        example: { comment: ["An admin account created once; its password is the secret stack output adminPassword."], value: "admin" },
    },
    signingKey: {
        type: "secret",
        setting: at((o) => o.synapse.signingKey),
        hint: "< homeserver.signing.key",
        description:
            "An existing Synapse signing key file's content, to migrate a server or keep a host's key (set with `pulumi config set --secret signingKey < homeserver.signing.key`; default a new key in Pulumi state).",
        doc: "(secret) an existing `homeserver.signing.key`, to migrate a server or keep a VM's key",
        defaultDoc: "new key in Pulumi state",
        example: {
            comment: [
                "Migrating an existing server, or deploying again to a host that keeps its key (after `pulumi destroy`)?",
                "Its signing key file, as a secret (default: a new key kept in Pulumi state).",
                "ssh 203.0.113.10 sudo cat /etc/matrix-synapse/homeserver.signing.key | pulumi config set --secret signingKey",
            ],
        },
    },
    protectSigningKey: {
        type: "boolean",
        setting: at((o) => o.synapse.protectSigningKey),
        description: "Protect the generated signing key, so `pulumi destroy` fails until this is false and applied with `pulumi up`.",
        doc: "the generated signing key is `protect`ed, so `pulumi destroy` refuses (see [Destroying a stack](#destroying-a-stack))",
        example: {
            comment: ["Protect the generated signing key: `pulumi destroy` fails until this is false and applied with `pulumi up` (default true)."],
            value: "true",
        },
    },
    allowSigningKeyReplacement: {
        type: "boolean",
        setting: at((o) => o.synapse.allowSigningKeyReplacement),
        description:
            "Replace a different signing key the host already has with the stack's (the old one is kept in keys-replaced/); without it the deployment stops.",
        doc: "replace a different signing key the VM already has (its federation identity); without it `pulumi up` stops and says how to import the VM's key",
        example: {
            comment: [
                "Replace a different signing key the host already has with the stack's; without it, `pulumi up` stops",
                "and says how to import the host's key. The old key is kept in secrets/keys-replaced/ (default false).",
            ],
            value: "false",
        },
    },
    synapseExtraConfig: {
        type: "yaml",
        setting: at((o) => o.synapse.extraConfig),
        description: "Extra homeserver.yaml options as a YAML mapping, merged last.",
        doc: "more `homeserver.yaml` options as a YAML mapping, merged last",
        example: { comment: ["More homeserver.yaml options, merged last (keys the library manages are refused)."], value: "max_avatar_size: 10M\n" },
    },
    synapseAllowOverride: {
        type: "list",
        setting: at((o) => o.synapse.allowOverride),
        description: "Managed homeserver.yaml keys synapseExtraConfig may replace.",
        doc: "managed keys `synapseExtraConfig` may replace",
        example: { comment: ["Managed keys synapseExtraConfig may replace anyway (default none)."], value: [] },
    },
    smtpHost: {
        section: "Email (optional)",
        type: "string",
        setting: at((o) => o.synapse.email.smtpHost),
        whenUnset: "no mail is sent",
        description: "SMTP server for notification mails (empty = no email).",
        doc: "SMTP server for notification mails",
        defaultDoc: "no email",
        example: {
            comment: ["The other email keys need smtpHost: set without it, they are an error.", "SMTP server for notification mails (default: no email)."],
            value: "smtp.example.com",
        },
    },
    smtpPort: {
        type: "integer",
        setting: at((o) => o.synapse.email.smtpPort),
        onlyWith: "smtpHost",
        description: "Port of the SMTP server (only with smtpHost).",
        doc: "SMTP port",
        example: { comment: ["SMTP port (default 587)."], value: "587" },
    },
    smtpUser: {
        type: "string",
        setting: at((o) => o.synapse.email.smtpUser),
        check: oneLine("the SMTP user name"),
        onlyWith: "smtpHost",
        description: "User name on the SMTP server (only with smtpHost).",
        doc: "SMTP user",
        example: { comment: ["SMTP user."], value: "matrix@example.com" },
    },
    smtpPassword: {
        type: "secret",
        setting: at((o) => o.synapse.smtpPassword),
        check: oneLine("the SMTP password"),
        onlyWith: "smtpHost",
        description: "Password on the SMTP server (set with `pulumi config set --secret smtpPassword`).",
        doc: "(secret) SMTP password",
        defaultDoc: "none",
        example: { comment: ["SMTP password: `pulumi config set --secret smtpPassword`."] },
    },
    notifFrom: {
        type: "string",
        setting: at((o) => o.synapse.email.notifFrom),
        required: '"Matrix <noreply@example.com>"',
        onlyWith: "smtpHost",
        description: 'Sender of notification mails, e.g. "Matrix <noreply@example.com>" (required with smtpHost).',
        doc: "sender, e.g. `Matrix <noreply@example.com>`",
        example: { comment: ["Sender of the mails."], value: "Matrix <noreply@example.com>" },
    },
    useSqlite: {
        section: "PostgreSQL",
        type: "switch",
        setting: at((o) => o.synapse.sqlite),
        whenSet: "Synapse keeps its data in SQLite and uses no PostgreSQL",
        notWith: ["postgresExternalHost"],
        description: "SQLite instead of PostgreSQL (tiny test servers only; not with postgresExternalHost or the postgres* keys of an installed server).",
        doc: "SQLite instead of PostgreSQL: tiny test servers only (a warning says so)",
        example: {
            comment: [
                "useSqlite, postgresExternalHost and the keys of an installed server exclude each other:",
                "a value other than the default together with a key it contradicts is an error.",
                "SQLite instead of PostgreSQL: tiny test servers only (default false).",
            ],
            value: "false",
        },
    },
    postgresMemoryMb: {
        type: "integer",
        setting: at((o) => o.postgres.memoryMb),
        notWith: LOCAL_POSTGRES,
        description: "Memory (MiB) the installed PostgreSQL tunes for (not with postgresExternalHost or useSqlite).",
        doc: "memory PostgreSQL tunes for: `shared_buffers` 1/4, `effective_cache_size` 3/4, `work_mem` 1/64, `maintenance_work_mem` 1/16",
        example: { comment: ["Memory PostgreSQL tunes for, in MiB (default 1024)."], value: "2048" },
    },
    postgresDatabase: {
        type: "string",
        setting: at((o) => o.postgres.database),
        notWith: LOCAL_POSTGRES,
        description:
            "Name of the database the installed PostgreSQL gives Synapse (not with postgresExternalHost or useSqlite): another name than an adopted server's for adoptPostgres dump, its name for in-place.",
        doc: "the installed server's database for Synapse (an adopted server's with `adoptPostgres` `in-place`)",
        example: { comment: ["The database and its owner on the installed PostgreSQL (default synapse for both)."], value: "synapse" },
    },
    postgresUser: {
        type: "string",
        setting: at((o) => o.postgres.user),
        notWith: LOCAL_POSTGRES,
        description: "Role that owns that database and Synapse logs in as (not with postgresExternalHost or useSqlite).",
        doc: "the role that owns it (an adopted server's with `adoptPostgres` `in-place`)",
        example: { value: "synapse" },
    },
    postgresBackup: {
        type: "boolean",
        setting: at((o) => o.postgres.backup.enabled),
        notWith: LOCAL_POSTGRES,
        description: "Run a nightly pg_dump of the installed database (not with postgresExternalHost or useSqlite).",
        doc: "nightly `pg_dump` (custom format) at 03:30",
        example: { comment: ["Nightly pg_dump (default true), how many to keep (default 7), and where (default below)."], value: "true" },
    },
    postgresBackupRetention: {
        type: "integer",
        setting: at((o) => o.postgres.backup.retention),
        notWith: LOCAL_POSTGRES,
        description: "How many nightly dumps to keep (not with postgresExternalHost or useSqlite).",
        doc: "dumps kept",
        example: { value: "14" },
    },
    postgresBackupDirectory: {
        type: "string",
        setting: at((o) => o.postgres.backup.directory),
        notWith: LOCAL_POSTGRES,
        description: "Directory on the database host for the dumps (not with postgresExternalHost or useSqlite).",
        doc: "where dumps go",
        example: { value: "/var/backups/pulumi-matrix/postgres" },
    },
    postgresExternalHost: {
        type: "string",
        setting: at((o) => o.postgres.external.host),
        whenSet: "an existing PostgreSQL server is used and the stack installs none",
        whenUnset: "the stack installs PostgreSQL itself",
        description: "Use this existing PostgreSQL server instead of installing one.",
        doc: "use an existing PostgreSQL instead",
        defaultDoc: "installed on the VM",
        example: { comment: ["An existing PostgreSQL server instead (default: installed on the VM); the four keys below only with it."], value: "" },
    },
    postgresExternalPort: {
        type: "integer",
        setting: at((o) => o.postgres.external.port),
        onlyWith: "postgresExternalHost",
        description: "Port of the external server (only with postgresExternalHost).",
        doc: "its port",
        example: { value: "5432" },
    },
    postgresExternalDatabase: {
        type: "string",
        setting: at((o) => o.postgres.external.database),
        onlyWith: "postgresExternalHost",
        description: "Database on the external server, UTF8 with C collation (only with postgresExternalHost).",
        doc: "its database (must be `UTF8` with `C` collation)",
        example: { value: "synapse" },
    },
    postgresExternalUser: {
        type: "string",
        setting: at((o) => o.postgres.external.user),
        onlyWith: "postgresExternalHost",
        description: "Role on the external server (only with postgresExternalHost).",
        doc: "its role",
        example: { value: "synapse" },
    },
    postgresExternalPassword: {
        type: "secret",
        setting: at((o) => o.postgres.external.password),
        check: oneLine("the role's password"),
        required: "",
        onlyWith: "postgresExternalHost",
        description: "Password of that role (set with `pulumi config set --secret postgresExternalPassword`).",
        doc: "the role's password",
        example: { comment: ["pulumi config set --secret postgresExternalPassword"] },
    },
    postgresExternalSslMode: {
        type: "string",
        setting: at((o) => o.postgres.external.sslMode),
        onlyWith: "postgresExternalHost",
        description:
            "libpq sslmode for the external server: verify-full (default: TLS, the certificate and host name checked), verify-ca, or, with a warning, require, prefer, disable (only with postgresExternalHost).",
        doc: "libpq `sslmode`; anything weaker than `verify-full` is warned about",
        defaultDoc: "`verify-full`",
        example: { comment: ["TLS to the external server (default verify-full, against postgresExternalCaCert or the system's CAs)."] },
    },
    postgresExternalCaCert: {
        type: "string",
        setting: at((o) => o.postgres.external.caCertificate),
        onlyWith: "postgresExternalHost",
        description:
            "PEM of the CA that signed the external server's certificate (a managed database's CA bundle); default: the system's CAs (only with postgresExternalHost).",
        doc: "PEM of the CA of its certificate (libpq `sslrootcert`)",
        defaultDoc: "the system's CAs",
        example: { comment: ['The CA of its certificate: pulumi config set postgresExternalCaCert -- "$(cat ca.pem)"'] },
    },
    workers: {
        section: "Workers and Redis",
        type: "yaml",
        setting: at((o) => o.workers.instances),
        yaml: { holds: "worker roles to counts", example: '"{federation_reader: 2, federation_sender: 1}"' },
        description:
            'Synapse worker processes as a YAML mapping of role to count, roles named as in Synapse\'s docs (federation_reader, federation_sender, client_reader, synchrotron, event_creator, event_persister, media_repository, pusher, background, user_dir, appservice, typing, to_device, account_data, receipts, presence, push_rules, device_lists), e.g. "{federation_reader: 2, federation_sender: 1}"; empty = one federation_reader and one federation_sender (none with useSqlite); "{}" = no workers.',
        doc: 'Synapse worker processes: YAML mapping of role to count, e.g. `"{federation_reader: 2, client_reader: 1}"`; `"{}"` for none (see [Workers](#workers-and-redis))',
        defaultDoc: "one `federation_reader`, one `federation_sender`",
        example: {
            comment: [
                "Synapse's worker processes, by role (roles named as in Synapse's docs/workers.md). Default (\"\"):",
                'one federation_reader and one federation_sender, with Redis on the VM; "{}" runs Synapse alone.',
                "Roles Synapse takes one instance of (background, user_dir, appservice, typing, to_device,",
                "account_data, presence, push_rules) allow 0 or 1.",
            ],
            value: "{federation_reader: 2, federation_sender: 1, client_reader: 1}",
        },
    },
    workerBasePort: {
        type: "integer",
        setting: at((o) => o.workers.basePort),
        // Workers given by count get their ports from it: a clash or an overflow names a worker or its role.
        derives: (part, setting) => part === "workers" && (setting.startsWith("worker ") || setting.startsWith("instances.")),
        description: "Where the workers' default ports start (each role has 20; replication on port + 1000, metrics on port + 2000, all on loopback).",
        doc: "where the workers' default ports start (20 per role, in the order of the roles)",
        example: { comment: ["Where the workers' default ports start (default 8100): each role has a block of 20."], value: "8100" },
    },
    redisPort: {
        type: "integer",
        setting: at((o) => o.redis.port),
        notWith: LOCAL_REDIS,
        description: "Port of the Redis the stack installs on the VM for the workers (loopback only; not with redisExternalHost).",
        doc: "port of the Redis installed for the workers (loopback only)",
        example: { comment: ["Redis on the VM for the workers: port (default 6379) and memory (default 256 MiB)."], value: "6379" },
    },
    redisMaxMemoryMb: {
        type: "integer",
        setting: at((o) => o.redis.maxMemoryMb),
        notWith: LOCAL_REDIS,
        description: "Memory (MiB) the installed Redis may use (not with redisExternalHost).",
        doc: "memory the installed Redis may use",
        example: { value: "256" },
    },
    redisExternalHost: {
        type: "string",
        setting: at((o) => o.redis.external.host),
        whenSet: "an existing Redis is used and the stack installs none",
        whenUnset: "the stack installs Redis itself",
        description: "Use this existing Redis for the workers instead of installing one.",
        doc: "use an existing Redis instead",
        defaultDoc: "installed on the VM",
        example: { comment: ["An existing Redis instead (default: installed on the VM); the three keys below only with it."], value: "" },
    },
    redisExternalPort: {
        type: "integer",
        setting: at((o) => o.redis.external.port),
        onlyWith: "redisExternalHost",
        description: "Port of the external Redis (only with redisExternalHost).",
        doc: "its port",
        example: { value: "6379" },
    },
    redisExternalPassword: {
        type: "secret",
        setting: at((o) => o.redis.external.password),
        check: oneLine("the Redis password"),
        onlyWith: "redisExternalHost",
        description: "Password of the external Redis (set with `pulumi config set --secret redisExternalPassword`; only with redisExternalHost).",
        doc: "its password",
        example: { comment: ["pulumi config set --secret redisExternalPassword"] },
    },
    redisExternalTls: {
        type: "boolean",
        setting: at((o) => o.redis.external.tls),
        onlyWith: "redisExternalHost",
        description: "Connect to the external Redis with TLS (only with redisExternalHost).",
        doc: "connect to it with TLS",
        example: { value: "false" },
    },
    proxy: {
        section: "Reverse proxy and certificate",
        type: "string",
        setting: at((o) => o.proxy.mode),
        check: (v) =>
            v === "nginx" || v === "none"
                ? undefined
                : 'expected "nginx" (the default: nginx with a Let\'s Encrypt certificate) or "none" (your own TLS proxy)',
        whenSet: "no reverse proxy is installed (your own TLS proxy forwards to Synapse's loopback listener)",
        description:
            "nginx (TLS on 443 and 8448 with a Let's Encrypt certificate, worker routing, well-known) or none (your own TLS proxy forwards to Synapse's loopback listener).",
        doc: "`nginx`: the reverse proxy with a certificate; `none`: no proxy (yours forwards to Synapse's loopback listener)",
        example: {
            comment: [
                "nginx (default) terminates TLS for publicBaseUrl's domain on 443 and federation on 8448, with a",
                "certificate from Let's Encrypt (HTTP-01: the domain's DNS must point to the VM, port 80 open).",
                '"none": no proxy; your own TLS proxy forwards to Synapse\'s loopback listener.',
            ],
            value: "nginx",
        },
    },
    acmeEmail: {
        type: "string",
        setting: at((o) => o.proxy.acme.email),
        required: "admin@example.com",
        notWith: WITH_PROXY,
        description: "Contact address for the certificate authority (expiry mails). Required with the nginx proxy.",
        doc: "contact address for the certificate authority's expiry mails",
        defaultDoc: "(required with the proxy)",
        example: { value: "admin@example.com" },
    },
    acmeDirectoryUrl: {
        type: "string",
        setting: at((o) => o.proxy.acme.directoryUrl),
        notWith: WITH_PROXY,
        description: "ACME directory of the CA (Let's Encrypt; https://acme-staging-v02.api.letsencrypt.org/directory to try a setup; any RFC 8555 CA).",
        doc: "ACME directory of the CA: `https://acme-staging-v02.api.letsencrypt.org/directory` to try a setup, or any RFC 8555 CA",
        defaultDoc: "Let's Encrypt",
        example: {
            comment: ["Let's Encrypt by default; the staging directory to try a setup without hitting rate limits."],
            value: "https://acme-staging-v02.api.letsencrypt.org/directory",
        },
    },
    acmeCaBundle: {
        type: "string",
        setting: at((o) => o.proxy.acme.caBundle),
        notWith: WITH_PROXY,
        description: "PEM of the CA that signed the ACME server's own HTTPS certificate, when the VM does not trust it (a test or company CA).",
        doc: "PEM of the CA that signed the ACME server's own HTTPS certificate (a test or company CA)",
        defaultDoc: "the VM's CAs",
        example: {
            comment: [
                "A private ACME server (a company CA) whose own HTTPS certificate the VM does not trust:",
                "`pulumi config set acmeCaBundle < company-ca.pem` (default: the VM's CAs).",
            ],
            value: "",
        },
    },
    acmeChallenge: {
        type: "string",
        setting: at((o) => o.proxy.acme.challenge),
        whenUnset: "the CA validates the names through HTTP-01 on port 80 and needs no token",
        notWith: WITH_PROXY,
        description:
            "How the CA validates the names. http-01 (the CA fetches a token from nginx on port 80; the names' DNS must point to the VM) or dns-01-cloudflare (certbot's Cloudflare plugin writes a TXT record; for names the VM cannot serve on port 80; needs acmeCloudflareApiToken).",
        doc: "`http-01`: the CA fetches a token from nginx on port 80; `dns-01-cloudflare`: certbot writes a TXT record through the Cloudflare API (names the VM cannot serve on port 80)",
        example: {
            comment: [
                "How the CA validates the names: http-01 (default; port 80 on the VM) or dns-01-cloudflare",
                "(certbot writes a TXT record through the Cloudflare API, for names the VM cannot serve on port 80).",
            ],
            value: "http-01",
        },
    },
    acmeCloudflareApiToken: {
        type: "secret",
        setting: at((o) => o.proxy.cloudflareApiToken),
        onlyWith: "acmeChallenge",
        notWith: WITH_PROXY,
        description:
            "Cloudflare API token with Zone:DNS:Edit for the certificate's zones, only with acmeChallenge dns-01-cloudflare (set with `pulumi config set --secret acmeCloudflareApiToken`).",
        doc: "Cloudflare API token with Zone:DNS:Edit for the certificate's zones; required with `dns-01-cloudflare`, refused without it",
        example: {
            comment: [
                "With dns-01-cloudflare only: a Cloudflare API token with Zone:DNS:Edit for the names' zones,",
                "`pulumi config set --secret acmeCloudflareApiToken <token>` (written to a root-only file on the VM).",
            ],
        },
    },
    federationPort: {
        type: "integer",
        setting: at((o) => o.proxy.federationPort),
        notWith: WITH_PROXY,
        description: "8448 (a federation listener) or 443 (federation delegated to 443 by /.well-known/matrix/server on the server_name's domain).",
        doc: "`8448`: a federation listener; `443`: federation delegated to 443 by `/.well-known/matrix/server`",
        example: { comment: ["443 delegates federation to 443 via /.well-known/matrix/server (needs serverNameWellKnown or your own)."], value: "8448" },
    },
    adminAllowList: {
        type: "list",
        setting: at((o) => o.proxy.adminAllowList),
        notWith: WITH_PROXY,
        description: "Networks (CIDR) that may call Synapse's admin API through nginx; empty refuses everyone.",
        doc: "networks (CIDR) that may call `/_synapse/admin` through nginx",
        defaultDoc: "nobody",
        example: { comment: ["Networks that may call /_synapse/admin through nginx (default none: use SSH to the VM)."], value: ["198.51.100.0/24"] },
    },
    serverNameWellKnown: {
        type: "boolean",
        setting: at((o) => o.proxy.serverNameWellKnown),
        notWith: WITH_PROXY,
        description:
            "nginx also answers for the server_name's domain (its DNS points to the VM) with /.well-known/matrix/server and /client; the certificate covers it.",
        doc: "nginx also answers for the server name's domain (its DNS points to the VM) with the well-known documents; the certificate covers it",
        example: { comment: ["example.com itself points to the VM: serve /.well-known/matrix/* there too."], value: "true" },
    },
    elementDomain: {
        section: "Element Web",
        type: "string",
        setting: at((o) => o.element.domain),
        whenUnset: "no Element Web is served",
        notWith: WITH_PROXY,
        description: "Serve Element Web on this domain (its own, not the homeserver's; its DNS points to the VM). Empty serves none.",
        doc: "serve Element Web on this domain (not the homeserver's)",
        defaultDoc: "no Element",
        example: {
            comment: ["Element on its own domain (not publicBaseUrl's), served by the stack's nginx; empty serves none."],
            value: "element.example.com",
        },
    },
    elementVersion: {
        type: "string",
        setting: at((o) => o.element.version),
        required: "1.11.100",
        onlyWith: "elementDomain",
        description: "The Element release to install, e.g. 1.11.100 (required with elementDomain).",
        doc: "the Element release, e.g. `1.11.100`",
        example: {
            comment: [
                "The release, pinned: the VM refuses a tarball whose SHA-256 differs. Take the checksum from a",
                "tarball you verified: download element-v<version>.tar.gz and its .asc from Element's release page,",
                "`gpg --verify` it against Element's release key, then `sha256sum` it.",
            ],
            value: "1.11.100",
        },
    },
    elementSha256: {
        type: "string",
        setting: at((o) => o.element.sha256),
        required: "<sha256sum of the verified tarball>",
        onlyWith: "elementDomain",
        description: "SHA-256 of that release's tarball, taken from a tarball you verified (required with elementDomain); a download that differs is refused.",
        doc: "SHA-256 of that release's tarball; a download that differs is refused",
        example: { value: "0000000000000000000000000000000000000000000000000000000000000000" },
    },
    elementDownloadUrl: {
        type: "string",
        setting: at((o) => o.element.downloadUrl),
        onlyWith: "elementDomain",
        description: "Where the VM downloads the tarball, {version} replaced (default Element's GitHub release; a mirror works).",
        doc: "where the VM downloads it, `{version}` replaced (a mirror)",
        defaultDoc: "Element's GitHub release",
        example: { comment: ["A mirror instead of Element's GitHub release ({version} is replaced)."], value: "" },
    },
    elementBrand: {
        type: "string",
        setting: at((o) => o.element.brand),
        onlyWith: "elementDomain",
        description: "The app's name shown in Element.",
        doc: "the app's name shown in Element",
        example: { value: "Element" },
    },
    elementDefaultTheme: {
        type: "string",
        setting: at((o) => o.element.defaultTheme),
        onlyWith: "elementDomain",
        description: "The theme new users start with (light or dark).",
        doc: "`light` or `dark`",
        example: { value: "light" },
    },
    turnDomain: {
        section: "TURN (coturn) for calls",
        type: "string",
        setting: at((o) => o.turn.domain),
        whenUnset: "no TURN server is installed (calls then work only between clients that reach each other directly)",
        description:
            "Install coturn for calls on this name (its DNS points to the VM; with the proxy coturn gets a certificate of its own for it, and TLS/DTLS runs on 5349). Empty installs none.",
        doc: "install coturn for calls on this name (its DNS points to the VM; coturn gets a certificate of its own for it, so TLS/DTLS runs on 5349)",
        defaultDoc: "no TURN server",
        example: {
            comment: ["coturn on the VM; its name's DNS points to the VM (dnsZone below makes the record); coturn gets its own certificate for it."],
            value: "turn.example.com",
        },
    },
    turnRelayPortMin: {
        type: "integer",
        setting: at((o) => o.turn.relayPorts.min),
        onlyWith: "turnDomain",
        description: "First UDP port of coturn's relay range (the firewall opens the range).",
        doc: "first UDP port of the relay range (the firewall opens the range)",
        example: { comment: ["The UDP relay range (the firewall opens it)."], value: "49152" },
    },
    turnRelayPortMax: {
        type: "integer",
        setting: at((o) => o.turn.relayPorts.max),
        onlyWith: "turnDomain",
        description: "Last UDP port of coturn's relay range.",
        doc: "last UDP port of the relay range",
        example: { value: "65535" },
    },
    turnExternalIp: {
        type: "string",
        setting: at((o) => o.turn.externalIp),
        onlyWith: "turnDomain",
        description: "The VM's public IPv4 address when it sits behind NAT (a cloud VM with a private interface address).",
        doc: "the VM's public IPv4 address when it sits behind NAT",
        example: { comment: ["A cloud VM behind NAT: its public address, and the private one on its interface."], value: "203.0.113.10" },
    },
    turnRelayIp: {
        type: "string",
        setting: at((o) => o.turn.relayIp),
        onlyWith: "turnDomain",
        description: "The VM's own (private) IPv4 address that turnExternalIp maps to.",
        doc: "the VM's own (private) IPv4 address that `turnExternalIp` maps to",
        example: { value: "10.0.0.5" },
    },
    turnUserLifetime: {
        type: "string",
        setting: at((o) => o.turn.userLifetime),
        onlyWith: "turnDomain",
        description: "How long the TURN credentials Synapse hands out stay valid (Synapse's duration syntax, e.g. 1h, 30m).",
        doc: "how long the TURN credentials Synapse hands out stay valid",
        example: { value: "1h" },
    },
    turnAllowGuests: {
        type: "boolean",
        setting: at((o) => o.turn.allowGuests),
        onlyWith: "turnDomain",
        description: "Guests get TURN credentials too.",
        doc: "guests get TURN credentials too",
        example: { value: "false" },
    },
    maintenance: {
        section: "Maintenance timers",
        type: "boolean",
        setting: at((o) => o.maintenance.enabled),
        whenUnset: "no maintenance timers run (an earlier deployment's are taken away)",
        description:
            "Maintenance timers on the VM: weekly state compression, purge of the remote media cache, deletion of rooms without local members (a dry run unless maintenanceEmptyRoomsDryRun is false). Needs PostgreSQL.",
        doc: "weekly maintenance timers (`matrix-maintenance-*.timer`): state compression, remote media cache purge, empty-room deletion (dry run by default); each can be turned off below",
        example: { comment: ["Maintenance timers (default false); each one below is on with it unless set to false."], value: "true" },
    },
    maintenanceCompressor: {
        type: "boolean",
        setting: at((o) => o.maintenance.compressor.enabled),
        onlyWith: "maintenance",
        description: "Compress Synapse's room state weekly with synapse_auto_compressor (needs PostgreSQL on the VM).",
        doc: "weekly state compression with `synapse_auto_compressor` (PostgreSQL on the VM only)",
        example: { value: "true" },
    },
    maintenanceCompressorSchedule: {
        type: "string",
        setting: at((o) => o.maintenance.compressor.schedule),
        onlyWith: "maintenance",
        description: "When the compressor runs (a systemd OnCalendar= expression).",
        doc: "when the compressor runs (systemd `OnCalendar=`)",
        example: { value: "Sun *-*-* 04:30:00" },
    },
    maintenanceCompressorChunkSize: {
        type: "integer",
        setting: at((o) => o.maintenance.compressor.chunkSize),
        onlyWith: "maintenance",
        description: "State groups the compressor works on at once (-c); at least the first level's size (100).",
        doc: "state groups compressed at once (`-c`)",
        example: { value: "500" },
    },
    maintenanceCompressorChunks: {
        type: "integer",
        setting: at((o) => o.maintenance.compressor.chunks),
        onlyWith: "maintenance",
        description: "Chunks the compressor compresses per run (-n): how long a run works.",
        doc: "chunks per run (`-n`)",
        example: { value: "100" },
    },
    maintenanceCompressorBinaryUrl: {
        type: "string",
        setting: at((o) => o.maintenance.compressor.binaryUrl),
        onlyWith: "maintenance",
        whenUnset: "the compressor comes from PyPI (synapse-auto-compressor 0.1.2, hash-pinned)",
        description: "An https URL of a synapse_auto_compressor binary to use instead of PyPI's wheel (needs maintenanceCompressorBinarySha256).",
        doc: "a `synapse_auto_compressor` binary to download instead of PyPI's wheel",
        defaultDoc: "PyPI's `synapse-auto-compressor` 0.1.2",
        example: { value: "https://example.com/synapse_auto_compressor" },
    },
    maintenanceCompressorBinarySha256: {
        type: "string",
        setting: at((o) => o.maintenance.compressor.binarySha256),
        onlyWith: "maintenance",
        description: "The SHA-256 of the binary at maintenanceCompressorBinaryUrl (64 hex digits).",
        doc: "SHA-256 of that binary (required with it)",
        example: { value: "0000000000000000000000000000000000000000000000000000000000000000" },
    },
    maintenanceMediaCache: {
        type: "boolean",
        setting: at((o) => o.maintenance.mediaCache.enabled),
        onlyWith: "maintenance",
        description: "Purge cached remote media weekly (purge_media_cache).",
        doc: "weekly purge of cached remote media (`purge_media_cache`)",
        example: { value: "true" },
    },
    maintenanceMediaCacheDays: {
        type: "integer",
        setting: at((o) => o.maintenance.mediaCache.olderThanDays),
        onlyWith: "maintenance",
        description: "Cached remote media not accessed for this many days is purged (at least 1).",
        doc: "days since a cached remote file was last accessed",
        example: { value: "30" },
    },
    maintenanceMediaCacheSchedule: {
        type: "string",
        setting: at((o) => o.maintenance.mediaCache.schedule),
        onlyWith: "maintenance",
        description: "When the media cache purge runs (a systemd OnCalendar= expression).",
        doc: "when the media cache purge runs",
        example: { value: "Sun *-*-* 05:30:00" },
    },
    maintenanceEmptyRooms: {
        type: "boolean",
        setting: at((o) => o.maintenance.emptyRooms.enabled),
        onlyWith: "maintenance",
        description: "Delete (with purge) rooms no local user has been in for maintenanceEmptyRoomsDays, weekly.",
        doc: "weekly deletion of rooms without local members",
        example: { value: "true" },
    },
    maintenanceEmptyRoomsDays: {
        type: "integer",
        setting: at((o) => o.maintenance.emptyRooms.emptyForDays),
        onlyWith: "maintenance",
        description: "A room without local members is deleted once its newest event is this many days old (at least 1).",
        doc: "days a room has been without local members",
        example: { value: "30" },
    },
    maintenanceEmptyRoomsDryRun: {
        type: "boolean",
        setting: at((o) => o.maintenance.emptyRooms.dryRun),
        onlyWith: "maintenance",
        description: "Only log the rooms that would be deleted; false deletes them.",
        doc: "only log what would be deleted (`false` deletes)",
        example: { value: "true" },
    },
    maintenanceEmptyRoomsSchedule: {
        type: "string",
        setting: at((o) => o.maintenance.emptyRooms.schedule),
        onlyWith: "maintenance",
        description: "When the empty-room deletion runs (a systemd OnCalendar= expression).",
        doc: "when the empty-room deletion runs",
        example: { value: "Sun *-*-* 06:00:00" },
    },
    rtc: {
        section: "Calls (MatrixRTC)",
        type: "string",
        setting: at((o) => o.rtc.mode),
        check: (v) =>
            v === "livekit" || v === "none" ? undefined : 'expected "livekit" (the default: MatrixRTC with LiveKit beside Synapse) or "none" (no MatrixRTC)',
        whenSet: "no MatrixRTC back end is installed (an earlier one is removed)",
        description:
            "livekit (calls in Element X and Element Call: livekit-server and lk-jwt-service on the VM, served by the proxy; needs the proxy) or none. With proxy none there is none either.",
        doc: "`livekit`: MatrixRTC (LiveKit SFU and its authorization service) for calls in Element X and Element Call; `none`: no MatrixRTC",
        example: {
            comment: [
                "Calls in Element X and Element Call (MatrixRTC): livekit-server and lk-jwt-service on the VM, served",
                'by nginx; their release files are pinned by SHA-256 below. "none": no MatrixRTC (coturn stays available).',
            ],
            value: "livekit",
        },
    },
    rtcDomain: {
        type: "string",
        setting: at((o) => o.rtc.domain),
        notWith: WITH_RTC,
        description: "The name MatrixRTC is served on (its DNS points to the VM; added to the certificate). Default: the homeserver's domain.",
        doc: "the name MatrixRTC is served on (its DNS points to the VM; added to the certificate)",
        defaultDoc: "the homeserver's domain",
        example: { value: "" },
    },
    rtcLivekitVersion: {
        type: "string",
        setting: at((o) => o.rtc.livekit.version),
        notWith: WITH_RTC,
        description: "The livekit-server release to install.",
        doc: "the livekit-server release (pin its SHA-256 with it)",
        example: { value: "1.13.5" },
    },
    rtcLivekitSha256: {
        type: "string",
        setting: at((o) => o.rtc.livekit.sha256),
        required: "<sha256sum of the release file>",
        notWith: WITH_RTC,
        description: "SHA-256 of that livekit-server release file for the VM's architecture (required with MatrixRTC); a download that differs is refused.",
        doc: "SHA-256 of the livekit-server release file; a download that differs is refused",
        defaultDoc: "(required with MatrixRTC)",
        example: { value: "0000000000000000000000000000000000000000000000000000000000000000" },
    },
    rtcLivekitDownloadUrl: {
        type: "string",
        setting: at((o) => o.rtc.livekit.downloadUrl),
        notWith: WITH_RTC,
        description: "Where the VM downloads livekit-server ({version} and {arch} are replaced; a .tar.gz holds the program).",
        doc: "where the VM downloads livekit-server, `{version}` and `{arch}` replaced (a mirror)",
        defaultDoc: "LiveKit's GitHub release",
        example: { value: "" },
    },
    rtcJwtServiceVersion: {
        type: "string",
        setting: at((o) => o.rtc.jwtService.version),
        notWith: WITH_RTC,
        description: "The lk-jwt-service release to install.",
        doc: "the lk-jwt-service release (pin its SHA-256 with it)",
        example: { value: "0.5.0" },
    },
    rtcJwtServiceSha256: {
        type: "string",
        setting: at((o) => o.rtc.jwtService.sha256),
        required: "<sha256sum of the release file>",
        notWith: WITH_RTC,
        description: "SHA-256 of that lk-jwt-service release file for the VM's architecture (required with MatrixRTC); a download that differs is refused.",
        doc: "SHA-256 of the lk-jwt-service release file; a download that differs is refused",
        defaultDoc: "(required with MatrixRTC)",
        example: { value: "0000000000000000000000000000000000000000000000000000000000000000" },
    },
    rtcJwtServiceDownloadUrl: {
        type: "string",
        setting: at((o) => o.rtc.jwtService.downloadUrl),
        notWith: WITH_RTC,
        description: "Where the VM downloads lk-jwt-service ({version} and {arch} are replaced).",
        doc: "where the VM downloads lk-jwt-service, `{version}` and `{arch}` replaced (a mirror)",
        defaultDoc: "element-hq's GitHub release",
        example: { value: "" },
    },
    rtcArchitecture: {
        type: "string",
        setting: at((o) => o.rtc.architecture),
        notWith: WITH_RTC,
        description: "The VM's CPU architecture the binaries are for (amd64 or arm64).",
        doc: "the VM's CPU architecture the binaries are for (`amd64` or `arm64`)",
        example: { value: "amd64" },
    },
    rtcPublicAddress: {
        type: "string",
        setting: at((o) => o.rtc.publicAddress),
        notWith: WITH_RTC,
        description: "The VM's public IP address the SFU advertises to clients. Default: found through STUN.",
        doc: "the VM's public IP address the SFU advertises to clients",
        defaultDoc: "found through STUN",
        example: { value: "" },
    },
    rtcLocalAddress: {
        type: "string",
        setting: at((o) => o.rtc.localAddress),
        notWith: WITH_RTC,
        description:
            "The address of the VM's own network interface that carries call media; LiveKit uses it alone. Default: rtcPublicAddress. Behind 1:1 NAT (AWS, GCP, Azure): the private address the NAT maps the public one to.",
        doc: "the address of the VM's own interface that carries call media, LiveKit's only one; behind 1:1 NAT (AWS, GCP, Azure) the private address the NAT maps `rtcPublicAddress` to",
        defaultDoc: "`rtcPublicAddress`",
        example: { value: "" },
    },
    rtcTcpPort: {
        type: "integer",
        setting: at((o) => o.rtc.tcpPort),
        notWith: WITH_RTC,
        description: "ICE over TCP (opened in the firewall).",
        doc: "ICE over TCP (opened in the firewall)",
        example: { value: "7881" },
    },
    rtcUdpPort: {
        type: "integer",
        setting: at((o) => o.rtc.udpPort),
        notWith: WITH_RTC,
        description: "ICE over UDP, one port for every participant (opened in the firewall).",
        doc: "ICE over UDP, one port for every participant (opened in the firewall)",
        example: { value: "7882" },
    },
    rtcTurnDomain: {
        type: "string",
        setting: at((o) => o.rtc.turn.domain),
        notWith: WITH_RTC,
        whenUnset: "no TURN for MatrixRTC (clients reach the SFU on rtcTcpPort and rtcUdpPort only)",
        description:
            "LiveKit's TURN over TLS on port 443 on this name, for clients behind firewalls that let only HTTPS out: nginx routes TLS for it to LiveKit's TURN server (its DNS points to the VM; added to the certificate; no web server may use it).",
        doc: "LiveKit's TURN over TLS on 443 on this name, for clients behind firewalls that let only HTTPS out (its DNS points to the VM; added to the certificate; a name no web server uses)",
        defaultDoc: "no TURN for MatrixRTC",
        example: { comment: ["LiveKit's TURN over TLS on 443, for clients behind strict firewalls (a name of its own)."], value: "rtc-turn.example.com" },
    },
    rtcTurnPort: {
        type: "integer",
        setting: at((o) => o.rtc.turn.port),
        onlyWith: "rtcTurnDomain",
        description: "LiveKit's TURN server's TCP port, which only nginx connects to (never opened in the firewall).",
        doc: "LiveKit's TURN server's TCP port, which only nginx connects to (not opened in the firewall)",
        example: { value: "7883" },
    },
    rtcTurnRelayPortMin: {
        type: "integer",
        setting: at((o) => o.rtc.turn.relayPorts.min),
        onlyWith: "rtcTurnDomain",
        description: "First UDP port LiveKit's TURN server relays media from.",
        doc: "first UDP port LiveKit's TURN server relays media from",
        example: { value: "30000" },
    },
    rtcTurnRelayPortMax: {
        type: "integer",
        setting: at((o) => o.rtc.turn.relayPorts.max),
        onlyWith: "rtcTurnDomain",
        description: "Last UDP port LiveKit's TURN server relays media from (two per participant).",
        doc: "last UDP port LiveKit's TURN server relays media from (two per participant)",
        example: { value: "40000" },
    },
    dnsZone: {
        section: "DNS",
        type: "string",
        setting: at((o) => o.dns.zone.name),
        whenUnset: "no DNS records are made (yours point the names at the VM)",
        description:
            "The DNS zone of the names (e.g. example.com); set, the stack outputs the record set as a zone file (zoneFile) and, with dnsCloudflare, creates it in Cloudflare.",
        doc: "the zone of the names, e.g. `example.com`: the stack outputs the records as a zone file (`zoneFile`)",
        defaultDoc: "no DNS records",
        example: {
            comment: [
                "The zone of the names: the stack outputs the records as a BIND zone file (zoneFile) for any DNS",
                "host; with dnsCloudflare they are created in Cloudflare (pulumi config set --secret cloudflare:apiToken ...).",
            ],
            value: "example.com",
        },
    },
    dnsIpv4: {
        type: "string",
        setting: at((o) => o.dns.ipv4),
        required: "203.0.113.10",
        onlyWith: "dnsZone",
        description: "The VM's public IPv4 address, the content of every A record (required with dnsZone).",
        doc: "the VM's public IPv4 address (every A record)",
        example: { value: "203.0.113.10" },
    },
    dnsIpv6: {
        type: "string",
        setting: at((o) => o.dns.ipv6),
        onlyWith: "dnsZone",
        description: "The VM's public IPv6 address; every A record then gets an AAAA twin.",
        doc: "the VM's public IPv6 address (an AAAA twin of every A record)",
        example: { value: "2001:db8::10" },
    },
    dnsDelegation: {
        type: "string",
        setting: at((o) => o.dns.delegation),
        onlyWith: "dnsZone",
        description:
            "How servers find the homeserver from the server name - none (it is the homeserver host), well-known, or srv (default none when the names are equal; otherwise required).",
        doc: "`none`, `well-known` or `srv`: how servers find the homeserver from the server name (see [DNS](#dns-records-and-delegation))",
        defaultDoc: "`none` when the names are equal",
        example: {
            comment: [
                "example.com points to the VM here (serverNameWellKnown above): nginx serves the well-known documents.",
                '"srv" puts _matrix-fed._tcp.example.com in the zone and example.com on the certificate instead.',
            ],
            value: "well-known",
        },
    },
    dnsWellKnownVia: {
        type: "string",
        setting: at((o) => o.dns.wellKnownVia),
        onlyWith: "dnsZone",
        description:
            "With well-known - nginx (the server name's domain points to the VM) or worker (a Cloudflare Worker on the apex; needs cloudflareAccountId).",
        doc: "with `well-known`: `nginx` (the server name's domain points to the VM) or `worker` (a Cloudflare Worker on the apex)",
        example: { value: "nginx" },
    },
    cloudflareAccountId: {
        type: "string",
        setting: at((o) => o.dns.accountId),
        onlyWith: "dnsZone",
        description: "The Cloudflare account of the well-known Worker.",
        doc: "the Cloudflare account of that Worker",
        example: { comment: ["Only with dnsWellKnownVia worker: the account of the Cloudflare Worker serving the apex's well-known."], value: "" },
    },
    dnsLegacySrv: {
        type: "boolean",
        setting: at((o) => o.dns.legacySrv),
        onlyWith: "dnsZone",
        description: "With srv - also the deprecated _matrix._tcp record for servers older than Matrix 1.8.",
        doc: "with `srv`: also the deprecated `_matrix._tcp` record",
        example: { value: "false" },
    },
    dnsTtl: {
        type: "integer",
        setting: at((o) => o.dns.ttl),
        onlyWith: "dnsZone",
        description: "Seconds resolvers cache the records (1 is Cloudflare's automatic, or 60 to 86400).",
        doc: "seconds resolvers cache the records (`1`: Cloudflare's automatic)",
        example: { value: "300" },
    },
    dnsCloudflare: {
        type: "boolean",
        setting: at((o) => o.dns.cloudflare),
        onlyWith: "dnsZone",
        whenUnset: "the records are only in the zoneFile output; nothing is created in Cloudflare",
        description:
            "Create the records in Cloudflare (the provider's own config, e.g. pulumi config set --secret cloudflare:apiToken); otherwise only the zoneFile output.",
        doc: "create the records in Cloudflare (the provider's own config: `pulumi config set --secret cloudflare:apiToken ...`)",
        example: { value: "false" },
    },
    dnsTakeOver: {
        type: "yaml",
        setting: at((o) => o.dns.takeOver),
        onlyWith: "dnsCloudflare",
        yaml: { holds: "resource keys to Cloudflare ids", example: '"{a-matrix.example.com: <zone id>/<record id>}"' },
        description: "The Cloudflare records another stack created, taken over instead of created: that stack's dnsCloudflareIds output (a move to a new VM).",
        doc: "the Cloudflare records another stack created, taken over instead of created: that stack's `dnsCloudflareIds` output (see [Moving to a new VM](#moving-to-a-new-vm))",
        defaultDoc: "none",
        example: {
            comment: [
                "The second half of a move to a new VM: take over the old stack's Cloudflare records (after its standby up),",
                'pulumi config set dnsTakeOver "$(pulumi stack output dnsCloudflareIds --stack prod --json)".',
            ],
            value: "",
        },
    },
    monitoring: {
        section: "Monitoring",
        type: "boolean",
        setting: at((o) => o.monitoring.enabled),
        whenUnset: "no Prometheus or Alertmanager runs on the VM (the scrape files for Synapse are still written)",
        description:
            "Run Prometheus, Alertmanager and the node, PostgreSQL, Redis, nginx and blackbox exporters from Debian on the VM, all on 127.0.0.1, with Synapse's recording rules and the library's alerts.",
        doc: "Prometheus, Alertmanager and exporters on the VM's loopback, with Synapse's recording rules and alerts (see [Maintenance and monitoring](#maintenance-and-monitoring))",
        defaultDoc: "off",
        example: { comment: ["Prometheus, Alertmanager and exporters on the VM's loopback (reach them through an SSH tunnel)."], value: "true" },
    },
    monitoringAlertEmail: {
        type: "list",
        setting: at((o) => o.monitoring.alertEmail.to),
        onlyWith: "monitoring",
        description: "Addresses alerts are mailed to, through the SMTP server of smtpHost (needs smtpHost).",
        doc: "addresses alerts are mailed to, through the SMTP server of `smtpHost`",
        defaultDoc: "no e-mail",
        example: { comment: ["Where alerts are mailed (through smtpHost's server)."], value: ["ops@example.com"] },
    },
    monitoringAlertFrom: {
        type: "string",
        setting: at((o) => o.monitoring.alertEmail.from),
        onlyWith: "monitoring",
        description: "Sender of alert mails (default notifFrom); needs monitoringAlertEmail.",
        doc: "sender of alert mails",
        defaultDoc: "`notifFrom`",
        example: { comment: ["Sender of alert mails (default notifFrom), e.g. Matrix alerts <alerts@example.com>."], value: "" },
    },
    monitoringAlertRoom: {
        type: "string",
        setting: at((o) => o.monitoring.alertRoom.room),
        onlyWith: "monitoring",
        description:
            "A Matrix room alerts are also posted to (!id:server or #alias:server), by a bot account of this homeserver; invite the bot to a private room.",
        doc: "a Matrix room alerts are posted to by a bot of this homeserver (`!id:server` or `#alias:server`; invite the bot to a private room)",
        defaultDoc: "no room",
        example: { comment: ["A room alerts are posted to by the bot @pulumi-matrix-alerts (invite it to a private room)."], value: "#alerts:example.com" },
    },
    monitoringAlertRoomUser: {
        type: "string",
        setting: at((o) => o.monitoring.alertRoom.user),
        onlyWith: "monitoring",
        description: "Localpart of the bot that posts alerts into monitoringAlertRoom (registered on this homeserver, not an admin).",
        doc: "localpart of the bot that posts alerts into `monitoringAlertRoom`",
        example: { value: "pulumi-matrix-alerts" },
    },
    monitoringRetention: {
        type: "string",
        setting: at((o) => o.monitoring.retention),
        onlyWith: "monitoring",
        description: "How long Prometheus keeps samples (e.g. 30d, 12w).",
        doc: "how long Prometheus keeps samples",
        example: { value: "30d" },
    },
    monitoringPrometheusPort: {
        type: "integer",
        setting: at((o) => o.monitoring.prometheusPort),
        onlyWith: "monitoring",
        description: "Prometheus's port on 127.0.0.1.",
        doc: "Prometheus's port on 127.0.0.1",
        example: { value: "9090" },
    },
    monitoringAlertmanagerPort: {
        type: "integer",
        setting: at((o) => o.monitoring.alertmanagerPort),
        onlyWith: "monitoring",
        description: "Alertmanager's port on 127.0.0.1 (9093 is Synapse's replication listener).",
        doc: "Alertmanager's port on 127.0.0.1",
        example: { value: "9193" },
    },
    monitoringSynapseRulesUrl: {
        type: "string",
        setting: at((o) => o.monitoring.synapseRulesUrl),
        onlyWith: "monitoring",
        description:
            "Where the VM fetches Synapse's recording rules (synapse-v2.rules, for Synapse's Grafana dashboard; checked against the pinned SHA-256): a mirror of the file for a VM that cannot reach GitHub, or none for no recording rules.",
        doc: "where the VM fetches Synapse's recording rules (checked against their pinned SHA-256): a mirror for a VM that cannot reach GitHub, or `none`",
        defaultDoc: "the pinned tag's file on GitHub",
        example: { value: "https://mirror.example.com/synapse/v1.157.1/synapse-v2.rules" },
    },
    backupRepository: {
        section: "Backups (restic, off the host)",
        type: "string",
        setting: at((o) => o.backup.repository),
        whenUnset: "no backups are made",
        description:
            "The restic repository the nightly backup goes to, off the VM - sftp:user@host:/path, sftp://user@host:port//path or s3:https://endpoint/bucket[/prefix]. Empty makes no backups.",
        doc: "the off-host restic repository of the nightly backup: `sftp:user@host:/path`, `sftp://user@host:port//path` or `s3:https://endpoint/bucket[/prefix]` (see [Backups and restore](#backups-and-restore))",
        defaultDoc: "no backups",
        example: {
            comment: [
                "Nightly backups (database, key, config and secrets, local media) to a restic repository off the VM,",
                "e.g. sftp:backup@backup.example.com:/srv/restic/matrix or s3:https://s3.example.com/matrix-backups.",
            ],
            value: "",
        },
    },
    backupPassword: {
        type: "secret",
        setting: at((o) => o.backup.password),
        check: oneLine("the restic repository's password"),
        required: "",
        hint: "<a long random password; keep a copy off the VM>",
        onlyWith: "backupRepository",
        description: "The restic repository's password (set with `pulumi config set --secret backupPassword`); without it no backup can be read.",
        doc: "(secret) the restic repository's password; keep a copy elsewhere too",
        example: { comment: ["The repository's password: `pulumi config set --secret backupPassword`; keep a copy off the VM."] },
    },
    backupSftpPrivateKey: {
        type: "secret",
        setting: at((o) => o.backup.sftpPrivateKey),
        onlyWith: "backupRepository",
        description: "The SFTP user's private key, for an sftp: repository (set with `pulumi config set --secret backupSftpPrivateKey < key`).",
        doc: "(secret) the SFTP user's private key (sftp: repositories)",
        defaultDoc: "none",
        example: { comment: ["An sftp: repository: the SSH key of its user, `pulumi config set --secret backupSftpPrivateKey < key`."] },
    },
    backupSftpKnownHosts: {
        type: "string",
        setting: at((o) => o.backup.sftpKnownHosts),
        onlyWith: "backupRepository",
        description: "The SFTP server's host keys as known_hosts lines (ssh-keyscan prints them); the only keys ssh accepts.",
        doc: "the SFTP server's host keys as `known_hosts` lines (sftp: repositories)",
        example: { comment: ["An sftp: repository: its server's host keys (`ssh-keyscan -p 22 backup.example.com`)."], value: "" },
    },
    backupS3AccessKeyId: {
        type: "secret",
        setting: at((o) => o.backup.s3AccessKeyId),
        onlyWith: "backupRepository",
        description: "The access key id of an s3: repository (set with `pulumi config set --secret backupS3AccessKeyId`).",
        doc: "(secret) the access key id (s3: repositories)",
        defaultDoc: "none",
        example: { comment: ["An s3: repository: its access key id and secret access key (both --secret)."] },
    },
    backupS3SecretAccessKey: {
        type: "secret",
        setting: at((o) => o.backup.s3SecretAccessKey),
        onlyWith: "backupRepository",
        description: "The secret access key of an s3: repository (set with `pulumi config set --secret backupS3SecretAccessKey`).",
        doc: "(secret) the secret access key (s3: repositories)",
        defaultDoc: "none",
        example: {},
    },
    backupSchedule: {
        type: "string",
        setting: at((o) => o.backup.schedule),
        onlyWith: "backupRepository",
        description: "When the backup runs (systemd OnCalendar); a run missed while the VM was down happens at boot.",
        doc: "when the backup runs (systemd `OnCalendar`; a missed run happens at boot)",
        example: { value: "*-*-* 04:00:00" },
    },
    backupCheckSchedule: {
        type: "string",
        setting: at((o) => o.backup.checkSchedule),
        onlyWith: "backupRepository",
        description: "When restic check verifies the repository (systemd OnCalendar).",
        doc: "when `restic check` verifies the repository",
        example: { value: "Sun *-*-* 05:30:00" },
    },
    backupKeepDaily: {
        type: "integer",
        setting: at((o) => o.backup.retention.daily),
        onlyWith: "backupRepository",
        description: "Days whose last snapshot is kept (at least 1).",
        doc: "days whose last snapshot is kept (at least 1)",
        example: { comment: ["Retention (restic forget --prune after each backup)."], value: "7" },
    },
    backupKeepWeekly: {
        type: "integer",
        setting: at((o) => o.backup.retention.weekly),
        onlyWith: "backupRepository",
        description: "Weeks whose last snapshot is kept.",
        doc: "weeks whose last snapshot is kept",
        example: { value: "4" },
    },
    backupKeepMonthly: {
        type: "integer",
        setting: at((o) => o.backup.retention.monthly),
        onlyWith: "backupRepository",
        description: "Months whose last snapshot is kept.",
        doc: "months whose last snapshot is kept",
        example: { value: "12" },
    },
    backupDirectory: {
        type: "string",
        setting: at((o) => o.backup.directory),
        onlyWith: "backupRepository",
        description: "Where each run builds its archive on the VM (root only; not inside Synapse's data directory).",
        doc: "where each run builds its archive on the VM (not inside Synapse's data directory)",
        example: { value: "/var/backups/pulumi-matrix/synapse" },
    },
    backupKeepLocalCopy: {
        type: "boolean",
        setting: at((o) => o.backup.keepLocalCopy),
        onlyWith: "backupRepository",
        description: "Keep the latest archive on the VM too (backupDirectory/matrix-backup.tar).",
        doc: "keep the latest archive on the VM too",
        example: { value: "false" },
    },
    restoreFrom: {
        type: "string",
        setting: at((o) => o.backup.restoreFrom),
        onlyWith: "backupRepository",
        description:
            "On a fresh VM, restore this snapshot (its restic id, or latest) before Synapse first starts: only into an empty database, and only an archive of the same server_name and signing key.",
        doc: "restore this snapshot (`latest` or a restic id) on a fresh VM before Synapse first starts (see [Backups and restore](#backups-and-restore))",
        defaultDoc: "none",
        example: { comment: ["A new VM for the same server: `latest` (or a snapshot id) restores that backup before Synapse first starts."], value: "" },
    },
    standby: {
        type: "boolean",
        setting: at((o) => o.synapse.standby),
        onlyWith: "backupRepository",
        description:
            "Hold the server on this VM without running it, for a move to a new VM: Synapse and its workers stay stopped, the backup and maintenance timers off; a live server going into standby is backed up once more (the move's final backup), a restored one (restoreFrom) takes the newest snapshot when its standby ends.",
        doc: "hold the server without running it, for a move to a new VM (see [Moving to a new VM](#moving-to-a-new-vm))",
        example: {
            comment: ["Moving to a new VM: true on the new VM (with restoreFrom) until the switch; true on the old VM at the switch (its final backup)."],
            value: "false",
        },
    },
    adoptFrom: {
        type: "string",
        setting: at((o) => o.adopt.configDir),
        whenUnset: "no Synapse is adopted",
        description:
            "Adopt the Synapse installed on the VM whose config directory this is (the Debian package's: /etc/matrix-synapse): a read-only preflight, its SQLite database ported into the stack's PostgreSQL, its signing key kept, its unit and config disabled.",
        doc: "adopt the Synapse installed on the VM with this config directory (see [Adopting an existing Synapse](#adopting-an-existing-synapse))",
        defaultDoc: "none",
        example: { comment: ["An existing Synapse on the VM (installed by hand, Debian package layout): /etc/matrix-synapse adopts it."], value: "" },
    },
    adoptPostgres: {
        type: "string",
        setting: at((o) => o.adopt.postgres),
        onlyWith: "adoptFrom",
        description:
            "How an adopted Synapse that runs on PostgreSQL is taken over: dump (its database dumped once its unit is stopped and restored into the stack's empty database; the old one is left untouched) or in-place (the stack takes over that database and its role on the VM's PostgreSQL). Only with adoptFrom.",
        doc: "`dump` or `in-place`: how an adopted Synapse on PostgreSQL is taken over (see [Adopting an existing Synapse](#adopting-an-existing-synapse))",
        defaultDoc: "`dump`",
        example: { comment: ["An adopted Synapse on PostgreSQL: dump (default; the old database is kept as it is) or in-place."], value: "" },
    },
} as const satisfies Record<string, StackKey>;

export type StackConfigKey = keyof typeof STACK_KEYS;

export const STACK_CONFIG_KEYS = Object.keys(STACK_KEYS) as StackConfigKey[];

/** The part of MatrixStack's args a key sets (its setting's first segment). */
export function partOf(key: StackConfigKey): StackPart {
    return STACK_KEYS[key].setting.segments[0] as StackPart;
}
