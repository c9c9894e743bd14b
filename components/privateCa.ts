import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";

import { PRIVATE_CA_VALIDITY_HOURS, SERVER_CERT_EARLY_RENEWAL_HOURS, SERVER_CERT_VALIDITY_HOURS, serverCertificateNames } from "../src/model/tls";
import { childName } from "./naming";

/** A server's certificate and key, and the CA clients verify it against (all PEM). */
export interface PrivateServerTls {
    /** The CA's certificate (public): what clients trust. */
    caCertificate: pulumi.Output<string>;
    /** The server's certificate, signed by the CA. */
    certificate: pulumi.Output<string>;
    /** The server's private key (secret). */
    privateKey: pulumi.Output<string>;
}

/**
 * A private CA and a server certificate it signs, for one server the
 * library installs that other hosts reach (see src/model/tls.ts for the
 * validity and renewal). Keys are ECDSA P-256, made once and kept in the
 * stack's state as secrets; the CA's key never leaves it. `addresses` are
 * the names clients dial (IP addresses or host names, known later too).
 */
export function privateServerTls(
    name: string,
    o: { service: string; addresses: pulumi.Input<pulumi.Input<string>[]> },
    parent: pulumi.Resource,
): PrivateServerTls {
    const opts = { parent };
    const caKey = new tls.PrivateKey(childName(name, "ca-key"), { algorithm: "ECDSA", ecdsaCurve: "P256" }, opts);
    const ca = new tls.SelfSignedCert(
        childName(name, "ca"),
        {
            privateKeyPem: caKey.privateKeyPem,
            isCaCertificate: true,
            subject: { commonName: `pulumi-matrix ${name} CA`, organization: "pulumi-matrix" },
            validityPeriodHours: PRIVATE_CA_VALIDITY_HOURS,
            allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
        },
        opts,
    );
    const key = new tls.PrivateKey(childName(name, "tls-key"), { algorithm: "ECDSA", ecdsaCurve: "P256" }, opts);
    const names = pulumi.output(o.addresses).apply((a) => serverCertificateNames(a));
    const request = new tls.CertRequest(
        childName(name, "tls-request"),
        {
            privateKeyPem: key.privateKeyPem,
            subject: { commonName: `${o.service} ${name}`, organization: "pulumi-matrix" },
            ipAddresses: names.ipAddresses,
            dnsNames: names.dnsNames,
        },
        opts,
    );
    const cert = new tls.LocallySignedCert(
        childName(name, "tls-cert"),
        {
            certRequestPem: request.certRequestPem,
            caPrivateKeyPem: caKey.privateKeyPem,
            caCertPem: ca.certPem,
            validityPeriodHours: SERVER_CERT_VALIDITY_HOURS,
            earlyRenewalHours: SERVER_CERT_EARLY_RENEWAL_HOURS,
            allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
        },
        opts,
    );
    return { caCertificate: ca.certPem, certificate: cert.certPem, privateKey: pulumi.secret(key.privateKeyPem) };
}
