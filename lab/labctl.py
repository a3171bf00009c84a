#!/usr/bin/env python3
"""railsdeploy.aws local lab: the whole production shape on one machine.

  labctl.py up            moto_server, lab VPC, Docker network, registry, balancer, watcher
  labctl.py down          remove every container, network, loop device and file of the lab
  labctl.py status        what runs and where
  labctl.py is-up         exit 0 when this checkout's lab is up (its moto answers), 1 when not
  labctl.py materialise   make node containers and loop devices follow moto now (one pass)
  labctl.py build-images  build the lab images that are missing or whose recipe changed
  labctl.py env           the lab's state (endpoint, subnets, ports) as JSON
  labctl.py imds --host H --port P       serve the instance metadata service (IMDSv2) for the lab's moto
  labctl.py tls-front --host H --port P  serve HTTPS in front of the lab's moto (for pgBackRest)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Only the standard library is needed to build the images (`make test` builds them while the venv installs);
# the commands that talk to moto import boto3 through labkit.lifecycle, labkit.nodes and labkit.aws.
from labkit import config, images, state  # noqa: E402
from labkit.sh import LabError, docker_json_lines  # noqa: E402


def _cloud():
    from labkit import lifecycle, nodes

    return lifecycle, nodes


def cmd_up(_args) -> int:
    lifecycle, _ = _cloud()
    st = lifecycle.up()
    print(f"lab is up: AWS API {st['endpoint_url']}, balancer {st['balancer_url']}, "
          f"registry {st['registry']} (push via {st['registry_push']})")
    return 0


def cmd_down(_args) -> int:
    lifecycle, _ = _cloud()
    lifecycle.down()
    return 0


def cmd_is_up(_args) -> int:
    lifecycle, _ = _cloud()
    return 0 if lifecycle.is_up() else 1


def cmd_materialise(_args) -> int:
    lifecycle, _ = _cloud()
    problems = lifecycle.sync_once()
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    return 1 if problems else 0


def cmd_status(_args) -> int:
    st = state.load()
    if not st.get("endpoint_url"):
        print("lab is down")
        return 3
    print(f"AWS API (moto): {st['endpoint_url']}  region {st['region']}  VPC {st.get('vpc_id')}")
    print(f"balancer:       {st.get('balancer_url')}")
    print(f"registry:       {st.get('registry')} (push via {st.get('registry_push')})")
    print("nodes:")
    from labkit import aws

    _, nodes = _cloud()
    ec2 = aws.client("ec2")
    containers = nodes.node_containers()
    for inst in nodes.lab_instances(ec2, st["vpc_id"]):
        c = containers.get(inst.id, {})
        print(f"  {inst.name:<16} {inst.id:<20} {inst.state:<11} {inst.ip:<15} container: {c.get('status', '-')}")
    print("volumes:")
    for vol in nodes.lab_volumes(ec2):
        loop = nodes.loop_for(nodes.volume_file(vol.id)) or "-"
        att = ", ".join(f"{i} {d}" for i, d in vol.attachments) or "available"
        print(f"  {vol.id:<24} {vol.size_gib:>4} GiB  {loop:<12} {att}")
    others = [c["Names"] for c in docker_json_lines("ps", "-a", "--filter", f"label={config.LABEL}")
              if c.get("Labels", "").find(f"{config.LABEL}=node") < 0]
    print("lab services: " + ", ".join(sorted(others)))
    return 0


def cmd_build_images(args) -> int:
    built = images.ensure_images(args.names or None)
    print("built: " + (", ".join(built) if built else "nothing (all images up to date)"))
    return 0


def cmd_env(_args) -> int:
    print(json.dumps(state.load(), indent=2, sort_keys=True))
    return 0


def cmd_watch(_args) -> int:
    lifecycle, _ = _cloud()
    lifecycle.watch()
    return 0


def cmd_imds(args) -> int:
    from labkit import aws, imds

    imds.serve(args.host, args.port, aws.endpoint())
    return 0


def cmd_tls_front(args) -> int:
    from labkit import tlsfront

    moto_port = state.load().get("moto_port")
    if not moto_port:
        raise LabError("the lab is not up (no moto port recorded): run `make lab-up`")
    tlsfront.serve(args.host, args.port, moto_port, config.TLS_DIR)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labctl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, fn in [("up", cmd_up), ("down", cmd_down), ("status", cmd_status), ("is-up", cmd_is_up),
                     ("materialise", cmd_materialise), ("env", cmd_env), ("watch", cmd_watch)]:
        sub.add_parser(name).set_defaults(fn=fn)
    b = sub.add_parser("build-images")
    b.add_argument("names", nargs="*")
    b.set_defaults(fn=cmd_build_images)
    for name, fn, what in [("imds", cmd_imds, "instance metadata service"), ("tls-front", cmd_tls_front, "TLS front")]:
        p = sub.add_parser(name, help=f"serve the lab's {what} in the foreground until SIGTERM")
        p.add_argument("--host", default=config.GATEWAY, help=f"address to listen on (default {config.GATEWAY})")
        p.add_argument("--port", type=int, required=True)
        p.set_defaults(fn=fn)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
