"""rails_release_info: the serving release and its repository, read from the history rails_release keeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.railsdeploy.aws.plugins.modules import rails_release_info

HISTORY = [
    {"release": "1", "image": "10.213.0.250:5000/railsapp:1", "image_id": "sha256:" + "b" * 64,
     "deployed_at": "2026-12-06T10:04:18Z"},
    {"release": "1", "image": "10.213.0.250:5000/testapp:1", "image_id": "sha256:" + "a" * 64,
     "deployed_at": "2026-12-06T10:01:11Z"},
]


def run(state_dir: Path, capsys) -> dict:
    with patch_module_args({"state_dir": str(state_dir), "_ansible_check_mode": True}), pytest.raises(SystemExit):
        rails_release_info.main()
    return json.loads(capsys.readouterr().out)


def test_the_newest_entry_serves_from_its_own_repository(tmp_path: Path, capsys):
    (tmp_path / "releases.json").write_text(json.dumps(HISTORY))
    result = run(tmp_path, capsys)
    assert result["changed"] is False
    assert result["serving"] == dict(HISTORY[0], repository="10.213.0.250:5000/railsapp")
    assert result["history"] == HISTORY


@pytest.mark.parametrize("content", [None, "", "not json", "{}", "[]", '[{"image": "x:1"}]'])
def test_a_node_that_never_deployed_serves_nothing(tmp_path: Path, capsys, content):
    if content is not None:
        (tmp_path / "releases.json").write_text(content)
    assert run(tmp_path, capsys)["serving"] == {}


@pytest.mark.parametrize(("entry", "repository"), [
    ({"release": "2024-06-01.1", "image": "123456789012.dkr.ecr.us-west-2.amazonaws.com/shop:2024-06-01.1"},
     "123456789012.dkr.ecr.us-west-2.amazonaws.com/shop"),
    ({"release": "abc", "image": "shop:abc"}, "shop"),
    # An image whose tag is not the release (recorded by hand) is kept whole.
    ({"release": "2", "image": "shop:1"}, "shop:1"),
])
def test_the_repository_is_the_image_without_the_releases_tag(tmp_path: Path, capsys, entry, repository):
    (tmp_path / "releases.json").write_text(json.dumps([entry]))
    assert run(tmp_path, capsys)["serving"]["repository"] == repository
