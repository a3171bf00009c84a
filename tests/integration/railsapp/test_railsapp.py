"""The lab's real Rails application (lab/images/railsapp: Rails 6.1, Puma and pg from Debian's packages) meets the app
image contract, with the lab's PostgreSQL image and no lab: ``bin/rails db:prepare db:seed`` makes and seeds the
database (a second run keeps the rows as they are); Puma serves on $PORT; the page lists the notes read from PostgreSQL
and its form writes one (with Rails' CSRF token); ``/up`` answers 200 only while the database does; the fingerprinted
assets are served from /assets, or named on ASSET_HOST (the CDN) when it is set; ``/version`` is APP_REVISION.

A network and two containers of their own, removed at the end. Needs the lab images (`make images`). Run with
``.venv/bin/pytest tests/integration/railsapp -v`` (about 40 s).
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from labkit import config
from lablib.containers import docker, wait

RAILSAPP = config.image("railsapp", "1")
POSTGRES = config.image("postgres", "15")
PASSWORD = "itest-railsapp-password-0000"  # noqa: S105 - a throwaway database's, never leaves the test
SEEDED = ("Welcome to the railsdeploy lab.", "This note was written by bin/rails db:seed.",
          "Rows written here must survive a restart of PostgreSQL.")


def get(opener: urllib.request.OpenerDirector, url: str, data: bytes | None = None) -> tuple[int, dict, str]:
    """(status, headers, body) of a request; redirects are followed, an error status is returned, not raised."""
    try:
        with opener.open(url, data=data, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


@pytest.fixture(scope="module")
def app() -> Iterator[dict]:
    tag = uuid.uuid4().hex[:6]
    net, db, web = f"itest-railsapp-{tag}", f"itest-railsapp-db-{tag}", f"itest-railsapp-web-{tag}"
    labels = ["--label", f"{config.LABEL}.itest=railsapp"]
    database_url = f"postgres://app:{PASSWORD}@{db}:5432/app"
    env = ["--env", f"DATABASE_URL={database_url}", "--env", "SECRET_KEY_BASE=" + "0" * 64]
    docker("network", "create", *labels, net)
    try:
        docker("run", "--detach", "--name", db, *labels, "--network", net, "--env", f"POSTGRES_PASSWORD={PASSWORD}",
               "--env", "POSTGRES_USER=app", "--env", "POSTGRES_DB=app", POSTGRES)
        wait("PostgreSQL to take SQL", lambda: docker("exec", db, "psql", "-U", "app", "-d", "app", "-tAc", "select 1",
                                                      check=False).stdout.strip() == "1", 90)

        def rails(*tasks: str) -> subprocess.CompletedProcess:
            return docker("run", "--rm", *labels, "--network", net, *env, RAILSAPP, "bin/rails", *tasks, check=False)

        def sql(query: str) -> str:
            return docker("exec", db, "psql", "-U", "app", "-d", "app", "-tAc", query).stdout.strip()

        docker("run", "--detach", "--name", web, *labels, "--network", net, *env, "--env", "APP_REVISION=itest-7",
               "--publish", "127.0.0.1::3000", RAILSAPP)
        port = docker("port", web, "3000/tcp").stdout.split(":")[-1].strip()
        yield {"url": f"http://127.0.0.1:{port}", "rails": rails, "sql": sql, "db": db, "web": web, "net": net,
               "env": env, "labels": labels}
    finally:
        for container in (web, db):
            logs = docker("logs", "--tail", "40", container, check=False)
            print(f"--- {container} ---\n{logs.stdout}{logs.stderr}")
            docker("rm", "--force", container, check=False)
        docker("network", "rm", net, check=False)


def test_db_prepare_and_seed_make_and_seed_the_database_once(app):
    first = app["rails"]("db:prepare", "db:seed")
    assert first.returncode == 0, first.stderr[-3000:]
    assert app["sql"]("SELECT version FROM schema_migrations ORDER BY 1").split() == [
        "20240101000001", "20240101000002", "20240102000001"]
    assert app["sql"]("SELECT count(*) FROM notes") == "3"
    again = app["rails"]("db:prepare", "db:seed")
    assert again.returncode == 0, again.stderr[-3000:]
    assert app["sql"]("SELECT count(*) FROM notes") == "3"
    migrate = app["rails"]("db:migrate")
    assert migrate.returncode == 0 and "migrating" not in migrate.stdout, migrate.stdout


def test_the_page_lists_the_notes_from_postgresql_and_its_form_writes_one(app):
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    wait("Puma to answer /up", lambda: get(opener, app["url"] + "/up")[0] == 200, 60)
    status, _, page = get(opener, app["url"] + "/")
    assert status == 200, page[-2000:]
    assert all(text in page for text in SEEDED), page
    assert "3 notes in PostgreSQL" in page
    assert re.search(r"Rails 6\.1\.\d+", page) and "release itest-7" in page, page[-500:]

    token = re.search(r'name="authenticity_token" value="([^"]+)"', page)
    assert token, page
    form = urllib.parse.urlencode({"authenticity_token": token[1], "note[text]": "written through the form"}).encode()
    status, _, page = get(opener, app["url"] + "/notes", data=form)
    assert status == 200 and "written through the form" in page and "4 notes in PostgreSQL" in page, page[-2000:]
    assert app["sql"]("SELECT count(*) FROM notes WHERE text = 'written through the form'") == "1"

    # Without the page's token Rails refuses the write, and nothing is written.
    forged = urllib.parse.urlencode({"note[text]": "forged"}).encode()
    status, _, _ = get(urllib.request.build_opener(), app["url"] + "/notes", data=forged)
    assert status == 422
    assert app["sql"]("SELECT count(*) FROM notes WHERE text = 'forged'") == "0"


def test_the_worker_processes_the_jobs_the_web_app_enqueues_and_finishes_the_one_in_hand_on_sigterm(app):
    worker = app["web"] + "-jobs"
    docker("run", "--detach", "--name", worker, *app["labels"], "--network", app["net"], *app["env"],
           "--env", "APP_REVISION=itest-7", RAILSAPP, "bin/jobs")
    try:
        opener = urllib.request.build_opener()
        wait("Puma to answer /up", lambda: get(opener, app["url"] + "/up")[0] == 200, 60)

        def enqueue(seconds: int) -> int:
            form = urllib.parse.urlencode({"seconds": seconds}).encode()
            status, _, body = get(opener, app["url"] + "/jobs", data=form)
            assert status == 201, body[-2000:]
            return json.loads(body)["id"]

        def job(job_id: int) -> dict:
            return json.loads(get(opener, f"{app['url']}/jobs/{job_id}")[2])

        quick = enqueue(0)
        wait("the worker to finish the job", lambda: job(quick)["finished_at"] is not None, 60)
        assert job(quick)["worker"].startswith("itest-7/"), job(quick)

        # A job in hand when the worker is told to stop is finished before it exits (0, not killed).
        slow = enqueue(4)
        wait("the worker to take the job", lambda: job(slow)["started_at"] is not None, 30)
        docker("stop", "--time", "30", worker)
        state = json.loads(docker("container", "inspect", worker).stdout)[0]["State"]
        logs = docker("logs", worker).stdout
        assert state["ExitCode"] == 0, logs[-2000:]
        assert job(slow)["finished_at"] is not None, logs[-2000:]
        assert f"job {slow} finished (asked to stop while working on it)" in logs, logs[-2000:]
        assert logs.rstrip().endswith("stopped"), logs[-2000:]
    finally:
        docker("rm", "--force", worker, check=False)


def test_assets_are_fingerprinted_and_served_or_named_on_the_asset_host(app):
    opener = urllib.request.build_opener()
    wait("Puma to answer /up", lambda: get(opener, app["url"] + "/up")[0] == 200, 60)
    page = get(opener, app["url"] + "/")[2]
    stylesheet = re.search(r'href="(/assets/application-[0-9a-f]{64}\.css)"', page)
    assert stylesheet, page
    status, headers, body = get(opener, app["url"] + stylesheet[1])
    assert status == 200 and "font-family" in body
    assert "immutable" in headers.get("Cache-Control", "")
    assert get(opener, app["url"] + "/version")[2] == "itest-7"

    # With ASSET_HOST (the CDN) the page names the same file there: a one-off container of the same image.
    page = docker("run", "--rm", *app["labels"], "--network", app["net"], *app["env"], "--env",
                  "ASSET_HOST=https://cdn.example.test", RAILSAPP, "bin/rails", "runner",
                  "puts ApplicationController.helpers.stylesheet_link_tag('application')").stdout
    assert f'href="https://cdn.example.test{stylesheet[1]}"' in page, page


def test_up_answers_200_only_while_the_database_does(app):
    opener = urllib.request.build_opener()
    wait("Puma to answer /up", lambda: get(opener, app["url"] + "/up")[0] == 200, 60)
    docker("stop", app["db"])
    try:
        wait("/up to answer 503 without the database", lambda: get(opener, app["url"] + "/up")[0] == 503, 30)
        assert get(opener, app["url"] + "/version")[0] == 200  # the app itself still serves
    finally:
        docker("start", app["db"])
    wait("/up to answer 200 once the database is back", lambda: get(opener, app["url"] + "/up")[0] == 200, 60)
