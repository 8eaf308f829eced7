"""SQLite storage: the only place that speaks SQL."""
