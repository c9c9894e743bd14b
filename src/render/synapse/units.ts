import { SynapseSettings, synapseFiles } from "../../model/synapse";
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

/** The main Synapse process. It overrides the Debian package's unit of the same name so both install methods run alike. */
export function renderSynapseMainUnit(s: SynapseSettings, after: string[] = []): string {
    const f = synapseFiles(s.paths);
    const afterUnits = ["network-online.target", ...after].join(" ");
    return `${HEADER}
[Unit]
Description=Synapse Matrix homeserver (main process)
After=${afterUnits}
Wants=network-online.target
PartOf=matrix-synapse.target
ReloadPropagatedFrom=matrix-synapse.target

[Service]
Type=notify
NotifyAccess=main
User=${s.paths.user}
Group=${s.paths.user}
WorkingDirectory=${s.paths.dataDir}
ExecStart=${s.paths.venvDir}/bin/python -m synapse.app.homeserver --config-path=${f.homeserverYaml} --config-path=${f.confD}/
ExecReload=/bin/kill -HUP $MAINPID
# The first start migrates the database schema, which can take minutes on a small VM.
TimeoutStartSec=15min
Restart=on-failure
RestartSec=3
SyslogIdentifier=matrix-synapse
UMask=0027
NoNewPrivileges=true
PrivateTmp=true
PrivateDevices=true
ProtectSystem=strict
ProtectHome=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectControlGroups=true
ReadWritePaths=${unique([s.paths.dataDir, s.paths.mediaStorePath, ...(s.database.kind === "sqlite" ? [dirOf(s.database.path)] : [])]).join(" ")}

[Install]
WantedBy=matrix-synapse.target
`;
}

function dirOf(path: string): string {
    return path.slice(0, path.lastIndexOf("/")) || "/";
}

function unique(values: string[]): string[] {
    return [...new Set(values)];
}
