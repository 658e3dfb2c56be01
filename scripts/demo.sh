#!/usr/bin/env bash
# A real backup and restore on the local directory destination, from a fresh clone:
# installs, builds, backs up a generated folder, changes it, backs up again, restores
# both snapshots and compares them with what was backed up.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ]; then
	echo "== npm ci: installing the dependencies (better-sqlite3 is built from source: about two minutes)"
	npm ci --no-audit --no-fund
fi
echo "== building"
npm run build --silent

work=$(mktemp -d "${TMPDIR:-/tmp}/holdfast-demo-XXXXXX")
cp examples/quickstart/holdfast.yaml "$work/"
holdfast() { node "$OLDPWD/packages/cli/bin/holdfast.js" "$@"; }
export HOLDFAST_PASSWORD="${HOLDFAST_PASSWORD:-demo password}"
cd "$work"
mkdir -p data/docs data/photos
for i in $(seq 1 50); do echo "document $i, written $(date -u +%F)" > "data/docs/doc-$i.txt"; done
head -c 8000000 /dev/urandom > data/photos/holiday.raw
ln -s docs/doc-1.txt data/latest-doc

echo "== holdfast init"; holdfast init
echo "== holdfast backup"; holdfast backup
cp -a data first-state
echo "changed" >> data/docs/doc-7.txt; rm data/docs/doc-9.txt; echo new > data/docs/new.txt
echo "== holdfast backup (after changes)"; holdfast backup
echo "== holdfast snapshots"; holdfast snapshots
first=$(holdfast snapshots --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].id))')
echo "== holdfast restore (both snapshots)"
holdfast restore "$first" --target restored-first
holdfast restore latest --target restored-latest
diff -r first-state restored-first/data
diff -r data restored-latest/data
echo "== holdfast check --read-data"; holdfast check --read-data
echo "both snapshots restored identically; the demo lives in $work"
