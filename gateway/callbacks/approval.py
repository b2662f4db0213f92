"""The human-in-the-loop page a callback URL serves when created with ``approval``.

Plain HTML with a form (no JavaScript needed): Approve / Reject and an optional comment, POSTed
back to the same URL. Everything that came from the job is escaped. A used or expired link says so.
"""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["approval_done", "approval_page", "approval_unavailable"]

_STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; }
body { color: #1f2328; } h1 { font-size: 1.4rem; }
.details { white-space: pre-wrap; background: #f6f8fa; padding: 1rem; border-radius: 6px; }
textarea { width: 100%; min-height: 5rem; font: inherit; }
.buttons { margin-top: 1rem; display: flex; gap: .75rem; }
button { font: inherit; padding: .5rem 1.25rem; border-radius: 6px; cursor: pointer; }
button { border: 1px solid #d0d7de; }
.approve { background: #1f883d; color: white; } .reject { background: #cf222e; color: white; }
"""


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def approval_page(approval: dict[str, Any]) -> str:
    title = str(approval.get("title", "Approval requested"))
    details = str(approval.get("details", ""))
    return _document(
        title,
        f"<h1>{escape(title)}</h1>"
        + (f'<div class="details">{escape(details)}</div>' if details else "")
        + '<form method="post">'
        + "".join(
            f'<p><label for="f-{escape(name)}">{escape(name)}</label><br>'
            f'<input id="f-{escape(name)}" name="{escape(name)}" type="text"></p>'
            for name in approval.get("fields", ())
            if name not in ("decision", "comment")
        )
        + '<p><label for="comment">Comment (optional)</label><br>'
        '<textarea id="comment" name="comment"></textarea></p>'
        '<div class="buttons">'
        '<button class="approve" type="submit" name="decision" value="approve">Approve</button>'
        '<button class="reject" type="submit" name="decision" value="reject">Reject</button>'
        "</div></form>",
    )


def approval_done(approved: bool) -> str:
    verdict = "Approved" if approved else "Rejected"
    return _document(
        verdict, f"<h1>{verdict}</h1><p>Thank you: your answer was recorded. You can close this page.</p>"
    )


def approval_unavailable(reason: str) -> str:
    text = {
        "used": "This link was already used: an answer has been recorded.",
        "expired": "This link has expired: the request no longer waits for an answer.",
    }.get(reason, "This link is not valid.")
    return _document("Link unavailable", f"<h1>Link unavailable</h1><p>{escape(text)}</p>")
