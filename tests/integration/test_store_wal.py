"""WAL checkpoints off the store writer (issue 11): the writer runs no
automatic checkpoint; a checkpointer thread copies the WAL once it grew
past the soft bound, the writer checkpoints itself only past the hard
bound, and the status RPC reports both (gateway.store.wal)."""

import os
import time

import pytest

from harness import clawgate_only
from oahelp import TOKEN, chat, oa_config, post, upstream  # noqa: F401

pytestmark = clawgate_only("store checkpoint figures")

SOFT, HARD = 48, 192
FRAME = 4096 + 24   # WAL frame: page + header
BIG = "lorem ipsum dolor " * 1200   # ~21 KB: 6 overflow pages per message


@pytest.fixture
def walgw(tmp_root, upstream):  # noqa: F811 - the fixture
    from harness import Launcher
    lch = Launcher(tmp_root)
    gw = lch.start(config=oa_config(upstream),
                   env={"CLAWGATE_STORE_WAL_PAGES": "%d:%d" % (SOFT, HARD)})
    yield gw
    lch.cleanup()


def store_status(gw):
    with gw.connect(scopes=["operator.read"]) as c:
        res = c.call("status")
    st = res["gateway"]["store"]
    assert isinstance(st["writes"], int) and isinstance(st["commits"], int)
    return st


def wal_file(gw):
    return os.path.join(gw.state_dir, "state", "clawgate.sqlite-wal")


def test_checkpoints_off_the_writer_and_bounded(walgw):
    wal = store_status(walgw)["wal"]
    assert (wal["softPages"], wal["hardPages"]) == (SOFT, HARD)
    # (start-up writes, e.g. the config snapshot, may already have run one)
    ck0, resets0 = wal["checkpoints"], wal["resets"]
    biggest = 0
    # each completion stores its ~21 KB prompt twice (text and message):
    # ~15 pages, so 60 of them write ~4 times the hard bound
    for i in range(60):
        r = post(walgw, "/v1/chat/completions",
                 chat("%d %s [[reply:ok%d]]" % (i, BIG, i)))
        assert r.status_code == 200, r.text
        biggest = max(biggest, os.path.getsize(wal_file(walgw)))
    # the checkpointer runs on its own thread: poll its count (bounded)
    deadline = time.monotonic() + 30
    with walgw.connect(scopes=["operator.read"]) as c:
        while True:
            wal = c.call("status")["gateway"]["store"]["wal"]
            if wal["checkpoints"] > ck0 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
    assert wal["checkpoints"] > ck0, wal
    assert wal["checkpointPages"] > 0, wal
    assert wal["lastCheckpointUs"] > 0 and wal["totalCheckpointUs"] > 0
    # the WAL rewound at least once and never grew much past the hard
    # bound (a few commits at most: a completion here is ~15 pages)
    assert wal["resets"] > resets0, wal
    assert wal["pagesMax"] <= HARD + 64, wal
    assert biggest <= (HARD + 64) * FRAME + 32, biggest
    # every answer's rows are there (copied or in the WAL)
    with walgw.connect(scopes=["operator.read"]) as c:
        n = c.call("status")["sessions"]["count"]
    assert n >= 60


def test_status_store_figures_default(tmp_root, upstream):  # noqa: F811
    """Without the override: a 200-page soft bound (short checkpoints),
    4000 pages hard; writes are counted."""
    from harness import Launcher
    lch = Launcher(tmp_root)
    try:
        gw = lch.start(config=oa_config(upstream))
        r = post(gw, "/v1/chat/completions", chat("hi [[reply:x]]"))
        assert r.status_code == 200, r.text
        st = store_status(gw)
        assert st["writes"] >= 1 and st["commits"] >= 1
        assert st["wal"]["softPages"] == 200
        assert st["wal"]["hardPages"] == 4000
        assert 0 <= st["wal"]["pages"] < 4000
        assert st["wal"]["writerCheckpoints"] == 0
    finally:
        lch.cleanup()
