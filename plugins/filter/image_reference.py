# Copyright: railsdeploy.aws contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An image reference taken apart as Docker reads it: registry, repository, tag, digest, and ECR's part of it."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

from ansible_collections.railsdeploy.aws.plugins.module_utils._image_tag import is_image_tag
from ansible_collections.railsdeploy.aws.plugins.plugin_utils._registry import ECR_REGISTRY

DOCUMENTATION = r"""
name: image_reference
author: railsdeploy.aws contributors
version_added: 0.1.0
short_description: Registry, repository, tag and digest of a Docker image reference, and whether the registry is ECR
description:
  - Reads an image reference as Docker does - C(registry.example.com:5000/shop:v1), C(acme/shop), C(postgres:15),
    C(123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop@sha256:...) - and returns its parts.
  - The first path component is the registry when it looks like a host (it has a V(.) or a V(:), or is
    V(localhost)); otherwise the registry is Docker Hub (V(docker.io)), whose single-component names live under
    V(library/).
  - For an ECR registry (C(<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn])) it also returns the account, the
    region and the repository's ARN, which IAM policies for pulling name. The roles use it to give a node's IAM
    role exactly the pull rights its images need, and to set up Docker's ECR credential helper.
options:
  _input:
    description: The image reference.
    type: str
    required: true
  errors:
    description:
      - V(strict) raises an error for a reference Docker would refuse; V(return) returns a dict with the one key
        C(error) (the message) instead, so that a settings check can name the setting and every bad reference at
        once.
    type: str
    choices: [strict, return]
    default: strict
"""

EXAMPLES = r"""
- name: The app image's registry is known
  ansible.builtin.debug:
    msg: "{{ '123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop:v1' | railsdeploy.aws.image_reference }}"
# => {"registry": "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "repository": "shop", "tag": "v1", "digest": "",
#     "ecr": {"account": "123456789012", "region": "eu-west-1",
#             "repository_arn": "arn:aws:ecr:eu-west-1:123456789012:repository/shop"}}
"""

RETURN = r"""
_value:
  description: The reference's parts.
  type: dict
  contains:
    registry:
      description: Registry host (with its port when one is given); V(docker.io) for Docker Hub.
      type: str
    repository:
      description: Repository path within the registry (V(library/postgres) for Docker Hub's V(postgres)).
      type: str
    tag:
      description: The tag, or an empty string when none is given.
      type: str
    digest:
      description: The digest (V(sha256:...)), or an empty string.
      type: str
    ecr:
      description: For an ECR registry C(account), C(region) and C(repository_arn); else empty.
      type: dict
    error:
      description: Only with O(errors=return) and a bad reference - why it is refused (and no other key).
      type: str
"""

# Docker's reference grammar (distribution/reference), in the parts this collection needs.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")


def image_reference(ref, errors="strict"):
    if errors not in ("strict", "return"):
        raise AnsibleFilterError(f"image_reference: errors must be strict or return, not {errors!r}")
    try:
        return _parse(ref)
    except AnsibleFilterError as exc:
        if errors == "return":
            return {"error": exc.message}
        raise


def _parse(ref):
    if not isinstance(ref, str) or not ref.strip():
        raise AnsibleFilterError(f"image_reference: {ref!r} is not an image reference (expected e.g. acme/shop:v1)")
    rest, digest = ref, ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise AnsibleFilterError(f"image_reference: {ref!r} has no valid digest after '@' (sha256:<64 hex>)")
    head, slash, tail = rest.partition("/")
    if slash and tail and ("." in head or ":" in head or head == "localhost"):
        registry, path = head, tail
    else:
        registry, path = "docker.io", rest
    tag = ""
    if ":" in path.rsplit("/", 1)[-1]:
        path, tag = path.rsplit(":", 1)
        if not is_image_tag(tag):
            raise AnsibleFilterError(f"image_reference: {ref!r} has an invalid tag {tag!r}")
    if not _PATH.match(path):
        raise AnsibleFilterError(f"image_reference: {ref!r} has an invalid repository name {path!r} "
                                 "(lowercase letters, digits and separators)")
    if registry == "docker.io" and "/" not in path:
        path = "library/" + path
    ecr = {}
    match = ECR_REGISTRY.match(registry)
    if match:
        partition = "aws-cn" if match["cn"] else "aws"
        ecr = {"account": match["account"], "region": match["region"],
               "repository_arn": f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{path}"}
    return {"registry": registry, "repository": path, "tag": tag, "digest": digest, "ecr": ecr}


class FilterModule:
    def filters(self):
        return {"image_reference": image_reference}
