"""The doit entry point by its first name: a `dodo.py` written before the package was laid
out by concern imports `syntra.tasks`, and gets the same task graph as one importing
`syntra.pipeline.tasks`."""

from syntra.pipeline.tasks import *  # noqa: F403
from syntra.pipeline.tasks import __all__ as __all__
