"""Scoring: the token-budget batch scorer (``scorer``), its precision choice, and files in and out (``files``)."""
