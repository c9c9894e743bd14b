import { isIpAddress, isWildcardAddress } from "./validate";

/**
 * The private CA a server the library installs uses when other hosts reach
 * it (PostgreSQL, Redis): one CA per server, its key kept in the stack's
 * state (encrypted with the stack's secrets), never on a host. Clients
 * verify the server against that CA only.
 *
 * Validity: the CA 20 years, the server certificate 10 years; a
 * `pulumi up` in the certificate's last year issues a new one from the same
 * CA (clients keep trusting it), and the server reloads it. A re-run
 * never makes new keys: they live in the state.
 */
export const PRIVATE_CA_VALIDITY_HOURS = 20 * 365 * 24;
export const SERVER_CERT_VALIDITY_HOURS = 10 * 365 * 24;
export const SERVER_CERT_EARLY_RENEWAL_HOURS = 365 * 24;

/** The names a server certificate carries: its addresses as IP SANs, host names as DNS SANs, loopback always. */
export function serverCertificateNames(addresses: readonly string[]): { ipAddresses: string[]; dnsNames: string[] } {
    const all = [...new Set(["127.0.0.1", "::1", ...addresses.filter((a) => !isWildcardAddress(a)), "localhost"])];
    return { ipAddresses: all.filter(isIpAddress), dnsNames: all.filter((a) => !isIpAddress(a)) };
}
