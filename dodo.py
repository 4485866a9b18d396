"""doit entry point: the task graph comes from syntra.pipeline.tasks."""

from syntra.pipeline.tasks import *  # noqa: F403
