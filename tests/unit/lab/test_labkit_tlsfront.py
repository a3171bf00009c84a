"""Unit tests for lab/labkit/tlsfront.py: the lab CA, the front's certificate and the TLS byte pipe to moto.

No lab is needed: the certificates are made under a temporary directory, moto runs in-process
(ThreadedMotoServer on 127.0.0.1), and the front listens on 127.0.0.1. Some tests put a small TCP server of
their own behind the front to see exactly which bytes arrive and when connections close.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from cryptography import x509
from labkit import config, tlsfront
from labkit.net import free_port
from moto.server import ThreadedMotoServer

REGION = config.REGION
WANTED_DNS = {config.GATEWAY, f"s3.{REGION}.amazonaws.com", f"*.s3.{REGION}.amazonaws.com", "s3.amazonaws.com",
              "*.s3.amazonaws.com", f"api.ecr.{REGION}.amazonaws.com"}


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tls")


@pytest.fixture(scope="module")
def files(tls_dir: Path) -> tlsfront.TlsFiles:
    return tlsfront.ensure_ca(tls_dir)


@pytest.fixture(scope="module")
def moto_port() -> Iterator[int]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield port
    server.stop()


@pytest.fixture
def front(files) -> Iterator[Callable[[int], tlsfront.TlsFront]]:
    """front(upstream_port) -> a started TlsFront on 127.0.0.1 (free port); stopped after the test."""
    started: list[tlsfront.TlsFront] = []

    def _front(upstream_port: int) -> tlsfront.TlsFront:
        f = tlsfront.TlsFront("127.0.0.1", 0, upstream_port, files, quiet=True)
        f.start()
        started.append(f)
        return f

    yield _front
    for f in started:
        f.stop()


def s3(front_port: int, verify) -> boto3.client:
    return boto3.client("s3", endpoint_url=f"https://127.0.0.1:{front_port}", region_name=REGION, verify=verify,
                        aws_access_key_id=config.ACCESS_KEY, aws_secret_access_key=config.SECRET_KEY,
                        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=20))


def tls_client(port: int, files: tlsfront.TlsFiles) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(files.ca_cert))
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="127.0.0.1")


def wait_for(cond: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class Upstream:
    """A plain TCP server standing in for moto: ``reply(received) -> bytes | None`` is called with everything
    received so far; once it returns bytes they are sent and the connection is closed. It records what each
    connection received and whether it saw the front close its side (EOF)."""

    def __init__(self, reply: Callable[[bytes], bytes | None]) -> None:
        self.reply = reply
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.eof_seen: list[bool] = []
        self.so_far = b""  # what the newest connection received until now
        # Called with everything received when the front half-closes (EOF); what it returns is sent back.
        self.reply_at_eof: Callable[[bytes], bytes] | None = None
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        data, eof = b"", False
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    eof = True
                    if self.reply_at_eof is not None:
                        conn.sendall(self.reply_at_eof(data))
                    break
                data += chunk
                self.so_far = data
                out = self.reply(data)
                if out is not None:
                    conn.sendall(out)
                    break
            self.received.append(data)
            self.eof_seen.append(eof)
        self.closed.set()

    def close(self) -> None:
        self.sock.close()


# --- the certificates -----------------------------------------------------------------------------------------


def test_ca_and_certificate_are_made_once_and_reused(tls_dir, files):
    before = {p: p.read_bytes() for p in (files.ca_cert, files.cert, files.key, tls_dir / tlsfront.CA_KEY)}
    again = tlsfront.ensure_ca(tls_dir)
    assert again == files
    assert {p: p.read_bytes() for p in before} == before
    for key in (files.key, tls_dir / tlsfront.CA_KEY):
        assert key.stat().st_mode & 0o077 == 0, f"{key} is readable by others"


def test_a_damaged_server_certificate_is_made_again_by_the_same_ca(tmp_path):
    made = tlsfront.ensure_ca(tmp_path)
    ca_before = made.ca_cert.read_bytes()
    made.cert.write_text("garbage")
    again = tlsfront.ensure_ca(tmp_path)
    assert again.ca_cert.read_bytes() == ca_before
    cert = x509.load_pem_x509_certificate(again.cert.read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_before))


def test_server_certificate_names_the_gateway_and_s3(files):
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(san.get_values_for_type(x509.DNSName))
    assert WANTED_DNS <= dns
    assert ipaddress.ip_address(config.GATEWAY) in san.get_values_for_type(x509.IPAddress)
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=360) < life < dt.timedelta(days=370)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_ecr_registry_gets_a_certificate_of_the_same_ca_for_its_host_only(tmp_path):
    made = tlsfront.ensure_ca(tmp_path)
    cert_path, key_path = tlsfront.ensure_registry_cert(tmp_path, config.ECR_REGISTRY)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(made.ca_cert.read_bytes()))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [f"123456789012.dkr.ecr.{REGION}.amazonaws.com"]
    assert key_path.stat().st_mode & 0o077 == 0
    before = cert_path.read_bytes()
    assert tlsfront.ensure_registry_cert(tmp_path, config.ECR_REGISTRY) == (cert_path, key_path)
    assert cert_path.read_bytes() == before, "a sound certificate is kept"


def test_no_registry_certificate_without_the_lab_ca(tmp_path):
    with pytest.raises(tlsfront.LabError, match="no lab CA"):
        tlsfront.ensure_registry_cert(tmp_path, config.ECR_REGISTRY)


def pgbackrest_host_ok(cert: x509.Certificate, host: str) -> bool:
    """pgBackRest 2.45's tlsClientHostVerify: the host it connected to, as a string, against each dNSName SAN
    (a leading "*." matches exactly one label); IP SANs are never looked at."""
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    for name in san.get_values_for_type(x509.DNSName):
        if name.startswith("*."):
            label, _, rest = host.partition(".")
            if label and "." not in label and rest == name[2:]:
                return True
        elif name.lower() == host.lower():
            return True
    return False


def test_gateway_ip_passes_a_dns_name_check(files):
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert pgbackrest_host_ok(cert, config.GATEWAY)
    assert pgbackrest_host_ok(cert, f"pg-backups.s3.{REGION}.amazonaws.com")
    assert not pgbackrest_host_ok(cert, "10.213.0.2")


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")
def test_openssl_verifies_the_gateway_as_a_host_name(files):
    """OpenSSL's own X509_check_host (what `openssl s_client -verify_hostname` uses) with 10.213.0.1 as a host
    name: it matches dNSName SANs only, like pgBackRest."""
    def verify(host: str) -> subprocess.CompletedProcess:
        return subprocess.run(["openssl", "verify", "-CAfile", str(files.ca_cert), "-verify_hostname", host,
                               str(files.cert)], capture_output=True, text=True)

    assert verify(config.GATEWAY).returncode == 0
    assert verify(f"pg-backups.s3.{REGION}.amazonaws.com").returncode == 0
    assert verify("10.213.0.2").returncode != 0


# --- the pipe to moto -----------------------------------------------------------------------------------------


def test_boto3_s3_through_the_front(front, moto_port, files):
    f = front(moto_port)
    client = s3(f.port, str(files.ca_cert))
    client.create_bucket(Bucket="pg-backups", CreateBucketConfiguration={"LocationConstraint": REGION})
    body = bytes(range(256)) * 4096  # 1 MiB, every byte value
    client.put_object(Bucket="pg-backups", Key="archive/15-1/000000010000000000000001", Body=body)
    got = client.get_object(Bucket="pg-backups", Key="archive/15-1/000000010000000000000001")["Body"].read()
    assert got == body
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="pg-backups")["Contents"]]
    assert keys == ["archive/15-1/000000010000000000000001"]
    # ...and moto holds it: the same object read past the front.
    direct = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{moto_port}", region_name=REGION,
                          aws_access_key_id=config.ACCESS_KEY, aws_secret_access_key=config.SECRET_KEY)
    assert direct.get_object(Bucket="pg-backups", Key="archive/15-1/000000010000000000000001")["Body"].read() == body


def test_a_client_that_does_not_trust_the_lab_ca_fails(front, moto_port):
    f = front(moto_port)
    with pytest.raises(botocore.exceptions.SSLError):
        s3(f.port, True).list_buckets()
    assert wait_for(lambda: f.active == 0)


def test_bytes_pass_unchanged_both_ways(front, files):
    request = (b"PUT /pg-backups/x HTTP/1.1\r\nHost: pg-backups.s3.us-west-2.amazonaws.com\r\n"
               b"Authorization: AWS4-HMAC-SHA256 Credential=ASIA/20260101/us-west-2/s3/aws4_request, "
               b"SignedHeaders=host, Signature=abc\r\nContent-Length: 262144\r\n\r\n") + bytes(range(256)) * 1024
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n\x00\xffz"
    up = Upstream(lambda got: response if len(got) >= len(request) else None)
    try:
        f = front(up.port)
        with tls_client(f.port, files) as client:
            client.sendall(request)
            got = b""
            while chunk := client.recv(65536):
                got += chunk
        assert got == response  # and then EOF: the front closed the client side when the upstream closed
        assert up.closed.wait(5)
        assert up.received == [request]
        assert wait_for(lambda: f.active == 0)
    finally:
        up.close()


class HalfClosingClient:
    """A TLS client that can do what Python's SSLSocket cannot: send close_notify (the end of its direction)
    and then go on reading. It drives OpenSSL through memory BIOs over a plain socket."""

    def __init__(self, port: int, files: tlsfront.TlsFiles) -> None:
        self.raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        ctx = ssl.create_default_context(cafile=str(files.ca_cert))
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname="127.0.0.1")
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
        self._flush()

    def _flush(self) -> None:
        if data := self.outgoing.read():
            self.raw.sendall(data)

    def _fill(self) -> None:
        data = self.raw.recv(65536)
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()

    def send(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    def close_notify(self) -> None:
        with contextlib.suppress(ssl.SSLWantReadError):
            self.tls.unwrap()
        self._flush()

    def read_all(self) -> tuple[bytes, bool]:
        """Everything until the server ends its direction, and whether it did so with close_notify."""
        got = b""
        while True:
            try:
                chunk = self.tls.read(65536)
                if not chunk:
                    return got, True
                got += chunk
            except ssl.SSLWantReadError:
                if self.incoming.eof:
                    return got, False
                self._fill()
            except ssl.SSLZeroReturnError:
                return got, True

    def close(self) -> None:
        self.raw.close()


def test_a_client_half_close_still_gets_the_whole_reply(front, files):
    """close_notify from the client ends its direction only: the upstream sees EOF, and its reply, sent only
    after that EOF, still reaches the client, followed by the front's own close_notify."""
    reply = b"HTTP/1.0 200 OK\r\n\r\n" + b"r" * 200_000

    up = Upstream(lambda got: None)
    up.reply_at_eof = lambda got: reply if got == b"PUT /x HTTP/1.0\r\n\r\n" else b"wrong request"
    try:
        f = front(up.port)
        client = HalfClosingClient(f.port, files)
        try:
            client.send(b"PUT /x HTTP/1.0\r\n\r\n")
            client.close_notify()
            got, clean = client.read_all()
        finally:
            client.close()
        assert got == reply
        assert clean, "the front ended the connection without close_notify"
        assert up.eof_seen == [True]
        assert wait_for(lambda: f.active == 0)
    finally:
        up.close()


def test_a_client_that_goes_away_closes_the_upstream_connection(front, files):
    up = Upstream(lambda got: None)  # never answers: waits for the front to close
    try:
        f = front(up.port)
        client = tls_client(f.port, files)
        request = b"GET / HTTP/1.1\r\nHost: s3.us-west-2.amazonaws.com\r\n\r\n"
        client.sendall(request)
        # Wait for the bytes to arrive before leaving: a client closing with unread data (TLS 1.3 session
        # tickets) resets the connection, and a reset may discard what the front had not read yet.
        assert wait_for(lambda: up.so_far == request)
        assert f.active == 1
        client.close()
        assert up.closed.wait(10), "the upstream connection stayed open after the client left"
        assert up.eof_seen == [True]  # closed by the front (FIN), not left to time out
        assert up.received == [request]
        assert wait_for(lambda: f.active == 0)
    finally:
        up.close()


def test_an_unreachable_upstream_closes_the_client_connection(front, files):
    f = front(free_port())  # nothing listens there
    with tls_client(f.port, files) as client:
        client.sendall(b"GET / HTTP/1.1\r\n\r\n")
        try:
            assert client.recv(1024) == b""
        except ConnectionResetError:
            pass
    assert wait_for(lambda: f.active == 0)


def test_stop_ends_open_connections(files):
    up = Upstream(lambda got: None)
    f = tlsfront.TlsFront("127.0.0.1", 0, up.port, files, quiet=True)
    f.start()
    try:
        client = tls_client(f.port, files)
        client.sendall(b"x")
        assert wait_for(lambda: up.so_far == b"x") and f.active == 1
        f.stop()
        assert up.closed.wait(10)
        assert f.active == 0
        client.close()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", f.port), timeout=2).close()
    finally:
        f.stop()
        up.close()


# --- the service process --------------------------------------------------------------------------------------


def test_serve_runs_until_sigterm(moto_port, tmp_path, service_process):
    port = free_port()
    proc = service_process(
        f"from labkit import tlsfront; tlsfront.serve('127.0.0.1', {port}, {moto_port}, {str(tmp_path)!r})")
    try:
        tlsfront.wait_tls("127.0.0.1", port, tmp_path / tlsfront.CA_CERT, seconds=30,
                          alive=lambda: proc.poll() is None)
        assert s3(port, str(tmp_path / tlsfront.CA_CERT)).list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert out.rstrip().endswith("tls-front: stopped")


def test_a_taken_port_is_a_clear_error(files):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(tlsfront.LabError, match=f"cannot listen on 127.0.0.1:{port}"):
            tlsfront.TlsFront("127.0.0.1", port, 1, files, quiet=True).start()
