"""A rehearsal of a drill (``swr drill APP --dry-run``): what a failover of APP would do now,
and whether anything in the account would stop it, without changing anything.

It reads the application's record and runs the workflow's own decision code on it
(``handlers.core``: admission's refusal rules, the lease's next generation, launch's ordered
candidates and RunInstances request), then checks with read-only calls what the workflow
needs: the AMI, the AZs, instance type offerings and free addresses, EFS mount targets, the
blackhole security group, the target groups, the old instance, and what each step's own IAM
role may do (IAM SimulatePrincipalPolicy with the actions, resources and condition keys the
step's calls carry). No lease is taken, no trigger remembered, nothing launched or tagged.

- ``facts``: what the world is, read once;
- ``checks``: what the facts say about the launch candidates, EFS, the groups, the old instance;
- ``needs``: which IAM statements each step needs; ``permissions``: whether its role may;
- ``model``: what a rehearsal reports; ``dry_run``: ``rehearse``, which puts it together.

Like ``swr.ops.onboarding`` it knows nothing of the CLI: it takes ``client(service)`` and
the deployed stack's outputs.
"""

from swr.ops.common import Client, NotRegistered
from swr.ops.rehearsal.dry_run import rehearse
from swr.ops.rehearsal.model import AdmitVerdict, Candidate, Check, Rehearsal, Status

__all__ = ["AdmitVerdict", "Candidate", "Check", "Client", "NotRegistered", "Rehearsal", "Status", "rehearse"]
