"""The service: jobs of many mailbox pairs, their passes, a runner of worker processes.

Built on the engine's one-pass entry point (``engine.passes.run_pass``) and the job
database; the CLI, the web app and the fleet workers all drive these functions.
"""
