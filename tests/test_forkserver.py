"""The fork servers start what the Procfile would: the test's environment, directory and arguments,
the project's modules imported fresh in each child, the exit code reported."""

from __future__ import annotations

import json
import os

import pytest

from tests import forkserver


@pytest.mark.parametrize("flavour", ["gevent", "plain"])
def test_a_forked_child_runs_the_module_with_the_tests_environment_and_reports_its_exit_code(flavour, tmp_path):
    log = tmp_path / "probe.log"
    env = {**os.environ, "RAKUDA_PROBE": "seen"}
    proc = forkserver.fork_server(flavour).spawn(["tests.forkprobe", "3"], env, forkserver.ROOT, str(log))
    assert proc.wait(timeout=30) == 3
    seen = json.loads(log.read_text().splitlines()[-1])
    assert seen["argv"][1:] == ["3"] and seen["probe"] == "seen" and seen["cwd"] == str(forkserver.ROOT)
    assert seen["project_imported"] == []  # the project's modules are the child's own to import
    assert seen["socket_patched"] is (flavour == "gevent")
    assert seen["flask_preloaded"] if flavour == "gevent" else seen["celery_preloaded"]


def test_start_refuses_anything_but_a_module_run_by_this_interpreter(tmp_path):
    with pytest.raises(AssertionError):
        forkserver.start(["python3", "-c", "pass"], dict(os.environ), str(tmp_path / "x.log"), "plain")
