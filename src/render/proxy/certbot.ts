import { validateCloudflareApiToken } from "../../model/proxy/acme";
import { UNIT_HEADER as HEADER } from "../systemd";

/**
 * certbot's side of the certificates: the deploy hook it runs after every
 * renewal (nginx reloads; a service with a lineage of its own, such as
 * coturn, drops its hook into `hooksDir`, which copies its own lineage
 * only), and the environment its renewal timer needs to trust a private
 * ACME server.
 */

/** The deploy hook: reload nginx with the renewed certificate, then run the services' hooks in `hooksDir`. */
export function renderDeployHook(hooksDir: string): string {
    return `#!/bin/sh
${HEADER}
# certbot runs this after it renewed a certificate ($RENEWED_LINEAGE is its live directory).
set -e
if systemctl is-active -q nginx.service; then
    nginx -t -q
    systemctl reload nginx.service
fi
# A service with a certificate lineage of its own adds its hook here; it acts on RENEWED_LINEAGE = its lineage only.
if [ -d ${hooksDir} ]; then
    run-parts --exit-on-error ${hooksDir}
fi
`;
}

/** A drop-in for certbot.service: renewals trust the ACME server's own CA (a test or company CA). */
export function renderCertbotDropIn(caBundlePath: string): string {
    return `${HEADER}
[Service]
Environment=REQUESTS_CA_BUNDLE=${caBundlePath}
`;
}

/**
 * The credentials file of certbot's Cloudflare plugin (DNS-01): the API
 * token, root only. The token is checked for its form without being shown
 * in the error (it arrives as a secret).
 */
export function renderCloudflareCredentials(apiToken: string): string {
    validateCloudflareApiToken("ReverseProxy", "cloudflareApiToken", apiToken);
    return `${HEADER}
# certbot's Cloudflare plugin reads the API token (Zone:DNS:Edit) for DNS-01 from here.
dns_cloudflare_api_token = ${apiToken}
`;
}
