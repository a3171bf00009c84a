"""Backport of Patroni's fix of its etcd v3 leader key (upstream pull requests 2689 and 2693, released in 3.0.3)
onto Debian bookworm's patroni 3.0.2, run once when the image is built.

In 3.0.2 a leader whose etcd lease expired while it could not reach etcd's majority - a network partition - takes a
new lease when it can again, and writes the leader key with it unconditionally: over the key of the standby that was
promoted meanwhile. Both then lead for a moment, and the standby, rewound to follow the old leader, loses the writes
it acknowledged as leader (failure drill 1 found it). Fixed as upstream did: the key is written with the new lease
only if it still names this node, or if no node holds it; otherwise the update fails and this node demotes.

Leaves a patroni that already has the fix as it is; fails the build on any other text (a version it does not know).
"""

import pathlib
import sys

import patroni.dcs.etcd3 as etcd3

OLD = """                try:
                    self._run_and_handle_exceptions(self._client.put, self.leader_path,
                                                    self._name, self._lease, retry=_retry)
                except ReturnFalseException:
                    pass
        return bool(self._lease)
"""
NEW = """                # railsdeploy: upstream's fix (pull requests 2689, 2693): never over another node's leader key.
                fields = {'key': base64_encode(self.leader_path), 'value': base64_encode(self._name),
                          'lease': self._lease}
                try:
                    if not self._run_and_handle_exceptions(
                            self._client.txn, {'key': fields['key'], 'target': 'VALUE', 'value': fields['value']},
                            {'request_put': fields}, retry=_retry) \\
                            and not self._run_and_handle_exceptions(self._client.put, self.leader_path, self._name,
                                                                    self._lease, '0', retry=_retry):
                        return False
                except ReturnFalseException:
                    return False
        return bool(self._lease)
"""
FIXED_UPSTREAM = "compare2 = {'key': fields['key'], 'target': 'CREATE', 'create_revision': '0'}"

path = pathlib.Path(etcd3.__file__)
text = path.read_text()
if FIXED_UPSTREAM in text or NEW in text:
    print(f"{path}: the leader key fix is there already")
elif text.count(OLD) == 1:
    path.write_text(text.replace(OLD, NEW))
    compile(path.read_text(), str(path), "exec")
    print(f"{path}: the leader key is no longer written over another node's (upstream 2689, 2693)")
else:
    sys.exit(f"{path}: unknown Patroni etcd3 module (neither 3.0.2's update_leader nor the fixed one): check the "
             "leader key fix by hand")
