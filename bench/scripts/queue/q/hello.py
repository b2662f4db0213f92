"""The benchmark's hello script: what a job costs when the script itself costs nothing."""


def main(**kwargs):
    return {"hello": "world"}


if __name__ == "__main__":  # run directly, as the spawn baseline does
    main()
