"""Writes for deployments (client schemas) and vendor rollouts across clients.

`deployments` holds a client's deployment state machine and version changes;
`rollouts` moves many clients' deployments at once. Import from here:
`from apps.deployments import services` / `services.deployment_create(...)`.
"""

from .deployments import (
    TRANSITIONS,
    VERSION_CHANGE_STATUSES,
    VersionMovedError,
    deployment_approve,
    deployment_approve_change,
    deployment_change_version,
    deployment_create,
    deployment_deploy,
    deployment_pause,
    deployment_reject,
    deployment_reject_change,
    deployment_resume,
    deployment_retire,
    deployment_revise,
    deployment_submit,
    deployment_update_draft,
    deployment_withdraw_change,
)
from .rollouts import (
    rollout_create,
    rollout_execute,
    rollout_resume,
    rollout_revert,
    rollout_revert_execute,
)

__all__ = [
    "TRANSITIONS",
    "VERSION_CHANGE_STATUSES",
    "VersionMovedError",
    "deployment_approve",
    "deployment_approve_change",
    "deployment_change_version",
    "deployment_create",
    "deployment_deploy",
    "deployment_pause",
    "deployment_reject",
    "deployment_reject_change",
    "deployment_resume",
    "deployment_retire",
    "deployment_revise",
    "deployment_submit",
    "deployment_update_draft",
    "deployment_withdraw_change",
    "rollout_create",
    "rollout_execute",
    "rollout_resume",
    "rollout_revert",
    "rollout_revert_execute",
]
