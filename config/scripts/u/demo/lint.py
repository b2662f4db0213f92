"""Check one file of a push (run once per file by the flow f/demo/push's for_each)."""


def main(file: str, index: int = 0) -> dict[str, object]:
    return {"file": file, "ok": not file.endswith((".tmp", ".orig")), "position": index}
