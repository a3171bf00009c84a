# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The formats of the deployment's settings and the rules between them (the action railsdeploy.aws.settings_check).

``problems(settings)`` takes the railsdeploy_* settings, their templates rendered, and returns what is wrong as
``(setting, message)`` pairs, in a fixed order: the required settings that are unset (only those, when any is), else
every format or rule that fails. Types and choices are meta/argument_specs.yml's job, checked before this runs: a
value of the wrong type may still reach this code (a number for a name), so every check reads values the way the
role's templates did (``int`` of anything, text of anything) and never raises on them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.railsdeploy.aws.plugins.filter.image_reference import image_reference
from ansible_collections.railsdeploy.aws.plugins.test.postgres_identifier import postgres_identifier

# The settings a deployment cannot do without (meta/argument_specs.yml marks them required; here an empty value
# counts as unset too).
REQUIRED = (
    "railsdeploy_project", "railsdeploy_environment", "railsdeploy_region", "railsdeploy_domain",
    "railsdeploy_hosted_zone_id", "railsdeploy_vpc_id", "railsdeploy_subnets", "railsdeploy_ami_id",
    "railsdeploy_key_name", "railsdeploy_admin_cidrs", "railsdeploy_assets_bucket", "railsdeploy_backup_bucket",
)

# A DNS name as the settings take it: lowercase labels, no trailing dot (railsdeploy_domain, railsdeploy_cdn_domain).
DOMAIN = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_OCTET = r"(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])"
CIDR = re.compile(rf"^({_OCTET}\.){{3}}{_OCTET}/(3[0-2]|[12]?[0-9])$")
HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
IMAGE = re.compile(r"^[a-z0-9][a-zA-Z0-9._:/@-]*$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
KEY_PREFIX = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
SUBNET = re.compile(r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$")
PULL_TIERS = ("rails", "worker", "postgres", "witness")
SCHEDULE_FIELDS = ("minute", "hour", "weekday")


def problems(s: Mapping) -> list[tuple[str, str]]:
    """What is wrong with the settings ``s`` (railsdeploy_* name => rendered value), as (setting, message) pairs."""
    unset = [(name, "is not set; it is required") for name in REQUIRED if _unset(s.get(name))]
    return unset or _Checks(s).run()


def _unset(value) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and len(value) == 0)


def _int(value) -> int:
    """Jinja's ``int``: a number, a numeric text, else 0."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return 0


def _list(value) -> list:
    """A list as the argument specs take it: a list, or a text of comma-separated items."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",")]
    return list(value) if isinstance(value, (list, tuple)) else []


def _bool(value) -> bool:
    return boolean(value, strict=False)


def _matches(pattern: re.Pattern | str, value) -> bool:
    return re.match(pattern, str(value)) is not None


def _between(value, low: int, high: int) -> bool:
    return low <= _int(value) <= high


def cidr_problems(cidrs: Sequence) -> tuple[list[dict], list[dict]]:
    """The admin networks in CIDR form whose host bits are set (203.0.113.7/24, meant as 203.0.113.0/24 or /32),
    each with its network; and those wider than /16 (0.0.0.0/1, a /2 typed for a /24), each with the addresses it
    opens SSH to."""
    host_bits, wide = [], []
    for cidr in (str(c) for c in cidrs):
        if not CIDR.match(cidr):
            continue
        address_text, prefix_text = cidr.split("/")
        prefix = int(prefix_text)
        address = 0
        for octet in address_text.split("."):
            address = address * 256 + int(octet)
        size = 2 ** (32 - prefix)
        network = address - address % size
        if address % size:
            octets = [network >> 24, network >> 16 & 255, network >> 8 & 255, network & 255]
            host_bits.append({"cidr": cidr, "network": ".".join(map(str, octets)) + f"/{prefix}"})
        if prefix < 16:
            wide.append({"cidr": cidr, "addresses": size})
    return host_bits, wide


def pull_images_problems(pull_images) -> list[str]:
    """What is wrong with railsdeploy_pull_images (tier => image references)."""
    if not isinstance(pull_images, Mapping):
        return ["not a mapping of tier => images"]
    out = []
    for tier, refs in pull_images.items():
        if tier not in PULL_TIERS:
            out.append(f"'{tier}' is no tier ({', '.join(PULL_TIERS)})")
        elif isinstance(refs, str) or not isinstance(refs, Sequence):
            out.append(f"{tier}: not a list")
        else:
            for ref in refs:
                got = image_reference(str(ref), errors="return")
                if "error" in got:
                    out.append(f"{tier}: {got['error']}")
    return out


class _Checks:
    """The checks in the order they are reported; each adds (setting, message) when its rule fails."""

    def __init__(self, settings: Mapping):
        self.s = settings
        self.found: list[tuple[str, str]] = []

    def __getitem__(self, name: str):
        return self.s.get("railsdeploy_" + name)

    def fail_unless(self, ok: bool, name: str, message: str) -> None:
        if not ok:
            self.found.append(("railsdeploy_" + name, message))

    def run(self) -> list[tuple[str, str]]:
        self.names()
        self.network()
        self.nodes()
        self.postgres()
        self.load_balancer()
        self.buckets_and_backups()
        return self.found

    def names(self) -> None:
        s, check = self, self.fail_unless
        check(_matches(r"^[a-z][a-z0-9-]{1,30}$", s["project"]), "project",
              f"'{s['project']}' is not a project name (lowercase letters, digits, dashes; 2-31 characters)")
        lb_name = str(s["lb_name"])
        check(_matches(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$", lb_name), "lb_name",
              f"'{lb_name}' ({len(lb_name)} characters) cannot name the load balancer and its target group (at most 32"
              " letters, digits and dashes, not starting or ending with a dash). Set railsdeploy_lb_name to a name of"
              " this environment's own; an environment provisioned before this check runs behind"
              f" '{lb_name[:32]}': set that name to keep its load balancer.")
        check(_matches(r"^[a-z][a-z0-9-]{1,30}$", s["environment"]), "environment",
              f"'{s['environment']}' is not an environment name (lowercase letters, digits, dashes)")
        check(_matches(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", s["region"]), "region",
              f"'{s['region']}' is not an AWS region (like us-west-2)")
        check(_matches(DOMAIN, s["domain"]), "domain",
              f"'{s['domain']}' is not a domain name (like example.com, no trailing dot, lowercase)")
        check(_matches(r"^[A-Z0-9]{8,32}$", s["hosted_zone_id"]), "hosted_zone_id",
              f"'{s['hosted_zone_id']}' is not a Route 53 hosted zone id (like Z0123456789ABCDEFGHIJ, without"
              " /hostedzone/)")

    def network(self) -> None:
        s, check = self, self.fail_unless
        region = str(s["region"])
        check(_matches(r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$", s["vpc_id"]), "vpc_id",
              f"'{s['vpc_id']}' is not a VPC id (vpc- and 8 or 17 hex digits)")
        subnets = s["subnets"] if isinstance(s["subnets"], Mapping) else {}
        check(len(subnets) > 0, "subnets", "needs at least one availability zone => subnet id")
        foreign = [str(zone) for zone in subnets if not _matches(f"^{region}[a-z]$", zone)]
        check(not foreign, "subnets",
              f"availability zone(s) {', '.join(foreign)} are not zones of region {region} (like {region}a)")
        not_subnets = [str(v) for v in subnets.values() if not _matches(SUBNET, v)]
        check(not not_subnets, "subnets", f"{', '.join(not_subnets)} not subnet ids")
        check(_matches(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$", s["ami_id"]), "ami_id",
              f"'{s['ami_id']}' is not an AMI id (ami- and 8 or 17 hex digits)")
        check(0 < len(str(s["key_name"])) <= 255, "key_name",
              "must name the EC2 key pair the nodes' default user accepts")
        cidrs = _list(s["admin_cidrs"])
        not_cidrs = [str(c) for c in cidrs if not _matches(CIDR, c)]
        check(len(cidrs) > 0 and not not_cidrs, "admin_cidrs",
              f"needs at least one network in CIDR form (like 203.0.113.0/24); not CIDRs: {', '.join(not_cidrs)}")
        host_bits, wide = cidr_problems(cidrs)
        check(not host_bits, "admin_cidrs", "; ".join(
            f"{c['cidr']} has host bits set (its network is {c['network']}; one address is /32)" for c in host_bits))
        check(_bool(s["allow_ssh_from_anywhere"]) or not wide, "admin_cidrs",
              f"{', '.join(c['cidr'] for c in wide)} open SSH to {sum(c['addresses'] for c in wide)} addresses"
              " (wider than /16, up to the whole internet); list your admins' networks, or set"
              " railsdeploy_allow_ssh_from_anywhere: true")

    def node_names(self, tier: str) -> list[str]:
        """The names provision.yml gives the tier's nodes (rails, worker): prefix and number."""
        start = _int(self[f"{tier}_name_start"])
        return [f"{self[f'{tier}_name_prefix']}{n}" for n in range(start, start + max(_int(self[f"{tier}_count"]), 0))]

    def nodes(self) -> None:
        s, check = self, self.fail_unless
        for tier, what in (("rails", "rails nodes"), ("worker", "worker nodes")):
            check(_between(s[f"{tier}_count"], 0, 100), f"{tier}_count",
                  f"{s[f'{tier}_count']} is not a number of {what} (0-100)")
            prefix = s[f"{tier}_name_prefix"]
            check(_matches(r"^[a-z][a-z0-9-]{0,40}$", prefix), f"{tier}_name_prefix",
                  f"'{prefix}' cannot start a host name (lowercase letter, then letters, digits, dashes)")
            check(_int(s[f"{tier}_name_start"]) >= 0, f"{tier}_name_start",
                  f"{s[f'{tier}_name_start']} must be 0 or more")
        for name, like in (("rails_instance_type", "t3.small"), ("worker_instance_type", "t3.small"),
                           ("postgres_instance_type", "t3.medium")):
            check(_matches(INSTANCE_TYPE, s[name]), name, f"'{s[name]}' is not an EC2 instance type (like {like})")
        rails, workers = self.node_names("rails"), self.node_names("worker")
        both = sorted(set(rails) & set(workers))
        check(not both, "worker_name_prefix",
              f"'{s['worker_name_prefix']}' names worker nodes as rails nodes are named ({', '.join(both)}): give"
              " them a prefix of their own (like worker)")
        rails = rails + workers
        first, standby, witness = s["postgres_node"], s["postgres_standby_node"], s["witness_node"]
        check(_matches(HOST_NAME, first) and first not in rails, "postgres_node",
              f"'{first}' must be a host name that no rails or worker node has")
        count = _int(s["postgres_standby_count"])
        check(count in (0, 1), "postgres_standby_count",
              f"{s['postgres_standby_count']} is not 0 (a single PostgreSQL node) or 1 (a standby in another"
              " availability zone)")
        subnets = s["subnets"] if isinstance(s["subnets"], Mapping) else {}
        check(count != 1 or len(subnets) >= 3, "postgres_standby_count",
              f"1 needs etcd's three members in three availability zones, and railsdeploy_subnets lists"
              f" {len(subnets)} ({', '.join(sorted(map(str, subnets)))}): add a subnet in a third zone, or set"
              " railsdeploy_postgres_standby_count: 0")
        check(count != 1 or (_matches(HOST_NAME, standby) and standby not in [*rails, first, witness]),
              "postgres_standby_node",
              f"'{standby}' must be a host name of its own: not the first PostgreSQL node ({first}), the witness"
              f" ({witness}) or a rails or worker node")
        check(count != 1 or (_matches(HOST_NAME, witness) and witness not in [*rails, first]), "witness_node",
              f"'{witness}' must be a host name of its own: not a PostgreSQL node ({first}) or a rails or worker node")
        check(_matches(INSTANCE_TYPE, s["witness_instance_type"]), "witness_instance_type",
              f"'{s['witness_instance_type']}' is not an EC2 instance type (like t3.micro)")

    def postgres(self) -> None:
        s, check = self, self.fail_unless
        synchronous = _bool(s["postgres_synchronous"])
        check(not _bool(s["postgres_synchronous_strict"])
              or (synchronous and _int(s["postgres_standby_count"]) == 1), "postgres_synchronous_strict",
              "true would block every commit: strict synchronous mode waits for a standby to confirm each one, and "
              + ("railsdeploy_postgres_synchronous is false" if not synchronous
                 else "railsdeploy_postgres_standby_count is 0 (no standby)")
              + ". Set it false, or run a standby with railsdeploy_postgres_synchronous: true")
        check(_between(s["postgres_volume_size_gib"], 1, 16384), "postgres_volume_size_gib",
              f"{s['postgres_volume_size_gib']} GiB is not an EBS volume size (1-16384)")
        mount = s["postgres_mount_path"]
        check(_matches(r"^/[A-Za-z0-9._/-]+$", mount) and mount not in ("/", "/mnt", "/var", "/home"),
              "postgres_mount_path", f"'{mount}' must be an absolute path of its own (like /mnt/ebs-a)")
        check(_matches(IMAGE, s["postgres_image"]), "postgres_image",
              f"'{s['postgres_image']}' is not an image reference (like postgres:15 or"
              " registry.example.com/postgres:15)")
        check(s["etcd_image"] == "" or _matches(IMAGE, s["etcd_image"]), "etcd_image",
              f"'{s['etcd_image']}' is not an image reference (like"
              " registry.example.com/railsdeploy-etcd:3.4-0123456789ab)")
        refused = pull_images_problems(s["pull_images"])
        check(not refused, "pull_images",
              f"must map rails, worker, postgres and witness to lists of image references; refused:"
              f" {'; '.join(refused)}")
        user = s["postgres_user"]
        check(postgres_identifier(user) and user != "postgres", "postgres_user",
              f"'{user}' is not a plain database user name (lowercase letters, digits, underscores; at most 63) of"
              " its own: postgres is the cluster's superuser, which the app never connects as (pick e.g. rails)")
        check(postgres_identifier(s["postgres_db"]), "postgres_db",
              f"'{s['postgres_db']}' is not a plain database name (lowercase letters, digits, underscores; at most 63)")
        check(_int(s["postgres_snapshot_keep"]) >= 1, "postgres_snapshot_keep",
              f"{s['postgres_snapshot_keep']} pre-deploy snapshots to keep: at least 1 (the one made before this"
              " deploy)")
        check(_between(s["postgres_snapshot_max_age_days"], 0, 3650), "postgres_snapshot_max_age_days",
              f"{s['postgres_snapshot_max_age_days']} days of snapshots is outside 0-3650")
        check(_between(s["root_volume_size_gib"], 8, 16384), "root_volume_size_gib",
              f"{s['root_volume_size_gib']} GiB is not a root volume size (8-16384)")

    def load_balancer(self) -> None:
        s, check = self, self.fail_unless
        region, domain = s["region"], s["domain"]
        check(_between(s["node_port"], 1, 65535), "node_port", f"{s['node_port']} is not a TCP port")
        check(_matches(r"^/[^ ]*$", s["lb_health_check_path"]), "lb_health_check_path",
              f"'{s['lb_health_check_path']}' must be a path starting with /")
        check(_between(s["lb_health_check_interval"], 5, 300), "lb_health_check_interval",
              f"{s['lb_health_check_interval']} is outside 5-300 seconds")
        for name in ("lb_healthy_threshold", "lb_unhealthy_threshold"):
            check(_between(s[name], 2, 10), name, f"{s[name]} is outside 2-10")
        check(_between(s["lb_deregistration_delay"], 0, 3600), "lb_deregistration_delay",
              f"{s['lb_deregistration_delay']} is outside 0-3600 seconds")
        arn = str(s["lb_certificate_arn"])
        check(arn == "" or _matches(r"^arn:aws[a-z-]*:acm:", arn), "lb_certificate_arn",
              f"'{arn}' is not an ACM certificate ARN")
        check(len(arn) > 0 or _bool(s["allow_plain_http"]), "lb_certificate_arn",
              "is empty, so the load balancer would serve the site over plain HTTP only (logins and cookies readable"
              f" on the way). Set it to an ACM certificate of {domain} in {region} (HTTPS; HTTP then redirects), or"
              " set railsdeploy_allow_plain_http: true where that is meant (a lab)")
        check(len(arn) == 0 or _matches(f"^arn:aws[a-z-]*:acm:{region}:[0-9]{{12}}:certificate/[A-Za-z0-9-]+$", arn),
              "lb_certificate_arn",
              f"'{arn}' is not the ARN of an ACM certificate in {region} (like"
              f" arn:aws:acm:{region}:123456789012:certificate/<id>; a load balancer uses a certificate of its own"
              " region)")
        cdn, cdn_arn = str(s["cdn_domain"]), str(s["cdn_certificate_arn"])
        check(cdn == "" or (_matches(DOMAIN, cdn) and cdn.endswith(f".{domain}") and cdn != f"www.{domain}"),
              "cdn_domain",
              f"'{cdn}' is not a name of its own below {domain} for the assets (like assets.{domain}: provision.yml"
              " makes its DNS record in the zone of railsdeploy_domain)")
        cdn_arn_ok = (len(cdn_arn) > 0) == (len(cdn) > 0) and (
            len(cdn_arn) == 0 or _matches(r"^arn:aws:acm:us-east-1:[0-9]{12}:certificate/[A-Za-z0-9-]+$", cdn_arn))
        if not cdn:
            cdn_problem = ("is set, but railsdeploy_cdn_domain is not: set both (the assets then come from that name"
                           " over TLS 1.2 or later) or neither")
        elif not cdn_arn:
            cdn_problem = (f"is empty, but railsdeploy_cdn_domain is set ({cdn}): CloudFront serves a name of your own"
                           " only with an ACM certificate for it in us-east-1; request one and set its ARN here")
        else:
            cdn_problem = (f"'{cdn_arn}' is not the ARN of an ACM certificate in us-east-1, the only region whose"
                           " certificates CloudFront uses (like arn:aws:acm:us-east-1:123456789012:certificate/<id>)")
        check(cdn_arn_ok, "cdn_certificate_arn", cdn_problem)

    def buckets_and_backups(self) -> None:
        s, check = self, self.fail_unless
        for name in ("assets_bucket", "backup_bucket"):
            bucket = str(s[name])
            check(_matches(BUCKET, bucket) and ".." not in bucket, name,
                  f"'{bucket}' is not an S3 bucket name (3-63 lowercase letters, digits, dots, dashes)")
        check(s["backup_bucket"] != s["assets_bucket"], "backup_bucket",
              f"is the asset bucket ('{s['assets_bucket']}'): backups need a bucket of their own, which nothing but"
              f" the PostgreSQL node can read (like {s['name']}-backups)")
        check(_matches(KEY_PREFIX, s["postgres_backup_prefix"]), "postgres_backup_prefix",
              f"'{s['postgres_backup_prefix']}' must be a key prefix like pgbackrest (no leading or trailing slash)")
        check(_between(s["postgres_backup_retention_days"], 1, 3650), "postgres_backup_retention_days",
              f"{s['postgres_backup_retention_days']} days of backups is outside 1-3650")
        check(_between(s["postgres_archive_timeout"], 10, 3600), "postgres_archive_timeout",
              f"{s['postgres_archive_timeout']} seconds is outside 10-3600: it bounds the commits a lost volume loses"
              " (60 is the default)")
        check(_between(s["postgres_backup_min_full"], 1, 100), "postgres_backup_min_full",
              f"{s['postgres_backup_min_full']} full backups to keep at least is outside 1-100")
        schedule = s["postgres_backup_schedule"]
        check(isinstance(schedule, Mapping) and set(schedule) <= set(SCHEDULE_FIELDS)
              and all(_matches(r"^[0-9*,/-]+$", v) for v in schedule.values()), "postgres_backup_schedule",
              f"{schedule} is not a schedule: cron fields minute, hour, weekday only (digits, *, commas, - and /),"
              ' like {minute: "17", hour: "3", weekday: "*"}')
        check(_matches(KEY_PREFIX, s["assets_prefix"]), "assets_prefix",
              f"'{s['assets_prefix']}' must be a key prefix like production/assets (no leading or trailing slash)")
