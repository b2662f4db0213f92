import hashlib


def seen(value):
    return hashlib.sha256(str(value).encode()).hexdigest()


def main(**args):
    """Says whether the real values reached the job, without returning them (or holding them:
    the store keeps every script version)."""
    raw = args.get("raw_string") or ""
    return {
        "password": seen(args.get("password"))
        == "165bbef61bc96b843428b484a36a765d14cf165247f4828b2540d19e00a1b026",
        "nested": seen((args.get("nested") or {}).get("password"))
        == "56360ac92f85b64490c1f598a6cc95121b5e080c13eee65215cd16cf9cd54dae",
        "card": seen((args.get("card") or {}).get("number"))
        == "477bba133c182267fe5f086924abdc5db71f77bfc27f01f2843f2cdc69d89f05",
        "raw": "hunter2-top" in raw,  # a prefix: the whole secret is in no file
        "keys": sorted(args),
    }
