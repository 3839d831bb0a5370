"""The test suite. It lives in the repository (the package does not ship it), so it may read the
repository's own files: the docs, the README, the migrations folder."""

from pathlib import Path

#: The repository checkout the tests run from (never used by the package itself).
REPOSITORY = Path(__file__).resolve().parents[1]
