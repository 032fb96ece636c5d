"""Harnesses run from the command line (python -m explorer.tools.bench, .loadtest); the app never imports them."""
