#!/usr/bin/env bash
# The whole test run, as CI does it: dependencies, test services' binaries, every vitest test.
# Ends with one plain line "N passed, N failed" counted from vitest's JSON report, and exits non-zero
# when vitest failed or wrote no report. Arguments are passed on to vitest (a file filter, --config …).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REPORT=.argus/vitest.json
mkdir -p .argus
rm -f "$REPORT"

echo "[test-all] npm install"
# Not npm ci: the registry this project installs from serves only the Linux builds of packages with
# per-platform binaries (biome, esbuild, lmdb, msgpackr-extract), so no lockfile can list the other
# platforms' optional packages and npm ci refuses every lockfile. npm install still follows it.
npm install --no-audit --no-fund --loglevel=error

echo "[test-all] test services"
bash scripts/install-test-deps.sh

echo "[test-all] vitest"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$REPORT" "$@" || status=$?

if [ ! -s "$REPORT" ]; then
  echo "[test-all] vitest wrote no report at $REPORT (exit $status)" >&2
  echo "0 passed, 0 failed"
  exit $((status == 0 ? 1 : status))
fi

node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed`);
' "$REPORT"
exit "$status"
