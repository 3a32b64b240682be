"""Headless runtime built on the nodes: the workflow runner, stand-ins for core file nodes, the CLI commands
and the demo. Imports ``nodes``; ``nodes`` never imports it."""
