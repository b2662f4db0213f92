def main():
    return {"version": 1}
