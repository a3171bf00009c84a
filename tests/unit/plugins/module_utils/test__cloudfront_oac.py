"""The pure config builders and comparators behind the CloudFront OAC modules."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.railsdeploy.aws.plugins.module_utils._cloudfront_oac import (
    CACHING_OPTIMIZED_POLICY_ID,
    acm_certificate_arn_error,
    alias_name_error,
    aliases_error,
    apply_settings,
    bucket_name_error,
    build_distribution_config,
    caller_reference_error,
    config_changes,
    desired_settings,
    managed_view,
    normalize_origin_path,
    oac_changes,
    oac_config,
    oac_desired,
    oac_name_error,
    order_candidates,
    s3_rest_domain,
)

SETTINGS_ARGS = dict(
    bucket="railsdeploy-assets",
    region="us-west-2",
    origin_path="production",
    origin_access_control_id="E2QWRUHEXAMPLE",
    comment="assets",
    price_class="PriceClass_100",
    http_version="http2and3",
    enabled=True,
    ipv6_enabled=True,
    cache_policy_id=CACHING_OPTIMIZED_POLICY_ID,
    viewer_protocol_policy="redirect-to-https",
    compress=True,
)


def settings(**overrides):
    return desired_settings(**{**SETTINGS_ARGS, **overrides})


def as_reported(config):
    """``config`` the way AWS reports it back: defaults filled in for the fields nobody set."""
    reported = copy.deepcopy(config)
    reported.update(
        Aliases={"Quantity": 1, "Items": ["cdn.example.com"]},
        Logging={"Enabled": False, "IncludeCookies": False, "Bucket": "", "Prefix": ""},
        ViewerCertificate={
            "ACMCertificateArn": "arn:aws:acm:us-east-1:1:certificate/x",
            "SSLSupportMethod": "sni-only",
        },
        WebACLId="",
    )
    for origin in reported["Origins"]["Items"]:
        origin.update(ConnectionAttempts=3, ConnectionTimeout=10, OriginShield={"Enabled": False})
    reported["DefaultCacheBehavior"].update(SmoothStreaming=False, FieldLevelEncryptionId="")
    return reported


# -- inputs --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bucket", "region", "expected"),
    [
        ("assets", "us-west-2", "assets.s3.us-west-2.amazonaws.com"),
        ("railsdeploy-lab-assets", "eu-central-1", "railsdeploy-lab-assets.s3.eu-central-1.amazonaws.com"),
        ("assets", "cn-north-1", "assets.s3.cn-north-1.amazonaws.com.cn"),
        ("assets", "us-gov-west-1", "assets.s3.us-gov-west-1.amazonaws.com"),
    ],
)
def test_s3_rest_domain_is_the_regional_rest_endpoint(bucket, region, expected):
    assert s3_rest_domain(bucket, region) == expected


@pytest.mark.parametrize("region", ["", "us-west", "US-WEST-2", "global"])
def test_s3_rest_domain_rejects_what_is_not_a_region(region):
    with pytest.raises(ValueError, match="not an AWS region"):
        s3_rest_domain("assets", region)


@pytest.mark.parametrize("bucket", ["abc", "railsdeploy-lab-assets", "a1-b2", "x" * 63])
def test_bucket_names_s3_accepts_pass(bucket):
    assert bucket_name_error(bucket) is None


@pytest.mark.parametrize(
    ("bucket", "reason"),
    [
        ("ab", "not an S3 bucket name"),
        ("x" * 64, "not an S3 bucket name"),
        ("Assets", "not an S3 bucket name"),
        ("-assets", "not an S3 bucket name"),
        ("assets_2", "not an S3 bucket name"),
        ("a..b", "not an S3 bucket name"),
        ("assets.example.com", "contains dots"),
    ],
)
def test_bucket_names_that_cannot_be_the_origin_say_why(bucket, reason):
    assert reason in bucket_name_error(bucket)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (None, ""),
        ("", ""),
        ("/", ""),
        ("production", "/production"),
        ("/production/", "/production"),
        ("production//eu/", "/production/eu"),
        (" /production ", "/production"),
    ],
)
def test_origin_path_is_normalised_to_cloudfront_spelling(path, expected):
    assert normalize_origin_path(path) == expected


@pytest.mark.parametrize("path", ["/a/../b", "./a", "x" * 256])
def test_origin_path_rejects_relative_segments_and_long_paths(path):
    with pytest.raises(ValueError):
        normalize_origin_path(path)


@pytest.mark.parametrize(
    ("reference", "ok"),
    [("railsdeploy-production-assets", True), ("", False), ("   ", False), ("r" * 129, False)],
)
def test_caller_reference_must_be_usable_as_an_identity(reference, ok):
    assert (caller_reference_error(reference) is None) is ok


@pytest.mark.parametrize(("name", "ok"), [("a", True), ("n" * 64, True), ("", False), ("n" * 65, False)])
def test_oac_name_length(name, ok):
    assert (oac_name_error(name) is None) is ok


# -- Origin Access Control -----------------------------------------------------------------------------------------

CURRENT_OAC = {
    "Name": "assets",
    "Description": "reads the bucket",
    "SigningProtocol": "sigv4",
    "SigningBehavior": "always",
    "OriginAccessControlOriginType": "s3",
}


@pytest.mark.parametrize(
    ("description", "signing_behavior", "expected_changes"),
    [
        (None, "always", []),  # description not given: kept
        ("reads the bucket", "always", []),
        ("new words", "always", ["Description"]),
        (None, "no-override", ["SigningBehavior"]),
        ("", "never", ["Description", "SigningBehavior"]),
    ],
)
def test_oac_changes_only_what_was_asked(description, signing_behavior, expected_changes):
    wanted = oac_config("assets", description, "s3", signing_behavior, "sigv4")
    desired = oac_desired(CURRENT_OAC, wanted)
    assert oac_changes(CURRENT_OAC, desired) == expected_changes


def test_new_oac_without_description_gets_an_empty_one():
    desired = oac_desired(None, oac_config("assets", None, "s3", "always", "sigv4"))
    assert desired == {**CURRENT_OAC, "Description": ""}


# -- distribution config -------------------------------------------------------------------------------------------


def test_new_distribution_config_reads_the_bucket_through_the_oac_only():
    config = build_distribution_config("ref-1", settings())

    assert config["CallerReference"] == "ref-1"
    assert config["Origins"] == {
        "Quantity": 1,
        "Items": [
            {
                "Id": "s3-railsdeploy-assets",
                "DomainName": "railsdeploy-assets.s3.us-west-2.amazonaws.com",
                "OriginPath": "/production",
                "S3OriginConfig": {"OriginAccessIdentity": ""},
                "OriginAccessControlId": "E2QWRUHEXAMPLE",
            }
        ],
    }
    behavior = config["DefaultCacheBehavior"]
    assert behavior["TargetOriginId"] == "s3-railsdeploy-assets"
    assert behavior["CachePolicyId"] == "658327ea-f89d-4fab-a63d-7e88639e58f6"
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["Compress"] is True
    assert behavior["AllowedMethods"] == {
        "Quantity": 2,
        "Items": ["GET", "HEAD"],
        "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]},
    }
    assert (config["HttpVersion"], config["PriceClass"], config["Comment"]) == ("http2and3", "PriceClass_100", "assets")


def test_new_distribution_without_comment_gets_an_empty_one():
    assert build_distribution_config("ref-1", settings(comment=None))["Comment"] == ""


def test_config_as_created_and_reported_back_has_no_changes():
    reported = as_reported(build_distribution_config("ref-1", settings()))
    assert config_changes(reported, settings()) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"comment": "other"}, ["comment"]),
        ({"comment": None}, []),
        ({"price_class": "PriceClass_All"}, ["price_class"]),
        ({"http_version": "http2"}, ["http_version"]),
        ({"enabled": False}, ["enabled"]),
        ({"ipv6_enabled": False}, ["ipv6_enabled"]),
        ({"origin_path": "/staging"}, ["origins"]),
        ({"origin_path": "/production/"}, []),
        ({"origin_access_control_id": "ENEW"}, ["origins"]),
        ({"bucket": "other-bucket"}, ["origins", "default_cache_behavior.target_origin_id"]),
        ({"region": "eu-west-1"}, ["origins"]),
        ({"cache_policy_id": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"}, ["default_cache_behavior.cache_policy_id"]),
        ({"viewer_protocol_policy": "https-only"}, ["default_cache_behavior.viewer_protocol_policy"]),
        ({"compress": False}, ["default_cache_behavior.compress"]),
        ({"comment": "other", "price_class": "PriceClass_200"}, ["comment", "price_class"]),
    ],
)
def test_config_changes_names_each_differing_field(overrides, expected):
    reported = as_reported(build_distribution_config("ref-1", settings()))
    assert config_changes(reported, settings(**overrides)) == expected


def test_an_origin_reported_without_oac_id_differs():
    """moto 5.2.5 drops OriginAccessControlId and S3OriginConfig: that reads as "no OAC", a real difference."""
    reported = as_reported(build_distribution_config("ref-1", settings()))
    origin = reported["Origins"]["Items"][0]
    del origin["OriginAccessControlId"], origin["S3OriginConfig"]
    assert config_changes(reported, settings()) == ["origins"]


def test_legacy_cache_settings_beside_the_policy_are_not_a_change_but_are_dropped():
    reported = as_reported(build_distribution_config("ref-1", settings()))
    reported["DefaultCacheBehavior"].update(
        ForwardedValues={"QueryString": False, "Cookies": {"Forward": "none"}}, MinTTL=0, DefaultTTL=0, MaxTTL=0
    )
    assert config_changes(reported, settings()) == []
    merged = apply_settings(reported, settings())["DefaultCacheBehavior"]
    assert not {"ForwardedValues", "MinTTL", "DefaultTTL", "MaxTTL"} & set(merged)


def test_extra_origins_are_a_change_and_are_removed():
    reported = as_reported(build_distribution_config("ref-1", settings()))
    reported["Origins"]["Items"].append({"Id": "app", "DomainName": "app.example.com", "CustomOriginConfig": {}})
    reported["Origins"]["Quantity"] = 2
    assert config_changes(reported, settings()) == ["origins"]
    assert [o["Id"] for o in apply_settings(reported, settings())["Origins"]["Items"]] == ["s3-railsdeploy-assets"]


def test_apply_settings_keeps_what_the_module_does_not_manage():
    reported = as_reported(build_distribution_config("ref-1", settings()))
    reported["Origins"]["Items"][0]["CustomHeaders"] = {
        "Quantity": 1,
        "Items": [{"HeaderName": "X", "HeaderValue": "y"}],
    }

    merged = apply_settings(reported, settings(comment="new", origin_access_control_id="ENEW"))

    assert merged["Comment"] == "new"
    assert merged["Aliases"] == reported["Aliases"]
    assert merged["ViewerCertificate"] == reported["ViewerCertificate"]
    assert merged["Logging"] == reported["Logging"]
    origin = merged["Origins"]["Items"][0]
    assert origin["OriginAccessControlId"] == "ENEW"
    assert origin["ConnectionAttempts"] == 3
    assert origin["CustomHeaders"]["Quantity"] == 1
    assert merged["DefaultCacheBehavior"]["SmoothStreaming"] is False
    assert reported["Comment"] == "assets"  # the input is not modified


def test_apply_settings_turns_a_custom_origin_into_the_s3_origin():
    reported = as_reported(build_distribution_config("ref-1", settings()))
    origin = reported["Origins"]["Items"][0]
    del origin["S3OriginConfig"]
    origin["CustomOriginConfig"] = {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only"}

    merged = apply_settings(reported, settings())["Origins"]["Items"][0]

    assert "CustomOriginConfig" not in merged
    assert merged["S3OriginConfig"] == {"OriginAccessIdentity": ""}


def test_managed_view_reads_missing_fields_as_empty():
    view = managed_view({"Origins": {"Items": [{"Id": "o", "DomainName": "d"}]}, "DefaultCacheBehavior": {}})
    assert view["origins"][0]["origin_access_control_id"] == ""
    assert view["origins"][0]["origin_access_identity"] == ""
    assert view["comment"] == ""
    assert managed_view(None) == {}


def test_candidates_with_the_bucket_origin_come_first_in_listed_order():
    def summary(dist_id, domain):
        return {"Id": dist_id, "Origins": {"Items": [{"DomainName": domain}]}}

    summaries = [
        summary("A", "other.s3.us-west-2.amazonaws.com"),
        summary("B", "assets.s3.us-west-2.amazonaws.com"),
        {"Id": "C", "Origins": {"Quantity": 0}},
        summary("D", "assets.s3.us-west-2.amazonaws.com"),
    ]
    ordered = order_candidates(summaries, "assets.s3.us-west-2.amazonaws.com")
    assert [s["Id"] for s in ordered] == ["B", "D", "A", "C"]


# -- aliases and viewer certificate --------------------------------------------------------------------------------

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/8f1d2c3b-4a5e-6f70-8192-a3b4c5d6e7f8"
OTHER_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-0000-1111-2222-333344445555"
NAMES = ["assets.example.com", "static.example.com"]


def with_names(**overrides):
    return settings(aliases=NAMES, acm_certificate_arn=CERT, **overrides)


def reported_default_certificate():
    """A distribution as AWS reports it after creation without aliases or certificate."""
    reported = as_reported(build_distribution_config("ref-1", settings()))
    reported["Aliases"] = {"Quantity": 0}
    reported["ViewerCertificate"] = {
        "CloudFrontDefaultCertificate": True,
        "SSLSupportMethod": "vip",
        "MinimumProtocolVersion": "TLSv1",
        "CertificateSource": "cloudfront",
    }
    return reported


def reported_acm_certificate(names=NAMES, arn=CERT, policy="TLSv1.2_2021"):
    reported = reported_default_certificate()
    reported["Aliases"] = {"Quantity": len(names), "Items": list(names)}
    reported["ViewerCertificate"] = {
        "ACMCertificateArn": arn,
        "SSLSupportMethod": "sni-only",
        "MinimumProtocolVersion": policy,
        "CloudFrontDefaultCertificate": False,
        "CertificateSource": "acm",
    }
    return reported


def test_aliases_and_certificate_not_given_are_not_managed():
    wanted = settings()
    assert wanted["Aliases"] is None
    assert wanted["ViewerCertificate"] is None
    config = build_distribution_config("ref-1", wanted)
    assert config["Aliases"] == {"Quantity": 0}
    assert "ViewerCertificate" not in config  # CloudFront's default certificate
    assert managed_view(config)["viewer_certificate"]["default_certificate"] is True


def test_new_distribution_config_with_aliases_and_acm_certificate():
    config = build_distribution_config("ref-1", with_names(minimum_protocol_version="TLSv1.2_2019"))

    assert config["Aliases"] == {"Quantity": 2, "Items": NAMES}
    assert config["ViewerCertificate"] == {
        "ACMCertificateArn": CERT,
        "SSLSupportMethod": "sni-only",
        "MinimumProtocolVersion": "TLSv1.2_2019",
        "CloudFrontDefaultCertificate": False,
    }


def test_empty_aliases_and_certificate_mean_none_and_the_default_certificate():
    wanted = settings(aliases=[], acm_certificate_arn="", minimum_protocol_version="TLSv1.3_2025")
    assert wanted["Aliases"] == {"Quantity": 0}
    # CloudFront fixes TLSv1 for its *.cloudfront.net certificate, whatever policy is asked for.
    assert wanted["ViewerCertificate"] == {"CloudFrontDefaultCertificate": True, "MinimumProtocolVersion": "TLSv1"}


@pytest.mark.parametrize(
    ("reported", "overrides", "expected"),
    [
        pytest.param(reported_default_certificate(), {}, [], id="default-unmanaged"),
        pytest.param(
            reported_default_certificate(), {"aliases": [], "acm_certificate_arn": ""}, [], id="default-as-asked"
        ),
        pytest.param(
            reported_default_certificate(),
            {"aliases": NAMES, "acm_certificate_arn": CERT},
            ["aliases", "viewer_certificate"],
            id="default-to-acm",
        ),
        pytest.param(reported_acm_certificate(), {"aliases": NAMES, "acm_certificate_arn": CERT}, [], id="acm-same"),
        pytest.param(
            reported_acm_certificate(NAMES[::-1]),
            {"aliases": NAMES, "acm_certificate_arn": CERT},
            [],
            id="aliases-other-order",
        ),
        pytest.param(
            reported_acm_certificate(["Assets.Example.com"]), {"aliases": ["assets.example.com"]}, [], id="alias-case"
        ),
        pytest.param(reported_acm_certificate(), {}, [], id="acm-unmanaged"),
        pytest.param(reported_acm_certificate(), {"aliases": NAMES}, [], id="certificate-unmanaged"),
        pytest.param(reported_acm_certificate(), {"aliases": NAMES[:1]}, ["aliases"], id="alias-removed"),
        pytest.param(reported_acm_certificate(), {"aliases": []}, ["aliases"], id="aliases-emptied"),
        pytest.param(
            reported_acm_certificate(), {"acm_certificate_arn": OTHER_CERT}, ["viewer_certificate"], id="other-acm"
        ),
        pytest.param(
            reported_acm_certificate(),
            {"acm_certificate_arn": CERT, "minimum_protocol_version": "TLSv1.3_2025"},
            ["viewer_certificate"],
            id="other-policy",
        ),
        pytest.param(
            reported_acm_certificate(policy="TLSv1"),
            {"acm_certificate_arn": CERT},
            ["viewer_certificate"],
            id="old-policy-raised",
        ),
        pytest.param(
            reported_acm_certificate(),
            {"aliases": [], "acm_certificate_arn": ""},
            ["aliases", "viewer_certificate"],
            id="acm-to-default",
        ),
        pytest.param(
            reported_acm_certificate(),
            {"comment": "other", "acm_certificate_arn": OTHER_CERT},
            ["comment", "viewer_certificate"],
            id="with-comment",
        ),
    ],
)
def test_config_changes_for_aliases_and_certificate(reported, overrides, expected):
    assert config_changes(reported, settings(**overrides)) == expected


def test_apply_settings_replaces_the_whole_certificate_and_keeps_unmanaged_ones():
    reported = reported_default_certificate()
    reported["ViewerCertificate"]["IAMCertificateId"] = "ASCAEXAMPLE"

    merged = apply_settings(reported, with_names())

    assert merged["ViewerCertificate"] == {
        "ACMCertificateArn": CERT,
        "SSLSupportMethod": "sni-only",
        "MinimumProtocolVersion": "TLSv1.2_2021",
        "CloudFrontDefaultCertificate": False,
    }
    assert merged["Aliases"] == {"Quantity": 2, "Items": NAMES}
    assert apply_settings(reported, settings())["ViewerCertificate"] == reported["ViewerCertificate"]
    assert reported["Aliases"] == {"Quantity": 0}  # the input is not modified


@pytest.mark.parametrize(
    "certificate",
    [
        {"CloudFrontDefaultCertificate": True, "SSLSupportMethod": "vip", "MinimumProtocolVersion": "TLSv1"},  # AWS
        {  # moto 5.2: sni-only beside the default certificate
            "CloudFrontDefaultCertificate": True,
            "SSLSupportMethod": "sni-only",
            "MinimumProtocolVersion": "TLSv1",
            "ACMCertificateArn": "",
        },
        {"CloudFrontDefaultCertificate": "true", "MinimumProtocolVersion": "TLSv1"},
        {"CloudFrontDefaultCertificate": "True", "MinimumProtocolVersion": "TLSv1"},
    ],
)
def test_the_default_certificate_reads_the_same_however_reported(certificate):
    assert managed_view({"ViewerCertificate": certificate})["viewer_certificate"] == {
        "acm_certificate_arn": "",
        "minimum_protocol_version": "TLSv1",
        "ssl_support_method": "",
        "default_certificate": True,
    }


def test_booleans_reported_as_strings_are_normalised():
    config = reported_acm_certificate()
    config["ViewerCertificate"]["CloudFrontDefaultCertificate"] = "false"
    config.update(Enabled="true", IsIPV6Enabled="false")
    config["DefaultCacheBehavior"]["Compress"] = "false"

    view = managed_view(config)

    assert view["viewer_certificate"]["default_certificate"] is False
    assert view["viewer_certificate"]["acm_certificate_arn"] == CERT
    assert (view["enabled"], view["ipv6_enabled"], view["default_cache_behavior"]["compress"]) == (True, False, False)
    assert config_changes(config, with_names(ipv6_enabled=False, compress=False)) == []


def test_a_certificate_without_the_default_flag_is_the_default_only_without_an_arn():
    assert (
        managed_view({"ViewerCertificate": {"ACMCertificateArn": CERT}})["viewer_certificate"]["default_certificate"]
        is False
    )
    assert managed_view({"ViewerCertificate": {}})["viewer_certificate"]["default_certificate"] is True


@pytest.mark.parametrize(
    "name",
    ["assets.example.com", "*.example.com", "a.b.c.example.co.uk", "xn--bcher-kva.example", "Assets.Example.COM"],
)
def test_alias_names_that_are_dns_names_pass(name):
    assert alias_name_error(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "",
        "assets",
        "*.com",
        "*",
        "assets.example.com.",
        "assets..example.com",
        "assets_1.example.com",
        "-assets.example.com",
        "assets-.example.com",
        "a.*.example.com",
        "**.example.com",
        "https://assets.example.com",
        " assets.example.com",
        ("x" * 64) + ".example.com",
        ".".join(["a" * 60] * 5),
    ],
)
def test_alias_names_that_are_not_dns_names_say_so(name):
    assert "is not a DNS name" in alias_name_error(name)


@pytest.mark.parametrize(
    ("arn", "reason"),
    [
        (CERT, None),
        ("", None),
        (CERT.replace("us-east-1", "eu-central-1"), "CloudFront only uses ACM certificates from us-east-1"),
        (
            "arn:aws-cn:acm:cn-north-1:123456789012:certificate/abc",
            "CloudFront only uses ACM certificates from us-east-1",
        ),
        ("arn:aws:iam::123456789012:server-certificate/assets", "is not the ARN of an ACM certificate"),
        ("arn:aws:acm:us-east-1:1234:certificate/abc", "is not the ARN of an ACM certificate"),
        ("8f1d2c3b-4a5e-6f70-8192-a3b4c5d6e7f8", "is not the ARN of an ACM certificate"),
    ],
)
def test_acm_certificate_arn_must_be_an_acm_certificate_in_us_east_1(arn, reason):
    error = acm_certificate_arn_error(arn)
    if reason is None:
        assert error is None
    else:
        assert reason in error


@pytest.mark.parametrize(
    ("aliases", "arn", "reason"),
    [
        (None, None, None),
        ([], None, None),
        ([], "", None),
        (NAMES, CERT, None),
        (NAMES, None, "aliases needs acm_certificate_arn"),
        (NAMES, "", "aliases needs acm_certificate_arn"),
        (["bad_name.example.com"], CERT, "is not a DNS name"),
    ],
)
def test_aliases_need_an_acm_certificate(aliases, arn, reason):
    error = aliases_error(aliases, arn)
    if reason is None:
        assert error is None
    else:
        assert reason in error
