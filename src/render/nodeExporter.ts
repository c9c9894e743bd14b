/**
 * The node exporter's arguments (Debian's unit passes `$ARGS` from
 * /etc/default/prometheus-node-exporter): where it listens, the systemd
 * collector limited to the homeserver's units, and the textfile collector.
 */
import { isIPv6 } from "node:net";

import { FAILED_UNIT_REGEX, NODE_EXPORTER_PORT, NODE_EXPORTER_TEXTFILE_DIR } from "../model/nodeExporter";
import { renderArgsDefaults } from "./systemd";

/** Where it listens and is scraped: `address` (127.0.0.1, or a host's private address) and its port. */
export function nodeExporterEndpoint(address: string): string {
    return `${isIPv6(address) ? `[${address}]` : address}:${NODE_EXPORTER_PORT}`;
}

/** Its arguments, listening on `address` alone. */
export function nodeExporterArgs(address: string): string[] {
    return [
        `--web.listen-address=${nodeExporterEndpoint(address)}`,
        "--collector.systemd",
        `--collector.systemd.unit-include=${FAILED_UNIT_REGEX}`,
        `--collector.textfile.directory=${NODE_EXPORTER_TEXTFILE_DIR}`,
    ];
}

/** /etc/default/prometheus-node-exporter, listening on `address`. */
export function renderNodeExporterDefaults(address: string): string {
    return renderArgsDefaults(nodeExporterArgs(address));
}
