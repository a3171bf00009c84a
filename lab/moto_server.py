#!/usr/bin/env python3
"""moto_server, with the lab's fidelity fixes: where moto answers differently from AWS in a way
the Ansible modules trip over, the lab makes moto answer as AWS does. Each fix names the AWS
behaviour it restores; the collection's code is the same against this, stock moto and AWS.

Usage: moto_server.py -H 127.0.0.1 -p PORT (the arguments of moto_server).
"""

from __future__ import annotations

import sys
from typing import Any

from moto.cloudfront import models as cloudfront
from moto.ec2.models import elastic_block_store
from moto.server import main


def _volumes_have_every_field() -> None:
    # AWS always returns "SnapshotId" ("" for a volume made from no snapshot) and
    # "MultiAttachEnabled"; moto leaves them out when unset, and amazon.aws.ec2_vol_info and
    # ec2_vol then fail with KeyError 'snapshot_id' / 'multi_attach_enabled'.
    original = elastic_block_store.Volume.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.snapshot_id is None:
            self.snapshot_id = ""
        if getattr(self, "multi_attach_enabled", None) is None:
            self.multi_attach_enabled = False

    elastic_block_store.Volume.__init__ = __init__


def _origins_keep_origin_access_control() -> None:
    # AWS stores an origin's OriginAccessControlId and S3OriginConfig and returns them from
    # GetDistributionConfig; moto accepts and drops them, so railsdeploy.aws.cloudfront_oac_distribution
    # would see a distribution without OAC and update it on every run.
    original = cloudfront.Origin.__init__

    def __init__(self: Any, origin: dict[str, Any]) -> None:
        original(self, origin)
        self.origin_access_control_id = origin.get("OriginAccessControlId") or ""
        if "S3OriginConfig" in origin:
            oai = (origin.get("S3OriginConfig") or {}).get("OriginAccessIdentity") or ""
            self.s3_origin_config = {"OriginAccessIdentity": oai}

    cloudfront.Origin.__init__ = __init__


_volumes_have_every_field()
_origins_keep_origin_access_control()

if __name__ == "__main__":
    sys.exit(main())
