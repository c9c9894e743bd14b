#!/bin/sh
# Managed by pulumi-matrix. Edits made here are reported by `sudo pulumi-matrix-drift`
# and replaced when pulumi-matrix next writes this file (a change that affects it, or a re-apply).
# certbot runs this after it renewed a certificate ($RENEWED_LINEAGE is its live directory).
set -e
if systemctl is-active -q nginx.service; then
    nginx -t -q
    systemctl reload nginx.service
fi
# A service with a certificate lineage of its own adds its hook here; it acts on RENEWED_LINEAGE = its lineage only.
if [ -d /etc/pulumi-matrix/certificate-hooks.d ]; then
    run-parts --exit-on-error /etc/pulumi-matrix/certificate-hooks.d
fi
