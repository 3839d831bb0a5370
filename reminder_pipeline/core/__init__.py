"""Shared core: settings, database access, migrations, the execution log and the job lock."""
