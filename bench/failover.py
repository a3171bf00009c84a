"""Failover and switchover of the PostgreSQL pair, in the lab, under writes through the app.

Setup: the whole system as `make demo` leaves it, with the pair (the lab's railsdeploy_postgres_standby_count: 1):
provision.yml and deploy_postgres.yml (no-ops when it runs), then site.yml only when the app does not serve. A note
is POSTed through the balancer every 0.1 s all along (as drills 1 and 11 write; tests/drills/drillkit.py).
Measured, each from the event to the first acknowledged write after the last failed one (the write outage):
  (a) the leader cut off from the standby and the witness (packets from them dropped, its processes running, as
      drill 1): Patroni on it cannot renew its lock and demotes it, the standby is promoted once the lock's TTL has
      run out - `failover_seconds`; `failover_writes_lost` (acknowledged writes missing afterwards: 0 in
      synchronous mode); the network returns and the old leader rejoins as the standby - `failover_rejoin_seconds`;
  (b) `switchover_postgres.yml -e to=<standby>` - `switchover_seconds` (the write outage),
      `switchover_playbook_seconds` (the playbook's wall clock), `switchover_writes_lost`.
Each is measured `--rounds` times (default 2; the leader alternates); the figures are the median and the worst.
The pair ends healthy, with either node leading.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "lab"), str(REPO / "tests"), str(REPO / "tests" / "drills")]

from drillkit import System, app_writes, playbook_ok, wait_for  # noqa: E402
from lablib.lab import connect, lab_env  # noqa: E402


def note(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


def figure(name: str, value) -> None:
    print(f"{name}: {value}", flush=True)


def lost(system: System, writes) -> int:
    """Acknowledged writes of ``writes`` the database does not hold."""
    return len(set(writes.acked) - system.notes(writes))


def failover(system: System) -> dict[str, float]:
    leader, standby = system.primary(), system.standby()
    peers = [standby, *system.nodes("witness").values()]
    with app_writes(system.balancer_url, f"bench-failover-{int(time.time())}") as writes:
        cut = time.time()
        system.cut_off(leader, peers)
        try:
            wait_for(lambda: system.new_leader(leader), 120, f"a node other than {leader.name} to lead")
            elected = time.time()
            wait_for(lambda: writes.acked and max(writes.acked.values()) > elected, 60,
                     "a write acknowledged after the election")
            written_again = time.time()
        finally:
            system.cut_off(leader, peers, cut=False)
        healed = time.time()
        wait_for(system.pair_healthy, 180, f"{leader.name} to stream again as the synchronous standby")
        rejoined = time.time() - healed
    result = {"seconds": writes.outage(cut, written_again), "lost": lost(system, writes), "rejoin": rejoined}
    note(f"failover {leader.name} -> {standby.name}: {result}")
    return result


def switchover(system: System) -> dict[str, float]:
    leader, standby = system.primary(), system.standby()
    with app_writes(system.balancer_url, f"bench-switchover-{int(time.time())}") as writes:
        started = time.time()
        run = playbook_ok("switchover_postgres.yml", "-e", f"to={standby.name}", what="switchover_postgres.yml")
        wait_for(system.pair_healthy, 120, f"{leader.name} to stream as the synchronous standby")
        time.sleep(2)
    result = {"seconds": writes.outage(writes.first_failure(started)), "playbook": run.seconds,
              "lost": lost(system, writes)}
    note(f"switchover {leader.name} -> {standby.name}: {result}")
    return result


def report(name: str, values: list[float], unit: str = "seconds") -> None:
    figure(f"{name}_{unit}", f"{statistics.median(values):.1f}")
    figure(f"{name}_{unit}_worst", f"{max(values):.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    system = System(connect(lab_env()))
    playbook_ok("provision.yml", what="provision.yml")
    playbook_ok("deploy_postgres.yml", what="deploy_postgres.yml")
    if len(system.postgres()) != 2:
        raise SystemExit("the lab runs no PostgreSQL pair (railsdeploy_postgres_standby_count must be 1)")
    try:
        system.wait_served(timeout=30)
    except AssertionError:
        playbook_ok("site.yml", "-e", "rails_app_release=1", what="site.yml")
        system.wait_served(timeout=180)
    wait_for(system.pair_healthy, 120, "the pair to be healthy before the first round")

    failovers = [failover(system) for _ in range(args.rounds)]
    report("failover", [r["seconds"] for r in failovers])
    figure("failover_writes_lost", sum(r["lost"] for r in failovers))
    report("failover_rejoin", [r["rejoin"] for r in failovers])
    switchovers = [switchover(system) for _ in range(args.rounds)]
    report("switchover", [r["seconds"] for r in switchovers])
    report("switchover_playbook", [r["playbook"] for r in switchovers])
    figure("switchover_writes_lost", sum(r["lost"] for r in switchovers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
