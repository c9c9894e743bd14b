import { liveDir, PROXY_FILES, proxyFirewallRules, ReverseProxySettings } from "../model/proxy";
import { renderCertbotDropIn, renderCloudflareCredentials, renderDeployHook } from "../render/proxy";
import { NginxSite, renderNginxConf } from "../render/proxy";
import { applyFileSet, ensureRunning, ServiceUnit } from "./apply";
import { firewallFragmentSet } from "./host";
import { raw, Sh, sh } from "./sh";
import { script } from "./shell";

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
            files: [{ path: PROXY_FILES.conf, content: renderNginxConf(site) }],
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
function requestLine(s: ReverseProxySettings): string {
    const challenge = s.acme.challenge === "http-01" ? "" : ` ${s.acme.challenge}`;
    return `${s.acme.directoryUrl} ${s.acme.keyType} ${s.certificateNames.join(",")}${challenge}`;
}

/** certbot's authenticator arguments: nginx's webroot (HTTP-01), or the Cloudflare plugin with the credentials file (DNS-01). */
function authenticator(s: ReverseProxySettings): Sh {
    if (s.acme.challenge === "dns-01-cloudflare")
        return sh`--dns-cloudflare --dns-cloudflare-credentials ${PROXY_FILES.cloudflareCredentials} --dns-cloudflare-propagation-seconds ${String(s.acme.propagationSeconds)}`;
    return sh`--webroot -w ${s.acme.webroot}`;
}

/** Why certbot may have failed, after its own reason. */
function failureHint(s: ReverseProxySettings, names: string): string {
    if (s.acme.challenge === "dns-01-cloudflare")
        return `certbot could not obtain a certificate for ${names} from ${s.acme.directoryUrl} through DNS-01 with Cloudflare: each name must be in a Cloudflare zone the API token may edit (Zone:DNS:Edit), and the token must be valid (certbot's reason is above)`;
    return `certbot could not obtain a certificate for ${names} from ${s.acme.directoryUrl}: these names' DNS records must point to this host and port 80 must be reachable from the internet (the CA connects to http://<name>/.well-known/acme-challenge/)`;
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
 * Obtains the certificate through HTTP-01 on nginx's port 80 (certbot's
 * webroot) or, with `dns-01-cloudflare`, through DNS-01 with certbot's
 * Cloudflare plugin (its credentials written before by
 * `acmeCredentialsScript`), keeps it while it is valid and the request is
 * unchanged, points nginx at it and reloads nginx when it changed. certbot's
 * own timer renews it the same way; the deploy hook reloads nginx and runs
 * the services' hooks.
 */
export function certificateScript(s: ReverseProxySettings): string {
    const live = liveDir(s);
    const dns = s.acme.challenge === "dns-01-cloudflare";
    const env = s.acme.caBundle !== undefined ? sh`env REQUESTS_CA_BUNDLE=${PROXY_FILES.caBundle} ` : raw("");
    const certbot = sh`${env}certbot certonly --non-interactive --agree-tos --no-eff-email --email ${s.acme.email} --server ${s.acme.directoryUrl} ${authenticator(s)} --cert-name ${s.homeserverDomain} ${s.certificateNames.flatMap((n) => ["-d", n])} --key-type ${s.acme.keyType} --no-directory-hooks`;
    const names = s.certificateNames.join(", ");
    return script("pulumi-matrix certificate (certbot)", [
        ...(dns
            ? [
                  sh`pm_apt_install python3-certbot-dns-cloudflare`,
                  sh`if [ ! -s ${PROXY_FILES.cloudflareCredentials} ]; then echo ${`${PROXY_FILES.cloudflareCredentials} is missing: the certificate's credentials step writes it (the Cloudflare API token) before this one`} >&2; exit 1; fi`,
              ]
            : []),
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
        sh`pm_before=$(sha256sum ${`${live}/fullchain.pem`} 2>/dev/null || true)`,
        // Ask again only when the request changed (CA, key type, names); otherwise certbot keeps it until it is due for renewal.
        sh`if [ -e ${`${live}/fullchain.pem`} ] && [ "$(cat ${PROXY_FILES.request} 2>/dev/null)" = ${requestLine(s)} ]; then pm_when=--keep-until-expiring; else pm_when=--force-renewal; fi`,
        sh`if ! pm_out=$(${certbot} "$pm_when" 2>&1); then`,
        sh`    printf '%s\n' "$pm_out" >&2`,
        sh`    echo ${failureHint(s, names)} >&2`,
        sh`    exit 1`,
        sh`fi`,
        sh`printf '%s\n' ${requestLine(s)} >${PROXY_FILES.request}`,
        sh`if [ "$(readlink ${PROXY_FILES.tls})" != ${live} ]; then`,
        sh`    ${switchCertificate(live)}`,
        sh`    echo ${`nginx now serves the certificate for ${names}`}`,
        sh`    pm_before=switched`,
        sh`fi`,
        sh`if [ "$(sha256sum ${`${live}/fullchain.pem`})" != "$pm_before" ]; then`,
        sh`    echo "new certificate: reloading nginx and the services that use it"`,
        sh`    RENEWED_LINEAGE=${live} ${PROXY_FILES.deployHook}`,
        sh`fi`,
        sh`echo ${`certificate for ${names}:`} "$(openssl x509 -noout -enddate -in ${`${live}/cert.pem`})"`,
    ]);
}
