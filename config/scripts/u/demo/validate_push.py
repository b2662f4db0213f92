"""Check a push event and list the files it touched (the first step of f/demo/push).

The flow answers its caller with this step's result (early_return) and goes on checking each
file; a push to anything but a branch is refused here, before any work is queued.
"""


def main(ref: str = "", commits: list[dict[str, list[str]]] | None = None) -> dict[str, object]:
    if not ref.startswith("refs/heads/"):
        raise ValueError(f"not a branch push: {ref!r}")
    files = sorted(
        {f for commit in commits or [] for f in commit.get("added", []) + commit.get("modified", [])}
    )
    return {"accepted": True, "branch": ref.removeprefix("refs/heads/"), "files": files}
