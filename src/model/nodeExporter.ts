/**
 * Prometheus's node exporter (Debian's prometheus-node-exporter) as the
 * library runs it on a host: on Synapse's host as part of monitoring (on
 * loopback), and on a WorkerPool's hosts of its own when their workers'
 * metrics are scraped from Synapse's host (`metricsScrapedFrom`: on the
 * host's private address, opened to the scraping host alone). Either way it
 * reports the host's disks, the homeserver's failed units and the textfile
 * metrics (the backup's age) the alerts read.
 */

/** Debian's package and its unit. */
export const NODE_EXPORTER_UNIT = "prometheus-node-exporter";

/** Its port (the package's default), on the address it is given. */
export const NODE_EXPORTER_PORT = 9100;

/** The textfile collector's directory (Debian's default); the backup service writes matrix_backup.prom here. */
export const NODE_EXPORTER_TEXTFILE_DIR = "/var/lib/prometheus/node-exporter";

/**
 * Units whose failure alerts (node_exporter's systemd collector): every
 * unit whose name starts with `matrix-` or `pulumi-matrix-`: Synapse
 * (`matrix-synapse`), its workers (`matrix-synapse-worker@...`), the
 * database dumps (`pulumi-matrix-pg-backup`), and the backup and
 * maintenance units, which are named the same way.
 */
export const FAILED_UNIT_REGEX = "(pulumi-)?matrix-.+";
