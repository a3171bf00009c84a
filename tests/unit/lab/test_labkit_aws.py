"""Unit tests for lab/labkit/aws.py: which of moto's requests the watcher counts as a possible change.

The requests are signed by botocore, as the collection's modules and the nodes' AWS SDKs sign them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from labkit.aws import may_change_what_the_watcher_follows

CREDENTIALS = Credentials("AKIAEXAMPLE", "secret")


def signed(service: str) -> str:
    """The Authorization header of a request to ``service`` signed with SigV4."""
    request = AWSRequest(method="POST", url=f"https://{service}.us-west-2.amazonaws.com/", data=b"{}")
    SigV4Auth(CREDENTIALS, service, "us-west-2").add_auth(request)
    return request.headers["Authorization"]


@pytest.mark.parametrize("service", ["ec2", "elasticloadbalancing"])
def test_a_request_to_a_service_the_watcher_follows_counts(service):
    assert may_change_what_the_watcher_follows(signed(service))


@pytest.mark.parametrize("service", ["logs", "monitoring", "s3", "route53", "iam", "sts"])
def test_log_shipping_metrics_the_wal_archive_and_the_rest_do_not(service):
    assert not may_change_what_the_watcher_follows(signed(service))


def test_a_presigned_request_is_judged_by_the_service_in_its_query():
    request = AWSRequest(method="GET", url="https://lab-backups.s3.us-west-2.amazonaws.com/archive/x")
    S3SigV4QueryAuth(CREDENTIALS, "s3", "us-west-2", expires=60).add_auth(request)
    query = urlsplit(request.url).query
    assert "X-Amz-Credential=AKIAEXAMPLE%2F" in query  # URL-encoded, as the server receives it
    assert not may_change_what_the_watcher_follows("", query)


def test_an_unsigned_request_counts():
    assert may_change_what_the_watcher_follows("")
    assert may_change_what_the_watcher_follows("", "Action=DescribeInstances")
