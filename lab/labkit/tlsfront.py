"""A TLS front for the lab's moto: pgBackRest 2.45 speaks only HTTPS to S3 (docs/design/backups.md, section 0).

Two parts:

- ``ensure_ca(dir)``: a lab CA and a server certificate it signed, made once with ``cryptography`` and reused.
  The server certificate names the lab gateway both as an IP address SAN (for clients that check IPs, e.g.
  Python's ssl and curl) and as a **dNSName** SAN ``10.213.0.1``: pgBackRest compares the host it connects to
  (``repo1-storage-host``) only against dNSName SANs and the CN, as strings, never against IP SANs. It also names
  the real S3 endpoints (``s3.<region>.amazonaws.com``, ``*.s3.<region>.amazonaws.com`` and the global ones), so
  a client that keeps the production endpoint and only resolves it to the lab still verifies, and loopback
  (``127.0.0.1``, ``localhost``) for host-side clients of a front bound there (labctl, unit tests).
- ``TlsFront``: an asyncio TLS server that pipes every connection's decrypted bytes to moto's plain TCP port and
  back, unchanged. It is a byte pipe, not a proxy: the ``Host`` header and the SigV4 signature computed over it
  must reach moto exactly as pgBackRest sent them.

Half-closes: when the client stops sending (close_notify or TCP EOF), moto's side is half-closed (write EOF)
and the reply still flows back until moto closes; when moto closes, the front sends close_notify after the last
byte and ends the connection. Either side failing closes both. Every connection's sockets are closed when its
handler ends, and stopping the front cancels the handlers, so nothing is left open.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import os
import signal
import socket
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import config, service, state
from .net import free_port
from .sh import LabError, log

CA_CERT = "lab-ca.crt"
CA_KEY = "lab-ca.key"
SERVER_CERT = "s3-front.crt"
SERVER_KEY = "s3-front.key"
CA_DAYS = 3650
SERVER_DAYS = 365
# A certificate closer to its end than this is made again (the lab may stay up for days).
RENEW_DAYS = 7
CHUNK = 64 * 1024
CONNECT_TIMEOUT = 10.0
HANDSHAKE_TIMEOUT = 10.0
SERVICE = "tls-front"  # labkit.service: tls-front.pid and tls-front.log in the lab state dir


class TlsFiles(NamedTuple):
    ca_cert: Path
    cert: Path
    key: Path


def server_names() -> tuple[list[str], list[str]]:
    """The server certificate's dNSName and IPAddress SANs."""
    region = config.REGION
    dns = [config.GATEWAY, f"s3.{region}.amazonaws.com", f"*.s3.{region}.amazonaws.com",
           "s3.amazonaws.com", "*.s3.amazonaws.com", config.ECR_API, config.LOGS_API, config.MONITORING_API,
           "localhost"]
    return dns, [config.GATEWAY, "127.0.0.1"]


def _write(path: Path, data: bytes, private: bool = False) -> None:
    """Write atomically; keys are readable by their owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None
    return cert, key


def _fresh(cert: x509.Certificate) -> bool:
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=RENEW_DAYS)


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    return set(ext.get_values_for_type(x509.DNSName)), {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}


def _make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "railsdeploy lab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"railsdeploy lab CA ({os.uname().nodename})")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=True, crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _make_server_cert(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, dns: list[str], ips: list[str]
                      ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "railsdeploy lab"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, dns[0])]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=False, crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def ensure_ca(directory: Path) -> TlsFiles:
    """The lab CA and the front's server certificate under ``directory``, made when missing and reused after.

    Reused as long as they are intact and not about to expire, the server certificate names what server_names()
    lists, and the CA signed it: clients (the node images, pgBackRest's ``repo1-storage-ca-file``) hold a copy
    of the CA certificate, so it changes only when it must. EC P-256 keys (OpenSSL 3 and Python's ssl take them),
    SHA-256 signatures, the extensions strict X.509 verification wants (Python 3.13's VERIFY_X509_STRICT)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = TlsFiles(directory / CA_CERT, directory / SERVER_CERT, directory / SERVER_KEY)
    loaded = _load(files.ca_cert, directory / CA_KEY)
    if loaded is None or not _fresh(loaded[0]):
        loaded = _make_ca()
        _write(directory / CA_KEY, _key_pem(loaded[1]), private=True)
        _write(files.ca_cert, loaded[0].public_bytes(serialization.Encoding.PEM))
    _ensure_leaf(loaded, files.cert, files.key, *server_names())
    return files


def _ensure_leaf(ca_pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], cert_path: Path, key_path: Path,
                 dns: list[str], ips: list[str]) -> None:
    """A server certificate for exactly these names at cert_path/key_path, signed by the CA: kept while intact,
    fresh and issued by it, else made again."""
    ca, ca_key = ca_pair
    server = _load(cert_path, key_path)
    if server is not None:
        cert = server[0]
        try:
            cert.verify_directly_issued_by(ca)
            issued = True
        except (ValueError, TypeError, InvalidSignature):
            issued = False
        if issued and _fresh(cert) and _sans(cert) == (set(dns), set(ips)):
            return
    cert, key = _make_server_cert(ca, ca_key, dns, ips)
    _write(key_path, _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def ensure_registry_cert(directory: Path, host: str) -> tuple[Path, Path]:
    """(certificate, key) for a lab registry serving under ``host`` (the lab's ECR registry), signed by the lab CA
    of ensure_ca(directory), which must have run."""
    directory = Path(directory)
    ca = _load(directory / CA_CERT, directory / CA_KEY)
    if ca is None:
        raise LabError(f"no lab CA in {directory}: the TLS front makes it (labkit.tlsfront.ensure_ca)")
    cert, key = directory / f"{host}.crt", directory / f"{host}.key"
    _ensure_leaf(ca, cert, key, [host], [])
    return cert, key


def server_context(files: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_RENEGOTIATION  # a TLS 1.2 renegotiation would make a write wait for a read
    ctx.load_cert_chain(files.cert, files.key)
    return ctx


class _Tls:
    """One server-side TLS session over a plain asyncio stream, through memory BIOs.

    asyncio's own TLS transport cannot half-close: when the client sends close_notify it shuts the whole
    connection down, dropping a reply still on its way. Driving OpenSSL by hand lets the front treat
    close_notify as what TLS 1.3 says it is, the end of the client's direction only. Both directions of one
    connection run on the same event loop, and no SSL call spans an await, so the session is never used from two
    places at once."""

    def __init__(self, ctx: ssl.SSLContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.reader, self.writer = reader, writer

    def _flush(self) -> None:
        if data := self.outgoing.read():
            self.writer.write(data)

    async def _fill(self) -> None:
        self._flush()  # whatever OpenSSL wants to say first (handshake, session tickets)
        await self.writer.drain()
        raw = await self.reader.read(CHUNK)
        if raw:
            self.incoming.write(raw)
        else:
            self.incoming.write_eof()

    async def handshake(self) -> None:
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                if self.incoming.eof:
                    raise ConnectionError("the client closed the connection during the TLS handshake") from None
                await self._fill()
        self._flush()
        await self.writer.drain()

    async def read(self) -> bytes:
        """The next decrypted bytes; b"" once the client has finished sending (close_notify, or a TCP EOF
        without it: clients that close abruptly are common and their data is complete)."""
        while True:
            try:
                data = self.obj.read(CHUNK)
                self._flush()
                return data
            except ssl.SSLWantReadError:
                if self.incoming.eof:
                    return b""
                await self._fill()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    async def write(self, data: bytes) -> None:
        self.obj.write(data)
        self._flush()
        await self.writer.drain()  # back-pressure: never buffer more than the client takes

    async def close_write(self) -> None:
        """Send close_notify, then end the TCP direction: the client knows the reply is complete."""
        with contextlib.suppress(ssl.SSLError):
            self.obj.unwrap()
        self._flush()
        await self.writer.drain()
        if self.writer.can_write_eof():
            self.writer.write_eof()


class TlsFront:
    """The byte pipe. ``start()`` runs it on its own event loop in a thread and returns once it listens (port 0
    picks a free port: see ``port``); ``stop()`` stops accepting, ends every open connection and the thread."""

    def __init__(self, host: str, port: int, upstream_port: int, files: TlsFiles, *,
                 upstream_host: str = "127.0.0.1", quiet: bool = False) -> None:
        self.host, self.port = host, port
        self.upstream = (upstream_host, upstream_port)
        self.files = files
        self.quiet = quiet
        self._ctx = server_context(files)
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> int:
        """Connections being served now (each holds one client and at most one upstream socket)."""
        return len(self._tasks)

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="tls-front", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise LabError(f"TLS front cannot listen on {self.host}:{self.port}: {self._error}")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(15)

    def _log(self, msg: str) -> None:
        if not self.quiet:
            print(f"tls-front: {msg}", flush=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()  # stop accepting, then end the connections still open
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = cwriter.get_extra_info("peername")
        source = f"{peer[0]}:{peer[1]}" if peer else "?"
        uwriter: asyncio.StreamWriter | None = None
        counts = [0, 0]
        try:
            tls = _Tls(self._ctx, creader, cwriter)
            try:
                await asyncio.wait_for(tls.handshake(), HANDSHAKE_TIMEOUT)
            except (OSError, ssl.SSLError, TimeoutError) as exc:
                self._log(f"{source}: TLS handshake failed: {exc}")
                return
            try:
                ureader, uwriter = await asyncio.wait_for(asyncio.open_connection(*self.upstream), CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                self._log(f"{source}: upstream {self.upstream[0]}:{self.upstream[1]} unreachable: {exc}")
                return
            await self._pipe(tls, ureader, uwriter, counts)
            self._log(f"{source}: {counts[0]} bytes up, {counts[1]} bytes down")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a peer reset or a TLS error ends this connection only
            self._log(f"{source}: ended after {counts[0]} bytes up, {counts[1]} down: {exc!r}")
        finally:
            for writer in (cwriter, uwriter):
                if writer is not None:
                    writer.close()
            for writer in (cwriter, uwriter):
                if writer is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(writer.wait_closed(), 5)
            self._tasks.discard(task)

    async def _pipe(self, tls: _Tls, ureader: asyncio.StreamReader, uwriter: asyncio.StreamWriter,
                    counts: list[int]) -> None:
        async def up() -> None:  # client -> moto
            while data := await tls.read():
                uwriter.write(data)
                counts[0] += len(data)
                await uwriter.drain()
            uwriter.write_eof()  # the client has finished sending: so has the front, towards moto

        async def down() -> None:  # moto -> client
            while data := await ureader.read(CHUNK):
                await tls.write(data)
                counts[1] += len(data)
            await tls.close_write()

        ups, downs = asyncio.create_task(up()), asyncio.create_task(down())
        try:
            done, _ = await asyncio.wait({ups, downs}, return_when=asyncio.FIRST_COMPLETED)
            if downs not in done and ups.exception() is None:
                # The client has finished sending and moto saw EOF: its reply may still be coming.
                await downs
            else:
                for finished in done:
                    finished.result()  # raises what ended that direction, if it failed
        finally:
            for t in (ups, downs):
                t.cancel()
            await asyncio.gather(ups, downs, return_exceptions=True)


def serve(host: str, port: int, upstream_port: int, state_dir: Path) -> None:
    """Serve the TLS front on host:port for moto on 127.0.0.1:upstream_port until SIGTERM or SIGINT; the CA and
    certificate live under state_dir."""
    files = ensure_ca(Path(state_dir))
    front = TlsFront(host, port, upstream_port, files)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    front.start()
    print(f"tls-front: serving https://{host}:{front.port}/ for 127.0.0.1:{upstream_port} "
          f"(CA {files.ca_cert})", flush=True)
    try:
        stop.wait()
    finally:
        front.stop()
    print("tls-front: stopped", flush=True)


def wait_tls(host: str, port: int, ca_file: Path, seconds: float = 15, alive=None) -> None:
    """Return once host:port completes a TLS handshake verified against ca_file; LabError after ``seconds`` or
    as soon as ``alive()`` says the server has exited."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            ctx = ssl.create_default_context(cafile=str(ca_file))  # in the loop: the server may still write it
            with socket.create_connection((host, port), timeout=2) as sock, \
                    ctx.wrap_socket(sock, server_hostname=host):
                return
        except OSError as exc:
            if alive is not None and not alive():
                raise LabError(f"TLS front {host}:{port} did not answer: the server exited") from None
            if time.monotonic() > deadline:
                raise LabError(f"TLS front {host}:{port} did not answer within {seconds:.0f}s: {exc}") from None
            time.sleep(0.2)


# --- the lab's background service (started by `labctl up`) -----------------------------------------------

def start_tls_front(host: str = config.GATEWAY, port: int | None = None) -> int:
    """Start ``labctl.py tls-front`` in the background (pid file and log in the lab state dir) unless it runs,
    and record its port and the CA certificate's path in the state file."""
    st = state.load()
    if service.alive(service.pid_file(SERVICE)) and st.get("tls_front_port"):
        return st["tls_front_port"]
    files = ensure_ca(config.TLS_DIR)  # made here, so a failure shows in this process and not only in the log
    port = port or free_port()
    proc = service.start(SERVICE, [sys.executable, str(config.LAB_DIR / "labctl.py"), "tls-front", "--host", host,
                                   "--port", str(port)])
    wait_tls(host, port, files.ca_cert, alive=lambda: proc.poll() is None)
    state.update(tls_front_port=port, tls_front=f"{host}:{port}", lab_ca=str(files.ca_cert))
    log(f"TLS front for moto answers at https://{host}:{port} (CA {files.ca_cert})")
    return port


def stop_tls_front() -> None:
    service.stop(SERVICE)
    st = state.load()
    keys = ("tls_front_port", "tls_front", "lab_ca")
    if any(k in st for k in keys):
        state.save({k: v for k, v in st.items() if k not in keys})
