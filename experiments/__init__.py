"""Command-line scripts (``python experiments/<script>.py --help``) and the harness they share."""
