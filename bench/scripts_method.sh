#!/bin/sh
# The old shell scripts' rails/deploy.sh on one node, for bench/deploy.py (run by bench/scripts_method.yml, node after node):
# pull the release, stop and remove what serves, run the release as one container `rails` on port 80.
# No health check, no draining, no proxy - as the old scripts did. The app's settings (DATABASE_URL, SECRET_KEY_BASE,
# RAILS_ENV, ASSET_HOST...) are the ones the serving container runs with, so the new container reaches the
# same database; the old scripts passed them to `docker run` in an env file, which is what happens here.
#
#   scripts_method.sh <image:tag> <release>
set -eu
image=$1
release=$2
state_dir=/var/lib/railsdeploy/rails_app
env_file=$state_dir/scripts-method.env

# The container serving now (railsdeploy's blue/green slot) and its secrets file (NAME='value' lines).
serving=$(docker ps --filter label=railsdeploy.app=rails --format '{{.Names}}' | head -n 1)
if [ -z "$serving" ] || [ ! -r "$state_dir/secrets/$serving.env" ]; then
    echo "scripts_method: no railsdeploy app container serves on $(hostname) (found '${serving}'):" \
        "deploy with playbooks/deploy_rails.yml first" >&2
    exit 1
fi

# The old shell scripts' env file: plain NAME=value lines (docker --env-file does not unquote).
umask 077
{
    docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$serving" \
        | grep -E '^(RAILS_ENV|RAILS_LOG_TO_STDOUT|RAILS_SERVE_STATIC_FILES|ASSET_HOST|PORT)=' || true
    echo "APP_REVISION=$release"
    # shellcheck disable=SC1090
    (set -a; . "$state_dir/secrets/$serving.env"; printf 'DATABASE_URL=%s\nSECRET_KEY_BASE=%s\n' \
        "$DATABASE_URL" "$SECRET_KEY_BASE")
} > "$env_file"

# pull
docker pull --quiet "$image"
# stop: the app and what holds port 80 (the old shell scripts' app held it itself; here the node's proxy does)
old=$(docker ps --all --format '{{.Names}}' | grep -E '^(rails|rails-blue|rails-green|rails-proxy)$' || true)
if [ -n "$old" ]; then
    # shellcheck disable=SC2086
    docker stop $old > /dev/null
    # shellcheck disable=SC2086
    docker rm $old > /dev/null
fi
# run
docker run --detach --name rails --publish 80:3000 --env-file "$env_file" --restart unless-stopped "$image"
rm -f "$env_file"
