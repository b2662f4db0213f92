"""What of a running job's output is new since it was last written to the store.

An engine keeps only a bounded tail of a job's output; the dispatcher writes that output to the
store in chunks so that any replica can show it live. A ``LogCursor`` remembers how far it has
written, so each chunk holds only bytes that were not written before, decoded without splitting a
character across two chunks. Output the engine let go of before it could be written is marked,
not silently dropped.
"""

from __future__ import annotations

import codecs

from gateway.jobs.engine import LiveLogs

__all__ = ["LogCursor", "skipped_marker"]


def skipped_marker(skipped: int) -> str:
    return f"[… {skipped} bytes of output not kept …]\n"


class LogCursor:
    def __init__(self) -> None:
        self.written = 0
        """Bytes of the job's output written so far (their position in the whole output)."""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._text = ""  # engines that give only text: what they gave last time

    def advance(self, live: LiveLogs | str) -> str:
        """The text to append to the job's logs in the store ("" when nothing is new)."""
        if isinstance(live, str):
            return self._advance_text(live)
        end = live.start + len(live.data)
        if end <= self.written:
            return ""
        skipped = live.start - self.written
        new = live.data[max(0, -skipped) :]
        self.written = end
        if skipped > 0:
            self._decoder.reset()  # the bytes before the gap are gone: a split character with them
            return skipped_marker(skipped) + self._decoder.decode(new)
        return self._decoder.decode(new)

    def _advance_text(self, text: str) -> str:
        previous, self._text = self._text, text
        if text.startswith(previous):
            return text[len(previous) :]
        return "[… earlier output not kept …]\n" + text  # the tail moved on: where it joins is unknown
