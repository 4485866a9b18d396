"""doit entry point: the task graph is defined by the syntra package (syntra.tasks)."""

from syntra.tasks import *  # noqa: F403
