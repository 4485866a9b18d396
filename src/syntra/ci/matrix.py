"""The CI build matrix: images x platforms with their runners, in chunks of at most
256 jobs (GitHub's limit per matrix); with `changed`, only those whose inputs are not
built yet (an `inputs-<digest>` tag is missing in the registry)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from syntra.paths import slug
from syntra.plan import Plan

MAX_JOBS = 256

if TYPE_CHECKING:
    from syntra.image.inputs import Run


def chunk_count(plan: Plan) -> int:
    """How many build jobs the workflow has: fixed by the plan, not by what changed."""
    return max(1, math.ceil(len(plan.matrix) / MAX_JOBS))


def entries(ctx: Run, changed: bool) -> list[dict[str, str]]:
    from syntra.image.inputs import Job
    from syntra.image.job import already_built

    runners = ctx.loaded.config.ci.runners
    found = []
    for image in ctx.plan.images:
        where = ctx.registries.locate(image.destination) if changed else None
        job = Job(ctx, image)
        for platform in image.platforms:
            if where is not None and already_built(job, where, platform) is not None:
                continue
            found.append(
                {
                    "image": image.name,
                    "platform": platform,
                    "slug": slug(platform),
                    "runner": runners.get(platform, "ubuntu-24.04"),
                }
            )
    return found


def chunks(plan: Plan, found: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    return [found[k * MAX_JOBS : (k + 1) * MAX_JOBS] for k in range(chunk_count(plan))]


def to_json(ctx: Run, changed: bool) -> dict[str, Any]:
    found = entries(ctx, changed)
    return {"matrix": found, "chunks": chunks(ctx.plan, found)}
