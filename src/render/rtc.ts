import { RTC_FILES, RTC_USERS, RtcSettings } from "../model/rtc";
import { singleAddress } from "../model/validate";
import { networkServiceSandbox, UNIT_HEADER as HEADER } from "./systemd";
import { MANAGED_HEADER, renderYaml } from "./yaml";

/**
 * MatrixRTC's files: livekit-server's config.yaml and key file,
 * lk-jwt-service's environment file and key file, a hardened unit for
 * each, and Synapse's conf.d fragment. The API key and secret are only in
 * the two key files (root-owned, readable by the program's group alone),
 * which the programs read through their file options (livekit's
 * `key_file`, lk-jwt-service's `LIVEKIT_KEY_FILE`).
 */

/** livekit-server's config.yaml as an object (keys as livekit's config-sample.yaml names them). */
export function livekitConfig(s: RtcSettings): Record<string, unknown> {
    return {
        port: s.port,
        // The HTTP/WebSocket listener: loopback only, nginx terminates TLS in front of it.
        bind_addresses: ["127.0.0.1"],
        rtc: {
            tcp_port: s.tcpPort,
            ...(s.udp.kind === "mux" ? { udp_port: s.udp.port } : { port_range_start: s.udp.min, port_range_end: s.udp.max }),
            ...(s.publicAddress !== undefined ? { use_external_ip: false, node_ip: s.publicAddress } : { use_external_ip: true }),
            // Candidates on the media address alone: with node_ip, LiveKit announces that address for every interface's
            // candidate and would answer from whichever it kept (another network's address, or one its TURN refuses).
            ...(s.localAddress !== undefined ? { ips: { includes: [singleAddress(s.localAddress)] } } : {}),
        },
        // LiveKit's TURN server: livekit-server tells clients it is at `turns:<turn.domain>:443` whatever
        // `tls_port` says (pkg/service/roommanager.go); 443 is nginx's, which ends TLS for that name and hands
        // the stream to `tls_port` on loopback (`external_tls`). No TURN/UDP: the SFU's own UDP port serves those clients.
        ...(s.turn
            ? {
                  turn: {
                      enabled: true,
                      domain: s.turn.domain,
                      tls_port: s.turn.port,
                      external_tls: true,
                      relay_range_start: s.turn.relayPorts.min,
                      relay_range_end: s.turn.relayPorts.max,
                  },
              }
            : {}),
        // lk-jwt-service creates rooms for full-access users only; the SFU must not create one for any token holder.
        room: { auto_create: false },
        key_file: RTC_FILES.livekitKeys,
        logging: { level: "info" },
    };
}

export function renderLivekitConfig(s: RtcSettings): string {
    return renderYaml(
        livekitConfig(s),
        `${MANAGED_HEADER}\nlivekit-server (the LiveKit SFU) for MatrixRTC on ${s.domain}; the API key is in ${RTC_FILES.livekitKeys}.`,
    );
}

/** The API key and secret as livekit's `key_file` holds them (`<key>: <secret>`). */
export function renderLivekitKeys(apiKey: string, apiSecret: string): string {
    checkKeyPair(apiKey, apiSecret);
    return `${apiKey}: ${apiSecret}\n`;
}

/** The API key and secret as lk-jwt-service's `LIVEKIT_KEY_FILE` holds them (`<key>:<secret>`, split at the one colon). */
export function renderJwtKey(apiKey: string, apiSecret: string): string {
    checkKeyPair(apiKey, apiSecret);
    return `${apiKey}:${apiSecret}\n`;
}

/** Both files are split at a colon and trimmed: the key and secret must be plain tokens. */
function checkKeyPair(apiKey: string, apiSecret: string): void {
    for (const v of [apiKey, apiSecret])
        if (!/^[A-Za-z0-9_-]{8,200}$/.test(v)) throw new Error("the LiveKit API key and secret must be 8-200 letters, digits, _ or -");
}

/** lk-jwt-service's environment (no secret: the key file's path). */
export function jwtEnvironment(s: RtcSettings): Record<string, string> {
    return {
        LIVEKIT_URL: s.sfuUrl,
        LIVEKIT_KEY_FILE: RTC_FILES.jwtKey,
        LIVEKIT_JWT_BIND: `127.0.0.1:${s.jwtPort}`,
        LIVEKIT_FULL_ACCESS_HOMESERVERS: s.fullAccessHomeservers.join(","),
    };
}

export function renderJwtEnv(s: RtcSettings): string {
    const env = jwtEnvironment(s);
    return `${MANAGED_HEADER.split("\n")
        .map((l) => `# ${l}`)
        .join("\n")}\n# lk-jwt-service (the MatrixRTC authorization service) for ${s.domain}.\n${Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join("\n")}\n`;
}

/** livekit-server's unit: its own user, the config file, nothing on the command line but the path. */
export function renderLivekitUnit(s: RtcSettings): string {
    return `${HEADER}
[Unit]
Description=LiveKit SFU for MatrixRTC (livekit-server ${s.livekit.version})
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=${RTC_USERS.livekit}
Group=${RTC_USERS.livekit}
ExecStart=${s.livekit.path} --config ${RTC_FILES.livekitConfig}
Restart=on-failure
RestartSec=3
# Media for many participants: many sockets.
LimitNOFILE=65536
${networkServiceSandbox(true, { readsSystemStats: true })}

[Install]
WantedBy=multi-user.target
`;
}

/** lk-jwt-service's unit: its own user, its environment from a file that holds no secret. */
export function renderJwtUnit(s: RtcSettings): string {
    return `${HEADER}
[Unit]
Description=MatrixRTC authorization service (lk-jwt-service ${s.jwtService.version})
After=network-online.target livekit-server.service
Wants=network-online.target

[Service]
Type=simple
User=${RTC_USERS.jwt}
Group=${RTC_USERS.jwt}
EnvironmentFile=${RTC_FILES.jwtEnv}
ExecStart=${s.jwtService.path}
Restart=on-failure
RestartSec=3
${networkServiceSandbox(true)}

[Install]
WantedBy=multi-user.target
`;
}

/**
 * Synapse's MatrixRTC options, as Synapse's configuration manual and
 * Element Call's self-hosting guide name them: the RTC transport (served by
 * `/_matrix/client/v1/rtc/transports` with MSC4143 on), delayed events
 * (MSC4140) with their maximum delay, MSC3266 (room summaries) and MSC4222
 * (`state_after` in sync), and the rate limits calls need (membership
 * updates, delayed-event management). A conf.d fragment: Synapse merges it
 * at the top level, replacing the same keys of homeserver.yaml; so the
 * user's own `extraConfig` values are kept here: their
 * `experimental_features` are merged with these flags, and their delay and
 * rate limits win over these defaults.
 */
export function rtcSynapseConfig(s: RtcSettings, extraConfig: Record<string, unknown> = {}): Record<string, unknown> {
    const own = (key: string) =>
        extraConfig[key] !== null && typeof extraConfig[key] === "object" ? (extraConfig[key] as Record<string, unknown>) : undefined;
    return {
        matrix_rtc: { transports: [{ type: "livekit", livekit_service_url: s.serviceUrl }] },
        experimental_features: { ...own("experimental_features"), msc3266_enabled: true, msc4143_enabled: true, msc4222_enabled: true },
        max_event_delay_duration: extraConfig.max_event_delay_duration ?? "24h",
        rc_message: own("rc_message") ?? { per_second: 0.5, burst_count: 30 },
        rc_delayed_event_mgmt: own("rc_delayed_event_mgmt") ?? { per_second: 1, burst_count: 20 },
    };
}

export function renderRtcSynapseYaml(s: RtcSettings, extraConfig: Record<string, unknown> = {}): string {
    return renderYaml(rtcSynapseConfig(s, extraConfig), `${MANAGED_HEADER}\nMatrixRTC (LiveKit through ${s.serviceUrl}).`);
}
