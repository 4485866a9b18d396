"""Releases: versions and tags, promotion with verification, signing and attaching
(secure). The CI workflows and their build matrix are in `syntra.ci`."""
