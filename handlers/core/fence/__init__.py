"""The fence: cut an instance off from the shared data and the clients, prove it, and undo it
once it is safe to. One job per module:

- instances.py        what an instance is and where; powering it off (terminate, forced stop)
- security_groups.py  its interfaces into the blackhole group: no new connection
- target_groups.py    out of the target groups; are the clients' connections over?
- network_acls.py     deny entries for its addresses where it reaches the shared data
- mount_targets.py    the mount target in its own subnet, deleted and created again
- cutoff.py           CutOffInstances: one round of all of the above, recorded
- confirmation.py     ConfirmFence: is every path cut, by means AWS documents? (the permit's proof)
- release.py          ReleaseFences: entries removed, mount targets back, once safe
"""
