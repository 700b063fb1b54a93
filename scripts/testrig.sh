#!/bin/sh
# testrig.sh start DIR | stop DIR
#
# Runs a private Postfix + Dovecot pair whose every file lives under DIR:
# configuration, queue, logs, sockets, a test CA and the Maildir that
# receives all mail for the rig's domain. Several rigs may run at once,
# each in its own DIR on its own ports; /etc/postfix and /etc/dovecot are
# only read (Postfix's meta files), never changed. Needs root, postfix,
# dovecot-core, openssl and perl-base (scripts/install-deps.sh).
#
# Listeners, all on 127.0.0.1:
#   RIG_SUBMISSION_PORT  STARTTLS required, AUTH only after TLS:
#                        PLAIN LOGIN XOAUTH2 OAUTHBEARER
#   RIG_SMTPS_PORT       implicit TLS, the same AUTH
#   RIG_BEARER_PORT      STARTTLS required, AUTH offers OAUTHBEARER only
#   RIG_PLAIN_PORT       no TLS at all; AUTH is offered and works in plain
#                        text, and mail for the domain is accepted without
#                        AUTH, so a client that leaks credentials or sends
#                        without TLS is caught by what arrives
# On the TLS ports mail needs AUTH. Any recipient in RIG_DOMAIN lands in
# DIR/Maildir, except refused@ (550 at RCPT) and busy@ (450); every other
# recipient is refused at RCPT.
#
# Dovecot checks passwords against one user (RIG_USER / RIG_PASSWORD) and
# OAuth2 tokens by RFC 7662 introspection at RIG_INTROSPECT_URL.
#
# With RIG_WATCH_PID set, a watcher stops the rig and removes DIR once that
# process has gone, so a killed test run leaves no daemons behind; the
# watcher ends by itself when DIR is removed.
#
# Files: DIR/ca.pem (clients trust it), DIR/Maildir, DIR/log/postfix.log,
# DIR/log/dovecot.log, DIR/postfix (main.cf, master.cf), DIR/dovecot.conf.
set -eu

usage() {
	echo "usage: $0 start DIR | stop DIR" >&2
	exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
case $2 in
/*) dir=$2 ;;
*) dir=$(pwd)/$2 ;;
esac

: "${RIG_SUBMISSION_PORT:=10587}"
: "${RIG_SMTPS_PORT:=10465}"
: "${RIG_BEARER_PORT:=10588}"
: "${RIG_PLAIN_PORT:=10025}"
: "${RIG_INTROSPECT_URL:=http://rig-client:rig-secret@127.0.0.1:10080/introspect}"
: "${RIG_DOMAIN:=example.test}"
: "${RIG_USER:=alarm@example.test}"
: "${RIG_PASSWORD:=rig-password}"
: "${RIG_TIMEOUT:=20}"
: "${RIG_WATCH_PID:=}"

# Delivered mail belongs to this user; virtual(8) refuses root.
vuid=$(id -u nobody)
vgid=$(id -g nobody)

log() {
	echo "testrig: $*" >&2
}

# is_daemon PID NAME: PID is alive and its command is NAME.
is_daemon() {
	[ -n "$1" ] && [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}

# group_alive PGID: a process of the group runs (zombies do not count: they
# wait for init to reap them).
group_alive() {
	grp=$1
	for f in /proc/[0-9]*/stat; do
		{ read -r line <"$f"; } 2>/dev/null || continue
		# Fields after "(comm) ": state ppid pgrp ...
		# shellcheck disable=SC2086 # split into fields
		set -- ${line##*) }
		if [ "${3:-}" = "$grp" ] && [ "$1" != Z ]; then
			return 0
		fi
	done
	return 1
}

# stop_group PIDFILE NAME: SIGTERM the daemon and its process group, wait
# (bounded) until the whole group is gone, then SIGKILL what is left.
stop_group() {
	[ -f "$1" ] || return 0
	pid=$(sed -n '1{s/[^0-9]//g;p;}' "$1")
	if ! is_daemon "$pid" "$2"; then
		rm -f "$1"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	i=0
	while group_alive "$pid" && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if group_alive "$pid"; then
		log "$2 did not stop, killing process group $pid"
		kill -s KILL -- "-$pid" 2>/dev/null || true
		sleep 0.2
	fi
	rm -f "$1"
}

do_stop() {
	stop_group "$dir/spool/pid/master.pid" master
	stop_group "$dir/dv/run/master.pid" dovecot
}

tail_logs() {
	for f in "$dir/log/postfix.log" "$dir/log/dovecot.log" "$dir/log/start.log"; do
		[ -s "$f" ] || continue
		echo "--- $f" >&2
		tail -n 30 "$f" >&2
	done
}

fail() {
	log "$*"
	tail_logs
	do_stop
	exit 1
}

make_ca() {
	tls=$dir/tls
	mkdir -p "$tls"
	chmod 0700 "$tls"
	cat >"$tls/server.ext" <<-EOF
		basicConstraints = critical, CA:FALSE
		keyUsage = critical, digitalSignature
		extendedKeyUsage = serverAuth
		subjectAltName = IP:127.0.0.1, DNS:localhost
	EOF
	{
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$tls/ca.key" -out "$dir/ca.pem" -days 7 \
			-subj "/CN=mailagent test rig CA" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" &&
			openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-keyout "$tls/server.key" -out "$tls/server.csr" -subj "/CN=localhost" &&
			openssl x509 -req -in "$tls/server.csr" -CA "$dir/ca.pem" -CAkey "$tls/ca.key" \
				-set_serial "0x$(openssl rand -hex 8)" -days 7 -extfile "$tls/server.ext" \
				-out "$tls/server.pem"
	} >>"$dir/log/start.log" 2>&1 || return 1
	chmod 0600 "$tls/ca.key" "$tls/server.key"
	chmod 0644 "$dir/ca.pem"
}

write_postfix() {
	pf=$dir/postfix
	mkdir -p "$pf"
	cat >"$pf/main.cf" <<-EOF
		compatibility_level = 3.6
		queue_directory = $dir/spool
		data_directory = $dir/data
		maillog_file = $dir/log/postfix.log
		maillog_file_prefixes = $dir/log
		import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C
		syslog_name = postfix-rig
		myhostname = rig.$RIG_DOMAIN
		mydomain = rig.invalid
		myorigin = \$myhostname
		mydestination =
		local_recipient_maps =
		inet_interfaces = 127.0.0.1
		inet_protocols = ipv4
		mynetworks = 127.0.0.1/32
		biff = no
		append_dot_mydomain = no
		alias_maps =
		alias_database =
		relayhost =
		relay_domains =
		fast_flush_domains =
		default_transport = error:the test rig does not relay
		relay_transport = error:the test rig does not relay
		smtpd_banner = \$myhostname ESMTP test rig
		# Deliver what the client sent: no Date, Message-ID or From added.
		local_header_rewrite_clients =
		always_add_missing_headers = no
		# Deliver everything for the domain into one Maildir.
		virtual_mailbox_domains = $RIG_DOMAIN
		virtual_mailbox_base = $dir
		virtual_mailbox_maps = static:Maildir/
		virtual_uid_maps = static:$vuid
		virtual_gid_maps = static:$vgid
		virtual_minimum_uid = 1
		# SASL through this rig's Dovecot.
		smtpd_sasl_auth_enable = yes
		smtpd_sasl_type = dovecot
		smtpd_sasl_path = private/auth
		smtpd_sasl_security_options = noanonymous
		smtpd_sasl_tls_security_options = noanonymous
		smtpd_sasl_authenticated_header = yes
		# Responses after a 334 may be long (OAuth2 tokens of 1-2.5 KB).
		smtpd_sasl_response_limit = 12288
		smtpd_relay_restrictions = reject_unauth_destination
		# refused@ and busy@ answer as a mailbox that refuses mail (5xx) or
		# cannot take it now (4xx) would.
		smtpd_recipient_restrictions =
		  check_recipient_access inline:{
		    { refused@$RIG_DOMAIN = 550 5.7.1 this mailbox refuses alarm mail },
		    { busy@$RIG_DOMAIN = 450 4.2.1 this mailbox is busy, try later } },
		  permit_sasl_authenticated, reject
		smtpd_tls_chain_files = $dir/tls/server.key, $dir/tls/server.pem
		smtpd_tls_loglevel = 1
		smtpd_tls_received_header = yes
		smtpd_tls_security_level = encrypt
		smtpd_tls_auth_only = yes
		smtpd_client_connection_count_limit = 0
		smtpd_client_connection_rate_limit = 0
		smtpd_error_sleep_time = 0
		smtpd_soft_error_limit = 100
		smtpd_hard_error_limit = 200
		smtpd_junk_command_limit = 1000
		smtpd_client_auth_rate_limit = 0
		queue_run_delay = 1s
		minimal_backoff_time = 1s
		maximal_backoff_time = 2s
	EOF
	cat >"$pf/master.cf" <<-EOF
		# service type  private unpriv  chroot  wakeup  maxproc command + args
		127.0.0.1:$RIG_SUBMISSION_PORT inet n - n - - smtpd
		  -o syslog_name=postfix-rig/submission
		127.0.0.1:$RIG_SMTPS_PORT inet n - n - - smtpd
		  -o syslog_name=postfix-rig/smtps
		  -o smtpd_tls_wrappermode=yes
		127.0.0.1:$RIG_BEARER_PORT inet n - n - - smtpd
		  -o syslog_name=postfix-rig/bearer
		  -o smtpd_sasl_mechanism_filter=oauthbearer
		127.0.0.1:$RIG_PLAIN_PORT inet n - n - - smtpd
		  -o syslog_name=postfix-rig/plain
		  -o smtpd_tls_security_level=none
		  -o smtpd_tls_auth_only=no
		  -o smtpd_recipient_restrictions=permit
		pickup    unix  n       -       n       60      1       pickup
		cleanup   unix  n       -       n       -       0       cleanup
		qmgr      unix  n       -       n       1       1       qmgr
		tlsmgr    unix  -       -       n       1000?   1       tlsmgr
		rewrite   unix  -       -       n       -       -       trivial-rewrite
		bounce    unix  -       -       n       -       0       bounce
		defer     unix  -       -       n       -       0       bounce
		trace     unix  -       -       n       -       0       bounce
		verify    unix  -       -       n       -       1       verify
		flush     unix  n       -       n       1000?   0       flush
		proxymap  unix  -       -       n       -       -       proxymap
		smtp      unix  -       -       n       -       -       smtp
		relay     unix  -       -       n       -       -       smtp
		showq     unix  n       -       n       -       -       showq
		error     unix  -       -       n       -       -       error
		retry     unix  -       -       n       -       -       error
		discard   unix  -       -       n       -       -       discard
		virtual   unix  -       n       n       -       -       virtual
		anvil     unix  -       -       n       -       1       anvil
		scache    unix  -       -       n       -       1       scache
		postlog   unix-dgram n  -       n       -       1       postlogd
	EOF
}

write_dovecot() {
	dv=$dir/dv
	mkdir -p "$dv"
	# passwd-file: user:password:uid:gid:gecos:home:shell:extra
	printf '%s:{PLAIN}%s::::::\n' "$RIG_USER" "$RIG_PASSWORD" >"$dv/users"
	chown root:dovecot "$dv/users"
	chmod 0640 "$dv/users"
	cat >"$dv/oauth2.conf.ext" <<-EOF
		introspection_mode = post
		introspection_url = $RIG_INTROSPECT_URL
		username_attribute = username
		active_attribute = active
		active_value = true
		timeout_msecs = 5000
	EOF
	chown root:dovecot "$dv/oauth2.conf.ext"
	chmod 0640 "$dv/oauth2.conf.ext"
	cat >"$dir/dovecot.conf" <<-EOF
		instance_name = rig
		base_dir = $dv/run
		state_dir = $dv/state
		log_path = $dir/log/dovecot.log
		info_log_path = $dir/log/dovecot.log
		debug_log_path = $dir/log/dovecot.log
		protocols = none
		listen = 127.0.0.1
		ssl = no
		# Postfix enforces TLS per port; the plain port is plain on purpose.
		disable_plaintext_auth = no
		auth_mechanisms = plain login xoauth2 oauthbearer
		auth_verbose = yes
		auth_failure_delay = 0
		passdb {
		  driver = passwd-file
		  mechanisms = plain login
		  args = scheme=PLAIN $dv/users
		}
		passdb {
		  driver = oauth2
		  mechanisms = xoauth2 oauthbearer
		  args = $dv/oauth2.conf.ext
		}
		userdb {
		  driver = static
		  args = uid=$vuid gid=$vgid home=/nonexistent allow_all_users=yes
		}
		# Dovecot delays every AUTH from an address after failures (2, 4, 8,
		# 16 s); all rig clients come from 127.0.0.1 and Postfix gives up
		# after 10 s. A listener of mode 0 turns the penalty off.
		service anvil {
		  unix_listener anvil-auth-penalty {
		    mode = 0
		  }
		}
		service auth {
		  unix_listener $dir/spool/private/auth {
		    mode = 0660
		    user = postfix
		    group = postfix
		  }
		}
	EOF
}

# smtp_banner PORT: the listener answers with a 220 greeting.
smtp_banner() {
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $ARGV[0], Timeout => 2) or exit 1;
		$s->timeout(2);
		my $l = <$s>;
		print $s "QUIT\r\n";
		exit(defined($l) && $l =~ /^220 / ? 0 : 1);
	' "$1" 2>/dev/null
}

# tls_ok PORT [starttls]: a TLS handshake verifies against DIR/ca.pem.
tls_ok() {
	set -- "$1" ${2:+-starttls smtp}
	port=$1
	shift
	timeout 5 openssl s_client -connect "127.0.0.1:$port" "$@" -CAfile "$dir/ca.pem" \
		-verify_return_error -verify_hostname localhost </dev/null >/dev/null 2>&1
}

ready() {
	[ -S "$dir/spool/private/auth" ] &&
		smtp_banner "$RIG_PLAIN_PORT" &&
		tls_ok "$RIG_SUBMISSION_PORT" starttls &&
		tls_ok "$RIG_BEARER_PORT" starttls &&
		tls_ok "$RIG_SMTPS_PORT"
}

do_start() {
	[ "$(id -u)" = 0 ] || {
		log "needs root: Postfix's master and Dovecot run as root"
		exit 1
	}
	for p in /usr/sbin/postfix /usr/sbin/dovecot /usr/bin/openssl /usr/bin/perl; do
		[ -x "$p" ] || {
			log "missing $p: run scripts/install-deps.sh"
			exit 1
		}
	done
	if [ -f "$dir/spool/pid/master.pid" ] || [ -f "$dir/dv/run/master.pid" ]; then
		log "$dir holds a rig that may be running: run stop first"
		exit 1
	fi
	mkdir -p "$dir/log" "$dir/data" "$dir/spool"
	# Daemons running as postfix, dovecot and nobody walk into DIR.
	chmod 0755 "$dir"
	chown postfix "$dir/data"
	: >"$dir/log/start.log"
	touch "$dir/log/postfix.log" "$dir/log/dovecot.log"
	mkdir -p "$dir/Maildir/tmp" "$dir/Maildir/new" "$dir/Maildir/cur"
	chown -R "$vuid:$vgid" "$dir/Maildir"
	chmod -R 0700 "$dir/Maildir"

	make_ca || fail "cannot make the test CA"
	write_postfix
	write_dovecot

	# The queue directory as post-install makes it; quick-start then skips
	# postfix-script's integrity checks, which take seconds.
	q=$dir/spool
	(
		cd "$q"
		set -- active bounce corrupt defer deferred flush hold incoming private saved trace
		mkdir -p "$@"
		chown postfix:root "$@"
		chmod 0700 "$@"
	)
	mkdir -p "$q/maildrop" "$q/public" "$q/pid"
	chown postfix:postdrop "$q/maildrop" "$q/public"
	chmod 0730 "$q/maildrop"
	chmod 0710 "$q/public"
	chmod 0755 "$q/pid"
	touch "$q/quick-start"
	export MAIL_CONFIG="$dir/postfix"
	dovecot -c "$dir/dovecot.conf" </dev/null >>"$dir/log/start.log" 2>&1 ||
		fail "dovecot did not start"
	postfix -c "$dir/postfix" start </dev/null >>"$dir/log/start.log" 2>&1 ||
		fail "postfix did not start"

	end=$(($(date +%s) + RIG_TIMEOUT))
	until ready; do
		[ "$(date +%s)" -lt "$end" ] || fail "not ready after ${RIG_TIMEOUT}s"
		sleep 0.1
	done

	if [ -n "$RIG_WATCH_PID" ]; then
		setsid sh "$0" watch "$dir" </dev/null >>"$dir/log/start.log" 2>&1 &
	fi
}

# watch: stop the rig and remove DIR once RIG_WATCH_PID has gone; return
# when DIR has gone (the owner removes it after its own stop).
do_watch() {
	while [ -d "$dir" ]; do
		if ! kill -0 "$RIG_WATCH_PID" 2>/dev/null; then
			do_stop
			rm -rf "$dir"
			return
		fi
		sleep 1
	done
}

case $cmd in
start) do_start ;;
stop) do_stop ;;
watch) do_watch ;;
*) usage ;;
esac
