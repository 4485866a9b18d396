"""Registry operations on what is already built: copying between registries, OCI layouts
and archives, inspecting, deleting and pulling, and a local registry for tests."""
