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


def query_request(service: str, action: str) -> tuple[str, bytes]:
    """The Authorization header and form body of a query-protocol request (EC2, Elastic Load Balancing), as botocore
    sends it: the action in the POST body, none in the query string."""
    body = f"Action={action}&Version=2016-11-15".encode()
    request = AWSRequest(method="POST", url=f"https://{service}.us-west-2.amazonaws.com/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(CREDENTIALS, service, "us-west-2").add_auth(request)
    return request.headers["Authorization"], body


@pytest.mark.parametrize(("service", "action"), [
    ("ec2", "RunInstances"), ("ec2", "TerminateInstances"), ("ec2", "StopInstances"), ("ec2", "AttachVolume"),
    ("ec2", "CreateTags"), ("elasticloadbalancing", "RegisterTargets"),
    ("elasticloadbalancing", "ModifyTargetGroup")])
def test_a_change_to_what_the_watcher_follows_counts(service, action):
    authorization, body = query_request(service, action)
    assert may_change_what_the_watcher_follows(authorization, "", lambda: body)


@pytest.mark.parametrize(("service", "action"), [
    ("ec2", "DescribeInstances"), ("ec2", "DescribeVolumes"), ("ec2", "GetConsoleOutput"),
    ("elasticloadbalancing", "DescribeTargetHealth")])
def test_a_request_that_only_reads_does_not_count(service, action):
    authorization, body = query_request(service, action)
    assert not may_change_what_the_watcher_follows(authorization, "", lambda: body)
    assert not may_change_what_the_watcher_follows(authorization, f"Action={action}")


def test_the_body_is_read_only_for_a_request_to_a_watched_service_without_an_action_in_its_query():
    def unread() -> bytes:
        raise AssertionError("the body was read")
    assert not may_change_what_the_watcher_follows(signed("s3"), "", unread)
    assert may_change_what_the_watcher_follows(query_request("ec2", "RunInstances")[0], "Action=RunInstances", unread)


def test_a_watched_request_that_names_no_action_counts():
    assert may_change_what_the_watcher_follows(signed("ec2"), "", lambda: b"{}")
