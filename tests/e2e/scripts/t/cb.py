import json
import pathlib

from gateway.client import CallbackTimeout, await_callback, create_callback_endpoint


def main(handoff: str, method: str = "POST", timeout: float = 30, schema: dict | None = None):
    endpoint = create_callback_endpoint(method=method, timeout=timeout, schema=schema)
    pathlib.Path(handoff).write_text(json.dumps(endpoint))  # "hand the URL to someone else"
    try:
        call = await_callback(endpoint, timeout=timeout)
    except CallbackTimeout as exc:
        return {"timed_out": True, "message": str(exc)}
    return {"method": call["method"], "body": call["body"], "query": call["query"]}
