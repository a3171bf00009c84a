# The cluster's roles, run inside the PostgreSQL container (sh -c "$script" roles APP DB SUPERUSER APP_FILE SU_FILE).
# The superuser (SUPERUSER, its password in SU_FILE) is for the node; the app gets a role of its own (APP, its
# password in APP_FILE): it owns its database and what is in it, and is no superuser, creates no roles or
# databases. A cluster made while the app's role was the superuser (the bootstrap role) is converted: that role is
# renamed to SUPERUSER and a new APP role takes over the database's objects - the app's connection string and
# password stay as they were. With REPLICATION_FILE and REWIND_FILE (a cluster run by Patroni: sh -c "$script" roles
# ... SU_FILE REPLICATION_FILE REWIND_FILE), also the roles Patroni connects as: replicator (streaming replication,
# base backups) and rewind (pg_rewind of a former leader, with the grants Patroni's own bootstrap gives it on
# PostgreSQL 11 and later) - for a cluster Patroni did not create, one adopted from a single primary. Prints
# "changed: ..." for each change; "refused: ..." and exit 3 when it cannot.
set -eu
app=$1 db=$2 su=$3 app_file=$4 su_file=$5 replication_file=${6:-} rewind_file=${7:-}
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# Connected through the local socket (trusted inside the container): as the superuser, else - not converted yet -
# as the app's role, which is then still the bootstrap superuser.
if q -U "$su" -d postgres -c 'select 1' >/dev/null 2>&1; then me=$su; else me=$app; fi
boot=$(q -U "$me" -d postgres -c 'select rolname from pg_roles where oid = 10')
if [ "$boot" != "$su" ]; then
  taken=$(echo "select 1 from pg_roles where rolname = :'su'" | q -U "$me" -d postgres -v su="$su")
  if [ -n "$taken" ]; then
    echo "refused: role $su exists but is not the cluster's bootstrap superuser ($boot); rename or drop it" >&2
    exit 3
  fi
  # A role cannot rename itself: the session takes a transient superuser's identity for the rename.
  q -U "$me" -d postgres -v boot="$boot" -v su="$su" <<'SQL'
BEGIN;
CREATE ROLE railsdeploy_rename SUPERUSER NOLOGIN;
SET SESSION AUTHORIZATION railsdeploy_rename;
ALTER ROLE :"boot" RENAME TO :"su";
RESET SESSION AUTHORIZATION;
DROP ROLE railsdeploy_rename;
COMMIT;
SQL
  echo "changed: the bootstrap superuser $boot is now named $su"
fi

q -U "$su" -d "$db" -v app="$app" -v db="$db" <<'SQL'
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app') AS create_app \gset
\if :create_app
CREATE ROLE :"app" LOGIN;
\echo changed: role :app created
\endif
SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls OR NOT rolcanlogin AS limit_app
  FROM pg_roles WHERE rolname = :'app' \gset
\if :limit_app
ALTER ROLE :"app" LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS;
\echo changed: role :app is no superuser, creates no roles or databases
\endif
SELECT datdba <> (SELECT oid FROM pg_roles WHERE rolname = :'app') AS give_db
  FROM pg_database WHERE datname = current_database() \gset
\if :give_db
ALTER DATABASE :"db" OWNER TO :"app";
\echo changed: database :db is owned by :app
\endif
-- What the superuser owns in the app's schemas (made while the app was the superuser) becomes the app's: tables,
-- views and standalone sequences (a table's own sequences and indexes follow it), types, routines, schemas.
-- Extensions' members stay theirs.
CREATE TEMPORARY VIEW railsdeploy_give AS
  SELECT format('ALTER %s %s OWNER TO %I',
                CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                               WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                c.oid::regclass, :'app') AS statement
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relowner = 10 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
     AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                     AND d.deptype IN ('e', 'a', 'i') AND c.relkind = 'S')
     AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                     AND d.deptype = 'e')
  UNION ALL
  SELECT format('ALTER %s %s OWNER TO %I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                t.oid::regtype, :'app')
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
   WHERE t.typowner = 10 AND t.typtype IN ('e', 'd', 'r') AND t.typelem = 0
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
     AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                     AND d.deptype = 'e')
  UNION ALL
  SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, :'app')
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE p.proowner = 10
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
     AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                     AND d.deptype = 'e')
  UNION ALL
  SELECT format('ALTER SCHEMA %I OWNER TO %I', n.nspname, :'app')
    FROM pg_namespace n
   WHERE n.nspowner = 10 AND n.nspname NOT IN ('public', 'pg_catalog', 'information_schema')
     AND n.nspname NOT LIKE 'pg\_%'
     AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid
                     AND d.deptype = 'e');
SELECT count(*) AS give_n, count(*) > 0 AS give FROM railsdeploy_give \gset
\if :give
BEGIN;
SELECT statement FROM railsdeploy_give \gexec
COMMIT;
\echo changed: :give_n objects of the superuser in :db are owned by :app
\endif
SQL

logins="$su:$su_file:postgres $app:$app_file:$db"
if [ -n "$replication_file" ]; then
  q -U "$su" -d postgres <<'SQL'
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
  logins="$logins replicator:$replication_file:postgres rewind:$rewind_file:postgres"
fi

# Each password is the one in its file, checked by logging in over TCP to the container's own address (the
# official image trusts 127.0.0.1, where any password would "log in"); set from the file only when it fails.
host=$(hostname -i | cut -d ' ' -f 1)
for pair in $logins; do
  role=${pair%%:*} rest=${pair#*:}
  file=${rest%%:*} dbname=${rest#*:}
  if ! PGPASSWORD=$(cat "$file") q -h "$host" -U "$role" -d "$dbname" -c 'select 1' >/dev/null 2>&1; then
    q -U "$su" -d postgres -v role="$role" -v file="$file" <<'SQL'
SET log_min_error_statement = panic;
SET log_statement = 'none';
\set password `cat :'file'`
ALTER ROLE :"role" PASSWORD :'password';
SQL
    echo "changed: the password of role $role is the one in $file"
  fi
done
