#!/usr/bin/python
# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cloudfront_origin_access_control
short_description: Manage a CloudFront Origin Access Control (OAC)
version_added: 0.1.0
description:
  - Creates, updates or deletes a CloudFront Origin Access Control, found by its O(name) (names are unique
    in an account).
  - An Origin Access Control lets a CloudFront distribution sign its requests to a private origin (an S3
    bucket with Block Public Access on) with SigV4, so that a bucket policy can allow that distribution and
    nobody else. It replaces the legacy Origin Access Identity (OAI), the only mechanism that
    M(community.aws.cloudfront_distribution) and M(community.aws.cloudfront_origin_access_identity) support.
  - Attach it to a distribution's origin with M(railsdeploy.aws.cloudfront_oac_distribution).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - railsdeploy.aws.attributes
  - ansible.builtin.action_common_attributes
attributes:
  diff_mode:
    support: full
options:
  name:
    description:
      - Name of the Origin Access Control, at most 64 characters. It identifies the OAC; a run finds the
        existing one by this name and never creates a second one with it.
    type: str
    required: true
  state:
    description:
      - V(present) creates the OAC or updates it to the given settings; V(absent) deletes it.
      - Deleting an OAC that a distribution still uses fails; detach it first.
    type: str
    choices: [present, absent]
    default: present
  description:
    description:
      - Free-text description shown in the console.
      - When not set, an existing description is kept; a new OAC gets an empty one.
    type: str
  origin_type:
    description:
      - The type of origin the OAC signs requests for.
    type: str
    choices: [s3, mediastore, mediapackagev2, lambda]
    default: s3
  signing_behavior:
    description:
      - Which requests CloudFront signs. V(always) signs every origin request and overwrites a viewer's
        C(Authorization) header, which is what a private S3 bucket needs.
    type: str
    choices: [always, never, no-override]
    default: always
  signing_protocol:
    description:
      - How CloudFront signs origin requests. V(sigv4) is the only protocol CloudFront offers.
    type: str
    choices: [sigv4]
    default: sigv4
notes:
  - CloudFront is a global service; O(region) only matters for reaching the API (and for O(endpoint_url)
    when it points at an emulator).
  - The module needs C(cloudfront:ListOriginAccessControls), C(cloudfront:GetOriginAccessControl),
    C(cloudfront:CreateOriginAccessControl), C(cloudfront:UpdateOriginAccessControl) and
    C(cloudfront:DeleteOriginAccessControl).
seealso:
  - module: railsdeploy.aws.cloudfront_oac_distribution
  - module: community.aws.cloudfront_origin_access_identity
  - name: Restricting access to an Amazon S3 origin
    description: CloudFront developer guide on Origin Access Control.
    link: https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-restricting-access-to-s3.html
author:
  - railsdeploy.aws developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Origin Access Control for the asset bucket exists
  railsdeploy.aws.cloudfront_origin_access_control:
    name: railsdeploy-production-assets
    description: CloudFront reads s3://railsdeploy-production-assets
  register: oac

- name: Origin Access Control for the asset bucket is gone
  railsdeploy.aws.cloudfront_origin_access_control:
    name: railsdeploy-production-assets
    state: absent
"""

RETURN = r"""
id:
  description: Id of the Origin Access Control; empty when it does not exist (O(state=absent), or check mode
    before creation).
  returned: always
  type: str
  sample: E2QWRUHEXAMPLE
etag:
  description: Current version of the OAC (the C(IfMatch) value for the next change); empty when there is none.
  returned: always
  type: str
  sample: ETVPDKIKX0DER
origin_access_control_config:
  description: The OAC's settings; empty when it does not exist.
  returned: always
  type: dict
  contains:
    name:
      description: Name of the OAC.
      type: str
      sample: railsdeploy-production-assets
    description:
      description: Its description.
      type: str
      sample: CloudFront reads s3://railsdeploy-production-assets
    signing_protocol:
      description: Signing protocol.
      type: str
      sample: sigv4
    signing_behavior:
      description: Which requests are signed.
      type: str
      sample: always
    origin_access_control_origin_type:
      description: Origin type.
      type: str
      sample: s3
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports a missing botocore

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.railsdeploy.aws.plugins.module_utils._cloudfront_oac import (
    oac_changes,
    oac_config,
    oac_desired,
    oac_name_error,
)


def _record(answer: dict) -> dict:
    """An OAC as the manager keeps it, from CloudFront's answer to a get, create or update."""
    return {
        "Id": answer["OriginAccessControl"]["Id"],
        "ETag": answer.get("ETag", ""),
        "Config": answer["OriginAccessControl"]["OriginAccessControlConfig"],
    }


class OriginAccessControlManager:
    """Finds the OAC by name and brings it to the requested state."""

    def __init__(self, module: AnsibleAWSModule) -> None:
        self.module = module
        self.client = module.client("cloudfront", retry_decorator=AWSRetry.jittered_backoff())
        self.name: str = module.params["name"]
        self.changed = False

    # -- one small function per API call ---------------------------------------------------------------------

    def find(self) -> dict | None:
        """The OAC named ``self.name`` with its ETag, or None."""
        try:
            paginator = self.client.get_paginator("list_origin_access_controls")
            pages = paginator.paginate().build_full_result()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg="Could not list CloudFront Origin Access Controls")
        items = (pages.get("OriginAccessControlList") or {}).get("Items") or []
        matches = [item for item in items if item.get("Name") == self.name]
        if len(matches) > 1:
            self.module.fail_json(
                msg=f"{len(matches)} Origin Access Controls are named {self.name!r} "
                f"({', '.join(m['Id'] for m in matches)}); delete the extra ones so that the name identifies one",
            )
        if not matches:
            return None
        try:
            found = self.client.get_origin_access_control(Id=matches[0]["Id"], aws_retry=True)
        except is_boto3_error_code("NoSuchOriginAccessControl"):
            return None  # deleted between the list and the get
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Could not read Origin Access Control {matches[0]['Id']}")
        return _record(found)

    def create(self, config: dict) -> dict:
        try:
            made = self.client.create_origin_access_control(OriginAccessControlConfig=config, aws_retry=True)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg=f"Could not create Origin Access Control {self.name!r}")
        return _record(made)

    def update(self, current: dict, config: dict) -> dict:
        try:
            updated = self.client.update_origin_access_control(
                Id=current["Id"], IfMatch=current["ETag"], OriginAccessControlConfig=config, aws_retry=True
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg=f"Could not update Origin Access Control {current['Id']}")
        return _record(updated)

    def delete(self, current: dict) -> None:
        try:
            self.client.delete_origin_access_control(Id=current["Id"], IfMatch=current["ETag"], aws_retry=True)
        except is_boto3_error_code("NoSuchOriginAccessControl"):
            return
        except is_boto3_error_code("OriginAccessControlInUse") as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(
                e,
                msg=f"Origin Access Control {self.name!r} ({current['Id']}) is still attached to a distribution: "
                "remove it from the distribution's origin (or delete the distribution) first",
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Could not delete Origin Access Control {current['Id']}")

    # -- states -----------------------------------------------------------------------------------------------

    def ensure_present(self) -> dict:
        params = self.module.params
        wanted = oac_config(
            self.name,
            params["description"],
            params["origin_type"],
            params["signing_behavior"],
            params["signing_protocol"],
        )
        current = self.find()
        before = current["Config"] if current else {}
        desired = oac_desired(before, wanted)
        if current and not oac_changes(before, desired):
            return self.result(current, before, before)
        self.changed = True
        if self.module.check_mode:
            after = current or {"Id": "", "ETag": ""}
            return self.result({**after, "Config": desired}, before, desired)
        final = self.update(current, desired) if current else self.create(desired)
        return self.result(final, before, desired)

    def ensure_absent(self) -> dict:
        current = self.find()
        if current is None:
            return self.result(None, {}, {})
        self.changed = True
        if not self.module.check_mode:
            self.delete(current)
        return self.result(None, current["Config"], {})

    def result(self, oac: dict | None, before: dict, after: dict) -> dict:
        result = {
            "changed": self.changed,
            "id": oac["Id"] if oac else "",
            "etag": oac["ETag"] if oac else "",
            "origin_access_control_config": camel_dict_to_snake_dict(oac["Config"]) if oac else {},
        }
        if self.module._diff:
            result["diff"] = {"before": camel_dict_to_snake_dict(before), "after": camel_dict_to_snake_dict(after)}
        return result


def main() -> None:
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        description=dict(type="str"),
        origin_type=dict(type="str", choices=["s3", "mediastore", "mediapackagev2", "lambda"], default="s3"),
        signing_behavior=dict(type="str", choices=["always", "never", "no-override"], default="always"),
        signing_protocol=dict(type="str", choices=["sigv4"], default="sigv4"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)

    error = oac_name_error(module.params["name"])
    if error:
        module.fail_json(msg=error)

    manager = OriginAccessControlManager(module)
    if module.params["state"] == "present":
        result = manager.ensure_present()
    else:
        result = manager.ensure_absent()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
