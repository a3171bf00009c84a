#!/usr/bin/python
# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cloudfront_oac_distribution_info
short_description: Find the CloudFront distribution of a caller reference, as cloudfront_oac_distribution made it
version_added: 0.1.0
description:
  - Finds the CloudFront distribution whose C(CallerReference) is O(caller_reference) - the identity
    M(railsdeploy.aws.cloudfront_oac_distribution) creates and finds a distribution by - and returns its id, ARN,
    domain name, status and aliases. The deploy playbooks use it for the assets' host (C(ASSET_HOST)) of a node
    that has no C(AssetHost) tag.
  - CloudFront lists distributions without their caller reference, so the module reads the configuration of each
    (one C(GetDistributionConfig) call per distribution), those with an origin in O(origin_bucket) first.
  - C(community.aws.cloudfront_distribution_info) finds a distribution by id or alias, not by caller reference.
  - Only reads; never reports a change. When there is no such distribution, RV(exists) is false and the other
    values are empty.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - railsdeploy.aws.attributes
  - railsdeploy.aws.attributes.info_module
  - ansible.builtin.action_common_attributes
options:
  caller_reference:
    description: The distribution's caller reference, as given to M(railsdeploy.aws.cloudfront_oac_distribution).
    type: str
    required: true
  origin_bucket:
    description:
      - The S3 bucket the distribution serves from. Only speeds up the search (its distributions are read first).
    type: str
  origin_bucket_region:
    description: The bucket's region. Defaults to the module's O(region).
    type: str
author:
  - railsdeploy.aws developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: The assets' distribution is found
  railsdeploy.aws.cloudfront_oac_distribution_info:
    caller_reference: railsdeploy-production-assets
    origin_bucket: railsdeploy-production-assets
  register: assets_cdn

- name: The app's ASSET_HOST
  ansible.builtin.set_fact:
    asset_host: "https://{{ assets_cdn.aliases | first | default(assets_cdn.domain_name) }}"
  when: assets_cdn.exists
"""

RETURN = r"""
exists:
  description: Whether a distribution with the caller reference exists.
  returned: always
  type: bool
  sample: true
caller_reference:
  description: The caller reference looked for.
  returned: always
  type: str
  sample: railsdeploy-production-assets
id:
  description: The distribution's id (empty when there is none).
  returned: always
  type: str
  sample: E1A2B3C4D5E6F7
arn:
  description: The distribution's ARN (empty when there is none).
  returned: always
  type: str
  sample: arn:aws:cloudfront::123456789012:distribution/E1A2B3C4D5E6F7
domain_name:
  description: The distribution's C(*.cloudfront.net) name (empty when there is none).
  returned: always
  type: str
  sample: d111111abcdef8.cloudfront.net
status:
  description: C(Deployed) or C(InProgress) (empty when there is none).
  returned: always
  type: str
  sample: Deployed
aliases:
  description: The site's own names the distribution answers to.
  returned: always
  type: list
  elements: str
  sample: [assets.example.com]
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.railsdeploy.aws.plugins.module_utils._cloudfront_distribution import DistributionFinder
from ansible_collections.railsdeploy.aws.plugins.module_utils._cloudfront_oac import (
    bucket_name_error,
    caller_reference_error,
    s3_rest_domain,
)


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            caller_reference=dict(type="str", required=True),
            origin_bucket=dict(type="str"),
            origin_bucket_region=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    error = caller_reference_error(params["caller_reference"])
    if not error and params["origin_bucket"]:
        error = bucket_name_error(params["origin_bucket"])
    if error:
        module.fail_json(msg=error)
    region = params["origin_bucket_region"] or module.region or ""
    try:
        domain = s3_rest_domain(params["origin_bucket"], region) if params["origin_bucket"] and region else ""
    except ValueError as e:  # a region the helper rejects
        module.fail_json(msg=str(e))
    found = DistributionFinder(module).find(domain)
    config = (found or {}).get("DistributionConfig") or {}
    module.exit_json(
        changed=False,
        exists=found is not None,
        caller_reference=params["caller_reference"],
        id=found["Id"] if found else "",
        arn=found["ARN"] if found else "",
        domain_name=found["DomainName"] if found else "",
        status=found["Status"] if found else "",
        aliases=list((config.get("Aliases") or {}).get("Items") or []),
    )


if __name__ == "__main__":
    main()
