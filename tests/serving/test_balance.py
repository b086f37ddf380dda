"""`neipalette_tf.serving.balance`: the shared connection table and the decision to close a surplus connection.

Two tables on one file stand for two server processes (the other one under the pid
of this test's parent, a process that is alive); the served end-to-end check is
`tests/serving/test_hostile.py::test_kept_alive_connections_are_evened_out`.
"""

import os
import subprocess
import sys

import pytest

from neipalette_tf.serving import balance

pytestmark = pytest.mark.skipif(balance.fcntl is None, reason="no fcntl: the service runs unbalanced")


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_table_exists_only_while_the_server_runs_and_only_for_several_processes():
    with balance.shared_table(1) as path:
        assert path is None and balance.BALANCE_ENV not in os.environ
    with balance.shared_table(2) as path:
        assert os.path.isfile(path) and os.environ[balance.BALANCE_ENV] == path
        assert balance.ConnectionTable.from_env().processes == 2
    assert not os.path.exists(path) and balance.BALANCE_ENV not in os.environ
    assert balance.ConnectionTable.from_env() is None  # unset: unbalanced, no error


def test_a_process_over_its_share_closes_only_its_surplus():
    with balance.shared_table(2) as path:
        a, b = balance.ConnectionTable(path), balance.ConnectionTable(path, pid=os.getppid())
        assert a.slot != b.slot
        for _ in range(6):
            a.opened()
        for _ in range(2):
            b.opened()
        assert a.share() == b.share() == 4
        assert [a.should_close() for _ in range(4)] == [True, True, False, False]  # 6 -> 4 kept
        assert not b.should_close()
        a.closed(was_closing=True)   # a closed surplus connection: 5 open, 1 still closing
        b.opened()                   # its client reconnected to the other process
        assert not a.should_close() and not b.should_close()
        a.closed(was_closing=True)
        a.opened()                   # this one came back to the first process: 5 open, 0 closing, share 4
        assert a.should_close() and not a.should_close()


def test_a_process_without_connections_still_counts_and_a_dead_one_does_not():
    with balance.shared_table(2) as path:
        a = balance.ConnectionTable(path)  # the other process has not claimed a slot yet
        for _ in range(8):
            a.opened()
        assert a.share() == 4 and a.should_close()
    with balance.shared_table(2) as path:
        a = balance.ConnectionTable(path)
        b = balance.ConnectionTable(path, pid=dead_pid())  # a process that took a slot, then died
        b.opened()
        for _ in range(3):
            a.opened()
        assert a.share() == 3 and not a.should_close()  # nobody else alive to take connections
        again = balance.ConnectionTable(path, pid=os.getppid())  # a restarted process takes a dead slot
        assert again.slot == b.slot


def test_a_process_claims_its_own_slot_once():
    with balance.shared_table(2) as path:
        first, second = balance.ConnectionTable(path), balance.ConnectionTable(path)
        assert first.slot == second.slot
