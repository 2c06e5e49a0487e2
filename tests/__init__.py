"""cfw's tests (a regular package: python-lambda-4dn, a dependency of tibanna, installs a
top-level `tests` package that would otherwise shadow this one)."""
