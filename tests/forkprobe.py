"""Run by tests/test_forkserver.py in a child of a fork server: reports what the child sees, as JSON."""

from __future__ import annotations

import json
import os
import sys

if __name__ == "__main__":
    from gevent import monkey

    print(json.dumps({
        "argv": sys.argv, "cwd": os.getcwd(), "probe": os.environ.get("RAKUDA_PROBE"),
        "project_imported": sorted(m for m in sys.modules if m.split(".")[0] in ("gateway", "tasks")),
        "flask_preloaded": "flask" in sys.modules, "celery_preloaded": "celery" in sys.modules,
        "socket_patched": monkey.is_module_patched("socket"),
    }), flush=True)
    sys.exit(int(sys.argv[1]))
