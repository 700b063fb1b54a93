#!/bin/sh
# cross.sh OUTDIR [TAGS [TARGET...]] — stripped static mailagent binaries
# for every target (or the ones named), with build tags added to ours.
set -eu
out=${1:-build}
extra=${2:-}
[ $# -gt 2 ] && shift 2 || set --
targets=${*:-linux/arm/7 linux/arm/5 linux/arm64 linux/mipsle linux/amd64}
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
date=$(git log -1 --format=%cs 2>/dev/null || true)
mkdir -p "$out"
# HTTP/2 is left out: the box's page and the token endpoints work over
# HTTP/1.1, and the HTTP/2 code is half a megabyte.
tags=nethttpomithttp2${extra:+,$extra}
# Inlining stays on for the runtime and crypto, where speed matters, and is
# off elsewhere: 650 KB less for linux/arm v7, for about 5 % more CPU in the
# 10,000-alarm storm, whose cost is mostly system calls (files, sockets).
gcflags="-gcflags=all=-l -gcflags=runtime= -gcflags=crypto/...="
for target in $targets; do
	os=${target%%/*}
	rest=${target#*/}
	arch=${rest%%/*}
	arm=
	name=mailagent-$os-$arch
	if [ "$arch" = arm ]; then
		arm=${rest#*/}
		name=$name-v$arm
	fi
	# shellcheck disable=SC2086 # $gcflags is three words
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch GOARM=$arm go build -trimpath -tags "$tags" $gcflags \
		-ldflags "-s -w -X main.version=$version -X main.buildDate=$date" -o "$out/$name" ./cmd/mailagent
done
