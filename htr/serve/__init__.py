"""`htr serve`: a web page and JSON API for recognition (server.py), with dynamic batching (batcher.py)."""
