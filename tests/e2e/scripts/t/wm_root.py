import os

import wmill


def main(n: int = 1):
    return {"n": n, "parent": os.environ["WM_JOB_ID"], "root": wmill.Windmill().get_root_job_id()}
