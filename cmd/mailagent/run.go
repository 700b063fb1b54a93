package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"mailagent/appliance/agent"
	"mailagent/appliance/config"
	"mailagent/appliance/ingest"
	"mailagent/appliance/limit"
	"mailagent/console"
)

var cmdRun = &Command{
	Name:  "run",
	Short: "run the agent: take alarms, send them as mail, serve the web page",
	Run: func(ctx context.Context, env *Env, args []string) error {
		if len(args) != 0 {
			return usagef("run takes no arguments")
		}
		// The console's log command shows the agent's last log lines.
		ring := console.NewRing(200)
		env.Log = slog.New(slog.NewTextHandler(io.MultiWriter(env.Stderr, ring), &slog.HandlerOptions{Level: env.LogLevel}))
		a, err := env.Agent()
		if err != nil {
			return err
		}
		memory, restore := applyMemoryLimit(a.Board().MemoryLimit)
		defer restore()
		if err := a.MakeDataDir(); err != nil { // the self-signed certificate goes there first
			return err
		}
		ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		c := a.Config()
		ln, err := net.Listen("tcp", c.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("http.listen %s: %w", c.HTTP.Listen, err)
		}
		web, err := webTLS(a, &c)
		if err != nil {
			ln.Close()
			return err
		}
		user, password := a.AlarmCredentials()
		alarms := ingest.HTTP(ingest.HTTPOptions{Sink: a.Accept, User: user, Password: password, Log: env.Log})
		backend := agent.NewAdmin(a) // one for the page and the console: it orders their changes
		page, login, err := adminPage(backend, env, &c, alarms)
		if err != nil {
			ln.Close()
			return err
		}
		srv, limited := webServer(page, ln, webLimits(), env.Log)
		ln = limited
		scheme := "http"
		if web.tls != nil {
			scheme = "https"
			srv.TLSConfig = web.tls
			ln = tls.NewListener(ln, web.tls)
		}
		httpDone := make(chan error, 1)
		go func() { httpDone <- srv.Serve(ln) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			if err := <-httpDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
				env.Log.Error("http server", "err", err)
			}
		}()
		var consoleDone sync.WaitGroup
		defer consoleDone.Wait()
		base := pageBase(scheme, ln.Addr(), c.HTTP.BaseURL)
		return a.Run(ctx, func() {
			fmt.Fprintf(env.Stdout, "mailagent %s running on board %s, data in %s, %s\n", version, a.Board().Name, a.DataDir(), memory)
			fmt.Fprintf(env.Stdout, "web page: %s/\n", base)
			switch {
			case web.fingerprint != "":
				fmt.Fprintf(env.Stdout, "  self-signed certificate %s, SHA-256 fingerprint\n  %s\n  (compare it with the one the browser shows before you accept the certificate)\n", web.certFile, web.fingerprint)
			case web.tls == nil:
				fmt.Fprintln(env.Stdout, "  plain HTTP: the page listens on a loopback address only (set http.tls_cert and http.tls_key for TLS)")
			}
			fmt.Fprintf(env.Stdout, "  %s\n", login)
			if c.Console.Port != "" {
				fmt.Fprintf(env.Stdout, "console: serial port %s, %d 8N1\n", c.Console.Port, c.Console.Baud)
				// once the agent runs, so that the first banner is about the mail
				consoleDone.Go(func() {
					console.Serve(ctx, c.Console.Port, c.Console.Baud, consoleOptions(env, backend, ring), env.Log)
				})
			}
			fmt.Fprintf(env.Stdout, "alarms: mailagent --data %s alarm --severity major --code TEST \"text\"  (socket %s)\n", a.DataDir(), a.SocketPath())
			if user == "" {
				fmt.Fprintf(env.Stdout, "alarms over HTTP: POST %s/alarm and /alertmanager once http.alarm_user and http.alarm_password are set\n", base)
			} else {
				fmt.Fprintf(env.Stdout, "alarms over HTTP: POST %s/alarm and /alertmanager (user %s)\n", base, user)
			}
			for _, n := range exposureNotes(&c) {
				fmt.Fprintf(env.Stdout, "note: %s\n", n)
			}
			for _, w := range a.Warnings() {
				fmt.Fprintf(env.Stdout, "warning: %s\n", w)
			}
			if now, unset := a.ClockUnset(); unset {
				fmt.Fprintf(env.Stdout, "warning: the system clock is not set (it reads %s); OAuth2 and TLS fail until it is\n", now.UTC().Format(time.RFC3339))
			}
			if err := a.Problems(); err != nil {
				fmt.Fprintln(env.Stdout, "mail cannot be sent yet; what is missing:")
				for _, line := range strings.Split(err.Error(), "\n") {
					fmt.Fprintf(env.Stdout, "  %s\n", line)
				}
				fmt.Fprintln(env.Stdout, "set them on the web page or with \"mailagent config set KEY VALUE\"; the agent uses them from the next mail on")
			} else {
				fmt.Fprintf(env.Stdout, "mail goes from %s to %s through %s:%d\n", c.Mail.From, strings.Join(c.Mail.To, ", "), c.SMTP.Host, c.SMTP.Port)
			}
		})
	},
}

// maxHeaderBytes bounds a request's header on the web listener. Go's
// default, 1 MiB, let 200 connections take the agent from 10 MB to 326 MB;
// a browser sends 1 to 2 KiB, a proxy in front adds a few lines. Larger
// headers get 431.
const maxHeaderBytes = 16 << 10

// httpLimits are the connection limits of the web listener.
type httpLimits struct{ max, perClient int }

// Descriptors the web listener leaves for everything else: the local
// socket (32 clients), syslog TCP (16), files and SMTP.
const fdReserve = 96

// webLimits are the web listener's connection limits: 16 per client (a
// browser opens 6), and 128 in all, fewer when RLIMIT_NOFILE is low: half
// of what is left after fdReserve, so connections can never take every
// file descriptor of the process.
func webLimits() httpLimits {
	l := httpLimits{max: 128, perClient: 16}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < 1<<20 {
		l.max = min(l.max, max(l.perClient, (int(rl.Cur)-fdReserve)/2))
	}
	return l
}

// webServer is the HTTP server of the page and the alarm endpoints on
// ln, within the limits: a header of at most maxHeaderBytes, read within
// 10 s; a request within a minute; a connection idle for a minute closed;
// lim's connections, a quiet or idle one closed for room when a new one
// comes (limit.Listener, told by ConnState which ones serve a request).
// Serve it on the returned listener.
func webServer(h http.Handler, ln net.Listener, lim httpLimits, log *slog.Logger) (*http.Server, *limit.Listener) {
	limited := limit.Listen(ln, limit.ListenOptions{Name: "http", Max: lim.max, PerClient: lim.perClient, Log: log})
	srv := &http.Server{
		Handler:           h,
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      3 * time.Minute, // a test mail may take two
		IdleTimeout:       time.Minute,
		ConnState: func(c net.Conn, st http.ConnState) {
			switch st {
			case http.StateActive:
				limited.Active(c)
			case http.StateIdle:
				limited.Idle(c)
			}
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return srv, limited
}

// applyMemoryLimit gives the Go runtime the board's soft memory limit
// (debug.SetMemoryLimit), unless GOMEMLIMIT set one, which it leaves. It
// says which in a few words for the start-up line; restore puts back the
// limit there was, for a run inside a longer process (the tests).
func applyMemoryLimit(limit int64) (said string, restore func()) {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		return "memory limit " + v + " (GOMEMLIMIT)", func() {}
	}
	if limit <= 0 {
		return "no memory limit", func() {}
	}
	old := debug.SetMemoryLimit(limit)
	return fmt.Sprintf("memory limit %g MiB", float64(limit)/(1<<20)), func() { debug.SetMemoryLimit(old) }
}

// webServing is how the page is served: tls nil for plain HTTP; a
// self-signed certificate's file and fingerprint when one is used.
type webServing struct {
	tls                   *tls.Config
	certFile, fingerprint string
}

// webTLS decides how the page is served. With http.tls_cert and
// http.tls_key, TLS with that pair. Otherwise plain HTTP when http.listen
// is a loopback address (127.0.0.1, ::1, localhost: nobody else can reach
// it, and a proxy in front may add TLS), and TLS with a self-signed
// certificate made at first start in the data directory when it is any
// other address.
func webTLS(a *agent.Agent, c *config.Config) (webServing, error) {
	conf := func(cert tls.Certificate) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	switch {
	case c.HTTP.TLSCert != "" || c.HTTP.TLSKey != "":
		if p, ok := config.AsProblems(config.Validate(c)); ok {
			if pair := append(p.For("http.tls_cert"), p.For("http.tls_key")...); len(pair) > 0 {
				return webServing{}, agent.WithHint(pair, "set both (the PEM certificate and its key), or unset both for a self-signed certificate")
			}
		}
		cert, err := tls.LoadX509KeyPair(c.HTTP.TLSCert, c.HTTP.TLSKey)
		if err != nil {
			return webServing{}, agent.WithHint(fmt.Errorf("http.tls_cert/http.tls_key: %w", err),
				"check that both files exist, are PEM, and that the key belongs to the certificate")
		}
		return webServing{tls: conf(cert)}, nil
	case loopbackListen(c.HTTP.Listen):
		return webServing{}, nil
	}
	hosts := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append([]string{h}, hosts...)
	}
	if host, _, err := net.SplitHostPort(c.HTTP.Listen); err == nil && host != "" {
		hosts = append([]string{host}, hosts...)
	}
	if u, err := url.Parse(c.HTTP.BaseURL); err == nil && u.Hostname() != "" {
		hosts = append([]string{u.Hostname()}, hosts...)
	}
	cert, err := a.WebCertificate(hosts)
	if err != nil {
		return webServing{}, err
	}
	return webServing{tls: conf(cert.Certificate), certFile: cert.File, fingerprint: cert.Fingerprint}, nil
}

// exposureNotes say which listeners of c take connections on every
// interface, the WAN side of a gateway too, and what to set instead. The
// gateway and PBX boards listen so by default (http.listen ":8443"), so
// that the page can be reached for the first setup; run says so at every
// start.
func exposureNotes(c *config.Config) []string {
	var notes []string
	for _, l := range []struct{ key, addr, what string }{
		{"http.listen", c.HTTP.Listen, "the web page and the alarm endpoints listen"},
		{"syslog.listen_udp", c.Syslog.ListenUDP, "syslog over UDP, which takes alarms without authentication, listens"},
		{"syslog.listen_tcp", c.Syslog.ListenTCP, "syslog over TCP, which takes alarms without authentication, listens"},
	} {
		if l.addr != "" && everyInterface(l.addr) {
			notes = append(notes, fmt.Sprintf("%s on every interface (%s %s), the WAN side too unless a firewall drops it; set %s to the LAN address (e.g. 192.168.1.1%s) to keep it there",
				l.what, l.key, l.addr, l.key, portSuffix(l.addr)))
		}
	}
	return notes
}

// everyInterface reports whether addr ("host:port") listens on every
// interface: no host, 0.0.0.0 or ::.
func everyInterface(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsUnspecified()
}

// portSuffix is ":port" of addr, "" without one.
func portSuffix(addr string) string {
	if _, port, err := net.SplitHostPort(addr); err == nil {
		return ":" + port
	}
	return ""
}

// loopbackListen reports whether addr listens on a loopback address only.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// pageBase is the page's address to print: http.base_url when set, else
// the listener's, with the host name for an unspecified address.
func pageBase(scheme string, addr net.Addr, baseURL string) string {
	if baseURL != "" {
		return strings.TrimSuffix(baseURL, "/")
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String()
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		host = "localhost"
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
