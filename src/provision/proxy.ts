import { liveDir, PROXY_FILES, proxyFirewallRules, ReverseProxySettings } from "../model/proxy";
import { AcmeSettings, CertificateLineage, lineageLiveDir } from "../model/proxy/acme";
import { renderCertbotDropIn, renderCloudflareCredentials, renderDeployHook } from "../render/proxy";
import { NginxSite, renderNginxConf, renderNginxStreamConf } from "../render/proxy";
import { applyFileSet, ensureRunning, ServiceUnit } from "./apply";
import { firewallFragmentSet } from "./host";
import { indent, lines, raw, Sh, sh } from "./sh";
import { script } from "./shell";
import { STANDBY_REASON } from "./synapse";

/** certbot's live directory of the certificate (defined in the model, where coturn's settings need it too). */
export { liveDir };

/** The certificate paths nginx is configured with. */
export function servedCertificate(): NginxSite["tls"] {
    return { certificate: `${PROXY_FILES.tls}/fullchain.pem`, key: `${PROXY_FILES.tls}/privkey.pem` };
}

/** The certificate naming no host that an nginx without `ssl_reject_handshake` shows for unknown names (see `NginxSite.unknownNameCertificate`). */
export function unknownNameCertificate(): NonNullable<NginxSite["unknownNameCertificate"]> {
    return { certificate: `${PROXY_FILES.unknownName}/fullchain.pem`, key: `${PROXY_FILES.unknownName}/privkey.pem` };
}

/**
 * nginx as handlers see it: it answers on port 80 (with a redirect) once it
 * runs, on the first address it listens on, for the homeserver's name (any
 * other name gets no answer).
 */
export function nginxUnit(s: ReverseProxySettings): ServiceUnit {
    const a = s.listenAddresses[0] ?? "127.0.0.1";
    return {
        name: "nginx.service",
        health: { command: sh`curl -s -o /dev/null -m 2 -H ${`Host: ${s.homeserverDomain}`} ${`http://${a.includes(":") ? `[${a}]` : a}/`}` },
        healthTimeout: 60,
    };
}

/** Points the served certificate at `target` atomically (a new symlink renamed over the old one). */
function switchCertificate(target: string): Sh {
    return sh`ln -sfn ${target} ${PROXY_FILES.tls}.pm-new && mv -T ${PROXY_FILES.tls}.pm-new ${PROXY_FILES.tls}`;
}

/**
 * Installs nginx and certbot, starts nginx on a self-signed certificate when
 * there is none yet (so it can answer the ACME challenge), writes the site
 * (checked with `nginx -t` before a reload; the previous site is put back
 * when it fails) and opens the proxy's ports.
 */
export function proxyServerScript(site: NginxSite, component: string): string {
    const s = site.proxy;
    const nginx = nginxUnit(s);
    const san = s.certificateNames.map((n) => `DNS:${n}`).join(",");
    return script("pulumi-matrix reverse proxy (nginx)", [
        sh`pm_apt_install nginx certbot openssl curl`,
        // The stream module (Debian ships it apart from nginx) for the front on 443 that LiveKit's TURN shares.
        ...(site.rtc?.turn ? [sh`pm_apt_install libnginx-mod-stream`] : []),
        sh`install -d -m 0755 ${s.acme.webroot} /etc/nginx/pulumi-matrix`,
        sh`if [ -L ${PROXY_FILES.defaultSite} ]; then rm -f ${PROXY_FILES.defaultSite}; echo "disabled Debian's default site"; pm_owe ${nginx.name}; fi`,
        sh`if [ ! -e ${PROXY_FILES.tls} ]; then`,
        sh`    install -d -m 0700 ${PROXY_FILES.bootstrap}`,
        sh`    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj ${`/CN=${s.homeserverDomain}`} -addext ${`subjectAltName=${san}`} -keyout ${`${PROXY_FILES.bootstrap}/privkey.pem`} -out ${`${PROXY_FILES.bootstrap}/fullchain.pem`} 2>/dev/null`,
        sh`    ${switchCertificate(PROXY_FILES.bootstrap)}`,
        sh`    echo "nginx starts on a self-signed certificate until the CA issues one"`,
        sh`fi`,
        ...(site.unknownNameCertificate
            ? [
                  // Made once, named for no host (".invalid", RFC 2606): it is shown to whoever asks for a name nginx does not serve.
                  sh`if [ ! -e ${site.unknownNameCertificate.certificate} ]; then`,
                  sh`    install -d -m 0700 ${PROXY_FILES.unknownName}`,
                  sh`    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj /CN=unknown.invalid -keyout ${site.unknownNameCertificate.key} -out ${site.unknownNameCertificate.certificate} 2>/dev/null`,
                  sh`fi`,
              ]
            : []),
        applyFileSet({
            name: "nginx-site",
            // With LiveKit's TURN, the stream front on 443 too; without, a front an earlier run wrote is taken away with the set.
            files: [
                { path: PROXY_FILES.conf, content: renderNginxConf(site) },
                ...(site.rtc?.turn ? [{ path: PROXY_FILES.stream, content: renderNginxStreamConf(site) }] : []),
            ],
            // Checked in place before the reload; a failing check puts the previous site back, so no restart or boot meets it.
            check: sh`nginx -t -q`,
            onChange: [{ kind: "reload", unit: nginx }],
        }),
        applyFileSet(firewallFragmentSet(component, proxyFirewallRules(s))),
        ensureRunning([nginx]),
    ]);
}

/**
 * Everything the request depends on: a change asks the CA for a new
 * certificate at once. The challenge shows only when it is not HTTP-01 (the
 * line of an HTTP-01 request is as it always was, so no new certificate is asked for).
 */
function requestLine(acme: AcmeSettings, names: string[]): string {
    const challenge = acme.challenge === "http-01" ? "" : ` ${acme.challenge}`;
    return `${acme.directoryUrl} ${acme.keyType} ${names.join(",")}${challenge}`;
}

/** certbot's authenticator arguments: nginx's webroot (HTTP-01), or the Cloudflare plugin with the credentials file (DNS-01). */
function authenticator(acme: AcmeSettings): Sh {
    if (acme.challenge === "dns-01-cloudflare")
        return sh`--dns-cloudflare --dns-cloudflare-credentials ${PROXY_FILES.cloudflareCredentials} --dns-cloudflare-propagation-seconds ${String(acme.propagationSeconds)}`;
    return sh`--webroot -w ${acme.webroot}`;
}

/** Why certbot may have failed, after its own reason. */
function failureHint(acme: AcmeSettings, names: string): string {
    if (acme.challenge === "dns-01-cloudflare")
        return `certbot could not obtain a certificate for ${names} from ${acme.directoryUrl} through DNS-01 with Cloudflare: each name must be in a Cloudflare zone the API token may edit (Zone:DNS:Edit), and the token must be valid (certbot's reason is above)`;
    return `certbot could not obtain a certificate for ${names} from ${acme.directoryUrl}: these names' DNS records must point to this host and port 80 must be reachable from the internet (the CA connects to http://<name>/.well-known/acme-challenge/)`;
}

/**
 * Obtains one lineage's certificate: keeps it while it is valid and the
 * request (CA, key type, names, challenge) is unchanged, asks the CA again
 * when the request changed, and runs `onNew` when the certificate in the
 * lineage's live directory is new. certbot runs without the directory hooks:
 * the step itself runs what a new certificate needs (`onNew`); renewals by
 * certbot's timer run the deploy hook. With DNS-01 the Cloudflare
 * credentials must have been written before (`acmeCredentialsScript`), and
 * a private CA's bundle by the proxy's certificate step.
 */
export function obtainCertificate(acme: AcmeSettings, lineage: CertificateLineage, onNew: (Sh | string)[]): (Sh | string)[] {
    const live = lineageLiveDir(lineage.certName);
    const env = acme.caBundle !== undefined ? sh`env REQUESTS_CA_BUNDLE=${PROXY_FILES.caBundle} ` : raw("");
    const certbot = sh`${env}certbot certonly --non-interactive --agree-tos --no-eff-email --email ${acme.email} --server ${acme.directoryUrl} ${authenticator(acme)} --cert-name ${lineage.certName} ${lineage.names.flatMap((n) => ["-d", n])} --key-type ${acme.keyType} --no-directory-hooks`;
    const names = lineage.names.join(", ");
    const request = requestLine(acme, lineage.names);
    return [
        ...(acme.challenge === "dns-01-cloudflare"
            ? [
                  sh`pm_apt_install python3-certbot-dns-cloudflare`,
                  sh`if [ ! -s ${PROXY_FILES.cloudflareCredentials} ]; then echo ${`${PROXY_FILES.cloudflareCredentials} is missing: the certificate's credentials step writes it (the Cloudflare API token) before this one`} >&2; exit 1; fi`,
              ]
            : []),
        sh`pm_before=$(sha256sum ${`${live}/fullchain.pem`} 2>/dev/null || true)`,
        // Ask again only when the request changed (CA, key type, names); otherwise certbot keeps it until it is due for renewal.
        sh`if [ -e ${`${live}/fullchain.pem`} ] && [ "$(cat ${lineage.requestFile} 2>/dev/null)" = ${request} ]; then pm_when=--keep-until-expiring; else pm_when=--force-renewal; fi`,
        sh`if ! pm_out=$(${certbot} "$pm_when" 2>&1); then`,
        sh`    printf '%s\n' "$pm_out" >&2`,
        sh`    echo ${failureHint(acme, names)} >&2`,
        sh`    exit 1`,
        sh`fi`,
        sh`printf '%s\n' ${request} >${lineage.requestFile}`,
        sh`if [ "$(sha256sum ${`${live}/fullchain.pem`})" != "$pm_before" ]; then`,
        indent(lines(onNew)),
        sh`fi`,
        sh`echo ${`certificate for ${names}:`} "$(openssl x509 -noout -enddate -in ${`${live}/cert.pem`})"`,
    ];
}

/**
 * In standby with HTTP-01 the names still point to the live server, so no CA
 * could reach this host: the step says so and asks nothing (nginx keeps its
 * placeholder certificate). It runs again when standby ends (its script changes).
 */
export function certificateWaits(acme: AcmeSettings, title: string, names: string[]): string | undefined {
    if (!acme.standby || acme.challenge !== "http-01") return undefined;
    return script(title, [
        sh`echo ${`${STANDBY_REASON}: the certificate for ${names.join(", ")} is requested when standby ends (HTTP-01 needs their DNS to point here)`}`,
    ]);
}

/** The lineage of the web names (nginx's): named after the homeserver domain. */
export function webLineage(s: ReverseProxySettings): CertificateLineage {
    return { certName: s.homeserverDomain, names: s.certificateNames, requestFile: PROXY_FILES.request };
}

/**
 * With DNS-01 through Cloudflare: writes the credentials file of certbot's
 * Cloudflare plugin (the API token, root only). It carries the token, so it
 * runs as a secret step of its own, before the certificate step; renewals
 * by certbot's timer read the same file.
 */
export function acmeCredentialsScript(apiToken: string): string {
    return script("pulumi-matrix certificate credentials (Cloudflare API token)", [
        applyFileSet({
            name: "acme-cloudflare",
            secret: true,
            files: [{ path: PROXY_FILES.cloudflareCredentials, content: renderCloudflareCredentials(apiToken), mode: "0600" }],
        }),
        sh`echo ${`certbot's Cloudflare credentials are in ${PROXY_FILES.cloudflareCredentials} (root only)`}`,
    ]);
}

/**
 * Obtains the web names' certificate through HTTP-01 on nginx's port 80
 * (certbot's webroot) or, with `dns-01-cloudflare`, through DNS-01 with
 * certbot's Cloudflare plugin (its credentials written before by
 * `acmeCredentialsScript`), keeps it while it is valid and the request is
 * unchanged, points nginx at it and reloads nginx when it changed. certbot's
 * own timer renews it the same way; the deploy hook reloads nginx and runs
 * the services' hooks (each for its own lineage).
 *
 * A new web certificate reloads nginx only: no other service uses the web
 * lineage (coturn has its own), and a hook a former release left for the
 * web lineage (coturn's copied it) must not copy the web key again. A host
 * whose coturn still serves a copy of the former combined certificate
 * keeps it until coturn's own lineage replaces it, so TLS on the TURN name
 * never breaks in between.
 */
export function certificateScript(s: ReverseProxySettings): string {
    const waits = certificateWaits(s.acme, "pulumi-matrix certificate (certbot)", s.certificateNames);
    if (waits) return waits;
    const live = liveDir(s);
    const nginx = "nginx.service";
    return script("pulumi-matrix certificate (certbot)", [
        sh`install -d -m 0755 ${PROXY_FILES.hooksDir}`,
        applyFileSet({
            name: "certbot",
            files: [
                { path: PROXY_FILES.deployHook, content: renderDeployHook(PROXY_FILES.hooksDir), mode: "0755" },
                ...(s.acme.caBundle !== undefined
                    ? [
                          { path: PROXY_FILES.caBundle, content: s.acme.caBundle.trim() + "\n" },
                          { path: PROXY_FILES.certbotDropIn, content: renderCertbotDropIn(PROXY_FILES.caBundle) },
                      ]
                    : []),
            ],
            onChange: [{ kind: "daemon-reload" }],
        }),
        // Renewals run from certbot's timer, without Pulumi.
        sh`systemctl enable -q --now certbot.timer`,
        sh`pm_reload=0`,
        ...obtainCertificate(s.acme, webLineage(s), [sh`pm_reload=1`]),
        sh`if [ "$(readlink ${PROXY_FILES.tls})" != ${live} ]; then`,
        sh`    ${switchCertificate(live)}`,
        sh`    echo ${`nginx now serves the certificate for ${s.certificateNames.join(", ")}`}`,
        sh`    pm_reload=1`,
        sh`fi`,
        sh`if [ "$pm_reload" = 1 ] && systemctl is-active -q ${nginx}; then`,
        sh`    echo "new certificate: reloading nginx"`,
        sh`    nginx -t -q`,
        sh`    systemctl reload ${nginx}`,
        sh`fi`,
    ]);
}
