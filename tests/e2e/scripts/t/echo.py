def main(**kwargs):
    return kwargs
