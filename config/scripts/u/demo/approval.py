"""Ask a person to approve something, pause until they answer, then act on it.

The job creates a callback endpoint with an approval page, prints its URL (it lands in the job's
logs; a real script would post it to chat or send it by mail), and awaits the answer. While it
waits, the job is "suspended" and holds no engine slot.
"""

from gateway.client import CallbackTimeout, await_callback, create_callback_endpoint


def main(change: str = "deploy site to production", timeout: float = 3600) -> dict[str, object]:
    endpoint = create_callback_endpoint(
        timeout=timeout, approval={"title": "Approval needed", "details": f"Please approve: {change}"}
    )
    print(f"approve or reject at {endpoint['url']}", flush=True)
    try:
        answer = await_callback(endpoint, timeout=timeout)
    except CallbackTimeout:
        return {"change": change, "approved": False, "comment": "nobody answered in time"}
    return {"change": change, "approved": answer["approved"], "comment": answer["comment"]}
