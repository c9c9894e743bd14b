#!/bin/sh
# Managed by pulumi-matrix. Edits made here are reported by `sudo pulumi-matrix-drift`
# and replaced when pulumi-matrix next writes this file (a change that affects it, or a re-apply).
# certbot runs this after it renewed a certificate ($RENEWED_LINEAGE is its live directory).
set -e
if systemctl is-active -q nginx.service; then
    nginx -t -q
    systemctl reload nginx.service
fi
# Each service that uses the certificate adds its own hook here (it sees RENEWED_LINEAGE too).
if [ -d /etc/pulumi-matrix/certificate-hooks.d ]; then
    run-parts --exit-on-error /etc/pulumi-matrix/certificate-hooks.d
fi
