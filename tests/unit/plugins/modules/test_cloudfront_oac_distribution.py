"""cloudfront_oac_distribution: the requests it sends to CloudFront, checked with botocore's Stubber.

moto cannot stand in here: moto 5.2.5 drops ``OriginAccessControlId`` (and ``S3OriginConfig``) from a
distribution's origins, so neither the OAC wiring nor idempotence can be observed through it.
"""

from __future__ import annotations

import copy

import pytest
from _cloudfront_stubs import (
    CloudFrontStub,
    aws_reported_config,
    distribution,
    distribution_list,
    run_module,
    summary,
    tag_list,
    warning_messages,
)

from ansible_collections.railsdeploy.aws.plugins.module_utils._cloudfront_oac import CACHING_OPTIMIZED_POLICY_ID
from ansible_collections.railsdeploy.aws.plugins.modules import cloudfront_oac_distribution

OAC_ID = "E2QWRUHEXAMPLE"
DIST_ID = "E1A2B3C4D5E6F7"
ARN = f"arn:aws:cloudfront::123456789012:distribution/{DIST_ID}"
TAGS = {"Project": "railsdeploy", "Environment": "production"}
ARGS = {
    "caller_reference": "railsdeploy-production-assets",
    "origin_bucket": "railsdeploy-assets",
    "origin_path": "production",
    "origin_access_control_id": OAC_ID,
    "comment": "railsdeploy production assets",
    "price_class": "PriceClass_100",
    "tags": TAGS,
}
READ_ONLY = ["ListDistributions", "GetDistributionConfig", "ListTagsForResource"]


@pytest.fixture
def run(monkeypatch, capsys):
    def _run(args, stub, **kwargs):
        return run_module(cloudfront_oac_distribution.main, args, stub, monkeypatch, capsys, **kwargs)

    return _run


def created(run, args=ARGS) -> dict:
    """Create the distribution once; return the DistributionConfig the module sent."""
    stub = CloudFrontStub()
    stub.reply("list_distributions", distribution_list())
    operation = "create_distribution_with_tags" if args.get("tags") else "create_distribution"
    # The answer's config is irrelevant to what is sent; the module reads back id, ARN and domain.
    stub.reply(operation, {"Distribution": distribution(DIST_ID, placeholder_config()), "ETag": "ETAG1"})
    if args.get("tags"):
        stub.reply("list_tags_for_resource", tag_list(args["tags"]))
    else:
        stub.reply("list_tags_for_resource", tag_list({}))
    result = run(args, stub)
    assert result["changed"] is True, result
    if args.get("tags"):
        return stub.sent("CreateDistributionWithTags")["DistributionConfigWithTags"]["DistributionConfig"]
    return stub.sent("CreateDistribution")["DistributionConfig"]


def placeholder_config() -> dict:
    return {
        "CallerReference": "x",
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "o.example"}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all"},
        "Comment": "",
        "Enabled": True,
    }


def existing(stub: CloudFrontStub, config: dict, tags: dict, etag: str = "ETAG1") -> CloudFrontStub:
    """Queue the lookup of an existing distribution with ``config`` and ``tags``."""
    stub.reply("list_distributions", distribution_list(summary(DIST_ID, config)))
    stub.reply("get_distribution_config", {"DistributionConfig": config, "ETag": etag})
    stub.reply("list_tags_for_resource", tag_list(tags))
    return stub


# -- creation ------------------------------------------------------------------------------------------------------


def test_create_sends_the_oac_on_the_single_s3_origin(run):
    sent = created(run)

    assert sent["CallerReference"] == "railsdeploy-production-assets"
    assert sent["Origins"]["Quantity"] == 1
    origin = sent["Origins"]["Items"][0]
    assert origin["DomainName"] == "railsdeploy-assets.s3.us-west-2.amazonaws.com"  # REST endpoint, not website
    assert origin["OriginAccessControlId"] == OAC_ID
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy OAI beside the OAC
    assert origin["OriginPath"] == "/production"  # /assets/x.css -> s3://bucket/production/assets/x.css
    assert "CustomOriginConfig" not in origin


def test_create_sends_the_cache_behaviour_and_distribution_settings(run):
    sent = created(run)

    behavior = sent["DefaultCacheBehavior"]
    assert behavior["TargetOriginId"] == sent["Origins"]["Items"][0]["Id"]
    assert behavior["CachePolicyId"] == CACHING_OPTIMIZED_POLICY_ID == "658327ea-f89d-4fab-a63d-7e88639e58f6"
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["Compress"] is True
    assert behavior["AllowedMethods"]["Items"] == ["GET", "HEAD"]
    assert "ForwardedValues" not in behavior and "MinTTL" not in behavior  # CloudFront rejects them with a policy
    assert sent["HttpVersion"] == "http2and3"
    assert sent["PriceClass"] == "PriceClass_100"
    assert sent["Comment"] == "railsdeploy production assets"
    assert sent["Enabled"] is True
    assert sent["IsIPV6Enabled"] is True


def test_create_tags_the_distribution_in_the_same_request(run):
    stub = CloudFrontStub()
    stub.reply("list_distributions", distribution_list())
    stub.reply(
        "create_distribution_with_tags", {"Distribution": distribution(DIST_ID, placeholder_config()), "ETag": "E"}
    )
    stub.reply("list_tags_for_resource", tag_list(TAGS))

    result = run(ARGS, stub)

    tags = stub.sent("CreateDistributionWithTags")["DistributionConfigWithTags"]["Tags"]["Items"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == sorted(TAGS.items())
    assert stub.operations() == ["ListDistributions", "CreateDistributionWithTags", "ListTagsForResource"]
    assert result["id"] == DIST_ID
    assert result["arn"] == ARN
    assert result["domain_name"] == f"{DIST_ID.lower()}.cloudfront.net"
    assert result["tags"] == TAGS


def test_create_without_tags_uses_create_distribution(run):
    args = {key: value for key, value in ARGS.items() if key != "tags"}
    sent = created(run, args)
    assert sent["Origins"]["Items"][0]["OriginAccessControlId"] == OAC_ID


def test_create_in_check_mode_sends_nothing(run):
    stub = CloudFrontStub().reply("list_distributions", distribution_list())

    result = run(ARGS, stub, check_mode=True, diff=True)

    assert result["changed"] is True
    assert result["changes"] == ["created"]
    assert stub.operations() == ["ListDistributions"]
    assert result["id"] == ""
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["origins"][0]["origin_access_control_id"] == OAC_ID


def test_create_with_wait_returns_the_deployed_distribution(run):
    stub = CloudFrontStub()
    stub.reply("list_distributions", distribution_list())
    stub.reply(
        "create_distribution_with_tags", {"Distribution": distribution(DIST_ID, placeholder_config()), "ETag": "E"}
    )
    stub.reply("get_distribution", {"Distribution": distribution(DIST_ID, placeholder_config(), "Deployed")})  # waiter
    stub.reply("get_distribution", {"Distribution": distribution(DIST_ID, placeholder_config(), "Deployed")})
    stub.reply("list_tags_for_resource", tag_list(TAGS))

    result = run({**ARGS, "wait": True}, stub)

    assert result["status"] == "Deployed"


# -- second runs ---------------------------------------------------------------------------------------------------


def test_second_run_with_the_same_options_sends_no_update(run):
    reported = aws_reported_config(created(run))
    stub = existing(CloudFrontStub(), reported, TAGS)

    result = run(ARGS, stub)

    assert result["changed"] is False, result["changes"]
    assert stub.operations() == READ_ONLY
    assert result["id"] == DIST_ID
    assert result["distribution_config"]["origins"]["items"][0]["origin_access_control_id"] == OAC_ID


@pytest.mark.parametrize(
    ("option", "value", "field", "change"),
    [
        ("comment", "assets for www", "Comment", "comment"),
        ("price_class", "PriceClass_All", "PriceClass", "price_class"),
        ("http_version", "http2", "HttpVersion", "http_version"),
        ("enabled", False, "Enabled", "enabled"),
    ],
)
def test_a_changed_setting_sends_update_distribution_with_the_etag(run, option, value, field, change):
    reported = aws_reported_config(created(run))
    reported["Aliases"] = {"Quantity": 1, "Items": ["cdn.example.com"]}  # set outside the module: must be kept
    stub = existing(CloudFrontStub(), reported, TAGS, etag="ETAG-CURRENT")
    stub.reply("update_distribution", {"Distribution": distribution(DIST_ID, reported), "ETag": "ETAG-NEXT"})

    result = run({**ARGS, option: value}, stub)

    assert result["changed"] is True
    assert result["changes"] == [change]
    assert stub.operations() == [*READ_ONLY, "UpdateDistribution"]
    update = stub.sent("UpdateDistribution")
    assert update["Id"] == DIST_ID
    assert update["IfMatch"] == "ETAG-CURRENT"
    assert update["DistributionConfig"][field] == value
    expected = copy.deepcopy(reported)
    expected[field] = value
    assert update["DistributionConfig"] == expected  # only that field differs; aliases etc. untouched


def test_comment_not_given_is_left_as_it_is(run):
    reported = aws_reported_config(created(run))
    reported["Comment"] = "edited in the console"
    stub = existing(CloudFrontStub(), reported, TAGS)

    result = run({key: value for key, value in ARGS.items() if key != "comment"}, stub)

    assert result["changed"] is False
    assert "UpdateDistribution" not in stub.operations()


def test_a_new_oac_and_origin_path_replace_the_origin(run):
    reported = aws_reported_config(created(run))
    stub = existing(CloudFrontStub(), reported, TAGS)
    stub.reply("update_distribution", {"Distribution": distribution(DIST_ID, reported), "ETag": "ETAG2"})

    result = run({**ARGS, "origin_access_control_id": "ENEWOAC", "origin_path": "/staging/"}, stub)

    assert result["changes"] == ["origins"]
    origin = stub.sent("UpdateDistribution")["DistributionConfig"]["Origins"]["Items"][0]
    assert origin["OriginAccessControlId"] == "ENEWOAC"
    assert origin["OriginPath"] == "/staging"
    assert origin["ConnectionAttempts"] == 3  # unmanaged origin fields survive


def test_an_oai_origin_is_switched_to_the_oac(run):
    reported = aws_reported_config(created(run))
    origin = reported["Origins"]["Items"][0]
    origin["OriginAccessControlId"] = ""
    origin["S3OriginConfig"] = {"OriginAccessIdentity": "origin-access-identity/cloudfront/E74FTE3EXAMPLE"}
    stub = existing(CloudFrontStub(), reported, TAGS)
    stub.reply("update_distribution", {"Distribution": distribution(DIST_ID, reported), "ETag": "ETAG2"})

    run(ARGS, stub)

    sent = stub.sent("UpdateDistribution")["DistributionConfig"]["Origins"]["Items"][0]
    assert sent["OriginAccessControlId"] == OAC_ID
    assert sent["S3OriginConfig"] == {"OriginAccessIdentity": ""}


def test_legacy_cache_settings_are_dropped_on_update(run):
    reported = aws_reported_config(created(run))
    reported["DefaultCacheBehavior"].pop("CachePolicyId")
    reported["DefaultCacheBehavior"]["ForwardedValues"] = {"QueryString": False, "Cookies": {"Forward": "none"}}
    reported["DefaultCacheBehavior"].update(MinTTL=0, DefaultTTL=86400, MaxTTL=31536000)
    stub = existing(CloudFrontStub(), reported, TAGS)
    stub.reply("update_distribution", {"Distribution": distribution(DIST_ID, reported), "ETag": "ETAG2"})

    result = run(ARGS, stub)

    assert result["changes"] == ["default_cache_behavior.cache_policy_id"]
    behavior = stub.sent("UpdateDistribution")["DistributionConfig"]["DefaultCacheBehavior"]
    assert behavior["CachePolicyId"] == CACHING_OPTIMIZED_POLICY_ID
    assert not {"ForwardedValues", "MinTTL", "DefaultTTL", "MaxTTL"} & set(behavior)


def test_changed_tags_are_tagged_without_touching_the_config(run):
    reported = aws_reported_config(created(run))
    stub = existing(CloudFrontStub(), reported, {**TAGS, "Owner": "someone"})
    stub.reply("untag_resource", {})
    stub.reply("tag_resource", {})

    result = run({**ARGS, "tags": {**TAGS, "Environment": "staging"}}, stub)

    assert result["changes"] == ["tags"]
    assert stub.operations() == [*READ_ONLY, "UntagResource", "TagResource"]
    assert stub.sent("UntagResource") == {"Resource": ARN, "TagKeys": {"Items": ["Owner"]}}
    assert stub.sent("TagResource")["Tags"] == {"Items": [{"Key": "Environment", "Value": "staging"}]}
    assert result["tags"] == {**TAGS, "Environment": "staging"}


def test_purge_tags_false_keeps_other_tags(run):
    reported = aws_reported_config(created(run))
    stub = existing(CloudFrontStub(), reported, {**TAGS, "Owner": "someone"})

    result = run({**ARGS, "purge_tags": False}, stub)

    assert result["changed"] is False
    assert stub.operations() == READ_ONLY


def test_change_in_check_mode_is_reported_not_sent(run):
    reported = aws_reported_config(created(run))
    stub = existing(CloudFrontStub(), reported, TAGS)

    result = run({**ARGS, "price_class": "PriceClass_200"}, stub, check_mode=True, diff=True)

    assert result["changed"] is True
    assert stub.operations() == READ_ONLY
    assert result["diff"]["before"]["price_class"] == "PriceClass_100"
    assert result["diff"]["after"]["price_class"] == "PriceClass_200"
    assert result["distribution_config"]["price_class"] == "PriceClass_200"


def test_endpoint_that_drops_the_oac_gets_an_update_and_a_warning(run):
    """What happens against moto 5.2.5, which does not store OriginAccessControlId."""
    reported = aws_reported_config(created(run))
    dropped = copy.deepcopy(reported)
    del dropped["Origins"]["Items"][0]["OriginAccessControlId"]
    del dropped["Origins"]["Items"][0]["S3OriginConfig"]
    stub = existing(CloudFrontStub(), dropped, TAGS)
    stub.reply("update_distribution", {"Distribution": distribution(DIST_ID, dropped), "ETag": "ETAG2"})

    result = run(ARGS, stub)

    assert result["changes"] == ["origins"]
    assert (
        stub.sent("UpdateDistribution")["DistributionConfig"]["Origins"]["Items"][0]["OriginAccessControlId"] == OAC_ID
    )
    assert any("OriginAccessControlId" in message for message in warning_messages(result))


# -- lookup --------------------------------------------------------------------------------------------------------


def test_lookup_reads_the_distribution_on_the_bucket_first(run):
    reported = aws_reported_config(created(run))
    other = aws_reported_config(copy.deepcopy(reported))
    other["CallerReference"] = "someone-else"
    other["Origins"]["Items"][0]["DomainName"] = "elsewhere.s3.us-west-2.amazonaws.com"
    stub = CloudFrontStub()
    stub.reply("list_distributions", distribution_list(summary("EOTHER", other), summary(DIST_ID, reported)))
    stub.reply("get_distribution_config", {"DistributionConfig": reported, "ETag": "E1"})
    stub.reply("list_tags_for_resource", tag_list(TAGS))

    result = run(ARGS, stub)

    assert stub.requests[1] == ("GetDistributionConfig", {"Id": DIST_ID})  # one read, not one per distribution
    assert result["changed"] is False


def test_a_distribution_with_another_caller_reference_is_not_adopted(run):
    reported = aws_reported_config(created(run))
    reported["CallerReference"] = "someone-else"
    stub = CloudFrontStub()
    stub.reply("list_distributions", distribution_list(summary("EOTHER", reported)))
    stub.reply("get_distribution_config", {"DistributionConfig": reported, "ETag": "E1"})
    stub.reply(
        "create_distribution_with_tags", {"Distribution": distribution(DIST_ID, placeholder_config()), "ETag": "E"}
    )
    stub.reply("list_tags_for_resource", tag_list(TAGS))

    result = run(ARGS, stub)

    assert result["changes"] == ["created"]
    sent = stub.sent("CreateDistributionWithTags")["DistributionConfigWithTags"]["DistributionConfig"]
    assert sent["CallerReference"] == ARGS["caller_reference"]


# -- deletion ------------------------------------------------------------------------------------------------------


def test_absent_disables_waits_and_deletes_with_the_latest_etag(run):
    reported = aws_reported_config(created(run))
    stub = existing(CloudFrontStub(), reported, TAGS, etag="ETAG1")
    disabled = dict(reported, Enabled=False)
    stub.reply("update_distribution", {"Distribution": distribution(DIST_ID, disabled), "ETag": "ETAG2"})
    stub.reply("get_distribution", {"Distribution": distribution(DIST_ID, disabled, "Deployed")})  # waiter
    stub.reply("get_distribution_config", {"DistributionConfig": disabled, "ETag": "ETAG3"})
    stub.reply("delete_distribution", {})

    result = run({"caller_reference": ARGS["caller_reference"], "state": "absent"}, stub)

    assert result["changed"] is True
    assert stub.operations() == [
        *READ_ONLY,
        "UpdateDistribution",
        "GetDistribution",
        "GetDistributionConfig",
        "DeleteDistribution",
    ]
    update = stub.sent("UpdateDistribution")
    assert update["IfMatch"] == "ETAG1"
    assert update["DistributionConfig"]["Enabled"] is False
    assert stub.sent("DeleteDistribution") == {"Id": DIST_ID, "IfMatch": "ETAG3"}
    assert result["id"] == ""


def test_absent_when_missing_changes_nothing(run):
    stub = CloudFrontStub().reply("list_distributions", distribution_list())

    result = run({"caller_reference": ARGS["caller_reference"], "state": "absent"}, stub)

    assert result["changed"] is False
    assert stub.operations() == ["ListDistributions"]


def test_absent_in_check_mode_sends_nothing(run):
    reported = aws_reported_config(created(run))
    stub = existing(CloudFrontStub(), reported, TAGS)

    result = run({"caller_reference": ARGS["caller_reference"], "state": "absent"}, stub, check_mode=True)

    assert result["changed"] is True
    assert stub.operations() == READ_ONLY


# -- input errors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"origin_bucket": "Assets_Bucket"}, "is not an S3 bucket name"),
        ({"origin_bucket": "assets.example.com"}, "contains dots"),
        ({"origin_access_control_id": ""}, "origin_access_control_id is empty"),
        ({"caller_reference": " "}, "caller_reference must not be empty"),
        ({"origin_path": "/a/../b"}, "must not contain"),
    ],
)
def test_bad_input_fails_with_the_reason(run, args, message):
    stub = CloudFrontStub()  # rejected before any request

    result = run({**ARGS, **args}, stub)

    assert result["failed"] is True
    assert message in result["msg"]


# -- aliases and certificate -------------------------------------------------------------------------------------

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/8f1d2c3b-4a5e-6f70-8192-a3b4c5d6e7f8"
NAMES = ["assets.example.com", "static.example.com"]
ACM_CERTIFICATE = {
    "ACMCertificateArn": CERT,
    "SSLSupportMethod": "sni-only",
    "MinimumProtocolVersion": "TLSv1.2_2021",
    "CloudFrontDefaultCertificate": False,
}
CUSTOM_NAME_ARGS = {**ARGS, "aliases": NAMES, "acm_certificate_arn": CERT}


def with_acm_certificate(config: dict, names=tuple(NAMES), certificate=ACM_CERTIFICATE) -> dict:
    """``config`` as AWS reports a distribution that serves ``names`` with an ACM certificate."""
    config = copy.deepcopy(config)
    config["Aliases"] = {"Quantity": len(names), "Items": list(names)}
    config["ViewerCertificate"] = {**certificate, "CertificateSource": "acm"}
    return config


def test_create_with_aliases_and_certificate_sends_both(run):
    sent = created(
        run, {**CUSTOM_NAME_ARGS, "aliases": ["Assets.Example.com", "static.example.com", "assets.example.com"]}
    )

    assert sent["Aliases"] == {"Quantity": 2, "Items": NAMES}  # lower case, each once
    assert sent["ViewerCertificate"] == ACM_CERTIFICATE  # no CertificateSource: CloudFront derives it


def test_create_with_a_chosen_security_policy(run):
    sent = created(run, {**CUSTOM_NAME_ARGS, "minimum_protocol_version": "TLSv1.3_2025"})

    assert sent["ViewerCertificate"]["MinimumProtocolVersion"] == "TLSv1.3_2025"


def test_create_without_aliases_or_certificate_keeps_cloudfront_defaults(run):
    stub = CloudFrontStub().reply("list_distributions", distribution_list())

    result = run(ARGS, stub, check_mode=True)

    assert result["distribution_config"]["aliases"] == {"quantity": 0}
    assert "viewer_certificate" not in result["distribution_config"]  # CloudFront's default certificate
    assert result["aliases"] == []
    assert result["viewer_certificate"]["default_certificate"] is True


def test_the_default_certificate_is_replaced_by_the_acm_certificate(run):
    reported = aws_reported_config(created(run))  # default certificate: vip, TLSv1
    stub = existing(CloudFrontStub(), reported, TAGS, etag="ETAG-CURRENT")
    updated = with_acm_certificate(reported)
    stub.reply("update_distribution", {"Distribution": distribution(DIST_ID, updated), "ETag": "ETAG-NEXT"})

    result = run(CUSTOM_NAME_ARGS, stub, diff=True)

    assert result["changed"] is True
    assert result["changes"] == ["aliases", "viewer_certificate"]
    assert stub.operations() == [*READ_ONLY, "UpdateDistribution"]
    update = stub.sent("UpdateDistribution")
    assert update["IfMatch"] == "ETAG-CURRENT"
    expected = copy.deepcopy(reported)
    expected["Aliases"] = {"Quantity": 2, "Items": NAMES}
    expected["ViewerCertificate"] = ACM_CERTIFICATE
    assert update["DistributionConfig"] == expected  # nothing else touched
    assert result["diff"]["before"]["aliases"] == []
    assert result["diff"]["after"]["aliases"] == NAMES
    assert result["diff"]["before"]["viewer_certificate"] == {
        "acm_certificate_arn": "",
        "minimum_protocol_version": "TLSv1",
        "ssl_support_method": "",
        "default_certificate": True,
    }
    assert result["diff"]["after"]["viewer_certificate"] == {
        "acm_certificate_arn": CERT,
        "minimum_protocol_version": "TLSv1.2_2021",
        "ssl_support_method": "sni-only",
        "default_certificate": False,
    }
    assert result["aliases"] == NAMES
    assert result["viewer_certificate"]["acm_certificate_arn"] == CERT


def test_second_run_with_the_same_aliases_and_certificate_sends_no_update(run):
    reported = aws_reported_config(created(run, CUSTOM_NAME_ARGS))
    reported["ViewerCertificate"]["CertificateSource"] = "acm"  # reported, never sent
    reported["Aliases"]["Items"].reverse()  # order means nothing

    stub = existing(CloudFrontStub(), reported, TAGS)
    result = run(CUSTOM_NAME_ARGS, stub, diff=True)

    assert result["changed"] is False, result["changes"]
    assert stub.operations() == READ_ONLY
    assert result["diff"]["before"] == result["diff"]["after"]
    assert result["aliases"] == list(reversed(NAMES))  # as CloudFront reports them


def test_a_new_security_policy_updates_only_the_certificate(run):
    reported = with_acm_certificate(aws_reported_config(created(run)))
    stub = existing(CloudFrontStub(), reported, TAGS)
    stub.reply("update_distribution", {"Distribution": distribution(DIST_ID, reported), "ETag": "ETAG2"})

    result = run({**CUSTOM_NAME_ARGS, "minimum_protocol_version": "TLSv1.3_2025"}, stub)

    assert result["changes"] == ["viewer_certificate"]
    sent = stub.sent("UpdateDistribution")["DistributionConfig"]
    assert sent["ViewerCertificate"] == {**ACM_CERTIFICATE, "MinimumProtocolVersion": "TLSv1.3_2025"}
    assert sent["Aliases"] == reported["Aliases"]


def test_aliases_and_certificate_not_given_are_kept(run):
    """Set outside the module (console, another tool): an update of other fields sends them back unchanged."""
    names = ["cdn.example.com"]
    certificate = {**ACM_CERTIFICATE, "MinimumProtocolVersion": "TLSv1.2_2019"}
    reported = with_acm_certificate(aws_reported_config(created(run)), names, certificate)
    stub = existing(CloudFrontStub(), reported, TAGS)
    stub.reply("update_distribution", {"Distribution": distribution(DIST_ID, reported), "ETag": "ETAG2"})

    result = run({**ARGS, "comment": "assets for www"}, stub, diff=True)

    assert result["changes"] == ["comment"]
    sent = stub.sent("UpdateDistribution")["DistributionConfig"]
    assert sent["Aliases"] == reported["Aliases"]
    assert sent["ViewerCertificate"] == reported["ViewerCertificate"]
    assert result["diff"]["after"]["aliases"] == names
    assert result["aliases"] == names
    assert result["viewer_certificate"]["minimum_protocol_version"] == "TLSv1.2_2019"


def test_aliases_and_certificate_not_given_are_no_change(run):
    reported = with_acm_certificate(aws_reported_config(created(run)), ["cdn.example.com"])
    stub = existing(CloudFrontStub(), reported, TAGS)

    result = run(ARGS, stub)

    assert result["changed"] is False
    assert stub.operations() == READ_ONLY
    assert result["aliases"] == ["cdn.example.com"]
    assert result["viewer_certificate"]["acm_certificate_arn"] == CERT


def test_back_to_the_default_certificate_without_aliases(run):
    reported = with_acm_certificate(aws_reported_config(created(run)))
    stub = existing(CloudFrontStub(), reported, TAGS)
    stub.reply("update_distribution", {"Distribution": distribution(DIST_ID, reported), "ETag": "ETAG2"})

    result = run({**ARGS, "aliases": [], "acm_certificate_arn": ""}, stub)

    assert result["changes"] == ["aliases", "viewer_certificate"]
    sent = stub.sent("UpdateDistribution")["DistributionConfig"]
    assert sent["Aliases"] == {"Quantity": 0}
    assert sent["ViewerCertificate"] == {"CloudFrontDefaultCertificate": True, "MinimumProtocolVersion": "TLSv1"}


def test_the_default_certificate_with_aliases_kept_fails_before_the_update(run):
    reported = with_acm_certificate(aws_reported_config(created(run)))
    stub = existing(CloudFrontStub(), reported, TAGS)

    result = run({**ARGS, "acm_certificate_arn": ""}, stub)

    assert result["failed"] is True
    assert "assets.example.com, static.example.com" in result["msg"]
    assert "aliases: []" in result["msg"]
    assert "UpdateDistribution" not in stub.operations()


def test_certificate_change_in_check_mode_is_reported_not_sent(run):
    reported = aws_reported_config(created(run))
    stub = existing(CloudFrontStub(), reported, TAGS)

    result = run(CUSTOM_NAME_ARGS, stub, check_mode=True, diff=True)

    assert result["changed"] is True
    assert result["changes"] == ["aliases", "viewer_certificate"]
    assert stub.operations() == READ_ONLY
    assert result["diff"]["after"]["viewer_certificate"]["acm_certificate_arn"] == CERT
    assert result["distribution_config"]["viewer_certificate"]["acm_certificate_arn"] == CERT
    assert result["aliases"] == NAMES


def test_create_with_aliases_in_check_mode_sends_nothing(run):
    stub = CloudFrontStub().reply("list_distributions", distribution_list())

    result = run(CUSTOM_NAME_ARGS, stub, check_mode=True, diff=True)

    assert result["changes"] == ["created"]
    assert stub.operations() == ["ListDistributions"]
    assert result["diff"]["after"]["aliases"] == NAMES
    assert result["diff"]["after"]["viewer_certificate"]["ssl_support_method"] == "sni-only"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"aliases": NAMES}, "aliases needs acm_certificate_arn"),
        ({"aliases": NAMES, "acm_certificate_arn": ""}, "aliases needs acm_certificate_arn"),
        (
            {"acm_certificate_arn": CERT.replace("us-east-1", "eu-west-1")},
            "CloudFront only uses ACM certificates from us-east-1",
        ),
        (
            {"acm_certificate_arn": "arn:aws:iam::123456789012:server-certificate/assets"},
            "acm_certificate_arn 'arn:aws:iam::123456789012:server-certificate/assets' is not the ARN of an ACM",
        ),
        ({"aliases": ["assets_example.com"], "acm_certificate_arn": CERT}, "'assets_example.com' is not a DNS name"),
        ({"aliases": ["assets.example.com."], "acm_certificate_arn": CERT}, "is not a DNS name"),
        ({"aliases": ["assets"], "acm_certificate_arn": CERT}, "is not a DNS name"),
        ({"aliases": ["a.*.example.com"], "acm_certificate_arn": CERT}, "is not a DNS name"),
        ({"aliases": ["-assets.example.com"], "acm_certificate_arn": CERT}, "is not a DNS name"),
        ({"minimum_protocol_version": "TLSv1.1_2016"}, "minimum_protocol_version must be one of"),
    ],
)
def test_bad_aliases_or_certificate_fail_before_any_request(run, args, message):
    stub = CloudFrontStub()

    result = run({**ARGS, **args}, stub)

    assert result["failed"] is True
    assert message in result["msg"]
    assert stub.operations() == []


def test_a_wildcard_alias_is_accepted(run):
    sent = created(run, {**CUSTOM_NAME_ARGS, "aliases": ["*.assets.example.com"]})

    assert sent["Aliases"] == {"Quantity": 1, "Items": ["*.assets.example.com"]}
