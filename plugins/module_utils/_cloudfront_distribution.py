# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Finding a CloudFront distribution by its caller reference - the identity cloudfront_oac_distribution creates it
with - for that module and for cloudfront_oac_distribution_info.

Private to this collection (leading underscore): no compatibility promise to other collections.
"""

from __future__ import annotations

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports a missing botocore

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.railsdeploy.aws.plugins.module_utils._cloudfront_oac import order_candidates


@AWSRetry.jittered_backoff()
def _list_distributions(client) -> list[dict]:
    pages = client.get_paginator("list_distributions").paginate().build_full_result()
    return (pages.get("DistributionList") or {}).get("Items") or []


class DistributionFinder:
    """Finds the distribution whose CallerReference is ``module.params['caller_reference']``."""

    def __init__(self, module) -> None:
        self.module = module
        self.client = module.client("cloudfront", retry_decorator=AWSRetry.jittered_backoff())
        self.caller_reference: str = module.params["caller_reference"]

    def list_distributions(self) -> list[dict]:
        try:
            return _list_distributions(self.client)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg="Could not list CloudFront distributions")

    def get_config(self, distribution_id: str) -> tuple[dict, str] | None:
        try:
            found = self.client.get_distribution_config(Id=distribution_id, aws_retry=True)
        except is_boto3_error_code("NoSuchDistribution"):
            return None
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Could not read the configuration of distribution {distribution_id}")
        return found["DistributionConfig"], found.get("ETag", "")

    def find(self, origin_domain: str) -> dict | None:
        """The distribution whose CallerReference is ours, with its config and ETag, or None. The caller reference is
        only in each distribution's config (one GetDistributionConfig call per distribution): those with an origin at
        ``origin_domain`` are read first."""
        for summary in order_candidates(self.list_distributions(), origin_domain):
            found = self.get_config(summary["Id"])
            if found is None:
                continue  # deleted meanwhile
            config, etag = found
            if config.get("CallerReference") == self.caller_reference:
                return {
                    "Id": summary["Id"],
                    "ARN": summary.get("ARN", ""),
                    "DomainName": summary.get("DomainName", ""),
                    "Status": summary.get("Status", ""),
                    "ETag": etag,
                    "DistributionConfig": config,
                }
        return None
