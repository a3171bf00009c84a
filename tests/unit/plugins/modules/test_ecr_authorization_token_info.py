"""ecr_authorization_token_info: the docker login it derives from ECR's token, in-process against moto."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from _aws_module import run_aws_module
from moto import mock_aws

from ansible_collections.railsdeploy.aws.plugins.modules import ecr_authorization_token_info
from ansible_collections.railsdeploy.aws.plugins.modules.ecr_authorization_token_info import docker_login


def token(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {
                "authorizationToken": token("AWS:s3cr:et=="),
                "proxyEndpoint": "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                "expiresAt": datetime(2025, 1, 1, 12, tzinfo=UTC),
            },
            {
                "username": "AWS",
                "password": "s3cr:et==",  # only the first colon separates user and password
                "proxy_endpoint": "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                "registry": "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                "expires_at": "2025-01-01T12:00:00+00:00",
            },
        ),
        (
            {"authorizationToken": token("AWS:pw"), "proxyEndpoint": "https://r.example/"},
            {"username": "AWS", "password": "pw", "proxy_endpoint": "https://r.example/", "registry": "r.example",
             "expires_at": ""},
        ),
    ],
)
def test_token_becomes_user_password_and_registry(data, expected):
    assert docker_login(data) == expected


@pytest.mark.parametrize("raw", ["not base64!", token("no-colon"), token(":pw"), token("AWS:")])
def test_a_token_not_of_the_form_user_password_is_refused(raw):
    with pytest.raises(ValueError, match="user:password"):
        docker_login({"authorizationToken": raw, "proxyEndpoint": "https://r"})


def run(args, monkeypatch, capsys):
    with mock_aws():
        return run_aws_module(
            ecr_authorization_token_info.main, args, monkeypatch, capsys, region="eu-west-1", check_mode=True
        )


def test_login_for_the_given_registry_works_in_check_mode(monkeypatch, capsys):
    result = run({"registry_id": "111122223333"}, monkeypatch, capsys)

    assert result["changed"] is False
    assert result["username"] == "AWS"
    assert result["password"]
    assert result["registry"] == "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
    assert result["proxy_endpoint"] == f"https://{result['registry']}"


def test_without_registry_id_the_callers_registry(monkeypatch, capsys):
    result = run({}, monkeypatch, capsys)

    assert result["registry"].endswith(".dkr.ecr.eu-west-1.amazonaws.com")
