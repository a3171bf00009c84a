# The roles Patroni connects as, run inside the PostgreSQL container on the leader (sh -c "$script" patroni_roles
# SUPERUSER REPLICATION_FILE REWIND_FILE): replicator (streaming replication, base backups) and rewind (pg_rewind of a
# former leader), with the grants Patroni's own bootstrap gives a rewind user on PostgreSQL 11 and later - for a
# cluster Patroni did not create (one adopted from a single primary). Each password is the one in its file, checked by
# logging in over TCP to the container's own address. Prints "changed: ..." for each change.
set -eu
su=$1 replication_file=$2 rewind_file=$3
q() { psql -X -q -At -v ON_ERROR_STOP=1 -U "$su" -d postgres "$@"; }

q <<'SQL'
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator') AS create_replicator \gset
\if :create_replicator
CREATE ROLE replicator LOGIN REPLICATION;
\echo changed: role replicator created
\endif
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rewind') AS create_rewind \gset
\if :create_rewind
CREATE ROLE rewind LOGIN;
\echo changed: role rewind created
\endif
SELECT NOT (has_function_privilege('rewind', 'pg_catalog.pg_ls_dir(text, boolean, boolean)', 'EXECUTE')
            AND has_function_privilege('rewind', 'pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE')
            AND has_function_privilege('rewind', 'pg_catalog.pg_read_binary_file(text)', 'EXECUTE')
            AND has_function_privilege('rewind', 'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)',
                                       'EXECUTE')) AS grant_rewind \gset
\if :grant_rewind
GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO rewind;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO rewind;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO rewind;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO rewind;
\echo changed: role rewind may read what pg_rewind needs
\endif
SQL

host=$(hostname -i | cut -d ' ' -f 1)
for pair in "replicator:$replication_file" "rewind:$rewind_file"; do
  role=${pair%%:*} file=${pair#*:}
  if ! PGPASSWORD=$(cat "$file") psql -X -q -At -h "$host" -U "$role" -d postgres -c 'select 1' >/dev/null 2>&1; then
    q -v role="$role" -v file="$file" <<'SQL'
SET log_min_error_statement = panic;
SET log_statement = 'none';
\set password `cat :'file'`
ALTER ROLE :"role" PASSWORD :'password';
SQL
    echo "changed: the password of role $role is the one in $file"
  fi
done
