"""Stage: wasm. Guests in Swift, Python, Rust and C become WebAssembly, are optimised, run
their test calls in a sandbox with hard limits (wasmtime, and wasm3 for core modules),
and ship as OCI artifacts.

One module per step: compile (with `languages/`), optimize, artifact, web; the test calls
run in `syntra.plugins.sandbox`.
"""
