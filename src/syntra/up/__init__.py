"""Stage: up. `syntra up`: the compose file rendered from syntra.yaml's services
(`compose`), and the stack built for this host, loaded and started (`stack`)."""
