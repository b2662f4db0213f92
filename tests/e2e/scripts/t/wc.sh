#!/bin/sh
python3 -c 'import json, sys; a = json.load(sys.stdin); print(json.dumps({"words": len(a.get("text", "").split())}))'
