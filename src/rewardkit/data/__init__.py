"""Preference data: typed records, importers, implicit-feedback rules, snapshot compilation, stats."""
