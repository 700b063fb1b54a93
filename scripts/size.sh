#!/bin/sh
# size.sh DIR — print each binary's size and check the linux/arm v7 budget.
set -eu
dir=${1:-build}
budget=$((8 * 1024 * 1024))
goal=$((7 * 1024 * 1024))
printf '%-28s %10s %8s\n' binary bytes MiB
for f in "$dir"/mailagent-*; do
	n=$(wc -c <"$f")
	printf '%-28s %10d %8s\n' "$(basename "$f")" "$n" "$(awk -v n="$n" 'BEGIN{printf "%.2f", n/1048576}')"
done
arm=$(wc -c <"$dir/mailagent-linux-arm-v7")
echo "linux/arm v7 stripped: $arm bytes (budget $budget, goal $goal)"
if [ "$arm" -gt "$budget" ]; then
	echo "over budget" >&2
	exit 1
fi
