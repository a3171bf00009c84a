"""cloudfront_origin_access_control: the requests it sends to CloudFront, checked with botocore's Stubber."""

from __future__ import annotations

import pytest
from _cloudfront_stubs import CloudFrontStub, oac_answer, oac_list, run_module

from ansible_collections.railsdeploy.aws.plugins.modules import cloudfront_origin_access_control

NAME = "railsdeploy-production-assets"
OAC_ID = "E2QWRUHEXAMPLE"
CONFIG = {
    "Name": NAME,
    "Description": "assets",
    "SigningProtocol": "sigv4",
    "SigningBehavior": "always",
    "OriginAccessControlOriginType": "s3",
}


@pytest.fixture
def run(monkeypatch, capsys):
    def _run(args, stub, **kwargs):
        return run_module(cloudfront_origin_access_control.main, args, stub, monkeypatch, capsys, **kwargs)

    return _run


def existing(config=CONFIG, etag="ETAG1") -> CloudFrontStub:
    stub = CloudFrontStub()
    stub.reply("list_origin_access_controls", oac_list((OAC_ID, config)))
    stub.reply("get_origin_access_control", oac_answer(OAC_ID, config, etag))
    return stub


def test_create_sends_sigv4_always_s3(run):
    stub = CloudFrontStub()
    stub.reply("list_origin_access_controls", oac_list())
    stub.reply("create_origin_access_control", oac_answer(OAC_ID, {**CONFIG, "Description": ""}, "ETAG1"))

    result = run({"name": NAME}, stub)

    assert result["changed"] is True
    assert stub.sent("CreateOriginAccessControl") == {
        "OriginAccessControlConfig": {
            "Name": NAME,
            "Description": "",
            "SigningProtocol": "sigv4",
            "SigningBehavior": "always",
            "OriginAccessControlOriginType": "s3",
        }
    }
    assert result["id"] == OAC_ID
    assert result["etag"] == "ETAG1"
    assert result["origin_access_control_config"]["signing_behavior"] == "always"


def test_same_settings_again_sends_nothing(run):
    stub = existing()

    result = run({"name": NAME, "description": "assets"}, stub)

    assert result["changed"] is False
    assert stub.operations() == ["ListOriginAccessControls", "GetOriginAccessControl"]
    assert result["id"] == OAC_ID
    assert result["etag"] == "ETAG1"


def test_description_not_given_is_kept(run):
    stub = existing()

    result = run({"name": NAME}, stub)

    assert result["changed"] is False
    assert result["origin_access_control_config"]["description"] == "assets"


@pytest.mark.parametrize(
    ("args", "field", "value"),
    [
        ({"description": "new words"}, "Description", "new words"),
        ({"signing_behavior": "no-override"}, "SigningBehavior", "no-override"),
    ],
)
def test_a_changed_setting_is_updated_with_the_etag(run, args, field, value):
    stub = existing(etag="ETAG-CURRENT")
    stub.reply("update_origin_access_control", oac_answer(OAC_ID, {**CONFIG, field: value}, "ETAG-NEXT"))

    result = run({"name": NAME, **args}, stub, diff=True)

    assert result["changed"] is True
    update = stub.sent("UpdateOriginAccessControl")
    assert update["Id"] == OAC_ID
    assert update["IfMatch"] == "ETAG-CURRENT"
    assert update["OriginAccessControlConfig"] == {**CONFIG, field: value}
    assert result["etag"] == "ETAG-NEXT"
    assert result["diff"]["before"] != result["diff"]["after"]


def test_check_mode_reports_the_change_and_sends_nothing(run):
    stub = existing()

    result = run({"name": NAME, "description": "new words"}, stub, check_mode=True)

    assert result["changed"] is True
    assert stub.operations() == ["ListOriginAccessControls", "GetOriginAccessControl"]
    assert result["origin_access_control_config"]["description"] == "new words"


def test_check_mode_create_sends_nothing(run):
    stub = CloudFrontStub().reply("list_origin_access_controls", oac_list())

    result = run({"name": NAME}, stub, check_mode=True)

    assert result["changed"] is True
    assert result["id"] == ""
    assert stub.operations() == ["ListOriginAccessControls"]


def test_only_the_oac_with_that_name_is_used(run):
    other = {**CONFIG, "Name": "someone-else"}
    stub = CloudFrontStub()
    stub.reply("list_origin_access_controls", oac_list(("EOTHER", other), (OAC_ID, CONFIG)))
    stub.reply("get_origin_access_control", oac_answer(OAC_ID, CONFIG, "ETAG1"))

    result = run({"name": NAME}, stub)

    assert stub.sent("GetOriginAccessControl") == {"Id": OAC_ID}
    assert result["id"] == OAC_ID


def test_absent_deletes_with_the_etag(run):
    stub = existing(etag="ETAG7")
    stub.reply("delete_origin_access_control", {})

    result = run({"name": NAME, "state": "absent"}, stub)

    assert result["changed"] is True
    assert stub.sent("DeleteOriginAccessControl") == {"Id": OAC_ID, "IfMatch": "ETAG7"}
    assert result["id"] == ""


def test_absent_when_missing_changes_nothing(run):
    stub = CloudFrontStub().reply("list_origin_access_controls", oac_list())

    result = run({"name": NAME, "state": "absent"}, stub)

    assert result["changed"] is False
    assert stub.operations() == ["ListOriginAccessControls"]


def test_deleting_an_oac_in_use_says_what_to_do(run):
    stub = existing()
    stub.error("delete_origin_access_control", "OriginAccessControlInUse", status=409)

    result = run({"name": NAME, "state": "absent"}, stub)

    assert result["failed"] is True
    assert "still attached to a distribution" in result["msg"]


def test_a_name_longer_than_cloudfront_allows_is_refused(run):
    result = run({"name": "n" * 65}, CloudFrontStub())

    assert result["failed"] is True
    assert "at most 64" in result["msg"]
