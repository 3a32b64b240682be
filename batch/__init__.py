"""Batch client: queues a job list on ComfyUI servers over HTTP (``cli.py batch``); see docs/batch.md.
It talks to servers, not to node classes; ``nodes`` never imports it."""
