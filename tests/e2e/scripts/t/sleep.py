import os
import pathlib
import time


def main(seconds: float = 1.0, marker: str = "", tag: str = ""):
    if marker:
        pathlib.Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    return {"slept": seconds, "tag": tag}
