"""Supervisor figures: pure functions over rows (``figures``); SQL is in ``store.reports``."""
