"""A flow's callback step for tests: hands its callback_url to "the remote service" (a file the
test reads, as a real script would send it to a service) and completes at once."""

import pathlib


def main(callback_url, out, note=""):
    pathlib.Path(out).write_text(callback_url)
    return {"handed": True, "note": note}
