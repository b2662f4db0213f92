"""Answer with the arguments the request became: the quickest way to see the shaping rules at work."""


def main(**kwargs: object) -> dict[str, object]:
    return kwargs
