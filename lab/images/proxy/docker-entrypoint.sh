#!/bin/sh
# The official haproxy image's entrypoint contract: options alone run haproxy with them, and
# `haproxy ...` runs in master-worker mode in the foreground (-W -db), so that SIGUSR2 reloads
# the configuration gracefully and SIGUSR1 (the stop signal) stops it softly.
set -e
if [ "${1#-}" != "$1" ]; then
    set -- haproxy "$@"
fi
if [ "$1" = haproxy ]; then
    shift
    set -- haproxy -W -db "$@"
fi
exec "$@"
