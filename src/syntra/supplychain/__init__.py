"""Stage: supply (syntra.yaml's `supply_chain:`). What was pushed, signed and attested:
SBOMs, provenance and signatures for every digest of a record (`secure`), through the
supply-chain library in `syntra.supply`."""
