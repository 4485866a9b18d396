"""The run: one context per command, the stages doit runs, their tasks, preflight checks
and the build report."""
