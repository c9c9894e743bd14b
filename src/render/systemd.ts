import { hashComment, MANAGED_HEADER } from "./drift";

/** The first lines of every unit file (and `#`-commented config) the library writes. */
export const UNIT_HEADER = hashComment(MANAGED_HEADER);

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
