#!/usr/bin/env python3
"""Which CloudWatch Logs streams of a log group, in the lab's moto, hold a line containing a text - waiting for
Docker's awslogs driver, which sends a batch every 5 s (up to --timeout, 60 s: on a loaded 2-core machine a stopped
worker's last batch reached moto after more than the 20 s this waited before, CI#88). Prints JSON: {"matched":
[the stream of each such line, sorted], "streams": [every stream of the group]}.

  log_streams.py --group NAME --text TEXT --endpoint URL --region R [--at-least N] [--timeout S]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import boto3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--at-least", type=int, default=1, help="lines to wait for")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    logs = boto3.client("logs", endpoint_url=args.endpoint, region_name=args.region)
    since = int((time.time() - 300) * 1000)  # the last 5 minutes: the whole group is large by now
    deadline = time.monotonic() + args.timeout
    while True:
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=args.group, startTime=since)
        matched = sorted(e["logStreamName"] for page in pages for e in page["events"] if args.text in e["message"])
        if len(matched) >= args.at_least or time.monotonic() >= deadline:
            break
        time.sleep(1)
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=args.group)["logStreams"]]
    print(json.dumps({"matched": matched, "streams": sorted(streams)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
