#!/usr/bin/env bash
# Entrypoint of the lab's PostgreSQL 15 image, following the env contract of the official
# `postgres` image:
#   POSTGRES_PASSWORD / POSTGRES_PASSWORD_FILE   superuser password (required to initialise,
#                                                unless POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER (default postgres), POSTGRES_DB (default: the user), POSTGRES_INITDB_ARGS,
#   POSTGRES_HOST_AUTH_METHOD (default scram-sha-256), PGDATA (default /var/lib/postgresql/data)
# and their *_FILE variants. Started as root it creates PGDATA (0700, owned by postgres) or fixes
# its owner, then re-runs itself as postgres. An empty PGDATA is initialised; one holding a
# cluster is started as it is; a non-empty PGDATA without a cluster is refused untouched.
# The server is exec'd, so it runs as PID 1 and receives the stop signal (SIGINT: fast shutdown).
set -Eeuo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*"; }
die() { log "error: $*" >&2; exit 1; }

# file_env VAR [DEFAULT]: set VAR from $VAR, or from the file named by $VAR_FILE, or DEFAULT.
# The *_FILE variable is unset afterwards so that a re-run as postgres sees only VAR.
file_env() {
	local var=$1 def=${2:-} fileVar="${1}_FILE" val
	if [ -n "${!var:-}" ] && [ -n "${!fileVar:-}" ]; then
		die "both $var and $fileVar are set (but they are exclusive)"
	fi
	val=$def
	if [ -n "${!var:-}" ]; then
		val=${!var}
	elif [ -n "${!fileVar:-}" ]; then
		[ -r "${!fileVar}" ] || die "$fileVar names ${!fileVar}, which does not exist or is not readable"
		val=$(< "${!fileVar}")
	fi
	export "$var"="$val"
	unset "$fileVar"
}

has_cluster() { [ -s "$PGDATA/PG_VERSION" ]; }

# A non-empty PGDATA that holds no cluster is someone else's data (or the root of a mount with
# lost+found): refuse before changing anything in it.
refuse_foreign_pgdata() {
	if [ -d "$PGDATA" ] && ! has_cluster && [ -n "$(ls -A "$PGDATA" 2>/dev/null)" ]; then
		die "PGDATA ($PGDATA) is not empty but holds no PostgreSQL cluster (no PG_VERSION file);" \
			"refusing to initialise over it. Empty it, or point PGDATA at an empty directory" \
			"(e.g. a subdirectory when $PGDATA is the root of a mounted volume)."
	fi
}

setup_env() {
	export PGDATA=${PGDATA:-/var/lib/postgresql/data}
	file_env POSTGRES_USER postgres
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	export POSTGRES_HOST_AUTH_METHOD=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
}

init_cluster() {
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		die "the database is uninitialised and no superuser password is given: set POSTGRES_PASSWORD" \
			"or POSTGRES_PASSWORD_FILE (or POSTGRES_HOST_AUTH_METHOD=trust, never outside a test)."
	fi
	log "initialising a new cluster in $PGDATA (superuser $POSTGRES_USER, database $POSTGRES_DB)"
	# The password reaches initdb through a pipe (printf is a shell builtin: never in argv).
	# eval keeps quoted words in POSTGRES_INITDB_ARGS together, like the official image. As there, initdb gets
	# no --auth option of its own: the socket and 127.0.0.1 are trusted unless POSTGRES_INITDB_ARGS says otherwise.
	local initdb='initdb --pgdata="$PGDATA" --username="$POSTGRES_USER"'
	if [ -n "$POSTGRES_PASSWORD" ]; then
		initdb+=' --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD")'
	fi
	eval "$initdb $POSTGRES_INITDB_ARGS"
	printf '\n# Added by the image entrypoint: password logins from any address.\nhost all all all %s\n' \
		"$POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"

	# A server on the Unix socket only, to create the database.
	pg_ctl --pgdata="$PGDATA" --wait --silent -o "-c listen_addresses='' -p 5432" start
	if [ "$POSTGRES_DB" != postgres ]; then
		local exists
		exists=$(psql --no-psqlrc -v ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname=postgres \
			--tuples-only --no-align --set db="$POSTGRES_DB" <<< "SELECT 1 FROM pg_database WHERE datname = :'db';")
		if [ -z "$exists" ]; then
			psql --no-psqlrc -v ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname=postgres \
				--quiet --set db="$POSTGRES_DB" <<< 'CREATE DATABASE :"db";'
			log "created database $POSTGRES_DB"
		fi
	fi
	pg_ctl --pgdata="$PGDATA" --wait --silent -m fast stop
	log "initialisation complete; starting PostgreSQL"
}

main() {
	# `docker run IMAGE -c shared_buffers=256MB` passes server options.
	if [ $# -eq 0 ] || [ "${1:0:1}" = '-' ]; then
		set -- postgres "$@"
	fi
	if [ "$1" != postgres ]; then
		exec "$@"
	fi

	setup_env
	if [ "$(id -u)" = 0 ]; then
		refuse_foreign_pgdata
		mkdir -p "$PGDATA"
		find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
		chmod 0700 "$PGDATA"
		mkdir -p /var/run/postgresql
		chown postgres:postgres /var/run/postgresql
		chmod 3777 /var/run/postgresql
		export HOME=/var/lib/postgresql
		exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
	fi

	refuse_foreign_pgdata
	mkdir -p "$PGDATA" 2>/dev/null || die "cannot create PGDATA ($PGDATA) as uid $(id -u)"
	chmod 0700 "$PGDATA" 2>/dev/null || :
	if has_cluster; then
		log "PGDATA ($PGDATA) holds a PostgreSQL $(cat "$PGDATA/PG_VERSION") cluster; skipping initialisation"
	else
		init_cluster
	fi
	# The server needs none of these; keep the password out of its environment.
	unset POSTGRES_PASSWORD POSTGRES_INITDB_ARGS
	exec "$@"
}

main "$@"
