"""Run a CloudFront module in-process against botocore's Stubber and record the requests it sends.

The module runs unchanged: its own AnsibleAWSModule builds the real boto3 client (region, credentials,
retry wrapper); only ``boto3.session.Session.client`` is wrapped so that the client it returns carries a
Stubber with the canned answers queued by the test. Every request the module sends is recorded (operation
name and parameters, after botocore validated them against the CloudFront API model), so tests assert on
what would reach AWS. A call the test did not expect fails the module (Stubber has no answer for it), and
answers left unused fail the test.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from _aws_module import run_aws_module
from botocore.stub import Stubber

ACCOUNT = "123456789012"
NOW = datetime(2025, 1, 1, tzinfo=UTC)
_REAL_CLIENT = boto3.session.Session.client  # unpatched, whatever a test patched before


class CloudFrontStub:
    """Canned CloudFront answers, in the order the module is expected to ask, and the requests it made."""

    def __init__(self) -> None:
        self._queue: list[tuple[str, str, Any]] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.stubber: Stubber | None = None

    def reply(self, method: str, response: dict[str, Any] | None = None) -> CloudFrontStub:
        self._queue.append(("reply", method, response or {}))
        return self

    def error(self, method: str, code: str, message: str = "", status: int = 400) -> CloudFrontStub:
        self._queue.append(("error", method, (code, message or code, status)))
        return self

    def attach(self, client: Any) -> None:
        stubber = Stubber(client)
        for kind, method, payload in self._queue:
            if kind == "reply":
                stubber.add_response(method, payload)
            else:
                code, message, status = payload
                stubber.add_client_error(
                    method, service_error_code=code, service_message=message, http_status_code=status
                )
        client.meta.events.register("before-parameter-build.cloudfront", self._record)
        stubber.activate()
        self.stubber = stubber

    def _record(self, params: dict[str, Any], model: Any, **_kwargs: Any) -> None:
        self.requests.append((model.name, copy.deepcopy(params)))

    def operations(self) -> list[str]:
        return [name for name, _params in self.requests]

    def sent(self, operation: str) -> dict[str, Any]:
        """Parameters of the only request of ``operation``."""
        matching = [params for name, params in self.requests if name == operation]
        assert len(matching) == 1, f"expected one {operation} request, got {self.operations()}"
        return matching[0]


def run_module(
    main: Callable[[], None],
    args: dict[str, Any],
    stub: CloudFrontStub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    check_mode: bool = False,
    diff: bool = False,
) -> dict[str, Any]:
    """Run ``main`` with ``args`` (plus region and dummy credentials); return its JSON result."""

    def stubbed_client(self: boto3.session.Session, *a: Any, **kw: Any) -> Any:
        client = _REAL_CLIENT(self, *a, **kw)
        stub.attach(client)
        return client

    monkeypatch.setattr(boto3.session.Session, "client", stubbed_client)
    result = run_aws_module(main, args, monkeypatch, capsys, region="us-west-2", check_mode=check_mode, diff=diff)
    if stub.stubber is not None and not result.get("failed"):
        stub.stubber.assert_no_pending_responses()
    return result


def warning_messages(result: dict[str, Any]) -> list[str]:
    """The warnings of a module result (ansible-core 2.19 returns them as WarningSummary dicts)."""
    return [w["event"]["msg"] if isinstance(w, dict) else str(w) for w in result.get("warnings", [])]


# -- CloudFront answers shaped like AWS's -------------------------------------------------------------------------


def aws_reported_config(sent: dict[str, Any]) -> dict[str, Any]:
    """A DistributionConfig as AWS reports it after accepting ``sent``: every default it fills in added."""
    config = copy.deepcopy(sent)
    config.setdefault("Aliases", {"Quantity": 0})
    config.setdefault("DefaultRootObject", "")
    config.setdefault("OriginGroups", {"Quantity": 0})
    config.setdefault("CacheBehaviors", {"Quantity": 0})
    config.setdefault("CustomErrorResponses", {"Quantity": 0})
    config.setdefault("Logging", {"Enabled": False, "IncludeCookies": False, "Bucket": "", "Prefix": ""})
    config.setdefault(
        "ViewerCertificate",
        {"CloudFrontDefaultCertificate": True, "SSLSupportMethod": "vip", "MinimumProtocolVersion": "TLSv1"},
    )
    config.setdefault("Restrictions", {"GeoRestriction": {"RestrictionType": "none", "Quantity": 0}})
    config.setdefault("WebACLId", "")
    config.setdefault("Staging", False)
    config.setdefault("ContinuousDeploymentPolicyId", "")
    for origin in config["Origins"]["Items"]:
        origin.setdefault("CustomHeaders", {"Quantity": 0})
        origin.setdefault("ConnectionAttempts", 3)
        origin.setdefault("ConnectionTimeout", 10)
        origin.setdefault("OriginShield", {"Enabled": False})
        origin.setdefault("OriginAccessControlId", "")
    behavior = config["DefaultCacheBehavior"]
    behavior.setdefault("TrustedSigners", {"Enabled": False, "Quantity": 0})
    behavior.setdefault("TrustedKeyGroups", {"Enabled": False, "Quantity": 0})
    behavior.setdefault("SmoothStreaming", False)
    behavior.setdefault("LambdaFunctionAssociations", {"Quantity": 0})
    behavior.setdefault("FunctionAssociations", {"Quantity": 0})
    behavior.setdefault("FieldLevelEncryptionId", "")
    return config


def distribution(dist_id: str, config: dict[str, Any], status: str = "InProgress") -> dict[str, Any]:
    return {
        "Id": dist_id,
        "ARN": f"arn:aws:cloudfront::{ACCOUNT}:distribution/{dist_id}",
        "Status": status,
        "LastModifiedTime": NOW,
        "InProgressInvalidationBatches": 0,
        "DomainName": f"{dist_id.lower()}.cloudfront.net",
        "DistributionConfig": config,
    }


def summary(dist_id: str, config: dict[str, Any], status: str = "Deployed") -> dict[str, Any]:
    """A ListDistributions entry for a distribution with ``config`` (the list never shows CallerReference)."""
    full = aws_reported_config(config)
    return {
        "Id": dist_id,
        "ARN": f"arn:aws:cloudfront::{ACCOUNT}:distribution/{dist_id}",
        "Status": status,
        "LastModifiedTime": NOW,
        "DomainName": f"{dist_id.lower()}.cloudfront.net",
        **{
            key: full[key]
            for key in (
                "Aliases",
                "Origins",
                "DefaultCacheBehavior",
                "CacheBehaviors",
                "CustomErrorResponses",
                "Comment",
                "PriceClass",
                "Enabled",
                "ViewerCertificate",
                "Restrictions",
                "WebACLId",
                "HttpVersion",
                "IsIPV6Enabled",
                "Staging",
            )
        },
    }


def distribution_list(*summaries: dict[str, Any]) -> dict[str, Any]:
    return {
        "DistributionList": {
            "Marker": "",
            "MaxItems": 100,
            "IsTruncated": False,
            "Quantity": len(summaries),
            **({"Items": list(summaries)} if summaries else {}),
        }
    }


def tag_list(tags: dict[str, str]) -> dict[str, Any]:
    return {"Tags": {"Items": [{"Key": key, "Value": value} for key, value in tags.items()]}}


def oac_list(*entries: tuple[str, dict[str, str]]) -> dict[str, Any]:
    return {
        "OriginAccessControlList": {
            "Marker": "",
            "MaxItems": 100,
            "IsTruncated": False,
            "Quantity": len(entries),
            **({"Items": [{"Id": oac_id, **config} for oac_id, config in entries]} if entries else {}),
        }
    }


def oac_answer(oac_id: str, config: dict[str, str], etag: str) -> dict[str, Any]:
    return {"OriginAccessControl": {"Id": oac_id, "OriginAccessControlConfig": config}, "ETag": etag}
