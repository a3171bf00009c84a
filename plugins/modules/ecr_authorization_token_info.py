#!/usr/bin/python
# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ecr_authorization_token_info
short_description: Get a Docker login for an Amazon ECR registry
version_added: 0.1.0
description:
  - Calls ECR C(GetAuthorizationToken) and returns the user name, password and registry address that
    C(docker login) needs, as C(aws ecr get-login-password) does, without the AWS CLI.
  - Feed the result to M(community.docker.docker_login) in a task with C(no_log), then push or pull with the
    community.docker modules. The password is valid for 12 hours.
  - Neither amazon.aws nor community.aws has a module for this; M(community.aws.ecs_ecr) manages repositories
    only.
  - Only reads; never reports a change.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - railsdeploy.aws.attributes
  - railsdeploy.aws.attributes.info_module
  - ansible.builtin.action_common_attributes
options:
  registry_id:
    description:
      - AWS account id that owns the registry (the first part of C(<account>.dkr.ecr.<region>.amazonaws.com)).
      - When not set, the registry of the account the credentials belong to.
    type: str
notes:
  - The ECR registry is regional; set O(region) to the region in the registry's host name.
  - The module needs C(ecr:GetAuthorizationToken); pushing also needs the repository's push permissions.
  - The returned RV(password) is a secret. Register the result in a task with C(no_log=true) and pass it on
    only to tasks that also have C(no_log).
seealso:
  - module: community.docker.docker_login
  - name: Private registry authentication in Amazon ECR
    description: How the authorization token is used with C(docker login).
    link: https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html
author:
  - railsdeploy.aws developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: ECR login is known
  railsdeploy.aws.ecr_authorization_token_info:
    region: eu-west-1
    registry_id: "123456789012"
  register: ecr_login
  no_log: true

- name: Docker is logged in to ECR
  community.docker.docker_login:
    registry_url: "{{ ecr_login.proxy_endpoint }}"
    username: "{{ ecr_login.username }}"
    password: "{{ ecr_login.password }}"
  no_log: true
"""

RETURN = r"""
username:
  description: User name for C(docker login); always C(AWS).
  returned: always
  type: str
  sample: AWS
password:
  description: Password for C(docker login), valid until RV(expires_at). A secret.
  returned: always
  type: str
  sample: eyJwYXlsb2FkIjoi...
proxy_endpoint:
  description: Registry URL to log in to.
  returned: always
  type: str
  sample: https://123456789012.dkr.ecr.eu-west-1.amazonaws.com
registry:
  description: Registry host, as it appears in image names.
  returned: always
  type: str
  sample: 123456789012.dkr.ecr.eu-west-1.amazonaws.com
expires_at:
  description: When the password stops working (ISO 8601).
  returned: always
  type: str
  sample: "2025-01-01T12:00:00+00:00"
"""

import base64
import binascii
from typing import Any

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports a missing botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


def docker_login(authorization_data: dict[str, Any]) -> dict[str, str]:
    """One ``authorizationData`` entry of GetAuthorizationToken as docker login's user, password and registry.

    The token is base64 of ``user:password``; the registry is the proxy endpoint without its scheme.
    Raises ValueError when the token is not in that form.
    """
    try:
        decoded = base64.b64decode(authorization_data["authorizationToken"], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"the ECR authorization token is not base64 of 'user:password': {exc}") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username or not password:
        raise ValueError("the ECR authorization token is not of the form 'user:password'")
    endpoint = authorization_data.get("proxyEndpoint") or ""
    expires_at = authorization_data.get("expiresAt")
    return {
        "username": username,
        "password": password,
        "proxy_endpoint": endpoint,
        "registry": endpoint.split("://", 1)[-1].rstrip("/"),
        "expires_at": expires_at.isoformat() if hasattr(expires_at, "isoformat") else str(expires_at or ""),
    }


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(registry_id=dict(type="str")),
        supports_check_mode=True,
    )
    client = module.client("ecr", retry_decorator=AWSRetry.jittered_backoff())
    kwargs = {}
    if module.params["registry_id"]:
        kwargs["registryIds"] = [module.params["registry_id"]]
    try:
        response = client.get_authorization_token(aws_retry=True, **kwargs)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg="Could not get an ECR authorization token (needs ecr:GetAuthorizationToken)")
    data = response.get("authorizationData") or []
    if not data:
        module.fail_json(msg="ECR returned no authorization data")
    try:
        login = docker_login(data[0])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **login)


if __name__ == "__main__":
    main()
