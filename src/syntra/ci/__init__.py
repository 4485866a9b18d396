"""Stage: ci. The GitHub Actions workflows generated from the plan (`workflows`) and the
build matrix their jobs fan out over (`matrix`)."""
