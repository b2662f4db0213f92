import time

import wmill


def main(mode: str = "sleep"):
    if mode == "sleep":
        time.sleep(60)
        return {"slept": True}
    cancelled = wmill.Windmill().cancel_running()  # the other running jobs of this same script
    return {"cancelled": sorted(cancelled)}
