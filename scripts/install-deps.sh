#!/bin/sh
# install-deps.sh: install, as root on Debian 12 (bookworm), every Debian
# package the tests need, without questions. Quick and harmless when
# everything is installed already.
#
#   postfix, dovecot-core, openssl   the real-server rig (scripts/testrig.sh);
#                                    it also uses perl-base and coreutils,
#                                    which every Debian system has
#   ca-certificates                  system roots
#   qemu-user                        running ARM builds (qemu-arm ./binary)
#   util-linux                       setsid, and prlimit, which runs the
#                                    agent with 256 file descriptors in
#                                    TestFDBurst
#   bsdutils                         logger, to send syslog to the agent
#   prometheus-alertmanager          a real Alertmanager posting webhooks
#   chromium, fonts-dejavu-core      headless Chromium for the browser tests
#                                    of the web page, and a font for their
#                                    screenshots
#
# The rig runs its own Postfix and Dovecot; the system's instances are kept
# from starting during the install and stopped (and, under systemd,
# disabled) if this run installed them, so nothing listens on port 25.
set -eu

pkgs="postfix dovecot-core openssl ca-certificates qemu-user util-linux bsdutils prometheus-alertmanager chromium fonts-dejavu-core"

log() {
	echo "install-deps: $*" >&2
}

[ "$(id -u)" = 0 ] || {
	log "run as root"
	exit 1
}

missing=
for p in $pkgs; do
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case $status in
	ii*) ;;
	*) missing="$missing $p" ;;
	esac
done
if [ -z "$missing" ]; then
	log "all installed: $pkgs"
	exit 0
fi
log "installing:$missing"

# Keep services the packages bring from starting (invoke-rc.d and
# deb-systemd-invoke both ask policy-rc.d); leave an existing policy alone.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	trap 'rm -f "$policy"' EXIT
	trap 'exit 1' HUP INT TERM
	printf '#!/bin/sh\n# install-deps.sh: no service starts while it installs\nexit 101\n' >"$policy"
	chmod 0755 "$policy"
fi

export DEBIAN_FRONTEND=noninteractive
# Postfix would otherwise ask what kind of mail server this is.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections

apt_get() {
	apt-get -q -y -o DPkg::Lock::Timeout=300 \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}
apt_get update
# shellcheck disable=SC2086 # word splitting wanted
apt_get install --no-install-recommends $missing

# If a service got started or enabled anyway, stop it: the rig runs its own.
for p in $missing; do
	case $p in
	postfix) unit=postfix pidfile=/var/spool/postfix/pid/master.pid comm=master ;;
	dovecot-core) unit=dovecot pidfile=/run/dovecot/master.pid comm=dovecot ;;
	prometheus-alertmanager) unit=prometheus-alertmanager pidfile=/run/prometheus/alertmanager.pid comm=prometheus-aler ;;
	*) continue ;;
	esac
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
		systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
	fi
	if [ -f "$pidfile" ]; then
		pid=$(sed -n '1{s/[^0-9]//g;p;}' "$pidfile")
		if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]; then
			log "stopping the system's $unit ($pid)"
			kill -TERM "$pid" 2>/dev/null || true
		fi
	fi
done
log "done"
