#!/usr/bin/python
# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The documentation of the action plugin plugins/action/settings_check.py, which runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
module: settings_check
short_description: Stops a run whose settings are misspelt or malformed, before anything is changed
version_added: 0.1.0
description:
  - Runs on the controller; makes no AWS call and touches no host. The role C(railsdeploy.aws.settings) runs it once
    per playbook run, before any change.
  - First, every variable the inventory and the command line set, for every host, that looks like a setting of this
    collection (V(railsdeploy_*), or a role's name and V(_)) must be one that a role reads - an option of some role's
    C(meta/argument_specs.yml). A misspelt name would otherwise do nothing, silently
    (V(railsdeploy_lb_certficate_arn) leaves the listener on plain HTTP). The failure names each one, with the
    setting meant when one is close.
  - Then the C(railsdeploy_*) settings, their templates rendered, are checked for their formats and the rules
    between them (a region's availability zones, an ACM certificate of the load balancer's region, admin networks
    no wider than /16, a standby only with three zones, ...). Every problem is reported at once, each naming the
    setting, what is wrong and how to fix it. When a required setting is unset, only the unset ones are reported.
  - Types and choices are not its job; the role's argument specs check them before it runs. A setting that no check
    reads is never rendered (the database password's lookup does not run).
extends_documentation_fragment:
  - railsdeploy.aws.attributes
  - railsdeploy.aws.attributes.info_module
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
options: {}
author:
  - railsdeploy.aws developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Settings are known and well formed (before any change)
  railsdeploy.aws.settings_check:
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
msg:
  description:
    - Only when the check fails - every problem found, each naming the setting. The names that are no setting
      (C(Settings that nothing reads, to fix before anything is changed - railsdeploy_lb_certficate_arn (did you mean
      railsdeploy_lb_certificate_arn?)...)); else, when every name is known, the formats and rules broken (C(Settings
      to fix before anything is changed - railsdeploy_region - 'europe' is not an AWS region (like us-west-2) | ...)).
  returned: failure
  type: str
"""
