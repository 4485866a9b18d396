"""Stage: supply. SBOMs, signatures and provenance for every pushed digest, stored
where cosign, skopeo and OCI 1.1 clients look for them, and `syntra verify`."""
