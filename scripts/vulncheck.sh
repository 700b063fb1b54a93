#!/bin/sh
# vulncheck.sh [VERSION] — govulncheck on the module against an offline copy
# of the Go vulnerability database: these machines reach no vulnerability
# service, so scripts/vulndb builds one from golang.org/x/vulndb@VERSION on
# the module proxy (default: the version pinned here; "latest" asks the
# proxy) and keeps it in build/vulndb/VERSION. Prints the database's date;
# fails (exit 3) when govulncheck finds a vulnerability.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
GOVULNCHECK=golang.org/x/vuln/cmd/govulncheck@v1.9.0
version=${1:-v0.0.0-20261105234957-e22db6528018}
set -- $($GO run ./scripts/vulndb -out build/vulndb "$version")
echo "vulnerability database: golang.org/x/vulndb@$(basename "$1"), dated $2 ($1)"
$GO version
$GO run "$GOVULNCHECK" -db "file://$1" ./...
