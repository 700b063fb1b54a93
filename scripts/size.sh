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
# What the admin page, auth.htm and the API add: the same build without
# them (-tags nopage: alarms over HTTP stay, configuration on the console).
# Counted in loaded bytes (scripts/elfsize), as file sizes move in steps
# of the 64 KiB segment alignment.
nopage=$dir/nopage/mailagent-linux-arm-v7
if [ -f "$nopage" ]; then
	set -- $(go run ./scripts/elfsize "$dir/mailagent-linux-arm-v7" "$nopage")
	echo "linux/arm v7 loaded bytes: $1 with the web page, $2 without (-tags nopage): the page adds $(($1 - $2)) bytes ($(awk -v n="$(($1 - $2))" 'BEGIN{printf "%.0f", n/1024}') KiB)"
fi
