"""Ask a provisioning service for a resource, handing it the flow's ``callback_url``.

The first step of f/demo/provision (Workflow Orchestrator's callback step). A real script would
send ``callback_url`` to the service and return at once; here a detached process stands in for the
service, and calls the URL back a moment later, as the service would once the resource is ready.
The URL is the callback's only credential: it is never printed.
"""

import subprocess
import sys

SERVICE = """
import json, sys, time, urllib.request
time.sleep(1)
body = json.dumps({"status": "active", "resource": sys.argv[2]}).encode()
request = urllib.request.Request(sys.argv[1], data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
urllib.request.urlopen(request, timeout=10)
"""


def main(callback_url: str, resource: str) -> dict[str, str]:
    subprocess.Popen(
        [sys.executable, "-c", SERVICE, callback_url, resource],
        start_new_session=True,  # the "service" outlives this step, as a real one would
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(f"asked the provisioning service for {resource}")
    return {"requested": resource}
