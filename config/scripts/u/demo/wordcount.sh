#!/bin/sh
# Any executable works: the arguments arrive as JSON on stdin; stdout is the result (JSON or text).
python3 -c 'import json, sys; args = json.load(sys.stdin); text = args.get("text", ""); print(json.dumps({"words": len(text.split())}))'
