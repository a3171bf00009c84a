#!/usr/bin/env python3
"""Where the machine's CPU went: every process that exited while BSD process accounting was on, added up by command
name and by where it ran (the controller's `make test`, the lab's node containers, the rest). The task census
(scripts/task_census.py) gives a task's seconds; this gives the CPU behind them, the nodes' and the lab's included
(their pid namespaces are children of the host's, so their processes are accounted here too).

  sudo python3 scripts/process_census.py on [FILE]     accounting on, into FILE (build/test-logs/pacct)
  sudo python3 scripts/process_census.py off           accounting off
  python3 scripts/process_census.py report [FILE] [--top N]

Linux only, as root (acct(2)); records are the kernel's `struct acct_v3` (64 bytes: times in clock ticks, as comp_t).
A process still running when accounting stops has no record: stop after `make test` has taken the lab down."""

from __future__ import annotations

import argparse
import bisect
import ctypes
import os
import struct
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT = Path(__file__).resolve().parent.parent / "build" / "test-logs" / "pacct"
# struct acct_v3: flag, version, tty, exitcode, uid, gid, pid, ppid, btime, etime (float), utime, stime, mem, io,
# rw, minflt, majflt, swaps (comp_t), comm[16].
RECORD = struct.Struct("<BBHIIIIIIf8H16s")
TICKS = 100  # AHZ: comp_t times are in these
# An ancestor of these ran in a lab container (a node's sshd, the node's init, a container's shim); of these, on the
# controller's side of make test.
IN_A_CONTAINER = frozenset({"sshd", "tini", "containerd-shim", "docker-init", "lab-boot"})
ON_THE_CONTROLLER = frozenset({"make", "pytest", "molecule"})


def comp_t(value: int) -> int:
    """comp_t: a 13-bit mantissa and a 3-bit base-8 exponent."""
    return (value & 0x1FFF) << (3 * (value >> 13))


@dataclass
class Process:
    index: int
    pid: int
    ppid: int
    comm: str
    cpu: float  # user + system seconds
    started: int  # epoch seconds
    chain: list[str] = field(default_factory=list)  # its own command name, then its ancestors'


def read(data: bytes) -> list[Process]:
    """The records, in the order they were written (as processes exited)."""
    found = []
    for offset in range(0, len(data) - RECORD.size + 1, RECORD.size):
        fields = RECORD.unpack_from(data, offset)
        pid, ppid, started = fields[6], fields[7], fields[8]
        utime, stime, comm = fields[10], fields[11], fields[18]
        found.append(Process(len(found), pid, ppid, comm.rstrip(b"\0").decode(errors="replace"),
                             (comp_t(utime) + comp_t(stime)) / TICKS, started))
    return found


def link(processes: list[Process]) -> None:
    """Each process's chain of ancestors: its parent is the first process after it (a parent exits after its child)
    with its parent's pid, started no later than it (pids are reused)."""
    by_pid: dict[int, list[int]] = defaultdict(list)
    for p in processes:
        by_pid[p.pid].append(p.index)

    def parent(p: Process) -> Process | None:
        later = by_pid.get(p.ppid, [])
        for i in later[bisect.bisect_right(later, p.index):]:
            if processes[i].started <= p.started + 1:
                return processes[i]
        return None

    for p in processes:
        chain, up = [p.comm], parent(p)
        while up is not None and len(chain) < 64:
            chain.append(up.comm)
            up = parent(up)
        p.chain = chain


def where(p: Process) -> str:
    if IN_A_CONTAINER.intersection(p.chain):
        return "lab containers"
    if ON_THE_CONTROLLER.intersection(p.chain):
        return "controller"
    return "other"


def report(processes: list[Process], top: int) -> str:
    link(processes)
    total = sum(p.cpu for p in processes)
    places: Counter[str] = Counter()
    by_name: Counter[tuple[str, str]] = Counter()
    count: Counter[tuple[str, str]] = Counter()
    for p in processes:
        place = where(p)
        places[place] += p.cpu
        by_name[(place, p.comm)] += p.cpu
        count[(place, p.comm)] += 1
    lines = [f"{len(processes)} processes, {total:.0f} CPU-s", "", "CPU-s  where"]
    lines += [f"{cpu:6.0f}  {place}" for place, cpu in places.most_common()]
    lines += ["", f"{'CPU-s':>8}  {'runs':>6}  {'each':>6}  where           command"]
    lines += [f"{cpu:8.2f}  {count[key]:6d}  {cpu / count[key]:6.3f}  {key[0]:15s} {key[1]}"
              for key, cpu in by_name.most_common(top)]
    return "\n".join(lines)


def accounting(path: str | None) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.acct(path.encode() if path else None) != 0:
        error = ctypes.get_errno()
        sys.exit(f"acct({path}): {os.strerror(error)} (process accounting needs root and a kernel built with it)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["on", "off", "report"])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    if args.what == "on":
        args.file.parent.mkdir(parents=True, exist_ok=True)
        args.file.write_bytes(b"")
        accounting(str(args.file))
    elif args.what == "off":
        accounting(None)
    else:
        print(report(read(args.file.read_bytes()), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
