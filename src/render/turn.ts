import { secretFilePath, SynapsePaths } from "../model/synapse";
import { DENIED_PEER_RANGES, ownAddresses, TURN_SECRET_FILE, TurnSettings, turnSynapseFiles, turnUris } from "../model/turn";
import { UNIT_HEADER as HEADER } from "./systemd";
import { MANAGED_HEADER, renderYaml } from "./yaml";

/**
 * coturn's files: its config (without the secret), the secret line, a
 * systemd drop-in for Debian's coturn.service, the certificate hook certbot
 * runs after a renewal, and Synapse's side (a conf.d fragment).
 *
 * coturn reads exactly one config file and has no include directive (it
 * rejects `include` as "Bad configuration format"), and a secret on its
 * command line would show in every process list. So the secret lives in a
 * file of its own that only root reads, and the file coturn reads is put
 * together on the host from the readable part and that file (see
 * provision/turn.ts): a preview shows every readable line that changes,
 * and the secret never leaves the secret command.
 */

/** Where coturn's files are on the host, as the renderers need them. */
export interface CoturnPaths {
    /** The file coturn reads (the readable part followed by the secret line). */
    conf: string;
    /** The readable part. */
    readable: string;
    /** The secret line, readable by root only. */
    secret: string;
    /** coturn's copy of the certificate (fullchain.pem, privkey.pem). */
    tlsDir: string;
}

// ----------------------------------------------------------------- addresses

function ipv4ToBigInt(a: string): bigint {
    return a.split(".").reduce((n, p) => (n << 8n) | BigInt(Number(p)), 0n);
}

function ipv6ToBigInt(a: string): bigint {
    let text = a;
    const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
    if (tail) {
        const v4 = ipv4ToBigInt(tail[1]);
        text = `${text.slice(0, -tail[1].length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
    }
    const [head, rest] = text.split("::");
    const groups = (s: string | undefined) => (s ? s.split(":").filter((g) => g !== "") : []);
    const h = groups(head);
    const r = rest === undefined ? [] : groups(rest);
    const all = rest === undefined ? h : [...h, ...Array(8 - h.length - r.length).fill("0"), ...r];
    if (all.length !== 8) throw new Error(`not an IPv6 address: ${a}`);
    return all.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function bigIntToIPv4(n: bigint): string {
    return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join(".");
}

/** An IPv6 address in its canonical text form (RFC 5952: lower case, the longest run of zero groups as `::`). */
function bigIntToIPv6(n: bigint): string {
    const groups = [...Array(8).keys()].map((i) => Number((n >> BigInt(112 - 16 * i)) & 0xffffn));
    let best = { start: -1, len: 0 };
    for (let i = 0; i < 8;) {
        if (groups[i] !== 0) {
            i++;
            continue;
        }
        let j = i;
        while (j < 8 && groups[j] === 0) j++;
        if (j - i > best.len && j - i >= 2) best = { start: i, len: j - i };
        i = j;
    }
    const hex = groups.map((g) => g.toString(16));
    if (best.start < 0) return hex.join(":");
    return `${hex.slice(0, best.start).join(":")}::${hex.slice(best.start + best.len).join(":")}`;
}

/** A CIDR network as coturn's peer lists take it: `first-last` (coturn's older releases know no CIDR). */
export function cidrToRange(cidr: string): string {
    const [addr, bitsText] = cidr.split("/");
    const v6 = addr.includes(":");
    const width = v6 ? 128n : 32n;
    const bits = BigInt(bitsText ?? String(width));
    const value = v6 ? ipv6ToBigInt(addr) : ipv4ToBigInt(addr);
    const hostMask = (1n << (width - bits)) - 1n;
    const first = value & ~hostMask & ((1n << width) - 1n);
    const last = first | hostMask;
    const text = v6 ? bigIntToIPv6 : bigIntToIPv4;
    return first === last ? text(first) : `${text(first)}-${text(last)}`;
}

/** Whether `address` lies in `cidr` (both IPv4 or both IPv6; an IPv4 address is never in an IPv6 range). */
function inCidr(address: string, cidr: string): boolean {
    const [net, bitsText] = cidr.split("/");
    const v6 = net.includes(":");
    if (v6 !== address.includes(":")) return false;
    const width = v6 ? 128n : 32n;
    const hostBits = width - BigInt(bitsText ?? String(width));
    const value = (a: string) => (v6 ? ipv6ToBigInt(a) : ipv4ToBigInt(a)) >> hostBits;
    return value(address) === value(net);
}

/** A public address: in none of the denied-peer ranges. */
export function isPublicPeer(address: string): boolean {
    return !DENIED_PEER_RANGES.some((r) => inCidr(address, r.cidr));
}

/**
 * Mozilla's "intermediate" TLS 1.2 ciphers (forward-secret AEAD only), as
 * nginx here uses them; TLS 1.3 keeps OpenSSL's own suites, which are all good.
 */
export const COTURN_CIPHERS =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// ----------------------------------------------------------------- coturn

/**
 * The readable part of coturn's config: everything but the secret. It ends
 * with a newline so the secret line appended on the host starts a line of
 * its own.
 */
export function renderCoturnConf(s: TurnSettings, paths: CoturnPaths): string {
    const lines: string[] = [
        HEADER,
        `# coturn for Matrix calls on ${s.domain}: Synapse hands clients short-lived credentials`,
        "# made from a secret it shares with coturn (TURN REST API).",
        `# coturn reads ${paths.conf}: this file followed by the secret line from`,
        `# ${paths.secret} (root only), put together on the host because coturn has no include.`,
        "",
        "# Listeners: plain TURN over UDP and TCP" + (s.tls ? ", TLS (TCP) and DTLS (UDP)." : "; TLS and DTLS are off (no certificate)."),
        `listening-port=${s.port}`,
        ...(s.tls ? [`tls-listening-port=${s.tlsPort}`] : []),
        ...(s.listeningIps.length ? s.listeningIps.map((a) => `listening-ip=${a}`) : ["# listening-ip: every address of the host."]),
        ...(s.relayIp !== undefined ? [`relay-ip=${s.relayIp}`] : []),
        ...(s.externalIp !== undefined
            ? ["# Behind NAT: clients are told the public address.", `external-ip=${s.externalIp}${s.relayIp !== undefined ? `/${s.relayIp}` : ""}`]
            : []),
        "# The UDP ports relays are allocated from (the firewall opens this range).",
        `min-port=${s.relayPorts.min}`,
        `max-port=${s.relayPorts.max}`,
        "",
        "# Authentication: credentials made by Synapse from the shared secret (static-auth-secret, appended from the secret file).",
        "use-auth-secret",
        `realm=${s.realm}`,
        `server-name=${s.domain}`,
        "fingerprint",
        "stale-nonce=600",
        "# Concurrent allocations per user and in total.",
        `user-quota=${s.userQuota}`,
        `total-quota=${s.totalQuota}`,
        ...(s.maxBps > 0 ? ["# Bytes per second one session may use, each direction (traffic above is dropped).", `max-bps=${s.maxBps}`] : []),
        ...(s.bpsCapacity > 0
            ? ["# Bytes per second all sessions together may use (new allocations are refused above).", `bps-capacity=${s.bpsCapacity}`]
            : []),
        "",
    ];
    if (s.tls) {
        lines.push(
            "# TLS/DTLS with coturn's copy of the certificate (certbot's deploy hook refreshes it and reloads coturn).",
            `cert=${paths.tlsDir}/fullchain.pem`,
            `pkey=${paths.tlsDir}/privkey.pem`,
            "# TLS 1.2 and 1.3 only; TLS 1.2 (and DTLS 1.2) with forward-secret AEAD ciphers (Mozilla's intermediate list).",
            "no-tlsv1",
            "no-tlsv1_1",
            `cipher-list=${COTURN_CIPHERS}`,
        );
    } else {
        lines.push("no-tls", "no-dtls");
    }
    lines.push(
        "",
        "# STUN answers give no amplification and no version.",
        "no-rfc5780",
        "no-stun-backward-compatibility",
        "response-origin-only-with-rfc5780",
        "no-software-attribute",
        "",
        "# No telnet CLI (port 5766); the web admin is off (no web-admin line), so is Prometheus.",
        "no-cli",
        "",
        "# Logs go to stdout, which systemd writes to the journal; no log file. Secrets are not logged.",
        "log-file=stdout",
        "",
        "# Relays: UDP only, never to multicast nor to an address that is not on the public internet.",
        "no-tcp-relay",
        "no-multicast-peers",
    );
    for (const r of DENIED_PEER_RANGES) lines.push(`# ${r.cidr}: ${r.what}`, `denied-peer-ip=${cidrToRange(r.cidr)}`);
    // externalIp is public by definition (documentation addresses stand in for it in examples).
    const own = ownAddresses(s);
    const isPublic = (a: string) => a === s.externalIp || isPublicPeer(a);
    const ownPublic = own.filter((a) => isPublic(a) && !s.allowedPeerIps.includes(a));
    if (ownPublic.length) {
        lines.push("# The server's own public addresses: a relay there would reach the host's own UDP services.");
        for (const a of ownPublic) lines.push(`denied-peer-ip=${a}`);
    }
    const allowed = [...new Set([...own.filter((a) => !isPublic(a)), ...s.allowedPeerIps])];
    if (allowed.length) {
        lines.push("# The server's own private addresses (two clients relayed by this server reach each other) and allowedPeerIps.");
        for (const a of allowed) lines.push(`allowed-peer-ip=${a}`);
    }
    return lines.join("\n") + "\n";
}

/** The secret line coturn's config ends with. */
export function renderCoturnSecretConf(secret: string): string {
    // One word coturn reads as it is (the generated secret is letters and digits).
    if (!/^[A-Za-z0-9._~+/=-]{16,512}$/.test(secret)) throw new Error("renderCoturnSecretConf: the secret must be 16 to 512 letters, digits or ._~+/=-");
    return `static-auth-secret=${secret}\n`;
}

/** Where coturn writes: its own database (Debian's default, /var/lib/turn/turndb), nothing else. */
export const COTURN_STATE_DIR = "/var/lib/turn";

/**
 * A drop-in for the package's coturn.service: the library's config (the
 * package's /etc/turnserver.conf stays as shipped, so upgrades never ask
 * about it), coturn in the foreground as its own user whatever kind of unit
 * the package ships (a native one, or one generated from an init script),
 * and a reload that makes coturn read its certificate again (SIGUSR2)
 * without dropping calls. `bindsLowPorts`: a port below 1024 is configured.
 *
 * And a sandbox (systemd.exec(5)): coturn reads its config and its copy of
 * the certificate and writes only its database; it keeps no capability
 * (TURN's ports are above 1024), cannot gain privileges, sees no home, no
 * devices, no kernel settings, no other process, and may use only the
 * network families and system calls a network service needs.
 */
export function renderCoturnDropIn(confPath: string, bindsLowPorts = false): string {
    const caps = bindsLowPorts ? "CAP_NET_BIND_SERVICE" : "";
    return `${HEADER}
[Service]
Type=simple
PIDFile=
User=turnserver
Group=turnserver
ExecStart=
ExecStart=/usr/bin/turnserver -c ${confPath} --pidfile=
ExecReload=/bin/kill -USR2 $MAINPID
Restart=on-failure
${bindsLowPorts ? "# A port below 1024 is configured.\n" : ""}CapabilityBoundingSet=${caps}
AmbientCapabilities=${caps}
NoNewPrivileges=yes
# Files: everything read-only but coturn's database; no home, a private /tmp, no devices.
ProtectSystem=strict
ReadWritePaths=${COTURN_STATE_DIR}
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateMounts=yes
DevicePolicy=closed
UMask=0077
# The kernel, the clock, the host name, cgroups and other processes are out of reach.
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
# IPv4 and IPv6 for TURN, AF_UNIX for the journal, AF_NETLINK for the interface addresses.
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
SystemCallErrorNumber=EPERM
`;
}

/**
 * The hook certbot's deploy hook runs after a renewal (it sets
 * RENEWED_LINEAGE): coturn runs as its own user and cannot read certbot's
 * private key, so it gets a copy, owned by turnserver (the key 0600), and a
 * reload. Other certificates' renewals are ignored.
 */
export function renderCoturnCertificateHook(liveDir: string, tlsDir: string): string {
    return `#!/bin/sh
${HEADER}
# coturn's copy of the certificate in ${liveDir}; certbot's deploy hook runs this after a renewal.
set -e
umask 077
[ "\${RENEWED_LINEAGE:-}" = ${liveDir} ] || exit 0
changed=0
# copy SOURCE TARGET MODE: replaces TARGET at once when its content differs.
copy() {
    if ! cmp -s "$1" "$2"; then
        install -m "$3" -o turnserver -g turnserver "$1" "$2.pm-new"
        mv -f "$2.pm-new" "$2"
        changed=1
    fi
    chown turnserver:turnserver "$2"
    chmod "$3" "$2"
}
install -d -m 0750 -o root -g turnserver ${tlsDir}
copy ${liveDir}/fullchain.pem ${tlsDir}/fullchain.pem 0640
copy ${liveDir}/privkey.pem ${tlsDir}/privkey.pem 0600
if [ "$changed" = 1 ]; then
    echo "coturn: copied the certificate from ${liveDir}"
    if systemctl is-active -q coturn.service; then
        systemctl reload coturn.service
        echo "coturn: reloaded (new certificate)"
    fi
fi
`;
}

// ----------------------------------------------------------------- Synapse's side

/** Synapse's TURN options: the URIs it hands out, where the shared secret is, how long credentials last, guests. */
export function turnSynapseConfig(s: TurnSettings, paths: SynapsePaths): Record<string, unknown> {
    return {
        turn_uris: turnUris(s),
        turn_shared_secret_path: turnSynapseFiles(paths).secret,
        turn_user_lifetime: s.userLifetime,
        turn_allow_guests: s.allowGuests,
    };
}

/** The conf.d fragment with Synapse's TURN options (no secret: it names the secret's file). */
export function renderTurnSynapseYaml(s: TurnSettings, paths: SynapsePaths): string {
    return renderYaml(
        turnSynapseConfig(s, paths),
        `${MANAGED_HEADER}\nTURN (coturn on ${s.domain}); the shared secret is in ${secretFilePath(paths, { name: TURN_SECRET_FILE, kind: "secret" })}.`,
    );
}
