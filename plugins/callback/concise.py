# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: concise
type: stdout
short_description: What changed and what failed, then a summary of the deploy
description:
  - The default output without what a person does not need to read. At verbosity 0, a task prints only the hosts it
    changed, failed on or could not reach, and what a C(debug) task shows; an included file, a play in which nothing
    is printed or that matches no host of the run, an C(ok) or C(skipped) result print nothing. Nor does a task that a
    play forces into check mode in a run that is not C(--check), which only predicts (a deploy's plan); the task that
    makes the change prints it. With C(-v) or more, everything the default output prints is printed.
  - The run ends with the play recap, then a summary of every release swap of M(railsdeploy.aws.rails_release) (a
    deploy, a rollback) - the node, the release it served and the one it serves, the seconds the swap took and the
    seconds its old release drained, or why it failed - and the run's total seconds.
  - The collection's C(ansible.cfg) sets it (C(stdout_callback = railsdeploy.aws.concise)); it reads the default
    output's settings (for example C(display_failed_stderr), C(result_format)).
version_added: 0.1.0
author:
  - railsdeploy.aws developers (!UNKNOWN)
extends_documentation_fragment:
  - default_callback
  - result_format_callback
requirements:
  - set as the stdout callback in configuration
"""

import time

from ansible import context
from ansible.playbook.task_include import TaskInclude
from ansible.plugins.callback.default import CallbackModule as DefaultCallback

SWAP_ACTIONS = frozenset({"railsdeploy.aws.rails_release", "rails_release"})
QUIET_OPTIONS = frozenset({"display_ok_hosts", "display_skipped_hosts"})
# What a task shows on purpose (status.yml, logs.yml, a migration's output) is printed at every verbosity.
SHOWN_ACTIONS = frozenset({"ansible.builtin.debug", "ansible.legacy.debug", "debug"})


def swap_line(host, swap):
    """One line of the summary for one release swap (a dict made by CallbackModule._record_swap)."""
    seconds = f"{swap['seconds']:.1f} s" if swap.get("seconds") is not None else "? s"
    if swap.get("failed"):
        return f"{host}: release {swap['release']} failed after {seconds}: {swap['msg']}"
    moved = f"release {swap['previous'] or 'none'} -> {swap['release']}"
    drained = f", drained in {swap['drain_seconds']:g} s" if swap.get("drain_seconds") is not None else ""
    return f"{host}: {moved} in {seconds}{drained}"


class CallbackModule(DefaultCallback):
    """The default output, quiet at verbosity 0, with a deploy summary at the end."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "railsdeploy.aws.concise"

    def __init__(self, clock=time.monotonic):
        super().__init__()
        self._clock = clock
        self._run_started = clock()
        self._pending_play_banner = None
        self._showing = False  # an ok result of a SHOWN_ACTIONS task is being printed
        self._started = {}  # (host, task uuid) -> clock at the host's start of the task
        self._swaps = []  # (host, swap) in the order they ended

    # --- quiet at verbosity 0 ---------------------------------------------------------------------------

    def _quiet(self):
        return self._display.verbosity < 1

    def get_option(self, k, hostvars=None):
        if k in QUIET_OPTIONS and self._quiet():
            return k == "display_ok_hosts" and self._showing
        return super().get_option(k, hostvars)

    def v2_playbook_on_play_start(self, play):
        if not self._quiet():
            return super().v2_playbook_on_play_start(play)
        # Printed before the first task banner of the play, if any: a play that changes nothing prints nothing.
        self._play = play
        self._pending_play_banner = play

    def _print_task_banner(self, task):
        if self._pending_play_banner is not None:
            play, self._pending_play_banner = self._pending_play_banner, None
            super().v2_playbook_on_play_start(play)
        super()._print_task_banner(task)

    def v2_playbook_on_no_hosts_matched(self):
        if not self._quiet():  # a play for hosts this run does not include (the controller, with --limit rails)
            super().v2_playbook_on_no_hosts_matched()

    def v2_playbook_on_include(self, included_file):
        if not self._quiet():
            super().v2_playbook_on_include(included_file)

    def v2_runner_on_ok(self, result):
        self._record_swap(result)
        if self._quiet() and isinstance(result.task, TaskInclude):
            return  # "included: ..." says nothing a person acts on
        if self._quiet() and result.task.check_mode and not context.CLIARGS.get("check"):
            return  # a prediction ("would change") in a real run: the task that changes it says so
        self._showing = result.task.action in SHOWN_ACTIONS
        try:
            super().v2_runner_on_ok(result)
        finally:
            self._showing = False

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record_swap(result, failed=not ignore_errors)
        super().v2_runner_on_failed(result, ignore_errors)

    # --- the deploy summary -----------------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook):
        self._run_started = self._clock()
        super().v2_playbook_on_start(playbook)

    def v2_runner_on_start(self, host, task):
        if task.action in SWAP_ACTIONS:
            self._started[(host.get_name(), task._uuid)] = self._clock()
        super().v2_runner_on_start(host, task)

    def _record_swap(self, result, failed=False):
        task = result.task
        if task.action not in SWAP_ACTIONS or task.check_mode:
            return
        outcome = result.result
        if not failed and not outcome.get("changed"):
            return
        host = result.host.get_name()
        started = self._started.pop((host, task._uuid), None)
        self._swaps.append((host, {
            "previous": outcome.get("previous_release"),
            "release": outcome.get("release") or task.args.get("release", "?"),
            "seconds": None if started is None else self._clock() - started,
            "drain_seconds": outcome.get("drain_seconds"),
            "failed": failed,
            "msg": outcome.get("msg", ""),
        }))

    def v2_playbook_on_stats(self, stats):
        super().v2_playbook_on_stats(stats)
        if self._swaps:
            self._display.banner("DEPLOY SUMMARY")
            for host, swap in self._swaps:
                self._display.display(swap_line(host, swap))
        self._display.display(f"Total: {self._clock() - self._run_started:.1f} s")
