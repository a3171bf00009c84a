# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure helpers for a CloudFront distribution that reads a private S3 bucket through Origin Access Control.

Private to this collection (leading underscore): no compatibility promise to other collections.
Nothing here calls AWS: the functions build, compare and merge the dicts that the CloudFront API takes and
returns (``OriginAccessControlConfig``, ``DistributionConfig``), so every one is unit-testable as is.
Used by the modules ``cloudfront_origin_access_control`` and ``cloudfront_oac_distribution``.
This code runs wherever the module runs: keep it importable on every Python that ansible-core 2.19 supports.
"""

from __future__ import annotations

import copy
import re
import typing as t

# The AWS managed cache policy "Managed-CachingOptimized": no cookies, headers or query strings in the cache
# key, gzip and brotli accepted, TTLs 1 s / 1 day / 1 year. Right for fingerprinted assets.
CACHING_OPTIMIZED_POLICY_ID = "658327ea-f89d-4fab-a63d-7e88639e58f6"

# The only methods a static asset origin needs; also what CloudFront caches.
READ_METHODS = ["GET", "HEAD"]

# Fields of a cache behaviour that CloudFront rejects next to a cache policy (the pre-2020 "legacy cache
# settings"). Some endpoints (moto) still report them with a policy attached; they are dropped on update.
LEGACY_CACHE_FIELDS = ("ForwardedValues", "MinTTL", "DefaultTTL", "MaxTTL")

OAC_NAME_MAX = 64
ORIGIN_PATH_MAX = 255
CALLER_REFERENCE_MAX = 128  # CloudFront does not document a limit; keep it short enough to read in the console

# S3 bucket names: 3-63 characters, lower case letters, digits, dots and hyphens, starting and ending with
# a letter or digit. Buckets with dots cannot use the virtual-hosted REST endpoint over TLS.
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")

# The security policies (minimum TLS version and ciphers towards viewers) that accept nothing older than
# TLS 1.2; CloudFront also knows SSLv3, TLSv1, TLSv1_2016 and TLSv1.1_2016, which this collection does not offer.
MINIMUM_PROTOCOL_VERSIONS = ("TLSv1.2_2018", "TLSv1.2_2019", "TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025")
DEFAULT_MINIMUM_PROTOCOL_VERSION = "TLSv1.2_2021"
# What CloudFront fixes for its own *.cloudfront.net certificate, whatever is asked.
DEFAULT_CERTIFICATE_PROTOCOL_VERSION = "TLSv1"

# CloudFront only uses ACM certificates from us-east-1 (N. Virginia), whatever the origin's region.
ACM_CERTIFICATE_REGION = "us-east-1"
_ACM_ARN_RE = re.compile(r"arn:(aws[a-z-]*):acm:([a-z0-9-]+):(\d{12}):certificate/([A-Za-z0-9-]+)")
DNS_NAME_MAX = 253
# One DNS label: 1-63 letters, digits and hyphens, neither starting nor ending with a hyphen.
_DNS_LABEL_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


# --------------------------------------------------------------------------------------------------------------
# Origin Access Control
# --------------------------------------------------------------------------------------------------------------


def oac_name_error(name: str) -> str | None:
    """Why ``name`` cannot name an Origin Access Control, or None when it can."""
    if not name:
        return "name must not be empty"
    if len(name) > OAC_NAME_MAX:
        return f"name {name!r} is {len(name)} characters long; CloudFront allows at most {OAC_NAME_MAX}"
    return None


def oac_config(
    name: str,
    description: str | None,
    origin_type: str,
    signing_behavior: str,
    signing_protocol: str,
) -> dict[str, str]:
    """The ``OriginAccessControlConfig`` the user asked for; a None description means "not set" (see oac_desired)."""
    return {
        "Name": name,
        "Description": description,
        "SigningProtocol": signing_protocol,
        "SigningBehavior": signing_behavior,
        "OriginAccessControlOriginType": origin_type,
    }


def oac_desired(current: dict[str, t.Any] | None, wanted: dict[str, t.Any]) -> dict[str, str]:
    """Merge what the user asked for (None = not set) into the current config.

    A description the user did not set keeps its current value; on creation it is empty.
    """
    desired = dict(current or {})
    for key, value in wanted.items():
        if value is not None:
            desired[key] = value
        elif key not in desired:
            desired[key] = ""
    return {key: desired.get(key, "") for key in wanted}


def oac_changes(current: dict[str, t.Any], desired: dict[str, t.Any]) -> list[str]:
    """Keys of ``desired`` whose values differ in ``current`` (a missing key counts as empty), sorted."""
    return sorted(key for key, value in desired.items() if (current.get(key) or "") != (value or ""))


# --------------------------------------------------------------------------------------------------------------
# Distribution: inputs
# --------------------------------------------------------------------------------------------------------------


def bucket_name_error(bucket: str) -> str | None:
    """Why ``bucket`` cannot be the origin bucket, or None when it can."""
    if not _BUCKET_RE.fullmatch(bucket or "") or ".." in bucket:
        return (
            f"origin_bucket {bucket!r} is not an S3 bucket name: 3 to 63 lower-case letters, digits, dots and "
            "hyphens, starting and ending with a letter or digit"
        )
    if "." in bucket:
        return (
            f"origin_bucket {bucket!r} contains dots: CloudFront reaches the bucket over HTTPS at "
            "<bucket>.s3.<region>.amazonaws.com, whose certificate does not cover dotted names. "
            "Use a bucket name without dots"
        )
    return None


def s3_rest_domain(bucket: str, region: str) -> str:
    """The regional REST endpoint of ``bucket``: the origin domain CloudFront signs requests to with OAC.

    Not the website endpoint (``s3-website``), which is a custom origin and cannot use OAC.

    >>> s3_rest_domain("assets", "us-west-2")
    'assets.s3.us-west-2.amazonaws.com'
    """
    if not _REGION_RE.fullmatch(region or ""):
        raise ValueError(f"{region!r} is not an AWS region name (for example us-west-2)")
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{bucket}.s3.{region}.{suffix}"


def origin_id_for(bucket: str) -> str:
    """The id of the distribution's single origin, stable across runs (the default cache behaviour targets it)."""
    return f"s3-{bucket}"


def normalize_origin_path(path: str | None) -> str:
    """CloudFront's spelling of an origin path: empty, or ``/a/b`` with no trailing slash.

    >>> normalize_origin_path("production/")
    '/production'
    """
    path = (path or "").strip()
    parts = [part for part in path.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise ValueError(f"origin_path {path!r} must not contain '.' or '..' segments")
    normalized = "/" + "/".join(parts) if parts else ""
    if len(normalized) > ORIGIN_PATH_MAX:
        raise ValueError(f"origin_path {path!r} is longer than {ORIGIN_PATH_MAX} characters")
    return normalized


def normalize_aliases(names: list[str]) -> list[str]:
    """Alternate domain names as sent to CloudFront: lower case (DNS names are case-insensitive), each once,
    in the order given."""
    normalized: list[str] = []
    for name in names:
        name = (name or "").lower()
        if name not in normalized:
            normalized.append(name)
    return normalized


def alias_name_error(name: str) -> str | None:
    """Why ``name`` cannot be an alternate domain name (CNAME) of the distribution, or None when it can.

    A fully qualified DNS name without the trailing dot, at least two labels; ``*.`` may stand for the first
    label (a wildcard alias, which the certificate must cover).
    """
    labels = (name or "").lower().split(".")
    if labels[0] == "*":
        labels = labels[1:]
    if len(name or "") > DNS_NAME_MAX or len(labels) < 2 or not all(_DNS_LABEL_RE.fullmatch(label) for label in labels):
        return (
            f"aliases: {name!r} is not a DNS name; use a fully qualified name such as cdn.example.com (labels "
            "of letters, digits and hyphens separated by dots, no trailing dot), optionally starting with '*.'"
        )
    return None


def acm_certificate_arn_error(arn: str) -> str | None:
    """Why ``arn`` cannot be the distribution's certificate, or None when it can (empty = the default one)."""
    if not arn:
        return None
    match = _ACM_ARN_RE.fullmatch(arn)
    if not match:
        return (
            f"acm_certificate_arn {arn!r} is not the ARN of an ACM certificate "
            f"(arn:aws:acm:{ACM_CERTIFICATE_REGION}:<account>:certificate/<id>)"
        )
    if match.group(2) != ACM_CERTIFICATE_REGION:
        return (
            f"acm_certificate_arn {arn!r} is a certificate in {match.group(2)}: CloudFront only uses ACM "
            f"certificates from {ACM_CERTIFICATE_REGION} (N. Virginia); request or import it there"
        )
    return None


def aliases_error(aliases: list[str] | None, acm_certificate_arn: str | None) -> str | None:
    """Why ``aliases`` cannot be served with ``acm_certificate_arn``, or None when they can."""
    if not aliases:
        return None  # None = not managed; [] = no aliases, which every certificate serves
    for name in aliases:
        error = alias_name_error(name)
        if error:
            return error
    if not acm_certificate_arn:
        return (
            "aliases needs acm_certificate_arn: CloudFront serves alternate domain names only with a certificate "
            "that covers them, never with its default *.cloudfront.net certificate"
        )
    return None


# --------------------------------------------------------------------------------------------------------------
# Distribution: the settings this module manages
# --------------------------------------------------------------------------------------------------------------


def desired_settings(
    *,
    bucket: str,
    region: str,
    origin_path: str | None,
    origin_access_control_id: str,
    comment: str | None,
    price_class: str,
    http_version: str,
    enabled: bool,
    ipv6_enabled: bool,
    cache_policy_id: str,
    viewer_protocol_policy: str,
    compress: bool,
    aliases: list[str] | None = None,
    acm_certificate_arn: str | None = None,
    minimum_protocol_version: str = DEFAULT_MINIMUM_PROTOCOL_VERSION,
) -> dict[str, t.Any]:
    """Every field of the ``DistributionConfig`` the module owns, in the API's shape.

    ``Comment``, ``Aliases`` and ``ViewerCertificate`` None mean "leave it as it is" (on creation: an empty
    comment, no aliases, CloudFront's default certificate); every other field has a value.
    """
    origin_id = origin_id_for(bucket)
    return {
        "Comment": comment,
        "Aliases": aliases_config(aliases),
        "ViewerCertificate": viewer_certificate_config(acm_certificate_arn, minimum_protocol_version),
        "PriceClass": price_class,
        "HttpVersion": http_version,
        "Enabled": enabled,
        "IsIPV6Enabled": ipv6_enabled,
        "Origin": {
            "Id": origin_id,
            "DomainName": s3_rest_domain(bucket, region),
            "OriginPath": normalize_origin_path(origin_path),
            # OAC signs the requests; an OAI must be empty beside it (CloudFront rejects both at once).
            "S3OriginConfig": {"OriginAccessIdentity": ""},
            "OriginAccessControlId": origin_access_control_id,
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": origin_id,
            "ViewerProtocolPolicy": viewer_protocol_policy,
            "Compress": compress,
            "CachePolicyId": cache_policy_id,
            "AllowedMethods": _methods(READ_METHODS),
        },
    }


def aliases_config(aliases: list[str] | None) -> dict[str, t.Any] | None:
    """The ``Aliases`` of the distribution: exactly ``aliases``; None when they are not managed."""
    if aliases is None:
        return None
    names = normalize_aliases(aliases)
    if not names:
        return {"Quantity": 0}
    return {"Quantity": len(names), "Items": names}


def viewer_certificate_config(
    acm_certificate_arn: str | None, minimum_protocol_version: str
) -> dict[str, t.Any] | None:
    """The ``ViewerCertificate``: the ACM certificate over SNI with ``minimum_protocol_version``; CloudFront's
    default certificate when the ARN is empty (CloudFront fixes its security policy to TLSv1); None when the
    certificate is not managed. ``CertificateSource`` is left out: it is read-only, CloudFront derives it.
    """
    if acm_certificate_arn is None:
        return None
    if not acm_certificate_arn:
        return {"CloudFrontDefaultCertificate": True, "MinimumProtocolVersion": DEFAULT_CERTIFICATE_PROTOCOL_VERSION}
    return {
        "ACMCertificateArn": acm_certificate_arn,
        "SSLSupportMethod": "sni-only",
        "MinimumProtocolVersion": minimum_protocol_version,
        "CloudFrontDefaultCertificate": False,
    }


def _methods(items: list[str]) -> dict[str, t.Any]:
    return {
        "Quantity": len(items),
        "Items": list(items),
        "CachedMethods": {"Quantity": len(items), "Items": list(items)},
    }


def build_distribution_config(caller_reference: str, settings: dict[str, t.Any]) -> dict[str, t.Any]:
    """A complete ``DistributionConfig`` for CreateDistribution; fields not managed take CloudFront's defaults
    (no aliases and, without a ``ViewerCertificate`` in the request, CloudFront's default certificate)."""
    config = apply_settings(
        {
            "CallerReference": caller_reference,
            "Aliases": {"Quantity": 0},
            "DefaultRootObject": "",
            "Origins": {"Quantity": 0, "Items": []},
            "DefaultCacheBehavior": {},
            "Comment": "",
        },
        settings,
    )
    return config


def apply_settings(existing: dict[str, t.Any], settings: dict[str, t.Any]) -> dict[str, t.Any]:
    """``existing`` (a DistributionConfig as read) with the managed fields set; everything else kept.

    The origin list becomes exactly the one S3 origin: an existing origin with the same id keeps its
    unmanaged fields (timeouts, custom headers, Origin Shield); other origins are dropped. ``Aliases`` and
    ``ViewerCertificate``, when managed, are replaced as a whole (an IAM certificate or the read-only
    ``CertificateSource`` of the old certificate do not survive).
    """
    config = copy.deepcopy(existing)
    for key in ("PriceClass", "HttpVersion", "Enabled", "IsIPV6Enabled", "Comment"):
        if settings.get(key) is not None:
            config[key] = settings[key]
    config.setdefault("Comment", "")
    for key in ("Aliases", "ViewerCertificate"):
        if settings.get(key) is not None:
            config[key] = copy.deepcopy(settings[key])

    wanted_origin = settings["Origin"]
    old_origins = (config.get("Origins") or {}).get("Items") or []
    origin = next((copy.deepcopy(o) for o in old_origins if o.get("Id") == wanted_origin["Id"]), {})
    origin.pop("CustomOriginConfig", None)  # an S3 REST origin with OAC is never a custom origin
    origin.pop("VpcOriginConfig", None)
    origin.update(copy.deepcopy(wanted_origin))
    config["Origins"] = {"Quantity": 1, "Items": [origin]}

    behavior = copy.deepcopy(config.get("DefaultCacheBehavior") or {})
    behavior.update(copy.deepcopy(settings["DefaultCacheBehavior"]))
    if behavior.get("CachePolicyId"):
        for key in LEGACY_CACHE_FIELDS:
            behavior.pop(key, None)
    config["DefaultCacheBehavior"] = behavior
    return config


def managed_view(config: dict[str, t.Any] | None) -> dict[str, t.Any]:
    """The managed fields of a DistributionConfig, flat and snake_case: for diffs and comparison.

    A field the endpoint does not report reads as empty (an origin without OAC reports an empty
    ``OriginAccessControlId``), so "missing" and "empty" compare equal. Aliases are sorted and in lower
    case: their order and case mean nothing to CloudFront or DNS.
    """
    if not config:
        return {}
    origins = (config.get("Origins") or {}).get("Items") or []
    behavior = config.get("DefaultCacheBehavior") or {}
    allowed = behavior.get("AllowedMethods") or {}
    cached = allowed.get("CachedMethods") or {}
    return {
        "comment": config.get("Comment") or "",
        "price_class": config.get("PriceClass") or "",
        "http_version": config.get("HttpVersion") or "",
        "enabled": _flag(config.get("Enabled")),
        "ipv6_enabled": _flag(config.get("IsIPV6Enabled")),
        "aliases": sorted(normalize_aliases((config.get("Aliases") or {}).get("Items") or [])),
        "viewer_certificate": _certificate_view(config.get("ViewerCertificate") or {}),
        "origins": [
            {
                "id": origin.get("Id") or "",
                "domain_name": origin.get("DomainName") or "",
                "origin_path": origin.get("OriginPath") or "",
                "origin_access_control_id": origin.get("OriginAccessControlId") or "",
                "origin_access_identity": (origin.get("S3OriginConfig") or {}).get("OriginAccessIdentity") or "",
                "s3_origin": "S3OriginConfig" in origin or "CustomOriginConfig" not in origin,
            }
            for origin in origins
        ],
        "default_cache_behavior": {
            "target_origin_id": behavior.get("TargetOriginId") or "",
            "viewer_protocol_policy": behavior.get("ViewerProtocolPolicy") or "",
            "compress": _flag(behavior.get("Compress")),
            "cache_policy_id": behavior.get("CachePolicyId") or "",
            "allowed_methods": sorted(allowed.get("Items") or []),
            "cached_methods": sorted(cached.get("Items") or []),
        },
    }


def _flag(value: t.Any) -> bool:
    """A boolean as an endpoint reports it: some (moto) hand back the XML's text, "true" or "false"."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _certificate_view(certificate: dict[str, t.Any]) -> dict[str, t.Any]:
    """The managed part of a ``ViewerCertificate``.

    With CloudFront's default certificate the ARN and the SSL support method mean nothing (AWS reports
    ``vip``, moto ``sni-only``, and neither may be sent): both read as empty. Without the
    ``CloudFrontDefaultCertificate`` flag, the default certificate is in use when no other one is named
    (CloudFront's rule; also what a creation request without ``ViewerCertificate`` gets).
    """
    if "CloudFrontDefaultCertificate" in certificate:
        default = _flag(certificate["CloudFrontDefaultCertificate"])
    else:
        default = not (certificate.get("ACMCertificateArn") or certificate.get("IAMCertificateId"))
    return {
        "acm_certificate_arn": "" if default else certificate.get("ACMCertificateArn") or "",
        "minimum_protocol_version": certificate.get("MinimumProtocolVersion") or "",
        "ssl_support_method": "" if default else certificate.get("SSLSupportMethod") or "",
        "default_certificate": default,
    }


def config_changes(existing: dict[str, t.Any], settings: dict[str, t.Any]) -> list[str]:
    """Names of the managed fields whose value in ``existing`` differs from ``settings``; empty = up to date.

    A setting left None (``Comment``, ``Aliases``, ``ViewerCertificate`` not given) never counts as a change.
    """
    before = managed_view(existing)
    after = managed_view(apply_settings(existing, settings))
    fields = ("comment", "price_class", "http_version", "enabled", "ipv6_enabled", "aliases", "viewer_certificate")
    changes = [key for key in fields if before[key] != after[key]]
    if before["origins"] != after["origins"]:
        changes.append("origins")
    for key, value in after["default_cache_behavior"].items():
        if before["default_cache_behavior"].get(key) != value:
            changes.append(f"default_cache_behavior.{key}")
    return changes


def caller_reference_error(caller_reference: str) -> str | None:
    """Why ``caller_reference`` cannot identify a distribution, or None when it can."""
    if not caller_reference or not caller_reference.strip():
        return "caller_reference must not be empty: it is what finds the distribution again on the next run"
    if len(caller_reference) > CALLER_REFERENCE_MAX:
        return f"caller_reference is {len(caller_reference)} characters long; use at most {CALLER_REFERENCE_MAX}"
    return None


def order_candidates(summaries: list[dict[str, t.Any]], origin_domain: str) -> list[dict[str, t.Any]]:
    """Distribution summaries, those with an origin at ``origin_domain`` first (the likely match), else as listed.

    The caller reference is only in each distribution's config (one GetDistributionConfig call per
    distribution), so the search looks where the distribution most likely is before reading the rest.
    """

    def has_origin(summary: dict[str, t.Any]) -> bool:
        items = (summary.get("Origins") or {}).get("Items") or []
        return any(item.get("DomainName") == origin_domain for item in items)

    return sorted(summaries, key=lambda summary: 0 if has_origin(summary) else 1)
