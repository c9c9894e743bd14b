import { NODE_EXPORTER_TEXTFILE_DIR, NODE_EXPORTER_UNIT } from "../model/nodeExporter";
import { nodeExporterEndpoint, renderNodeExporterDefaults } from "../render/nodeExporter";
import { applyFileSet, ensureRunning, ServiceUnit } from "./apply";
import { lines, Sh, sh } from "./sh";

/** The node exporter listening on `address`, as handlers see it: healthy once its metrics answer there. */
export function nodeExporterUnit(address: string): ServiceUnit {
    return { name: `${NODE_EXPORTER_UNIT}.service`, health: { url: `http://${nodeExporterEndpoint(address)}/metrics` }, healthTimeout: 120 };
}

/**
 * The node exporter of a host the library runs it on for another host's
 * Prometheus (a WorkerPool's host of its own, `metricsScrapedFrom`), as the
 * file set `set`: Debian's package, its arguments (listening on `address`
 * alone), running and enabled. Without an address (no Prometheus scrapes
 * this host any more) the arguments the set wrote go and the exporter is
 * stopped and disabled; one the library never set up is left alone.
 */
export function nodeExporterStep(set: string, address: string | undefined): Sh {
    if (address === undefined)
        return applyFileSet({
            name: set,
            files: [],
            onChange: [
                {
                    kind: "run",
                    command: sh`systemctl disable -q --now ${`${NODE_EXPORTER_UNIT}.service`}; echo ${`stopped ${NODE_EXPORTER_UNIT}: no Prometheus scrapes this host any more`}`,
                },
            ],
        });
    const unit = nodeExporterUnit(address);
    return lines([
        sh`pm_apt_install ${NODE_EXPORTER_UNIT}`,
        sh`install -d -m 0755 -o root -g root ${NODE_EXPORTER_TEXTFILE_DIR}`,
        applyFileSet({
            name: set,
            files: [{ path: `/etc/default/${NODE_EXPORTER_UNIT}`, content: renderNodeExporterDefaults(address) }],
            onChange: [{ kind: "restart", unit }],
        }),
        ensureRunning([unit]),
    ]);
}
