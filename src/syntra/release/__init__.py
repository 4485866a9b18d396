"""Releases: versions and tags, promotion with verification. The supply stage (signing
and attesting) is `syntra.supplychain`; the CI workflows and their build matrix are in
`syntra.ci`."""
