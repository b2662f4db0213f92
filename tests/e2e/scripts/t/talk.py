"""Print a numbered line every ``interval`` seconds, then wait for a file: a job whose output grows."""

import pathlib
import time


def main(lines=5, interval=0.2, until=""):
    for n in range(lines):
        print(f"line {n}", flush=True)
        time.sleep(interval)
    while until and not pathlib.Path(until).exists():
        time.sleep(0.05)
    return {"lines": lines}
