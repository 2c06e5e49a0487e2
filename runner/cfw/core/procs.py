"""Whether a process on this machine is still alive."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """PID runs (as any user). A zombie, one that exited but that its parent (or, once
    orphaned, an init that reaps slowly) has not waited for yet, counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")  # gone since, or no /proc on this system
    except OSError:
        return True
    state = stat[stat.rfind(")") + 2 :][:1]
    return state not in ("Z", "X")
