"""The in-toto predicate and build types Syntra writes and checks."""

PROVENANCE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://syntra.dev/build/v1"
