"""Pretend to deploy a repository: shows path arguments, retries and a concurrency key."""

import time


def main(repository: str, ref: str = "main", seconds: float = 1.0) -> dict[str, object]:
    print(f"deploying {repository}@{ref}")
    time.sleep(seconds)
    return {"repository": repository, "ref": ref, "deployed": True}
