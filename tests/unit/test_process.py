import sys

import pytest

from pipeline_tasks.errors import StackError
from pipeline_tasks.local.process import ServerProcess, free_port, port_open


def test_a_server_that_exits_at_start_reports_its_output():
    server = ServerProcess("broken", [sys.executable, "-c", "print('no config'); raise SystemExit(3)"], {})
    with pytest.raises(StackError, match=r"broken exited at start \(code 3\): no config"):
        server.start(lambda: False, timeout=10)
    assert server.process is None and server.log is None


def test_a_server_that_never_gets_ready_is_stopped():
    server = ServerProcess("slow", [sys.executable, "-c", "import time; time.sleep(60)"], {})
    with pytest.raises(StackError, match="slow was not ready within 1 s"):
        server.start(lambda: False, timeout=1)
    assert server.process is None


def test_free_port_is_free():
    assert not port_open(free_port())
