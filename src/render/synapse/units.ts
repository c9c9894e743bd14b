import { synapseFiles, SynapseSettings } from "../../model/synapse";
import { UNIT_HEADER as HEADER } from "../systemd";

/** The target every Synapse process (main and workers) is part of: `systemctl restart matrix-synapse.target` restarts them together. */
export function renderSynapseTarget(): string {
    return `${HEADER}
[Unit]
Description=Synapse Matrix homeserver (all processes)
After=network-online.target
Wants=network-online.target

[Install]
WantedBy=multi-user.target
`;
}

/** What sets one Synapse process's unit apart from another's; the rest (user, sandbox, restart policy) is shared. */
export interface SynapseProcessUnit {
    /** Shown after "Synapse Matrix homeserver", e.g. `main process` or `worker %i`. */
    description: string;
    /** Units it starts after, besides network-online.target. */
    after: string[];
    /** The Python module run, e.g. `synapse.app.homeserver`. */
    app: string;
    /** Config files read after homeserver.yaml and conf.d/. */
    extraConfigPaths: string[];
    /** The `TimeoutStartSec=` line, with a comment line above it if one is needed. */
    startTimeout: string;
    syslogIdentifier: string;
}

/** The unit of a Synapse process (main or worker): same user, sandbox and restart policy, part of matrix-synapse.target. */
export function renderSynapseProcessUnit(s: SynapseSettings, p: SynapseProcessUnit): string {
    const f = synapseFiles(s.paths);
    const configPaths = [f.homeserverYaml, `${f.confD}/`, ...p.extraConfigPaths].map((c) => `--config-path=${c}`).join(" ");
    return `${HEADER}
[Unit]
Description=Synapse Matrix homeserver (${p.description})
After=${["network-online.target", ...p.after].join(" ")}
Wants=network-online.target
PartOf=matrix-synapse.target
ReloadPropagatedFrom=matrix-synapse.target

[Service]
Type=notify
NotifyAccess=main
User=${s.paths.user}
Group=${s.paths.user}
WorkingDirectory=${s.paths.dataDir}
ExecStart=${s.paths.venvDir}/bin/python -m ${p.app} ${configPaths}
ExecReload=/bin/kill -HUP $MAINPID
${p.startTimeout}
Restart=on-failure
RestartSec=3
SyslogIdentifier=${p.syslogIdentifier}
UMask=0027
# The sandbox of Synapse's own contrib/systemd/override-hardened.conf: no capabilities, read-only system,
# its own /tmp and /dev, only its own processes visible, IP and Unix sockets only, a service's system calls.
CapabilityBoundingSet=
AmbientCapabilities=
NoNewPrivileges=true
PrivateTmp=true
PrivateDevices=true
PrivateUsers=true
PrivateMounts=true
ProtectSystem=strict
ProtectHome=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectKernelLogs=true
ProtectControlGroups=true
ProtectClock=true
ProtectHostname=true
ProtectProc=invisible
ProcSubset=pid
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=true
RestrictRealtime=true
RestrictSUIDSGID=true
RemoveIPC=true
LockPersonality=true
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources @obsolete
# A call outside the filter fails (Synapse logs it) rather than killing the homeserver.
SystemCallErrorNumber=EPERM
# Not MemoryDenyWriteExecute: Python's ctypes/cffi callbacks need writable, executable memory.
ReadWritePaths=${unique([s.paths.dataDir, s.paths.mediaStorePath, ...(s.database.kind === "sqlite" ? [dirOf(s.database.path)] : [])]).join(" ")}

[Install]
WantedBy=matrix-synapse.target
`;
}

/** The main Synapse process. It overrides the Debian package's unit of the same name so both install methods run alike. */
export function renderSynapseMainUnit(s: SynapseSettings, after: string[] = []): string {
    return renderSynapseProcessUnit(s, {
        description: "main process",
        after,
        app: "synapse.app.homeserver",
        extraConfigPaths: [],
        startTimeout: "# The first start migrates the database schema, which can take minutes on a small VM.\nTimeoutStartSec=15min",
        syslogIdentifier: "matrix-synapse",
    });
}

function dirOf(path: string): string {
    return path.slice(0, path.lastIndexOf("/")) || "/";
}

function unique(values: string[]): string[] {
    return [...new Set(values)];
}
