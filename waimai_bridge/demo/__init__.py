"""``waimai-bridge demo``: a lunch service replayed through the embedded stack.

- :mod:`~waimai_bridge.demo.channel` — what a plugin contributes (the demo channel protocol);
- :mod:`~waimai_bridge.demo.schedule` — when each push is sent, and its platform time;
- :mod:`~waimai_bridge.demo.stack` — the database, the config and the web server;
- :mod:`~waimai_bridge.demo.replay` — pushes and actions over HTTP, and settling;
- :mod:`~waimai_bridge.demo.summary` — the store × channel summary and each order's outcome;
- :mod:`~waimai_bridge.cli.demo` — the command itself.
"""
