#!/usr/bin/env python3
"""Sets a CloudWatch alarm's state in the lab's moto, as CloudWatch would when the alarm fires: at once, or once a
node serves a release (--url, --release: polled every 0.1 s) - so that an alarm goes into ALARM while a deploy rolls.

  alarm_on_switch.py --alarm NAME --endpoint URL --region R [--url http://node/version --release 2] [--state OK]
                     [--also-ok NAME ...]   (other alarms set to OK at the same moment: a state change, not an alarm)
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request

import boto3


def serving(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.read().decode().strip()
    except OSError:
        return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alarm", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--url")
    parser.add_argument("--release")
    parser.add_argument("--state", default="ALARM", choices=["ALARM", "OK", "INSUFFICIENT_DATA"])
    parser.add_argument("--also-ok", nargs="*", default=[])
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()
    if args.url:
        deadline = time.monotonic() + args.timeout
        while serving(args.url) != args.release:
            if time.monotonic() > deadline:
                print(f"{args.url} did not serve release {args.release} within {args.timeout:.0f} s", file=sys.stderr)
                return 1
            time.sleep(0.1)
    # (Credentials from the environment: the lab inventory's, which moto takes.)
    cloudwatch = boto3.client("cloudwatch", endpoint_url=args.endpoint, region_name=args.region)
    reason = f"Set by the rails scenario once {args.url} served release {args.release}" if args.url else "Reset"
    for name in args.also_ok:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason=reason)
    cloudwatch.set_alarm_state(AlarmName=args.alarm, StateValue=args.state, StateReason=reason)
    print(f"{args.alarm}: {args.state}" + "".join(f", {name}: OK" for name in args.also_ok))
    return 0


if __name__ == "__main__":
    sys.exit(main())
