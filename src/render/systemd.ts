import { hashComment, MANAGED_HEADER } from "./drift";

/** The first lines of every unit file (and `#`-commented config) the library writes. */
export const UNIT_HEADER = hashComment(MANAGED_HEADER);

/** A shell-style `KEY="value"` line as systemd's EnvironmentFile= reads it (the values here hold no quote or backslash). */
export function envLine(key: string, value: string): string {
    if (/["\\\n]/.test(value)) throw new Error(`envLine: ${key}'s value holds a quote, backslash or line break`);
    return `${key}="${value}"`;
}

/** /etc/default/<unit> of a Debian package whose unit passes `$ARGS` to its program: the header and the arguments. */
export function renderArgsDefaults(args: string[]): string {
    return `${UNIT_HEADER}\n${envLine("ARGS", args.join(" "))}\n`;
}

/**
 * A timer unit: `onCalendar` (systemd's OnCalendar=) with a random delay of
 * up to `randomizedDelay` so hosts and timers do not all start at once, and
 * Persistent=true so a run missed while the host was down happens at boot.
 */
export function renderTimerUnit(description: string, onCalendar: string, randomizedDelay: string): string {
    return `${UNIT_HEADER}
[Unit]
Description=${description}

[Timer]
OnCalendar=${onCalendar}
RandomizedDelaySec=${randomizedDelay}
Persistent=true

[Install]
WantedBy=timers.target
`;
}

/**
 * The sandbox of a network daemon of the library's own (MatrixRTC's
 * programs, the alert room's relay): no capabilities, no writable file, no
 * other process, no kernel settings. `memoryDenyWriteExecute`: false for a
 * program that makes executable memory at run time. `readsSystemStats`: for
 * a program that needs /proc's system-wide files (livekit-server refuses to
 * place rooms without its node's load: "could not find any available nodes").
 */
export function networkServiceSandbox(memoryDenyWriteExecute: boolean, o: { readsSystemStats?: boolean } = {}): string {
    return `NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
# Files: everything read-only, no home, a private /tmp, no devices.
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateMounts=yes
DevicePolicy=closed
UMask=0077
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
${
    o.readsSystemStats
        ? "# /proc's system files stay visible: the program reads the load, CPU and memory (/proc/loadavg, /proc/stat, /proc/meminfo).\n"
        : "ProcSubset=pid\n"
}# IPv4 and IPv6, AF_UNIX for the journal, AF_NETLINK for the interface addresses.
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
${memoryDenyWriteExecute ? "MemoryDenyWriteExecute=yes\n" : ""}RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM`;
}
