"""A flow step for tests: logs each start and end (to count executions and see overlap), can wait
for a file, sleep, fail, and returns what it was given."""

import json
import os
import pathlib
import time


def _log(path, **entry):
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(entry) + "\n")


def main(name="", log="", seconds=0.0, fail=False, value=None, wait_for=""):
    started = time.time()
    _log(log, name=name, event="start", pid=os.getpid(), at=started)
    while wait_for and not pathlib.Path(wait_for).exists():
        time.sleep(0.02)
    time.sleep(float(seconds))
    if fail:
        raise RuntimeError(f"{name} failed on purpose")
    ended = time.time()
    _log(log, name=name, event="end", pid=os.getpid(), at=ended)
    return {"name": name, "value": value, "started": started, "ended": ended}
