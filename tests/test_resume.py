"""SIGKILL at an arbitrary moment loses at most the requests in flight; a rerun completes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from fiqabench.benchmark.results import read_samples
from tests.conftest import TaskFolderFactory, qa_item

N_ITEMS = 300

DRIVER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from fiqabench.benchmark.pipeline import Evaluation
    from fiqabench.benchmark.schema import ModelIdentity, Response
    from fiqabench.benchmark.store import RecordStore
    from fiqabench.tasks.registry import TaskRegistry

    folder, out, delay, log = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4]

    class SlowRunner:
        identity = ModelIdentity(alias="slow", runner="test", model_id="slow")
        def generate(self, requests):
            with open(log, "a") as seen:
                for request in requests:
                    time.sleep(delay)
                    seen.write(request.sample_id + "\\n")
                    seen.flush()
                    yield request, Response(text="B", latency_s=delay)
        def close(self):
            pass

    task = TaskRegistry([folder]).get("ext-qa")
    with RecordStore(out / "records.sqlite") as store:
        Evaluation(runner=SlowRunner(), store=store, output_dir=out).run([task])
    """
)


def _stored(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as connection:
        try:
            return int(connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_sigkill_then_resume_without_loss_or_duplicates(
    task_folder: TaskFolderFactory, tmp_path: Path
) -> None:
    folder = task_folder([qa_item(i) for i in range(N_ITEMS)])
    out = tmp_path / "run"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    process = subprocess.Popen(
        [sys.executable, str(driver), str(folder), str(out), "0.01", str(first_log)], env=env
    )
    deadline = time.monotonic() + 60
    while _stored(out / "records.sqlite") < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL

    answered_before_kill = first_log.read_text().split()
    kept = _stored(out / "records.sqlite")
    assert 40 <= kept < N_ITEMS
    # At most the one request in flight when the process died is lost.
    assert len(answered_before_kill) - kept <= 1

    subprocess.run(
        [sys.executable, str(driver), str(folder), str(out), "0", str(second_log)],
        env=env,
        check=True,
    )
    regenerated = second_log.read_text().split()
    assert len(regenerated) == N_ITEMS - kept
    assert not set(regenerated) & set(answered_before_kill[:kept])

    records = read_samples(out)
    assert len(records) == N_ITEMS
    assert len({r.sample_id for r in records}) == N_ITEMS
    assert all(r.status == "ok" for r in records)
    results = json.loads((out / "results.json").read_text())
    assert results["results"]["ext-qa"]["timing"]["n_cached"] == kept
