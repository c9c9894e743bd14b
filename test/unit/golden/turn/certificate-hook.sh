#!/bin/sh
# Managed by pulumi-matrix. Edits made here are reported by `sudo pulumi-matrix-drift`
# and replaced when pulumi-matrix next writes this file (a change that affects it, or a re-apply).
# coturn's copy of the certificate in /etc/letsencrypt/live/coturn-turn.example.com; certbot's deploy hook runs this after a renewal.
set -e
umask 077
[ "${RENEWED_LINEAGE:-}" = /etc/letsencrypt/live/coturn-turn.example.com ] || exit 0
changed=0
# copy SOURCE TARGET MODE: replaces TARGET at once when its content differs.
copy() {
    if ! cmp -s "$1" "$2"; then
        install -m "$3" -o turnserver -g turnserver "$1" "$2.pm-new"
        mv -f "$2.pm-new" "$2"
        changed=1
    fi
    chown turnserver:turnserver "$2"
    chmod "$3" "$2"
}
install -d -m 0750 -o root -g turnserver /etc/coturn/pulumi-matrix/tls
copy /etc/letsencrypt/live/coturn-turn.example.com/fullchain.pem /etc/coturn/pulumi-matrix/tls/fullchain.pem 0640
copy /etc/letsencrypt/live/coturn-turn.example.com/privkey.pem /etc/coturn/pulumi-matrix/tls/privkey.pem 0600
if [ "$changed" = 1 ]; then
    echo "coturn: copied the certificate from /etc/letsencrypt/live/coturn-turn.example.com"
    if systemctl is-active -q coturn.service; then
        systemctl reload coturn.service
        echo "coturn: reloaded (new certificate)"
    fi
fi
