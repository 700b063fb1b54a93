#!/bin/sh
# qemu-smoke.sh DIR — run the ARM builds in DIR under qemu-user: version,
# config set/get/check on a scratch data directory, a change committed on
# the console, and an alarm queued on flash when no agent runs.
set -eu
dir=${1:-build}
for pair in arm-v7:qemu-arm arm-v5:qemu-arm arm64:qemu-aarch64 mipsle:qemu-mipsel; do
	name=${pair%%:*}
	emu=${pair#*:}
	bin=$dir/mailagent-linux-$name
	command -v "$emu" >/dev/null || { echo "qemu-smoke: $emu not installed (scripts/install-deps.sh)" >&2; exit 1; }
	data=$(mktemp -d)
	trap 'rm -rf "$data"' EXIT
	"$emu" "$bin" version
	"$emu" "$bin" --board gateway --data "$data" config set mail.from alarm@example.test
	"$emu" "$bin" --data "$data" config set mail.to ops@example.test
	"$emu" "$bin" --data "$data" config set smtp.host smtp.example.test
	test "$("$emu" "$bin" --data "$data" config get smtp.port)" = 587
	"$emu" "$bin" --data "$data" config check >/dev/null
	printf 'set smtp.port 2525\ncommit\n' | "$emu" "$bin" --data "$data" console | grep -q 'ok: 1 change saved'
	test "$("$emu" "$bin" --data "$data" config get smtp.port)" = 2525
	"$emu" "$bin" --data "$data" alarm --severity major --code SMOKE text | grep -q 'queued on flash'
	test "$(ls "$data"/spool/*.alarm | wc -l)" = 1
	echo "qemu-smoke: $name ok"
	rm -rf "$data"
	trap - EXIT
done
