"""Files the installed package reads at run time, found with `importlib.resources`.

- `migrations/`: the SQL migrations (a link to the repository's top-level `migrations/`, the single
  source; the wheel carries the files themselves);
- `dagster.yaml`: the Dagster instance template copied into the Dagster home;
- `workspace.yaml`: the code location that `dagster dev` and the `dagster` CLI load.
"""
