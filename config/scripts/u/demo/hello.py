"""Greet someone: the smallest script there is. Its return value is the job's result."""


def main(name: str = "world") -> dict[str, str]:
    print(f"saying hello to {name}")  # printing is fine: it goes to the job's logs, not the result
    return {"greeting": f"hello, {name}"}
