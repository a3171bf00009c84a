"""boto3 clients pointed at the lab's moto_server."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

import boto3
from botocore.config import Config

from . import config, state
from .sh import LabError

_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3, read_timeout=30)
# The watcher's requests carry this in their User-Agent: moto_server counts every other request.
WATCHER_AGENT = "rdlab-watch"


def mark_as_watcher() -> None:
    """Requests of this process are the watcher's own (moto_server does not count them as changes)."""
    global _CONFIG
    _CONFIG = _CONFIG.merge(Config(user_agent_extra=WATCHER_AGENT))


# The services whose requests may change what the watcher follows: EC2 (instances, volumes, security groups) and
# Elastic Load Balancing (the target group).
WATCHED_SERVICES = frozenset({"ec2", "elasticloadbalancing"})
_SCOPE = re.compile(r"Credential=[^/,&]+/[0-9]{8}/[^/,&]+/([^/,&]+)/aws4_request")
# Both speak AWS's query protocol: the action is named in the form body (botocore's POST) or the query string.
_ACTION = re.compile(r"(?:^|&)Action=([A-Za-z0-9]+)")
# Actions that only read: Ansible's inventory and modules describe instances and volumes all the time, and a pass of
# the watcher after each (in every second of a playbook run) made it and moto work: skipping them saved 36 CPU-s of a
# `make test` (CI#72: the watcher 52 -> 32, moto 86 -> 70).
READ_ONLY = ("Describe", "Get", "List")


def may_change_what_the_watcher_follows(authorization: str, query: str = "", body: Callable[[], bytes] = bytes) -> bool:
    """Whether a request signed with this Authorization header (or presigned in this query string) may change what
    the watcher follows: one to a watched service whose action does not only read (``body`` returns the request's
    body, read only for such a request when its query string names no action), or one whose signature names no
    service."""
    signed = _SCOPE.search(authorization or "") or _SCOPE.search(unquote(query or ""))
    if signed is None:
        return True
    if signed.group(1) not in WATCHED_SERVICES:
        return False
    action = _ACTION.search(query or "") or _ACTION.search(body().decode("ascii", "replace"))
    return action is None or not action.group(1).startswith(READ_ONLY)


def endpoint() -> str:
    url = state.load().get("endpoint_url")
    if not url:
        raise LabError("the lab is not up (no moto endpoint recorded): run `make lab-up`")
    return url


def client(service: str, endpoint_url: str | None = None, region_name: str = config.REGION):
    return boto3.client(
        service,
        endpoint_url=endpoint_url or endpoint(),
        region_name=region_name,
        aws_access_key_id=config.ACCESS_KEY,
        aws_secret_access_key=config.SECRET_KEY,
        config=_CONFIG,
    )


def paginate(client_, method: str, key: str, **kwargs) -> list:
    items: list = []
    for page in client_.get_paginator(method).paginate(**kwargs):
        items.extend(page.get(key, []))
    return items
