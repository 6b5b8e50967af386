"""Other media servers the benches measure Pnyx against (``janus_bridge.py``: Janus's
AudioBridge), and what it takes to run them here (``netns.py``, ``janus.py``)."""
