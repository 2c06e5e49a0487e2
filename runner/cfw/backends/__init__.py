"""One package per kind of environment, on a shared base (kind.py, base.py, registry.py)."""
