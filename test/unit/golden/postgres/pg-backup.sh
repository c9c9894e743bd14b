#!/bin/sh
# Managed by pulumi-matrix: nightly pg_dump of the Synapse database.
set -eu
dir=/var/backups/pulumi-matrix/postgres
db=synapse
keep=7
stamp=$(date -u +%Y%m%dT%H%M%SZ)
umask 077
# Partials of an interrupted run (a crash, a reboot, a kill): never a usable dump, only space taken.
find "$dir" -maxdepth 1 -type f -name "$db-*.dump.partial" -delete
partial="$dir/$db-$stamp.dump.partial"
trap 'rm -f -- "$partial"' EXIT
pg_dump --port=5432 --format=custom --exclude-table-data=e2e_one_time_keys_json --file="$partial" "$db"
mv "$partial" "$dir/$db-$stamp.dump"
# Keep the newest $keep dumps.
ls -1 "$dir" | grep -E "^$db-[0-9]{8}T[0-9]{6}Z\.dump$" | sort -r | tail -n +$((keep + 1)) | while read -r old; do
    rm -f -- "$dir/$old"
done
