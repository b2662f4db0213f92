#!/usr/bin/env bash
# n8n for `make bench PEERS=n8n`: about 3 GB. Its install scripts are skipped (they fetch more than
# the bench needs); only sqlite3, its database driver, is built, for the Node.js that runs n8n
# (node-linux-<arch>, Node.js 24, when the machine's is older), so that its ABI matches.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ -e "$here/node_modules/n8n/bin/n8n" ] && exit 0
npm ci --prefix "$here" --no-audit --no-fund --ignore-scripts
for bundled in "$here"/node_modules/node-linux-*/bin; do
    [ -x "$bundled/node" ] && PATH="$bundled:$PATH"
done
(cd "$here" && npm rebuild sqlite3)
