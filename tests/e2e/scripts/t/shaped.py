def main(ret):
    return ret
