/**
 * A Synapse installed on a VM the way the seed guides install it by hand:
 * the Debian package's layout (matrix.org's matrix-synapse-py3), on SQLite,
 * with its own signing key and unit. The adoption scenario takes it over.
 *
 * The package is out of reach here, so its virtualenv is built on this
 * machine as the package's build does it: at the path it is installed to,
 * /opt/venvs/matrix-synapse, here inside a mount namespace whose /opt/venvs
 * is a tmpfs (nothing lands in this machine's /opt), then packed into a tarball
 * cached under ~/.cache/pulumi-matrix/packaged-synapse/ and unpacked on the
 * VM. It is built with Debian's /usr/bin/python3 (never another Python on
 * PATH), which the VM, of the same Debian release, has too. Building it
 * inside the emulated VM would take 20 minutes.
 */
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { renderYaml } from "../../../src/render/yaml";
import { serveFiles } from "../integration/fileServer";
import { cacheRoot, Vm } from "./";

/** The package's paths (what `adoptFrom` and the adoption's defaults expect). */
export const PACKAGED = {
    venv: "/opt/venvs/matrix-synapse",
    configDir: "/etc/matrix-synapse",
    dataDir: "/var/lib/matrix-synapse",
    database: "/var/lib/matrix-synapse/homeserver.db",
    mediaStore: "/var/lib/matrix-synapse/media",
    signingKey: "/etc/matrix-synapse/homeserver.signing.key",
    unit: "matrix-synapse.service",
    unitFile: "/lib/systemd/system/matrix-synapse.service",
    user: "matrix-synapse",
    port: 8008,
} as const;

// /opt becomes a tmpfs with everything but venvs bound back (pip's find-links may live there).
const BUILD = `set -euo pipefail
keep=$(mktemp -d)
mount --bind /opt "$keep"
mount -t tmpfs tmpfs /opt
for d in "$keep"/*; do
    [ -e "$d" ] && [ "\${d##*/}" != venvs ] || continue
    mkdir -p "/opt/\${d##*/}" && mount --bind "$d" "/opt/\${d##*/}"
done
/usr/bin/python3 -m venv ${PACKAGED.venv}
${PACKAGED.venv}/bin/pip install -q --disable-pip-version-check --no-input "matrix-synapse==$1"
got=$(${PACKAGED.venv}/bin/python -c 'import synapse; print(synapse.__version__)')
[ "$got" = "$1" ] || { echo "built Synapse $got, expected $1" >&2; exit 1; }
tar -C /opt/venvs -cf "$2" matrix-synapse
`;

/** The tarball of the package's virtualenv with Synapse `version` (built once, cached by version, Python and build script). */
export function packagedVenvTarball(version: string): string {
    const py = execFileSync("/usr/bin/python3", ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"], { encoding: "utf8" }).trim();
    const key = crypto.createHash("sha256").update(BUILD).digest("hex").slice(0, 12);
    const file = path.join(cacheRoot(), "..", "packaged-synapse", `${version}-py${py}-${key}.tar`);
    if (fs.existsSync(file)) return file;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const partial = `${file}.partial`;
    execFileSync("unshare", ["-m", "--propagation", "private", "bash", "-c", BUILD, "build", version, partial], {
        stdio: ["ignore", "inherit", "inherit"],
        env: { ...process.env, PIP_CACHE_DIR: path.join(cacheRoot(), "..", "pip") },
        timeout: 15 * 60_000,
    });
    fs.renameSync(partial, file);
    return file;
}

/** The old server's config as the package and the guide leave it (secrets in it, as theirs are). */
function configFiles(serverName: string, registrationSharedSecret: string): Record<string, string> {
    return {
        [`${PACKAGED.configDir}/homeserver.yaml`]: renderYaml({
            pid_file: `${PACKAGED.dataDir}/homeserver.pid`,
            listeners: [
                {
                    port: PACKAGED.port,
                    bind_addresses: ["127.0.0.1"],
                    type: "http",
                    tls: false,
                    x_forwarded: true,
                    resources: [{ names: ["client", "federation"], compress: false }],
                },
            ],
            database: { name: "sqlite3", args: { database: PACKAGED.database } },
            log_config: `${PACKAGED.configDir}/log.yaml`,
            media_store_path: PACKAGED.mediaStore,
            signing_key_path: PACKAGED.signingKey,
            trusted_key_servers: [],
            registration_shared_secret: registrationSharedSecret,
        }),
        [`${PACKAGED.configDir}/conf.d/server_name.yaml`]: renderYaml({ server_name: serverName }),
        [`${PACKAGED.configDir}/conf.d/report_stats.yaml`]: renderYaml({ report_stats: false }),
        [`${PACKAGED.configDir}/log.yaml`]: renderYaml({
            version: 1,
            formatters: { precise: { format: "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s" } },
            handlers: { console: { class: "logging.StreamHandler", formatter: "precise" } },
            root: { level: "INFO", handlers: ["console"] },
            disable_existing_loggers: false,
        }),
        [PACKAGED.unitFile]: [
            "[Unit]",
            "Description=Synapse Matrix homeserver",
            "After=network.target",
            "",
            "[Service]",
            "Type=simple",
            `User=${PACKAGED.user}`,
            `WorkingDirectory=${PACKAGED.dataDir}`,
            `ExecStart=${PACKAGED.venv}/bin/python -m synapse.app.homeserver --config-path=${PACKAGED.configDir}/homeserver.yaml --config-path=${PACKAGED.configDir}/conf.d/`,
            "Restart=always",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ].join("\n"),
    };
}

/**
 * Installs and starts Synapse `version` on `vm` in the package's layout,
 * for `serverName`, with a signing key Synapse generates itself; waits
 * until it answers /health.
 */
export async function installPackagedSynapse(vm: Vm, version: string, serverName: string, registrationSharedSecret: string): Promise<void> {
    const server = await serveFiles(new Map([["/venv.tar", fs.readFileSync(packagedVenvTarball(version))]]), "127.0.0.1", "packaged Synapse");
    try {
        const files = Object.entries(configFiles(serverName, registrationSharedSecret))
            .map(([p, text]) => `mkdir -p ${path.dirname(p)}\ncat > ${p} <<'PM_EOF'\n${text}PM_EOF`)
            .join("\n");
        const r = await vm.exec(
            [
                "set -euo pipefail",
                `useradd --system --home-dir ${PACKAGED.dataDir} --no-create-home --shell /usr/sbin/nologin ${PACKAGED.user}`,
                // The VM reaches this machine's loopback at qemu's host address.
                `mkdir -p /opt/venvs && curl -fsS http://10.0.2.2:${server.port}/venv.tar | tar -x -C /opt/venvs`,
                files,
                `install -d -o ${PACKAGED.user} -g ${PACKAGED.user} -m 0750 ${PACKAGED.dataDir} ${PACKAGED.mediaStore}`,
                `${PACKAGED.venv}/bin/generate_signing_key -o ${PACKAGED.signingKey}`,
                `chown ${PACKAGED.user}: ${PACKAGED.signingKey} && chmod 0600 ${PACKAGED.signingKey}`,
                `systemctl daemon-reload && systemctl enable --now ${PACKAGED.unit}`,
                `for i in $(seq 1 300); do curl -fsS http://127.0.0.1:${PACKAGED.port}/health && exit 0; sleep 1; done`,
                `journalctl -u ${PACKAGED.unit} --no-pager | tail -n 40 >&2; exit 1`,
            ].join("\n"),
            { timeoutMs: 15 * 60_000 },
        );
        if (r.code !== 0) throw new Error(`installing the packaged Synapse on ${vm.name} failed:\n${r.stdout}\n${r.stderr}`);
    } finally {
        await server.close();
    }
}
