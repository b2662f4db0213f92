import os

import wmill


def main(n: int = 1):
    """Windmill's own client, inside a job: it finds the gateway and its identity in the environment."""
    client = wmill.Windmill()
    child = client.run_script_by_path("t/wm_root", args={"n": n}, cleanup=False)
    return {"child": child, "me": os.environ["WM_JOB_ID"], "root": client.get_root_job_id()}
