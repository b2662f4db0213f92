import pathlib


def main(counter: str, succeed_on: int = 2):
    path = pathlib.Path(counter)
    attempt = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempt))
    if attempt < succeed_on:
        raise RuntimeError(f"attempt {attempt} fails")
    return {"attempt": attempt}
