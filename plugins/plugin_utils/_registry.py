# Copyright: railsdeploy.aws contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an ECR registry host looks like, for the controller-side plugins (filter image_reference, test
ecr_registry): one pattern, so that what a role accepts as ECR and what the filter reads as ECR cannot differ."""

from __future__ import annotations

import re

# <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]
ECR_REGISTRY = re.compile(
    r"^(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?P<cn>\.cn)?$"
)
