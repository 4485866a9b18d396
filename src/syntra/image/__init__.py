"""Stage: image. A job per image (its inputs and their hash), the build backends,
rendering the container specs, image tests in a test box, and publishing to a registry."""
