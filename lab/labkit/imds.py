"""The lab's EC2 instance metadata service (IMDSv2), backed by the lab's moto.

On EC2 a process gets its instance's IAM role credentials from 169.254.169.254:80 (pgBackRest hard-codes that
address; botocore defaults to it). In the lab every node will DNAT 169.254.169.254:80 to this one service on the
host side of the lab network (docs/design/backups.md, section 4), so the service sees each request's source IP
(the node's address; a container's after the node's MASQUERADE) and finds the instance that has that private IP
in moto. Its answers follow EC2's:

- ``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds`` (1..21600, else 400) returns a session
  token bound to the instance; a PUT carrying ``X-Forwarded-For`` is refused with 403, as EC2 does, so a reverse
  proxy on the node cannot obtain a token for a remote caller.
- The token reply leaves this host with the IP TTL set to the instance's ``HttpPutResponseHopLimit``. The kernel
  then does what EC2's network does: a process on the node receives it with hop limit 1, a container behind the
  node's docker0 (one forwarding hop further) only with 2 or more. After that reply the connection is closed
  (``Connection: close``): the TTL is read from the socket whenever a segment is (re)transmitted, so restoring it
  on a kept-alive connection would let a retransmitted token reply pass the hop limit. Every other reply goes out
  on a connection whose TTL was never changed.
- A GET with an invalid or expired token, or another instance's token, is 401; without a token it is 401 when the
  instance's ``HttpTokens`` is ``required`` and answered (IMDSv1) when ``optional``.
- ``HttpEndpoint=disabled`` answers 403 ("the request isn't allowed or IMDS is turned off", EC2's documented
  status) rather than refusing the connection: the one service serves every node, and a refused or hanging
  connection would look like a broken lab rather than a configured instance.
- Credentials come from moto STS ``AssumeRole`` on the role of the instance's instance profile, cached per instance
  and renewed when less than 15 minutes remain (pgBackRest renews at 5, botocore at 10-15).

Lookups are cached for ``LOOKUP_TTL`` seconds: a burst of requests costs one DescribeInstances, and an instance
replaced by another with the same IP is seen within that time (its old tokens then stop working, as they are
bound to the old instance id).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any
from urllib.parse import urlsplit

from . import aws, config, service, state
from .net import free_port, wait_http
from .sh import log

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_TOKEN_TTL = 21600
# How long a source IP -> instance answer is reused (a burst of requests must not hammer moto; a replaced
# instance must be seen soon).
LOOKUP_TTL = 3.0
# Renew cached role credentials when fewer than this many seconds remain.
RENEW_BEFORE = 15 * 60
# An idle keep-alive connection is closed after this many seconds, so its handler thread ends.
IDLE_TIMEOUT = 60
SERVICE = "imds"  # labkit.service: imds.pid and imds.log in the lab state dir

_STAMP = "%Y-%m-%dT%H:%M:%SZ"  # EC2's timestamp format; pgBackRest parses Expiration at fixed offsets


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime(_STAMP)


def _ec2_json(data: dict[str, Any]) -> str:
    """JSON laid out as IMDS lays it out (two-space indent, ``"Key" : value``): clients parse it as JSON, and
    one that reads it the way EC2 writes it must not trip over the lab."""
    return json.dumps(data, indent=2, separators=(",", " : "))


@dataclass(frozen=True)
class Instance:
    """What the metadata service needs to know about one moto instance."""

    id: str
    private_ip: str
    availability_zone: str
    image_id: str
    instance_type: str
    account_id: str
    architecture: str
    launch_time: dt.datetime
    http_tokens: str  # "optional" | "required"
    hop_limit: int
    endpoint_enabled: bool
    profile_arn: str | None = None
    profile_id: str | None = None  # the AIPA... id from IAM (DescribeInstances' Id is moto's association id)
    role_name: str | None = None
    role_arn: str | None = None

    @property
    def region(self) -> str:
        return self.availability_zone[:-1] if self.availability_zone else config.REGION


@dataclass
class Reply:
    status: int
    body: str = ""
    content_type: str = "text/plain"
    # The IP TTL to send this reply with (the token reply's hop limit); None leaves the socket's default.
    ttl: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    """One request as served: what the log line says, plus the IP TTL the socket had when the reply was written
    (read back with getsockopt, so it is what the kernel used, not what the code meant to set)."""

    source: str
    method: str
    path: str
    status: int
    ttl: int
    instance_id: str | None = None


@dataclass
class _Credentials:
    role_arn: str
    access_key_id: str
    secret_access_key: str
    token: str
    expiration: dt.datetime
    last_updated: dt.datetime


class ImdsServer(ThreadingHTTPServer):
    """IMDSv2 for every lab instance, identifying the caller by its source IP.

    ``source_map`` turns the peer address into the private IP to look up; it is the identity in the lab and
    exists for tests, whose requests all come from 127.0.0.1. ``observe`` is called with a Record for every
    request served (after the reply is written). ``clock`` is the wall clock (seconds since the epoch), for
    token expiry, credential renewal and the lookup cache.
    """

    address_family = socket.AF_INET  # IP_TTL is an IPv4 option; the lab network is IPv4
    block_on_close = False  # keep-alive clients (boto3's pool) must not hold up shutdown

    def __init__(self, host: str, port: int, endpoint_url: str, *,
                 source_map: Callable[[str], str] | None = None,
                 observe: Callable[[Record], None] | None = None,
                 clock: Callable[[], float] = time.time,
                 lookup_ttl: float = LOOKUP_TTL,
                 quiet: bool = False) -> None:
        # Clients are made here, in one thread: making boto3 clients is not thread-safe, using them is.
        self.ec2 = aws.client("ec2", endpoint_url=endpoint_url)
        self.iam = aws.client("iam", endpoint_url=endpoint_url)
        self.sts = aws.client("sts", endpoint_url=endpoint_url)
        self.source_map = source_map or (lambda ip: ip)
        self.observe = observe
        self.clock = clock
        self.lookup_ttl = lookup_ttl
        self.quiet = quiet
        self.lookups = 0  # DescribeInstances calls made (the cache's effect is visible in tests)
        self._secret = secrets.token_bytes(32)
        self._lookup_lock = threading.Lock()
        self._instances: dict[str, tuple[float, Instance | None]] = {}
        self._creds_lock = threading.Lock()
        self._creds: dict[str, _Credentials] = {}
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the bound address's FQDN: a reverse DNS lookup of the lab gateway
        # that can stall start-up for seconds and is never used.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    # --- moto ---------------------------------------------------------------------------------------------

    def instance_for(self, ip: str) -> Instance | None:
        """The pending or running instance with private IP ``ip`` (None: none), cached for lookup_ttl seconds."""
        with self._lookup_lock:
            now = self.clock()
            hit = self._instances.get(ip)
            if hit and now < hit[0]:
                return hit[1]
            found = self._describe(ip)
            self._instances[ip] = (now + self.lookup_ttl, found)
            for key in [k for k, (exp, _) in self._instances.items() if exp <= now]:
                del self._instances[key]
            return found

    def _describe(self, ip: str) -> Instance | None:
        self.lookups += 1
        filters = [{"Name": "private-ip-address", "Values": [ip]},
                   {"Name": "instance-state-name", "Values": ["pending", "running"]}]
        found = [(res, inst) for res in self.ec2.describe_instances(Filters=filters)["Reservations"]
                 for inst in res["Instances"]]
        if not found:
            return None
        # Two live instances never share an IP in one VPC; should moto ever show two, the newest is the caller.
        res, inst = max(found, key=lambda pair: pair[1]["LaunchTime"])
        opts = inst.get("MetadataOptions") or {}
        profile_arn = (inst.get("IamInstanceProfile") or {}).get("Arn")
        profile_id = role_name = role_arn = None
        if profile_arn:
            try:
                profile = self.iam.get_instance_profile(
                    InstanceProfileName=profile_arn.rsplit("/", 1)[-1])["InstanceProfile"]
            except self.iam.exceptions.NoSuchEntityException:
                profile = None  # the profile was deleted: EC2 then has no credentials for the instance either
            if profile:
                profile_id = profile["InstanceProfileId"]
                if profile.get("Roles"):
                    role_name, role_arn = profile["Roles"][0]["RoleName"], profile["Roles"][0]["Arn"]
        return Instance(
            id=inst["InstanceId"], private_ip=inst.get("PrivateIpAddress", ip),
            availability_zone=(inst.get("Placement") or {}).get("AvailabilityZone", ""),
            image_id=inst.get("ImageId", ""), instance_type=inst.get("InstanceType", ""),
            account_id=res.get("OwnerId", ""), architecture=inst.get("Architecture") or "x86_64",
            launch_time=inst["LaunchTime"], http_tokens=opts.get("HttpTokens") or "optional",
            hop_limit=int(opts.get("HttpPutResponseHopLimit") or 1),
            endpoint_enabled=(opts.get("HttpEndpoint") or "enabled") == "enabled",
            profile_arn=profile_arn, profile_id=profile_id, role_name=role_name, role_arn=role_arn)

    def credentials_for(self, inst: Instance) -> _Credentials:
        """The instance's role credentials: cached, renewed from STS when fewer than 15 minutes remain or when
        the instance's role changed."""
        assert inst.role_arn
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        with self._creds_lock:
            cached = self._creds.get(inst.id)
            if (cached and cached.role_arn == inst.role_arn
                    and (cached.expiration - now).total_seconds() >= RENEW_BEFORE):
                return cached
            got = self.sts.assume_role(RoleArn=inst.role_arn, RoleSessionName=inst.id)["Credentials"]
            creds = _Credentials(role_arn=inst.role_arn, access_key_id=got["AccessKeyId"],
                                 secret_access_key=got["SecretAccessKey"], token=got["SessionToken"],
                                 expiration=got["Expiration"], last_updated=now)
            self._creds[inst.id] = creds
            return creds

    # --- tokens -------------------------------------------------------------------------------------------

    def issue_token(self, instance_id: str, ttl: int) -> str:
        """An opaque token naming the instance and its expiry, signed with this server's secret: nothing to
        store, and it dies with the server, as EC2's tokens die with the instance."""
        payload = f"{instance_id}:{int(self.clock()) + ttl}".encode()
        mac = hmac.new(self._secret, payload, hashlib.sha256).digest()
        return base64.b64encode(payload + mac).decode()

    def token_valid(self, token: str, instance_id: str) -> bool:
        try:
            raw = base64.b64decode(token.encode(), validate=True)
        except (ValueError, UnicodeEncodeError):
            return False
        payload, mac = raw[:-32], raw[-32:]
        if len(raw) <= 32 or not hmac.compare_digest(mac, hmac.new(self._secret, payload, hashlib.sha256).digest()):
            return False
        owner, _, expires = payload.decode().rpartition(":")
        return owner == instance_id and int(expires) > self.clock()

    # --- answers ------------------------------------------------------------------------------------------

    def answer(self, method: str, path: str, headers: Any, source: str) -> tuple[Reply, Instance | None]:
        """The reply to one request from ``source`` (already mapped), and the instance it came from."""
        if method == "PUT" and headers.get("X-Forwarded-For") is not None:
            return Reply(403, "Forbidden: a token request must not carry X-Forwarded-For\n"), None
        if method not in ("GET", "HEAD", "PUT"):
            return Reply(405, "Method Not Allowed\n", headers={"Allow": "GET, HEAD, PUT"}), None
        try:
            inst = self.instance_for(source)
        except Exception as exc:  # moto unreachable or failing: say so instead of dropping the connection
            return Reply(500, f"Internal Server Error: looking up {source} in moto failed: {exc}\n"), None
        if inst is None:
            return Reply(404, f"Not Found: no pending or running lab instance has private IP {source}\n"), None
        if not inst.endpoint_enabled:
            return Reply(403, f"Forbidden: instance metadata is disabled for {inst.id} (HttpEndpoint)\n"), inst
        if method == "PUT":
            return self._put(path, headers, inst), inst
        token = headers.get(TOKEN_HEADER)
        if token is not None and not self.token_valid(token, inst.id):
            return Reply(401, "Unauthorized: the token is not valid (expired, or not this instance's)\n"), inst
        if token is None and inst.http_tokens == "required":
            # The body names no instance: without a token nothing about the instance is given away.
            return Reply(401, f"Unauthorized: this instance requires IMDSv2 (PUT {TOKEN_PATH} first)\n"), inst
        try:
            return self._get(path, inst), inst
        except Exception as exc:
            return Reply(500, f"Internal Server Error: {exc}\n"), inst

    def _put(self, path: str, headers: Any, inst: Instance) -> Reply:
        if path != TOKEN_PATH:
            return Reply(404, "Not Found\n")
        value = headers.get(TTL_HEADER)
        if value is None:
            return Reply(400, f"Bad Request: the {TTL_HEADER} header is required\n")
        value = value.strip()
        if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_TOKEN_TTL:
            return Reply(400, f"Bad Request: {TTL_HEADER} must be an integer from 1 to {MAX_TOKEN_TTL}\n")
        return Reply(200, self.issue_token(inst.id, int(value)), ttl=inst.hop_limit,
                     headers={TTL_HEADER: value})

    def _tree(self, inst: Instance) -> dict[str, Any]:
        """The metadata tree of one instance. A dict is a directory (its GET lists the entries, subdirectories
        with a trailing "/"), a str is a text leaf, a callable a leaf computed on demand (returns body and
        content type) so that e.g. reading instance-id never calls STS."""
        ip = inst.private_ip
        hostname = f"ip-{ip.replace('.', '-')}.{inst.region}.compute.internal"
        meta: dict[str, Any] = {
            "ami-id": inst.image_id, "hostname": hostname, "instance-id": inst.id,
            "instance-type": inst.instance_type, "local-hostname": hostname, "local-ipv4": ip,
            "placement": {"availability-zone": inst.availability_zone, "region": inst.region},
        }
        if inst.profile_arn and inst.profile_id:
            def info() -> tuple[str, str]:
                cached = self._creds.get(inst.id)
                updated = cached.last_updated if cached else dt.datetime.fromtimestamp(self.clock(), dt.UTC)
                return _ec2_json({"Code": "Success", "LastUpdated": _stamp(updated),
                                  "InstanceProfileArn": inst.profile_arn,
                                  "InstanceProfileId": inst.profile_id}), "application/json"

            roles: dict[str, Any] = {}
            if inst.role_name:
                def creds() -> tuple[str, str]:
                    c = self.credentials_for(inst)
                    return _ec2_json({
                        "Code": "Success", "LastUpdated": _stamp(c.last_updated), "Type": "AWS-HMAC",
                        "AccessKeyId": c.access_key_id, "SecretAccessKey": c.secret_access_key,
                        "Token": c.token, "Expiration": _stamp(c.expiration)}), "application/json"

                roles[inst.role_name] = creds
            meta["iam"] = {"info": info, "security-credentials": roles}

        def document() -> tuple[str, str]:
            return _ec2_json({
                "accountId": inst.account_id, "architecture": inst.architecture,
                "availabilityZone": inst.availability_zone, "billingProducts": None, "devpayProductCodes": None,
                "marketplaceProductCodes": None, "imageId": inst.image_id, "instanceId": inst.id,
                "instanceType": inst.instance_type, "kernelId": None, "pendingTime": _stamp(inst.launch_time),
                "privateIp": ip, "ramdiskId": None, "region": inst.region, "version": "2017-09-30"}), \
                "application/json"

        return {"latest": {"meta-data": meta, "dynamic": {"instance-identity": {"document": document}}}}

    def _get(self, path: str, inst: Instance) -> Reply:
        node: Any = self._tree(inst)
        for part in [p for p in path.split("/") if p]:
            if not isinstance(node, dict) or part not in node:
                return Reply(404, "Not Found\n")
            node = node[part]
        if isinstance(node, dict):
            if not node:  # e.g. security-credentials of a profile without a role: EC2 answers 404
                return Reply(404, "Not Found\n")
            return Reply(200, "\n".join(f"{k}/" if isinstance(v, dict) else k for k, v in sorted(node.items())))
        if callable(node):
            body, ctype = node()
            return Reply(200, body, ctype)
        return Reply(200, str(node))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive with Content-Length, as EC2 (pgBackRest reuses connections)
    server_version = "EC2ws"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    server: ImdsServer

    def do_GET(self) -> None:  # http.server's naming
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        # A request body (none is expected) must be read, or it would be parsed as the next request.
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "Bad Content-Length")
            return
        if length > 0:
            self.rfile.read(length)
        peer = self.client_address[0]
        path = urlsplit(self.path).path
        reply, inst = self.server.answer(method, path, self.headers, self.server.source_map(peer))
        sock: socket.socket = self.connection
        if reply.ttl is not None:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, reply.ttl)
        sent_ttl = sock.getsockopt(socket.IPPROTO_IP, socket.IP_TTL)
        body = reply.body.encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        if reply.ttl is not None:
            # No further reply may go out on this socket with its changed TTL, nor with the TTL restored
            # while this one could still be retransmitted (module docstring): end the connection.
            self.send_header("Connection", "close")
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)
        record = Record(peer, method, self.path, reply.status, sent_ttl, inst.id if inst else None)
        if not self.server.quiet:
            extra = f" ttl={sent_ttl}" if reply.ttl is not None else ""
            print(f"{peer} {method} {self.path} {reply.status} {record.instance_id or '-'}{extra}", flush=True)
        if self.server.observe is not None:
            self.server.observe(record)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _serve logs one line per request itself

    def log_message(self, format: str, *args: Any) -> None:
        # Only malformed requests and timeouts reach this (send_error): say so on stdout with the rest.
        if not self.server.quiet:
            print(f"{self.client_address[0]} - {format % args}", flush=True)


def serve(host: str, port: int, endpoint_url: str) -> None:
    """Serve IMDS on host:port for the moto at endpoint_url until SIGTERM or SIGINT."""
    server = ImdsServer(host, port, endpoint_url)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, name="imds", daemon=True)
    thread.start()
    print(f"imds: serving http://{host}:{port}/ for moto at {endpoint_url}", flush=True)
    try:
        stop.wait()
    finally:
        server.shutdown()  # from this thread: shutdown() waits for serve_forever, which runs in the other
        server.server_close()
        thread.join(5)
    print("imds: stopped", flush=True)


# --- the lab's background service (started by `labctl up`) -----------------------------------------------

def start_imds(host: str = config.GATEWAY, port: int | None = None) -> str:
    """Start ``labctl.py imds`` in the background (pid file and log in the lab state dir) unless it runs, and
    record its URL in the state file. ``host`` must be an address of this machine: the lab gateway exists once
    the lab network does."""
    st = state.load()
    if service.alive(service.pid_file(SERVICE)) and st.get("imds_url"):
        return st["imds_url"]
    port = port or free_port()
    proc = service.start(SERVICE, [sys.executable, str(config.LAB_DIR / "labctl.py"), "imds", "--host", host,
                                   "--port", str(port)])
    url = f"http://{host}:{port}"
    wait_http(url + "/", seconds=15, alive=lambda: proc.poll() is None)  # 404 for the host itself: it answers
    state.update(imds_url=url, imds_port=port)
    log(f"instance metadata service answers at {url}")
    return url


def stop_imds() -> None:
    service.stop(SERVICE)
    st = state.load()
    if "imds_url" in st:
        state.save({k: v for k, v in st.items() if k not in ("imds_url", "imds_port")})

