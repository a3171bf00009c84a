#!/usr/bin/env python3
"""moto_server, with the lab's fidelity fixes: where moto answers differently from AWS in a way
the stock Ansible modules trip over, the lab makes moto answer as AWS does. Each fix names the
AWS behaviour it restores.

Usage: moto_server.py -H 127.0.0.1 -p PORT (the arguments of moto_server).
"""

from __future__ import annotations

import sys

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


_volumes_have_every_field()

if __name__ == "__main__":
    sys.exit(main())
