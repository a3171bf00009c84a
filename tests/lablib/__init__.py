"""What the lab tests, the failure drills and the unit tests share (importable as ``lablib``: pyproject.toml puts
tests/ and lab/ on pytest's path).

  lablib.lab        the running lab: boto3 clients on its moto, SSH to its nodes, labctl, per-test cloud objects
  lablib.playbooks  ansible-playbook runs with the JSON callback, read as stats and task results
  lablib.scripts    the Python scripts roles install on the nodes, imported for unit tests
"""
