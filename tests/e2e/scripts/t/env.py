import os


def main():
    return {k: v for k, v in os.environ.items() if k.startswith("HOOKGATE_") and k != "HOOKGATE_RESULT_FD"}
