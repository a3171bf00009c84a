"""An in-process stand-in for etcd 3.4's v3 JSON gateway, ``POST /v3/kv/txn`` only, for deploy_lock's tests.

It answers as etcd 3.4.23 does (checked against the real one): keys and values base64 in JSON, int64 fields as
strings, proto3 defaults left out (``succeeded`` is absent when the compare failed, a range of a missing key has no
``kvs``), a txn with writes raises the store's revision by one, a VALUE compare on a missing key is false while
CREATE/MOD/VERSION compare against 0, and a malformed request is answered 400 with ``{"error", "message", "code"}``.
One key per op (no ``range_end``), no leases. A txn runs under a lock, so it is atomic as in etcd.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TARGETS = {"VERSION": "version", "CREATE": "create_revision", "MOD": "mod_revision", "VALUE": "value"}
RESULTS = {
    "EQUAL": lambda a, b: a == b,
    "GREATER": lambda a, b: a > b,
    "LESS": lambda a, b: a < b,
    "NOT_EQUAL": lambda a, b: a != b,
}


class BadRequest(Exception):
    pass


def _b64decode(text) -> bytes:
    if not isinstance(text, str):
        raise BadRequest(f"bytes field is not a base64 string: {text!r}")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as err:
        raise BadRequest(f"illegal base64 data: {err}") from None


def _int64(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"invalid int64: {value!r}") from None


def _drop_defaults(message: dict) -> dict:
    """proto3 JSON as the gateway writes it: zero values, empty strings and lists are left out."""
    return {name: value for name, value in message.items() if value not in (0, "0", "", [], False, None)}


class FakeEtcd:
    def __init__(self) -> None:
        self.store: dict[bytes, dict] = {}  # key -> {value, create_revision, mod_revision, version}
        self.revision = 1  # a fresh etcd is at revision 1
        self.requests: list[dict] = []  # every txn body received, in order
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-etcd", daemon=True)

    def __enter__(self) -> FakeEtcd:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # What the tests look at and set up.
    def get(self, key: str) -> bytes | None:
        with self._lock:
            kv = self.store.get(key.encode())
            return None if kv is None else kv["value"]

    def get_json(self, key: str):
        value = self.get(key)
        return None if value is None else json.loads(value)

    def put(self, key: str, value: bytes) -> None:
        with self._lock:
            self.revision += 1
            self._put(key.encode(), value)

    def snapshot(self):
        with self._lock:
            return self.revision, json.loads(json.dumps({k.decode(): {**v, "value": v["value"].decode()}
                                                         for k, v in self.store.items()}))

    def writes(self) -> list[dict]:
        """The put and delete ops of every txn received."""
        return [op for body in self.requests for branch in ("success", "failure") for op in body.get(branch) or []
                if "request_put" in op or "request_delete_range" in op]

    # etcd's txn.
    def txn(self, body) -> dict:
        if not isinstance(body, dict):
            raise BadRequest("txn request is not a JSON object")
        with self._lock:
            self.requests.append(body)
            succeeded = all(self._compare(compare) for compare in body.get("compare") or [])
            ops = body.get("success" if succeeded else "failure") or []
            writes = any("request_put" in op or "request_delete_range" in op for op in ops)
            if writes:
                self.revision += 1
            responses = [self._op(op) for op in ops]
            return _drop_defaults({"header": self._header(full=True), "succeeded": succeeded,
                                   "responses": responses})

    def _header(self, full: bool = False) -> dict:
        header = {"revision": str(self.revision)}
        if full:
            header = {"cluster_id": "14841639068965178418", "member_id": "10276657743932975437", **header,
                      "raft_term": "2"}
        return header

    def _compare(self, compare: dict) -> bool:
        target = compare.get("target", "VERSION")
        if target not in TARGETS:
            raise BadRequest(f'unknown value "{target}" for enum etcdserverpb.Compare_CompareTarget')
        result = compare.get("result", "EQUAL")
        if result not in RESULTS:
            raise BadRequest(f'unknown value "{result}" for enum etcdserverpb.Compare_CompareResult')
        kv = self.store.get(_b64decode(compare.get("key", "")))
        field = TARGETS[target]
        if target == "VALUE":
            if kv is None:
                return False  # etcd: a value compare on a missing key never holds
            return RESULTS[result](kv["value"], _b64decode(compare.get("value", "")))
        have = 0 if kv is None else kv[field]
        return RESULTS[result](have, _int64(compare.get(field, 0)))

    def _put(self, key: bytes, value: bytes) -> None:
        old = self.store.get(key)
        self.store[key] = {"value": value, "create_revision": old["create_revision"] if old else self.revision,
                           "mod_revision": self.revision, "version": (old["version"] if old else 0) + 1}

    def _op(self, op: dict) -> dict:
        if "request_put" in op:
            request = op["request_put"]
            self._put(_b64decode(request.get("key", "")), _b64decode(request.get("value", "")))
            return {"response_put": {"header": self._header()}}
        if "request_range" in op:
            key = _b64decode(op["request_range"].get("key", ""))
            kv = self.store.get(key)
            kvs = [] if kv is None else [_drop_defaults({
                "key": base64.b64encode(key).decode(), "create_revision": str(kv["create_revision"]),
                "mod_revision": str(kv["mod_revision"]), "version": str(kv["version"]),
                "value": base64.b64encode(kv["value"]).decode()})]
            return {"response_range": _drop_defaults({"header": self._header(), "kvs": kvs,
                                                      "count": str(len(kvs))})}
        if "request_delete_range" in op:
            key = _b64decode(op["request_delete_range"].get("key", ""))
            deleted = self.store.pop(key, None) is not None
            return {"response_delete_range": _drop_defaults({"header": self._header(), "deleted": str(int(deleted))})}
        raise BadRequest(f"unsupported request op: {sorted(op)}")

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v3/kv/txn":
                    return self._answer(404, b"Not Found\n", "text/plain; charset=utf-8")
                try:
                    try:
                        request = json.loads(body)
                    except ValueError as err:
                        raise BadRequest(str(err)) from None
                    answer, status = fake.txn(request), 200
                except BadRequest as err:
                    answer, status = {"error": str(err), "message": str(err), "code": 3}, 400
                return self._answer(status, json.dumps(answer).encode(), "application/json")

            def _answer(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format, *args) -> None:  # noqa: A002 - http.server's signature
                pass

        return Handler
