"""Answer with a status code and content type of the script's choosing."""


def main(service: str = "api", up: bool = True) -> dict[str, object]:
    if not up:
        raise RuntimeError(f"{service} is down")
    return {
        "windmill_status_code": 200,
        "windmill_content_type": "text/plain",
        "result": f"{service} is up\n",
    }
