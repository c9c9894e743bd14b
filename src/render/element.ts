import { ElementWebSettings } from "../model/element";

/**
 * Element Web's config.json. Element's docs (docs/config.md): integration
 * managers are disabled by setting the `integrations_*` options to null
 * (left out, Element falls back to its built-in manager, Scalar); bug
 * reports are disabled by leaving `bug_report_endpoint_url` out.
 */

/** The config as an object: the library's keys, then `extraConfig` merged over them at the top level. */
export function elementConfig(s: ElementWebSettings): Record<string, unknown> {
    return {
        default_server_config: {
            "m.homeserver": { base_url: s.homeserverUrl, server_name: s.serverName },
        },
        brand: s.brand,
        default_theme: s.defaultTheme,
        disable_guests: s.disableGuests,
        disable_custom_urls: s.disableCustomUrls,
        room_directory: { servers: s.roomDirectoryServers },
        integrations_ui_url: null,
        integrations_rest_url: null,
        integrations_widgets_urls: null,
        ...s.extraConfig,
    };
}

/** Objects with their keys sorted, at every depth (lists keep their order): the same settings give the same bytes. */
function sortKeys(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v !== null && typeof v === "object") {
        const o = v as Record<string, unknown>;
        return Object.fromEntries(
            Object.keys(o)
                .sort()
                .map((k) => [k, sortKeys(o[k])]),
        );
    }
    return v;
}

/** config.json: keys sorted, 4-space indent, a final newline. */
export function renderElementConfig(s: ElementWebSettings): string {
    return `${JSON.stringify(sortKeys(elementConfig(s)), null, 4)}\n`;
}
