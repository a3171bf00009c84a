"""``moto_server`` whose CloudFront distributions keep their origins' Origin Access Control.

moto 5.2.5 accepts ``OriginAccessControlId`` and ``S3OriginConfig`` on a distribution's origin but does not
store them, so ``GetDistributionConfig`` answers as if the origin had no OAC and every run of
``railsdeploy.aws.cloudfront_oac_distribution`` sends an update (changed on every run). This launcher stores
both fields (moto's response serializer then returns them as AWS does) and runs moto's own server ``main``.
Nothing else changes; the collection's code is the same against this, stock moto and AWS.

Usage: python moto_server_oac.py -H 127.0.0.1 -p <port>   (the arguments of moto_server)
"""

from __future__ import annotations

import sys
from typing import Any

from moto.cloudfront import models
from moto.server import main

_original_init = models.Origin.__init__


def _origin_init(self: Any, origin: dict[str, Any]) -> None:
    _original_init(self, origin)
    self.origin_access_control_id = origin.get("OriginAccessControlId") or ""
    if "S3OriginConfig" in origin:
        self.s3_origin_config = {
            "OriginAccessIdentity": (origin.get("S3OriginConfig") or {}).get("OriginAccessIdentity") or ""
        }


models.Origin.__init__ = _origin_init

if __name__ == "__main__":
    sys.exit(main())
