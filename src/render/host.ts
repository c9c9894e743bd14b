/** The base system's files: unattended upgrades and time sync (the firewall has its own module). */

/** apt's periodic jobs: refresh the lists and install security upgrades every day. */
export function renderAutoUpgrades(): string {
    return 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\nAPT::Periodic::AutocleanInterval "7";\n';
}

/** A systemd-timesyncd drop-in; without servers it keeps the distribution's. */
export function renderTimesyncd(ntpServers: string[]): string {
    return `# Managed by pulumi-matrix.\n[Time]\n${ntpServers.length ? `NTP=${ntpServers.join(" ")}\n` : ""}`;
}

/**
 * A systemd-journald drop-in bounding the journal. `MaxRetentionSec=` deletes
 * whole journal files only, and a file spans a month by default
 * (`MaxFileSec=`): files are rotated daily so nothing outlives the retention
 * by more than a day.
 */
export function renderJournald(journal: { systemMaxUse: string; maxRetentionSec: string }): string {
    return [
        "# Managed by pulumi-matrix: bounds the journal's size and age (Host option journal).",
        "[Journal]",
        `SystemMaxUse=${journal.systemMaxUse}`,
        `MaxRetentionSec=${journal.maxRetentionSec}`,
        "MaxFileSec=1day",
        "",
    ].join("\n");
}
