#!/usr/bin/python
# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cloudfront_oac_distribution
short_description: Manage a CloudFront distribution that serves a private S3 bucket through Origin Access Control
version_added: 0.1.0
description:
  - Ensures a CloudFront distribution whose single origin is the REST endpoint of a private S3 bucket
    (C(<bucket>.s3.<region>.amazonaws.com)), read through an Origin Access Control (OAC) rather than a
    legacy Origin Access Identity, optionally below an O(origin_path) in the bucket.
  - The default cache behaviour targets that origin with a cache policy (by default the AWS managed
    C(CachingOptimized)), allows only C(GET) and C(HEAD), compresses, and redirects HTTP to HTTPS.
  - Optionally the distribution also answers to domain names of your own (O(aliases)) with an ACM
    certificate for them (O(acm_certificate_arn)) and a TLS 1.2 or later security policy
    (O(minimum_protocol_version)).
  - The distribution is found by its O(caller_reference), which CloudFront stores at creation and never
    changes. A run reads the distribution's configuration, compares the fields this module manages and
    sends C(UpdateDistribution) (with the configuration's ETag) only when one of them differs. Fields it
    does not manage (logging, WAF, further cache behaviours, error pages, geo restrictions; aliases and
    certificate while O(aliases) and O(acm_certificate_arn) are not set) are kept as they are.
  - M(community.aws.cloudfront_distribution) only knows Origin Access Identities; this module exists for
    the OAC that AWS recommends instead. Create the OAC with M(railsdeploy.aws.cloudfront_origin_access_control)
    and allow the distribution in the bucket policy (C(Principal.Service=cloudfront.amazonaws.com) with the
    condition C(AWS:SourceArn) = RV(arn)), for example with M(amazon.aws.s3_bucket).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
  - railsdeploy.aws.attributes
  - ansible.builtin.action_common_attributes
attributes:
  diff_mode:
    support: full
options:
  caller_reference:
    description:
      - The distribution's identity. On creation it becomes the distribution's C(CallerReference); later runs
        find the distribution by it (CloudFront never changes it, unlike comments and tags).
      - Use one value per distribution and keep it, for example C(railsdeploy-production-assets). A new value
        creates a new distribution.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the distribution.
      - V(absent) disables it, waits until CloudFront has deployed the disabled state (this takes minutes on
        AWS) and deletes it. CloudFront refuses to delete an enabled or undeployed distribution, so
        O(state=absent) always waits, up to O(wait_timeout).
    type: str
    choices: [present, absent]
    default: present
  origin_bucket:
    description:
      - Name of the S3 bucket the distribution reads. Its regional REST endpoint becomes the origin; the
        origin id is C(s3-<bucket>).
      - Required when O(state=present).
    type: str
  origin_bucket_region:
    description:
      - Region of O(origin_bucket). Defaults to the module's O(region).
    type: str
  origin_path:
    description:
      - Directory in the bucket that the distribution's root maps to. CloudFront appends the request path to
        it, so with O(origin_path=/production) the URL C(https://<domain>/assets/app.css) fetches
        C(s3://<bucket>/production/assets/app.css).
      - Leading and trailing slashes are normalised (C(production/) is C(/production)); empty for the
        bucket's root.
    type: str
    default: ""
  origin_access_control_id:
    description:
      - Id of the Origin Access Control that signs the requests to the bucket, as returned by
        M(railsdeploy.aws.cloudfront_origin_access_control).
      - Required when O(state=present). It may be empty only in check mode (when the OAC of an earlier task
        would only be created by a real run).
    type: str
  comment:
    description:
      - Comment on the distribution, shown in the console list; a good place to say what it serves.
      - When not set, an existing comment is kept; a new distribution gets an empty one.
    type: str
  price_class:
    description:
      - Which edge locations serve the content. V(PriceClass_100) is North America and Europe (the cheapest),
        V(PriceClass_200) adds most of Asia, the Middle East and Africa, V(PriceClass_All) is every location.
    type: str
    choices: [PriceClass_100, PriceClass_200, PriceClass_All]
    default: PriceClass_All
  http_version:
    description:
      - Highest HTTP version viewers may use.
    type: str
    choices: [http1.1, http2, http3, http2and3]
    default: http2and3
  enabled:
    description:
      - Whether the distribution serves requests.
    type: bool
    default: true
  ipv6_enabled:
    description:
      - Whether the distribution answers on IPv6.
    type: bool
    default: true
  cache_policy_id:
    description:
      - Cache policy of the default cache behaviour. The default is the AWS managed C(CachingOptimized) policy,
        right for fingerprinted assets.
    type: str
    default: 658327ea-f89d-4fab-a63d-7e88639e58f6
  viewer_protocol_policy:
    description:
      - What the default cache behaviour does with plain HTTP requests.
    type: str
    choices: [allow-all, https-only, redirect-to-https]
    default: redirect-to-https
  compress:
    description:
      - Whether CloudFront compresses responses (gzip, brotli) for viewers that accept it.
    type: bool
    default: true
  aliases:
    description:
      - Alternate domain names (CNAMEs) the distribution answers to besides its C(*.cloudfront.net) name, for
        example C(assets.example.com). A name may start with C(*.) for a wildcard alias.
      - When set, the distribution's aliases become exactly these names (lower-cased, each once; order does not
        matter). An empty list removes every alias.
      - When not set, existing aliases are kept as they are.
      - Needs O(acm_certificate_arn) with a certificate that covers every name; CloudFront refuses aliases on
        its default certificate.
      - Point the names at RV(domain_name) in DNS (for example a Route 53 alias record) yourself.
    type: list
    elements: str
  acm_certificate_arn:
    description:
      - ARN of the ACM certificate the distribution presents to viewers, served with SNI
        (C(SSLSupportMethod=sni-only)) and the security policy O(minimum_protocol_version). It must cover
        every name in O(aliases).
      - CloudFront only uses ACM certificates from C(us-east-1) (N. Virginia), whatever the region of the
        bucket; an ARN in another region is refused before any request.
      - An empty string selects CloudFront's default C(*.cloudfront.net) certificate, for which CloudFront
        fixes the security policy to C(TLSv1) (O(minimum_protocol_version) does not apply); this needs the
        distribution to have no aliases (set O(aliases=[]) to remove existing ones).
      - When not set, the distribution's certificate is kept as it is; a new distribution gets the default
        certificate.
    type: str
  minimum_protocol_version:
    description:
      - The security policy towards viewers when O(acm_certificate_arn) is set; ignored otherwise. It sets the
        oldest TLS version and the ciphers CloudFront accepts.
      - V(TLSv1.2_2021), the default and what AWS recommends, accepts TLS 1.3 and TLS 1.2 with forward-secret
        AEAD ciphers only (ECDHE with AES-GCM or ChaCha20). V(TLSv1.2_2018) and V(TLSv1.2_2019) also accept
        older TLS 1.2 ciphers (CBC) for old clients, V(TLSv1.2_2025) accepts fewer TLS 1.2 ciphers than
        V(TLSv1.2_2021), V(TLSv1.3_2025) accepts only TLS 1.3.
      - Policies that allow TLS 1.1 or older are not offered.
    type: str
    choices: [TLSv1.2_2018, TLSv1.2_2019, TLSv1.2_2021, TLSv1.2_2025, TLSv1.3_2025]
    default: TLSv1.2_2021
  wait:
    description:
      - Wait until CloudFront reports the distribution C(Deployed) before returning. Changes take several
        minutes to reach every edge location; the distribution answers requests before that.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait for C(Deployed) (with O(wait=true) or O(state=absent)).
    type: int
    default: 1800
notes:
  - The distribution is found by listing the account's distributions and reading the configuration of each
    until one has the O(caller_reference) (the list does not show it). Distributions with an origin in
    O(origin_bucket) are read first, so an existing distribution is usually found with one read; the first
    run in an account with many distributions reads them all.
  - The managed fields are C(Comment), C(PriceClass), C(HttpVersion), C(Enabled), C(IsIPV6Enabled), the origin
    list (made exactly the one S3 origin; other origins are removed, and an origin with the same id keeps its
    timeouts, custom headers and Origin Shield), and in the default cache behaviour C(TargetOriginId),
    C(ViewerProtocolPolicy), C(Compress), C(CachePolicyId) and the allowed and cached methods. The legacy
    cache settings (C(ForwardedValues), TTLs) are dropped from the default cache behaviour when a cache
    policy is set, as CloudFront requires.
  - C(Aliases) is managed when O(aliases) is set (compared without regard to order or case), and
    C(ViewerCertificate) when O(acm_certificate_arn) is set (compared by certificate ARN, security policy,
    SSL support method and whether it is the default certificate; the read-only C(CertificateSource) is
    neither sent nor compared). A managed C(ViewerCertificate) is replaced as a whole, so an IAM server
    certificate is replaced by the ACM one.
  - The security policy is the minimum TLS version and the ciphers between viewers and CloudFront; the
    connection from CloudFront to the bucket always uses HTTPS with the bucket's own certificate.
  - An endpoint that does not report an origin's C(OriginAccessControlId) (moto 5.2 drops it) makes every
    run send an update; on AWS the second run with the same options changes nothing.
  - CloudFront is a global service; O(region) only sets the default for O(origin_bucket_region) (and
    matters for O(endpoint_url) when it points at an emulator).
  - Needs C(cloudfront:ListDistributions), C(cloudfront:GetDistribution), C(cloudfront:GetDistributionConfig),
    C(cloudfront:CreateDistribution), C(cloudfront:CreateDistributionWithTags), C(cloudfront:UpdateDistribution),
    C(cloudfront:DeleteDistribution), C(cloudfront:ListTagsForResource), C(cloudfront:TagResource) and
    C(cloudfront:UntagResource). O(aliases) and O(acm_certificate_arn) need no further permission; they are part of the
    same distribution configuration, and the module makes no ACM call (it checks only the form of the ARN).
seealso:
  - module: railsdeploy.aws.cloudfront_origin_access_control
  - module: amazon.aws.s3_bucket
  - module: community.aws.acm_certificate
  - module: community.aws.cloudfront_distribution
  - module: community.aws.cloudfront_invalidation
author:
  - railsdeploy.aws developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Origin Access Control for the asset bucket exists
  railsdeploy.aws.cloudfront_origin_access_control:
    name: railsdeploy-production-assets
  register: oac

# Objects live at s3://railsdeploy-production-assets/production/assets/<file>;
# browsers request https://<domain>/assets/<file>.
- name: CDN serves the Rails assets from the private bucket
  railsdeploy.aws.cloudfront_oac_distribution:
    caller_reference: railsdeploy-production-assets
    origin_bucket: railsdeploy-production-assets
    origin_path: /production
    origin_access_control_id: "{{ oac.id }}"
    comment: railsdeploy production assets
    price_class: PriceClass_100
    tags:
      Project: railsdeploy
      Environment: production
    wait: true
  register: cdn

# The certificate for the names must be in us-east-1, whatever the bucket's region.
- name: CDN answers to the site's own name with TLS 1.2 or later
  railsdeploy.aws.cloudfront_oac_distribution:
    caller_reference: railsdeploy-production-assets
    origin_bucket: railsdeploy-production-assets
    origin_path: /production
    origin_access_control_id: "{{ oac.id }}"
    aliases:
      - assets.example.com
    acm_certificate_arn: arn:aws:acm:us-east-1:123456789012:certificate/8f1d2c3b-4a5e-6f70-8192-a3b4c5d6e7f8
    minimum_protocol_version: TLSv1.2_2021
  register: cdn

- name: Only the distribution may read the assets
  amazon.aws.s3_bucket:
    name: railsdeploy-production-assets
    policy:
      Version: "2012-10-17"
      Statement:
        - Sid: AllowCloudFrontServicePrincipalReadOnly
          Effect: Allow
          Principal:
            Service: cloudfront.amazonaws.com
          Action: s3:GetObject
          Resource: arn:aws:s3:::railsdeploy-production-assets/production/assets/*
          Condition:
            StringEquals:
              AWS:SourceArn: "{{ cdn.arn }}"

- name: CDN is back on its cloudfront.net name only (no aliases, CloudFront's default certificate)
  railsdeploy.aws.cloudfront_oac_distribution:
    caller_reference: railsdeploy-production-assets
    origin_bucket: railsdeploy-production-assets
    origin_path: /production
    origin_access_control_id: "{{ oac.id }}"
    aliases: []
    acm_certificate_arn: ""

- name: CDN is gone (disabled, deployed, deleted)
  railsdeploy.aws.cloudfront_oac_distribution:
    caller_reference: railsdeploy-production-assets
    state: absent
"""

RETURN = r"""
id:
  description: Id of the distribution; empty when it does not exist (O(state=absent), or check mode before
    creation).
  returned: always
  type: str
  sample: E1A2B3C4D5E6F7
arn:
  description: ARN of the distribution, for the bucket policy's C(AWS:SourceArn) condition; empty when it does
    not exist.
  returned: always
  type: str
  sample: arn:aws:cloudfront::123456789012:distribution/E1A2B3C4D5E6F7
domain_name:
  description: The distribution's host name, for example for Rails' C(ASSET_HOST); empty when it does not exist.
  returned: always
  type: str
  sample: d111111abcdef8.cloudfront.net
aliases:
  description:
    - The distribution's alternate domain names as CloudFront reports them (in check mode, as they would be
      sent); empty when it has none or does not exist.
  returned: always
  type: list
  elements: str
  sample: [assets.example.com]
viewer_certificate:
  description:
    - The certificate the distribution presents to viewers (in check mode, as it would be sent); empty when
      the distribution does not exist.
  returned: always
  type: dict
  contains:
    acm_certificate_arn:
      description: ARN of the ACM certificate; empty with CloudFront's default certificate.
      type: str
      sample: arn:aws:acm:us-east-1:123456789012:certificate/8f1d2c3b-4a5e-6f70-8192-a3b4c5d6e7f8
    minimum_protocol_version:
      description: The security policy (minimum TLS version and ciphers towards viewers); C(TLSv1) with the
        default certificate.
      type: str
      sample: TLSv1.2_2021
    ssl_support_method:
      description: How CloudFront serves the certificate (C(sni-only)); empty with the default certificate.
      type: str
      sample: sni-only
    default_certificate:
      description: Whether it is CloudFront's default C(*.cloudfront.net) certificate.
      type: bool
      sample: false
status:
  description: V(InProgress) while a change propagates, V(Deployed) when every edge location has it; empty when
    the distribution does not exist.
  returned: always
  type: str
  sample: Deployed
etag:
  description: Version of the distribution's configuration (the C(IfMatch) value for the next change).
  returned: always
  type: str
  sample: E2QWRUHEXAMPLE
caller_reference:
  description: The O(caller_reference) that identifies the distribution.
  returned: always
  type: str
  sample: railsdeploy-production-assets
tags:
  description: The distribution's tags; empty when it does not exist.
  returned: always
  type: dict
  sample:
    Project: railsdeploy
    Environment: production
changes:
  description: The managed fields that differed and were (or in check mode would be) changed; C(tags) when
    tags differed; empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample: [comment, aliases, viewer_certificate]
distribution_config:
  description:
    - The distribution's configuration as CloudFront reports it, keys in snake_case (for example
      C(origins.items[0].origin_access_control_id), C(default_cache_behavior.cache_policy_id)).
    - In check mode, the configuration that would be sent. Empty when the distribution does not exist.
  returned: always
  type: dict
  sample:
    caller_reference: railsdeploy-production-assets
    comment: railsdeploy production assets
    enabled: true
    http_version: http2and3
    price_class: PriceClass_100
    aliases:
      quantity: 1
      items: [assets.example.com]
    viewer_certificate:
      acm_certificate_arn: arn:aws:acm:us-east-1:123456789012:certificate/8f1d2c3b-4a5e-6f70-8192-a3b4c5d6e7f8
      certificate_source: acm
      cloud_front_default_certificate: false
      minimum_protocol_version: TLSv1.2_2021
      ssl_support_method: sni-only
    origins:
      quantity: 1
      items:
        - id: s3-railsdeploy-production-assets
          domain_name: railsdeploy-production-assets.s3.us-west-2.amazonaws.com
          origin_path: /production
          origin_access_control_id: E2QWRUHEXAMPLE
          s3_origin_config:
            origin_access_identity: ""
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports a missing botocore

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.tagging import (
    ansible_dict_to_boto3_tag_list,
    boto3_tag_list_to_ansible_dict,
    compare_aws_tags,
)

from ansible_collections.railsdeploy.aws.plugins.module_utils._cloudfront_distribution import DistributionFinder
from ansible_collections.railsdeploy.aws.plugins.module_utils._cloudfront_oac import (
    acm_certificate_arn_error,
    aliases_error,
    apply_settings,
    bucket_name_error,
    build_distribution_config,
    caller_reference_error,
    config_changes,
    desired_settings,
    managed_view,
    s3_rest_domain,
)

WAIT_DELAY = 15
# The options desired_settings() takes as the user gave them (the bucket and its region it is given resolved).
PASSED_AS_GIVEN = (
    "origin_path", "origin_access_control_id", "comment", "price_class", "http_version", "enabled", "ipv6_enabled",
    "cache_policy_id", "viewer_protocol_policy", "compress", "aliases", "acm_certificate_arn",
    "minimum_protocol_version",
)


class DistributionManager(DistributionFinder):
    """Finds the distribution by caller reference (DistributionFinder) and brings it to the requested state."""

    def __init__(self, module: AnsibleAWSModule) -> None:
        super().__init__(module)
        self.changed = False
        self.changes: list[str] = []

    # -- one small function per API call ---------------------------------------------------------------------

    def get_distribution(self, distribution_id: str) -> dict:
        try:
            found = self.client.get_distribution(Id=distribution_id, aws_retry=True)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg=f"Could not read distribution {distribution_id}")
        return self._distribution(found["Distribution"], found.get("ETag", ""))

    def get_tags(self, arn: str) -> dict[str, str]:
        try:
            found = self.client.list_tags_for_resource(Resource=arn, aws_retry=True)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg=f"Could not read the tags of {arn}")
        return boto3_tag_list_to_ansible_dict((found.get("Tags") or {}).get("Items") or [])

    def create(self, config: dict, tags: dict[str, str] | None) -> dict:
        try:
            if tags:
                made = self.client.create_distribution_with_tags(
                    DistributionConfigWithTags={
                        "DistributionConfig": config,
                        "Tags": {"Items": ansible_dict_to_boto3_tag_list(tags)},
                    },
                    aws_retry=True,
                )
            else:
                made = self.client.create_distribution(DistributionConfig=config, aws_retry=True)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg=f"Could not create the distribution {self.caller_reference!r}")
        return self._distribution(made["Distribution"], made.get("ETag", ""))

    def update(self, distribution_id: str, config: dict, etag: str) -> dict:
        try:
            updated = self.client.update_distribution(
                Id=distribution_id, IfMatch=etag, DistributionConfig=config, aws_retry=True
            )
        except is_boto3_error_code("PreconditionFailed") as e:
            self.module.fail_json_aws(
                e, msg=f"Distribution {distribution_id} changed while this run was updating it; run again"
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Could not update distribution {distribution_id}")
        return self._distribution(updated["Distribution"], updated.get("ETag", ""))

    def set_tags(self, arn: str, current: dict[str, str], wanted: dict[str, str], purge: bool) -> bool:
        to_set, to_unset = compare_aws_tags(current, wanted, purge)
        if not (to_set or to_unset):
            return False
        if self.module.check_mode:
            return True
        try:
            if to_unset:
                self.client.untag_resource(Resource=arn, TagKeys={"Items": list(to_unset)}, aws_retry=True)
            if to_set:
                self.client.tag_resource(
                    Resource=arn, Tags={"Items": ansible_dict_to_boto3_tag_list(to_set)}, aws_retry=True
                )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg=f"Could not update the tags of {arn}")
        return True

    def delete(self, distribution_id: str, etag: str) -> None:
        try:
            self.client.delete_distribution(Id=distribution_id, IfMatch=etag, aws_retry=True)
        except is_boto3_error_code("NoSuchDistribution"):
            return
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Could not delete distribution {distribution_id}")

    def wait_deployed(self, distribution_id: str) -> None:
        timeout = self.module.params["wait_timeout"]
        try:
            self.client.get_waiter("distribution_deployed").wait(
                Id=distribution_id,
                WaiterConfig={"Delay": WAIT_DELAY, "MaxAttempts": max(1, timeout // WAIT_DELAY)},
            )
        except botocore.exceptions.WaiterError as e:
            self.module.fail_json_aws(
                e,
                msg=f"Distribution {distribution_id} was not Deployed after {timeout}s; "
                "CloudFront is still propagating it: run again later or raise wait_timeout",
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg=f"Could not wait for distribution {distribution_id}")

    @staticmethod
    def _distribution(distribution: dict, etag: str) -> dict:
        return {
            "Id": distribution["Id"],
            "ARN": distribution.get("ARN", ""),
            "DomainName": distribution.get("DomainName", ""),
            "Status": distribution.get("Status", ""),
            "ETag": etag,
            "DistributionConfig": distribution.get("DistributionConfig") or {},
        }

    # -- states -------------------------------------------------------------------------------------------------

    def settings(self) -> dict:
        params = self.module.params
        return desired_settings(
            bucket=params["origin_bucket"],
            region=self.bucket_region(),
            **{name: params[name] for name in PASSED_AS_GIVEN},
        )

    def bucket_region(self) -> str:
        region = self.module.params["origin_bucket_region"] or self.module.region
        if not region:
            self.module.fail_json(
                msg="The bucket's region is unknown: set origin_bucket_region, or region (for example in "
                "module_defaults for group/railsdeploy.aws.aws)"
            )
        return region

    def ensure_present(self) -> dict:
        params = self.module.params
        settings = self.settings()
        tags, purge_tags = params["tags"], params["purge_tags"]
        current = self.find(settings["Origin"]["DomainName"])

        if current is None:
            config = build_distribution_config(self.caller_reference, settings)
            self.changed = True
            self.changes = ["created"]
            if self.module.check_mode:
                return self.result(None, {}, config, {}, tags or {})
            made = self.create(config, tags)
            if params["wait"]:
                self.wait_deployed(made["Id"])
                made = self.get_distribution(made["Id"])
            self.warn_if_not_stored(config, made["DistributionConfig"])
            return self.result(made, {}, config, {}, self.get_tags(made["ARN"]))

        before_config = current["DistributionConfig"]
        self.changes = config_changes(before_config, settings)
        after_config = apply_settings(before_config, settings) if self.changes else before_config
        if {"aliases", "viewer_certificate"} & set(self.changes):
            self.check_aliases_have_a_certificate(after_config)
        before_tags = self.get_tags(current["ARN"])
        after_tags = before_tags
        if tags is not None:
            to_set, to_unset = compare_aws_tags(before_tags, tags, purge_tags)
            if to_set or to_unset:
                self.changes.append("tags")
                after_tags = {k: v for k, v in before_tags.items() if k not in to_unset}
                after_tags.update(to_set)
        self.changed = bool(self.changes)
        if self.module.check_mode:
            return self.result(current, before_config, after_config, before_tags, after_tags)

        final = current
        if after_config is not before_config:
            final = self.update(current["Id"], after_config, current["ETag"])
            self.warn_if_not_stored(after_config, final["DistributionConfig"])
        if tags is not None:
            self.set_tags(current["ARN"], before_tags, tags, purge_tags)
        if params["wait"] and (self.changed or final["Status"] != "Deployed"):
            self.wait_deployed(current["Id"])
            final = self.get_distribution(current["Id"])
        return self.result(final, before_config, after_config, before_tags, after_tags)

    def check_aliases_have_a_certificate(self, config: dict) -> None:
        """Fail before an update CloudFront would refuse: existing aliases kept (aliases not set) while the
        certificate becomes CloudFront's default one."""
        view = managed_view(config)
        if view["aliases"] and view["viewer_certificate"]["default_certificate"]:
            self.module.fail_json(
                msg=f"The distribution has the aliases {', '.join(view['aliases'])}, which CloudFront serves only with "
                "a certificate that covers them: set acm_certificate_arn, or aliases: [] to use CloudFront's default "
                "certificate"
            )

    def warn_if_not_stored(self, sent: dict, stored: dict) -> None:
        """Say so when the endpoint dropped part of the origin it was sent: the next run would change it again."""
        if stored and managed_view(stored)["origins"] != managed_view(sent)["origins"]:
            self.module.warn(
                "The CloudFront endpoint did not store the origin as sent (for example its OriginAccessControlId: "
                "moto 5.2 drops it), so every run will report a change. On AWS this does not happen."
            )

    def ensure_absent(self) -> dict:
        bucket = self.module.params["origin_bucket"]
        domain = s3_rest_domain(bucket, self.bucket_region()) if bucket else ""
        current = self.find(domain)
        if current is None:
            return self.result(None, {}, {}, {}, {})
        self.changed = True
        self.changes = ["deleted"]
        before_config = current["DistributionConfig"]
        before_tags = self.get_tags(current["ARN"])
        if self.module.check_mode:
            return self.result(None, before_config, {}, before_tags, {})
        etag = current["ETag"]
        if before_config.get("Enabled"):
            disabled = dict(before_config, Enabled=False)
            etag = self.update(current["Id"], disabled, etag)["ETag"]
        self.wait_deployed(current["Id"])
        found = self.get_config(current["Id"])
        if found is not None:
            self.delete(current["Id"], found[1] or etag)
        return self.result(None, before_config, {}, before_tags, {})

    def result(self, dist: dict | None, before: dict, after: dict, before_tags: dict, after_tags: dict) -> dict:
        """The module's result. ``after`` is the configuration asked for (what the diff shows); the returned
        ``distribution_config`` is what CloudFront reports, or ``after`` in check mode."""
        reported = after if self.module.check_mode or dist is None else dist["DistributionConfig"] or after
        reported_view = managed_view(reported)
        result = {
            "changed": self.changed,
            "changes": self.changes,
            "caller_reference": self.caller_reference,
            "id": dist["Id"] if dist else "",
            "arn": dist["ARN"] if dist else "",
            "domain_name": dist["DomainName"] if dist else "",
            "status": dist["Status"] if dist else "",
            "etag": dist["ETag"] if dist else "",
            "aliases": list((reported.get("Aliases") or {}).get("Items") or []) if reported else [],
            "viewer_certificate": reported_view.get("viewer_certificate", {}),
            "tags": after_tags if after else {},
            "distribution_config": camel_dict_to_snake_dict(reported) if reported else {},
        }
        if self.module._diff:
            before_view = dict(managed_view(before), tags=before_tags) if before else {}
            after_view = dict(managed_view(after), tags=after_tags) if after else {}
            result["diff"] = {"before": before_view, "after": after_view}
        return result


def main() -> None:
    argument_spec = dict(
        caller_reference=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        origin_bucket=dict(type="str"),
        origin_bucket_region=dict(type="str"),
        origin_path=dict(type="str", default=""),
        origin_access_control_id=dict(type="str"),
        comment=dict(type="str"),
        price_class=dict(
            type="str", choices=["PriceClass_100", "PriceClass_200", "PriceClass_All"], default="PriceClass_All"
        ),
        http_version=dict(type="str", choices=["http1.1", "http2", "http3", "http2and3"], default="http2and3"),
        enabled=dict(type="bool", default=True),
        ipv6_enabled=dict(type="bool", default=True),
        cache_policy_id=dict(type="str", default="658327ea-f89d-4fab-a63d-7e88639e58f6"),
        viewer_protocol_policy=dict(
            type="str", choices=["allow-all", "https-only", "redirect-to-https"], default="redirect-to-https"
        ),
        compress=dict(type="bool", default=True),
        aliases=dict(type="list", elements="str"),
        acm_certificate_arn=dict(type="str"),
        minimum_protocol_version=dict(
            type="str",
            choices=["TLSv1.2_2018", "TLSv1.2_2019", "TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025"],
            default="TLSv1.2_2021",
        ),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=1800),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        required_if=[("state", "present", ("origin_bucket", "origin_access_control_id"))],
        supports_check_mode=True,
    )
    params = module.params

    error = caller_reference_error(params["caller_reference"])
    if not error and params["origin_bucket"]:
        error = bucket_name_error(params["origin_bucket"])
    if not error and params["state"] == "present" and not params["origin_access_control_id"] and not module.check_mode:
        # Empty only makes sense in check mode, when the OAC of a previous task would be created.
        error = (
            "origin_access_control_id is empty: pass the id of an Origin Access Control "
            "(railsdeploy.aws.cloudfront_origin_access_control returns it)"
        )
    if not error and params["acm_certificate_arn"]:
        error = acm_certificate_arn_error(params["acm_certificate_arn"])
    if not error:
        error = aliases_error(params["aliases"], params["acm_certificate_arn"])
    if not error and params["wait_timeout"] < 1:
        error = f"wait_timeout must be 1 or more seconds, got {params['wait_timeout']}"
    if error:
        module.fail_json(msg=error)

    manager = DistributionManager(module)
    try:
        if params["state"] == "present":
            result = manager.ensure_present()
        else:
            result = manager.ensure_absent()
    except ValueError as e:  # origin_path or region that the helpers reject
        module.fail_json(msg=str(e))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
