#!/bin/sh
# Container entry point: optionally apply the migrations (retried until the database is up),
# then run the container's command in place of this shell, so it gets SIGTERM directly.
#
#   MIGRATE_ON_START=1     run `callcenter db upgrade` first (the web service sets it)
#   MIGRATE_RETRIES=30     attempts before giving up (the container then exits 1 and restarts)
#   MIGRATE_DELAY=2        seconds between attempts
#
# Like microblog's boot.sh: PostgreSQL may still be starting when this container starts.
set -eu

if [ "${MIGRATE_ON_START:-0}" = "1" ]; then
    attempt=1
    until callcenter db upgrade; do
        if [ "$attempt" -ge "${MIGRATE_RETRIES:-30}" ]; then
            echo "entrypoint: migrations failed ${attempt} times; giving up" >&2
            exit 1
        fi
        echo "entrypoint: database not ready (attempt ${attempt}); retrying in ${MIGRATE_DELAY:-2}s" >&2
        attempt=$((attempt + 1))
        sleep "${MIGRATE_DELAY:-2}"
    done
fi

exec "$@"
