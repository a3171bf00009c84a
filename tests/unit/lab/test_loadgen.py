"""lab/loadgen.py: what counts as a failed request, and maintenance mode's page as an expected answer."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import loadgen
import pytest

PAGE = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body>" + b" " * 400 + \
    b"<h1>Down for maintenance</h1></body></html>"


class Handler(http.server.BaseHTTPRequestHandler):
    answers = {"/ok": (200, b"1"), "/page": (503, PAGE), "/other503": (503, b"Service Unavailable"),
               "/bad": (502, b"Bad Gateway")}

    def do_GET(self):  # noqa: N802 - http.server's name
        status, body = self.answers[self.path]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def outcome(url: str, expect=None) -> dict:
    load = loadgen.Load(url, workers=1, timeout=2, interval=0, expect=expect)
    load.one()
    summary = load.summary()
    return {"failed": summary["failed"], "kinds": summary["failures_by_kind"], "bodies": sorted(summary["bodies"])}


def test_a_200_is_an_answer_and_its_body_is_counted(server):
    assert outcome(f"{server}/ok") == {"failed": 0, "kinds": {}, "bodies": ["1"]}


def test_without_expect_the_maintenance_page_is_a_failure(server):
    assert outcome(f"{server}/page") == {"failed": 1, "kinds": {"HTTP 503": 1}, "bodies": []}


def test_the_expected_status_with_its_text_is_an_answer(server):
    got = outcome(f"{server}/page", expect=(503, "Down for maintenance"))
    assert got == {"failed": 0, "kinds": {}, "bodies": ["HTTP 503 Down for maintenance"]}


@pytest.mark.parametrize("path", ["/other503", "/bad"])
def test_another_answer_still_fails_when_one_is_expected(server, path):
    got = outcome(f"{server}{path}", expect=(503, "Down for maintenance"))
    assert got["failed"] == 1 and got["bodies"] == []


def test_a_malformed_expect_is_refused(capsys):
    with pytest.raises(SystemExit):
        loadgen.main(["--url", "http://127.0.0.1:9/", "--expect", "maintenance"])
    assert "STATUS:TEXT" in capsys.readouterr().err
