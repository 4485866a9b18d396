"""Releases: versions and tags, promotion with verification, signing and attaching
(secure), the CI workflows and their build matrix."""
