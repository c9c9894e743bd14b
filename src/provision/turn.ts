import { componentLabel } from "../model/errors";
import { synapseFiles, SynapseSettings } from "../model/synapse";
import { TURN_FILES, TURN_SECRET_FILE, turnCertName, turnFirewallRules, turnLineage, turnPorts, TurnSettings, turnSynapseFiles } from "../model/turn";
import { renderCoturnCertificateHook, renderCoturnConf, renderCoturnDropIn, renderCoturnSecretConf, renderTurnSynapseYaml } from "../render/turn";
import { applyFileSet, ensureRunning, ServiceUnit, when } from "./apply";
import { firewallFragmentRemovalSet, firewallFragmentSet } from "./host";
import { certificateWaits, obtainCertificate } from "./proxy";
import { indent, lines, raw, Sh, sh } from "./sh";
import { script } from "./shell";
import { requireSynapseUser, synapsePeerSecrets, synapsePeerSecretsRemoval, synapseRestarts } from "./synapse";

/**
 * coturn's scripts. The server step installs Debian's coturn and writes
 * everything readable; the secret step writes the shared secret. coturn
 * reads one file and has no include, and a secret on its command line would
 * show in every process list, so the file it reads
 * (`TURN_FILES.conf`, 0640 root:turnserver) is put together on the host
 * from the readable part and the secret file (0600 root) by whichever step
 * changed one of them: the readable step never carries the secret, the
 * secret step shows nothing readable. Synapse's side is two more steps on
 * Synapse's host: its copy of the secret and a conf.d fragment.
 */

/** The file sets TURN's steps write (their manifests are what a removal prunes). */
const TURN_SETS = {
    unit: "coturn-unit",
    config: "coturn-config",
    assembled: "coturn-assembled",
    secret: "coturn-secret",
    synapseSecret: "turn-synapse-secret",
    synapseConfig: "turn-synapse-config",
} as const;

/**
 * Deletes coturn's certificate lineage (`coturn-<domain>`) where TLS is
 * off or TURN is gone, so certbot's timer stops renewing a certificate
 * nothing uses (and failing once the name's DNS points elsewhere). Only
 * where this library asked for one (its request file is there); a
 * certificate can always be obtained again.
 */
function coturnLineageRemoval(): Sh {
    const renewal = "/etc/letsencrypt/renewal/";
    return lines([
        sh`if [ -e ${TURN_FILES.certificateRequest} ]; then`,
        sh`    for pm_conf in ${renewal}${raw(turnCertName("*") + ".conf")}; do`,
        sh`        [ -e "$pm_conf" ] || continue`,
        sh`        pm_lineage=$(basename "$pm_conf" .conf)`,
        sh`        certbot delete --non-interactive --cert-name "$pm_lineage" >/dev/null`,
        sh`        echo "deleted coturn's certificate lineage $pm_lineage"`,
        sh`    done`,
        sh`    rm -f ${TURN_FILES.certificateRequest}`,
        sh`fi`,
    ]);
}

/** The address a health check asks: the first listening address, or loopback when coturn listens on every address. */
function probeAddress(s: TurnSettings): string {
    return s.listeningIps[0] ?? "127.0.0.1";
}

/** The package's unit, which the drop-in points at pulumi-matrix's config. */
const COTURN_UNIT = "coturn.service";

/** coturn as handlers see it: healthy once it answers a STUN binding request on its port. */
export function coturnUnit(s: TurnSettings): ServiceUnit {
    return {
        name: COTURN_UNIT,
        health: { command: sh`timeout 2 turnutils_stunclient -p ${s.port} ${probeAddress(s)} >/dev/null 2>&1` },
        healthTimeout: 60,
    };
}

/** The file coturn reads, put together from the readable part and the secret (a secret file for the drift record: its hash only). */
function assembledConfig(unit: ServiceUnit): Sh {
    return applyFileSet({
        name: TURN_SETS.assembled,
        secret: true,
        files: [{ path: TURN_FILES.conf, generate: sh`cat ${TURN_FILES.readable} ${TURN_FILES.secret}`, mode: "0640", group: "turnserver" }],
        onChange: [{ kind: "owe-restart", unit }],
    });
}

/**
 * Who the firewall fragment of the TurnServer `serverName` belongs to. It
 * keeps the component's former name, `CoturnServer`: the fragment's file and
 * file-set names are made from it, so a host set up before the rename keeps
 * its fragment (rewritten in place) and a removal still prunes it.
 */
export function turnFirewallOwner(serverName: string): string {
    return componentLabel("CoturnServer", serverName);
}

/**
 * Installs Debian's coturn, keeps the package's own instance from running
 * until coturn has this config, writes the readable config, the unit
 * drop-in and (with TLS) the certificate hook and coturn's first copy of
 * the certificate, opens the firewall, and restarts coturn when something
 * it reads changed. On the first run coturn starts in the secret step.
 */
export function turnServerScript(s: TurnSettings, serverName: string): string {
    const unit = coturnUnit(s);
    const f = TURN_FILES;
    const lowPorts = turnPorts(s).some((p) => p.port < 1024);
    const body: (Sh | string)[] = [
        sh`pm_apt_install coturn`,
        // The package starts coturn with Debian's example config (no authentication) on install.
        sh`if [ ! -e ${f.conf} ] && systemctl is-active -q ${unit.name}; then systemctl stop ${unit.name}; echo "stopped the package's coturn: it starts with pulumi-matrix's config"; fi`,
        // Older packages start coturn only with TURNSERVER_ENABLED=1 (rewritten in place: the file keeps its inode, owner and mode).
        sh`if [ -f ${f.defaults} ] && ! grep -qx 'TURNSERVER_ENABLED=1' ${f.defaults}; then`,
        sh`    pm_defaults=$(grep -v '^#* *TURNSERVER_ENABLED=' ${f.defaults} || true)`,
        sh`    printf '%s\nTURNSERVER_ENABLED=1\n' "$pm_defaults" >${f.defaults}`,
        sh`    echo ${`set TURNSERVER_ENABLED=1 in ${f.defaults}`}`,
        sh`fi`,
        sh`install -d -m 0750 -o root -g turnserver ${f.dir}`,
        applyFileSet({
            name: TURN_SETS.unit,
            files: [{ path: f.dropIn, content: renderCoturnDropIn(f.conf, lowPorts) }],
            onChange: [{ kind: "daemon-reload" }, { kind: "owe-restart", unit }],
        }),
        // A change of the readable part restarts coturn through the file put together from it (below, or in the secret step).
        applyFileSet({
            name: TURN_SETS.config,
            files: [
                { path: f.readable, content: renderCoturnConf(s, TURN_FILES) },
                ...(s.tls ? [{ path: f.certificateHook, content: renderCoturnCertificateHook(s.tls.liveDir, f.tlsDir), mode: "0755" }] : []),
            ],
        }),
    ];
    if (s.tls) {
        const live = s.tls.liveDir;
        body.push(
            sh`if [ -e ${`${live}/fullchain.pem`} ]; then`,
            sh`    RENEWED_LINEAGE=${live} ${f.certificateHook}`,
            sh`else`,
            sh`    echo ${`no certificate in ${live} yet: coturn's certificate step obtains it (until then coturn keeps the copy it has)`}`,
            sh`fi`,
        );
    } else {
        body.push(sh`if [ -d ${f.tlsDir} ]; then rm -rf ${f.tlsDir}; echo "removed coturn's copy of the certificate (TLS is off)"; fi`, coturnLineageRemoval());
    }
    body.push(
        applyFileSet(firewallFragmentSet(turnFirewallOwner(serverName), turnFirewallRules(s))),
        sh`if [ -e ${f.secret} ]; then`,
        indent(lines([assembledConfig(unit), ensureRunning([unit])])),
        sh`else`,
        sh`    echo "coturn starts with its shared secret (next step)"`,
        sh`fi`,
    );
    return script(`pulumi-matrix coturn (${s.domain})`, body);
}

/**
 * coturn's own certificate: a certbot lineage with the TURN name alone
 * (`coturn-<domain>`), from the reverse proxy's CA the way the proxy gets
 * its own (HTTP-01 through nginx's port 80 on this host, or DNS-01), so
 * coturn never holds the key of the web names. Runs after the server step
 * (which wrote the hook) and after the proxy's certificate step (nginx
 * answers the challenge; the CA bundle and DNS-01 credentials are there).
 * A new certificate goes to coturn through its hook, as certbot's renewals
 * do: a copy owned by turnserver, and a reload. Until the lineage exists,
 * coturn keeps serving the copy it has (on a host set up by an earlier
 * release, the combined certificate's), so TLS never breaks in between.
 */
export function turnCertificateScript(s: TurnSettings): string {
    if (!s.tls) throw new Error("turnCertificateScript: TLS is off (no certificate)");
    const waits = certificateWaits(s.tls.acme, `pulumi-matrix coturn certificate (${s.domain})`, [s.domain]);
    if (waits) return waits;
    const lineage = turnLineage(s);
    return script(`pulumi-matrix coturn certificate (${s.domain})`, [
        sh`[ -x ${TURN_FILES.certificateHook} ] || { echo ${`${TURN_FILES.certificateHook} is missing: the coturn server step runs first`} >&2; exit 1; }`,
        ...obtainCertificate(s.tls.acme, lineage, [sh`RENEWED_LINEAGE=${s.tls.liveDir} ${TURN_FILES.certificateHook}`]),
    ]);
}

/** Writes the shared secret coturn checks credentials with (secret stdin), then (re)starts coturn with it. */
export function turnSecretScript(s: TurnSettings, secret: string): string {
    const unit = coturnUnit(s);
    return script("pulumi-matrix coturn shared secret", [
        sh`[ -e ${TURN_FILES.readable} ] || { echo ${`${TURN_FILES.readable} is missing: the coturn server step runs first`} >&2; exit 1; }`,
        applyFileSet({
            name: TURN_SETS.secret,
            secret: true,
            files: [{ path: TURN_FILES.secret, content: renderCoturnSecretConf(secret), mode: "0600" }],
        }),
        assembledConfig(unit),
        ensureRunning([unit]),
        sh`echo ${`coturn answers on port ${s.port}`}`,
    ]);
}

/**
 * Synapse's copy of the shared secret, in its secrets directory (secret
 * stdin). Synapse restarts for a changed secret once it reads it (once the
 * TURN fragment exists).
 */
export function turnSynapseSecretScript(synapse: SynapseSettings, secret: string): string {
    const files = turnSynapseFiles(synapse.paths);
    return script("pulumi-matrix Synapse TURN secret", [
        synapsePeerSecrets(
            synapse,
            TURN_SETS.synapseSecret,
            [{ name: TURN_SECRET_FILE, kind: "secret", content: `${secret}\n` }],
            [when(sh`[ -e ${files.fragment} ]`, synapseRestarts(synapse))],
        ),
    ]);
}

/** Synapse's TURN options (conf.d/45-turn.yaml: the URIs, the secret's path, lifetime, guests); Synapse restarts when they change. */
export function turnSynapseConfigScript(synapse: SynapseSettings, s: TurnSettings): string {
    const u = synapse.paths.user;
    const files = turnSynapseFiles(synapse.paths);
    return script(`pulumi-matrix Synapse TURN config (${s.domain})`, [
        requireSynapseUser(synapse),
        sh`[ -e ${files.secret} ] || { echo ${`${files.secret} is missing: the TURN secret step runs first`} >&2; exit 1; }`,
        sh`install -d -m 0750 -o root -g ${u} ${synapseFiles(synapse.paths).confD}`,
        applyFileSet({
            name: TURN_SETS.synapseConfig,
            files: [{ path: files.fragment, content: renderTurnSynapseYaml(s, synapse.paths), mode: "0640", group: u }],
            onChange: synapseRestarts(synapse),
        }),
        sh`echo ${`Synapse hands out TURN credentials for ${s.domain}`}`,
    ]);
}

/**
 * Synapse without the TURN server an earlier deployment gave it: its TURN
 * options (conf.d/45-turn.yaml) and its copy of the shared secret are
 * removed, and Synapse restarts without them, so clients get no more TURN
 * credentials. Changes nothing where TURN's steps never ran.
 */
export function turnSynapseRemovalScript(synapse: SynapseSettings): string {
    return script("pulumi-matrix Synapse without TURN", [
        applyFileSet({ name: TURN_SETS.synapseConfig, files: [], onChange: synapseRestarts(synapse) }),
        synapsePeerSecretsRemoval(TURN_SETS.synapseSecret),
    ]);
}

/**
 * Turns off the coturn an earlier deployment ran on this host as the
 * TurnServer named `serverName`: coturn is stopped and disabled (the package stays installed;
 * Debian's upgrades do not start a disabled unit), everything coturn's steps
 * wrote is removed (its config, the shared secret, the unit drop-in, the
 * certificate hook, coturn's copy of the certificate and its certificate
 * lineage), and its firewall
 * openings, the relay range among them, are closed. Changes nothing on a
 * host where pulumi-matrix never set coturn up.
 */
export function turnRemovalScript(serverName: string): string {
    const f = TURN_FILES;
    const unit = COTURN_UNIT;
    return script("pulumi-matrix coturn removed", [
        sh`if [ -d ${f.dir} ]; then`,
        sh`    systemctl disable -q ${unit} 2>/dev/null || true`,
        sh`    if systemctl is-active -q ${unit}; then systemctl stop ${unit}; echo "stopped coturn: TURN is no longer part of this deployment"; fi`,
        sh`fi`,
        applyFileSet({ name: TURN_SETS.assembled, secret: true, files: [] }),
        applyFileSet({ name: TURN_SETS.secret, secret: true, files: [] }),
        applyFileSet({ name: TURN_SETS.config, files: [] }),
        applyFileSet({ name: TURN_SETS.unit, files: [], onChange: [{ kind: "daemon-reload" }] }),
        sh`if [ -d ${f.dir} ]; then rm -rf -- ${f.dir}; echo ${`removed ${f.dir}`}; fi`,
        coturnLineageRemoval(),
        applyFileSet(firewallFragmentRemovalSet(turnFirewallOwner(serverName))),
    ]);
}
