from gateway.client import report_step


def main(n: int = 2):
    for i in range(n):
        report_step(f"stage-{i}", "started")
        print(f"stage {i}: a log line that must not be mistaken for a step")
        report_step(f"stage-{i}", "completed", message="done", outputs={"i": i})
    report_step("cleanup", "skipped", message="nothing to clean")
    return {"stages": n}
