def main(message: str = "boom"):
    raise ValueError(message)
