"""Run an AWS module of the collection in-process, as on a managed node, with a region and dummy credentials.

The CloudFront modules' tests run it against botocore's Stubber (``_cloudfront_stubs.py``), those of
ec2_host_keys_info and ecr_authorization_token_info against moto.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.testing import patch_module_args

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "unit-test-secret-key-not-real"


def as_on_a_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as on a managed node, with no AWS profile or endpoint from the environment.

    Warnings go into the result instead of the controller's display (which is what happens in-process once anything
    has imported ansible's controller code).
    """
    monkeypatch.setattr(module_utils_internal, "is_controller", False)
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_URL", "EC2_URL"):
        monkeypatch.delenv(var, raising=False)


def run_aws_module(
    main: Callable[[], None],
    args: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *,
    region: str,
    check_mode: bool = False,
    diff: bool = False,
) -> dict[str, Any]:
    """Run ``main`` with ``args`` (plus ``region`` and dummy credentials); return its JSON result."""
    as_on_a_node(monkeypatch)
    module_args = {
        "region": region,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "_ansible_check_mode": check_mode,
        "_ansible_diff": diff,
        **args,
    }
    with patch_module_args(module_args), pytest.raises(SystemExit):
        main()
    return json.loads(capsys.readouterr().out)
