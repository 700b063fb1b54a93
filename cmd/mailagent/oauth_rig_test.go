//go:build rig

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mailagent/appliance/oauthtest"
	"mailagent/appliance/testrig"
)

const redirectURL = "https://box.example.test/auth.htm"

// TestOAuth2ModesThroughTheRig authorises the box in every OAuth2 mode
// against the strict test authorization server, from the command line as a
// technician would, and delivers a test mail through the real Postfix +
// Dovecot with the token it got.
func TestOAuth2ModesThroughTheRig(t *testing.T) {
	rig := testrig.Start(t)
	key, cert := oauthtest.KeyPair(t, "mailagent-client")
	keyPEM, certPEM := pemKey(t, key), pemCert(cert)

	tests := []struct {
		mode    string
		how     string // "paste", "device" or "none"
		options oauthtest.Options
		set     func(srv *oauthtest.Server) map[string]string
	}{
		{
			mode: "exchange", how: "paste",
			options: oauthtest.Options{Flavour: oauthtest.Microsoft, Rotation: oauthtest.Rotate, Clients: []oauthtest.Client{
				{ID: "app-exchange", Secret: "exchange-secret", Auth: oauthtest.AuthPost, RedirectURIs: []string{redirectURL}}}},
			set: func(srv *oauthtest.Server) map[string]string {
				return map[string]string{"oauth2.authority": srv.URL() + "/", "oauth2.tenant": srv.Tenant(),
					"oauth2.client_id": "app-exchange", "oauth2.client_secret": "exchange-secret", "oauth2.redirect_url": redirectURL}
			},
		},
		{
			mode: "exchange", how: "device",
			options: oauthtest.Options{Flavour: oauthtest.Microsoft, Rotation: oauthtest.Rotate, DeviceInterval: time.Second, Clients: []oauthtest.Client{
				{ID: "app-exchange", Secret: "exchange-secret", Auth: oauthtest.AuthPost, RedirectURIs: []string{redirectURL}}}},
			set: func(srv *oauthtest.Server) map[string]string {
				return map[string]string{"oauth2.authority": srv.URL() + "/", "oauth2.tenant": srv.Tenant(),
					"oauth2.client_id": "app-exchange", "oauth2.client_secret": "exchange-secret", "oauth2.redirect_url": redirectURL}
			},
		},
		{
			mode: "microsoft365", how: "none",
			options: oauthtest.Options{Flavour: oauthtest.Microsoft, Rotation: oauthtest.Rotate, Users: map[string]string{rig.User: "ropc-password"},
				Clients: []oauthtest.Client{{ID: "app-ropc", Auth: oauthtest.AuthNone}}},
			set: func(srv *oauthtest.Server) map[string]string {
				return map[string]string{"oauth2.authority": srv.URL() + "/", "oauth2.tenant": srv.Tenant(),
					"oauth2.client_id": "app-ropc", "oauth2.username": rig.User, "oauth2.password": "ropc-password"}
			},
		},
		{
			mode: "microsoft-app", how: "none",
			options: oauthtest.Options{Flavour: oauthtest.Microsoft, Clients: []oauthtest.Client{
				{ID: "app-only", Auth: oauthtest.AuthPrivateKeyJWT, Certificate: cert, Mailbox: rig.User}}},
			set: func(srv *oauthtest.Server) map[string]string {
				return map[string]string{"oauth2.authority": srv.URL() + "/", "oauth2.tenant": srv.Tenant(),
					"oauth2.client_id": "app-only", "oauth2.private_key": keyPEM, "oauth2.certificate": certPEM}
			},
		},
		{
			mode: "gmail", how: "paste",
			options: oauthtest.Options{Flavour: oauthtest.Google, Clients: []oauthtest.Client{
				{ID: "123-gmail.apps.googleusercontent.com", Secret: "gmail-secret", Auth: oauthtest.AuthPost, RedirectURIs: []string{redirectURL}}}},
			set: func(srv *oauthtest.Server) map[string]string {
				return map[string]string{"oauth2.auth_url": srv.AuthURL(), "oauth2.token_url": srv.TokenURL(), "oauth2.device_auth_url": srv.DeviceAuthURL(),
					"oauth2.client_id": "123-gmail.apps.googleusercontent.com", "oauth2.client_secret": "gmail-secret", "oauth2.redirect_url": redirectURL}
			},
		},
		{
			mode: "google-service-account", how: "none",
			options: oauthtest.Options{Flavour: oauthtest.Google, ServiceAccounts: []oauthtest.ServiceAccount{
				{Email: "alarms@project.iam.gserviceaccount.com", KeyID: "key-1", PublicKey: &key.PublicKey, Subjects: []string{rig.User}}}},
			set: func(srv *oauthtest.Server) map[string]string {
				return map[string]string{"oauth2.token_url": srv.TokenURL(), "oauth2.client_email": "alarms@project.iam.gserviceaccount.com",
					"oauth2.private_key_id": "key-1", "oauth2.private_key": keyPEM, "oauth2.subject": rig.User}
			},
		},
		{
			mode: "client-secret-post", how: "paste",
			options: oauthtest.Options{Flavour: oauthtest.Generic, Rotation: oauthtest.RotateRevokeOnReuse,
				AuthParams: map[string][]string{"scope": {"mail.send offline"}}, Clients: []oauthtest.Client{
					{ID: "generic-client", Secret: "generic-secret", Auth: oauthtest.AuthPost, RedirectURIs: []string{redirectURL}}}},
			set: func(srv *oauthtest.Server) map[string]string {
				return map[string]string{"oauth2.auth_url": srv.AuthURL(), "oauth2.token_url": srv.TokenURL(),
					"oauth2.client_id": "generic-client", "oauth2.client_secret": "generic-secret", "oauth2.redirect_url": redirectURL}
			},
		},
		{
			mode: "private-key-jwt", how: "paste",
			options: oauthtest.Options{Flavour: oauthtest.Generic, Rotation: oauthtest.RotateRevokeOnReuse,
				AuthParams: map[string][]string{"scope": {"mail.send offline"}}, Clients: []oauthtest.Client{
					{ID: "jwt-client", Auth: oauthtest.AuthPrivateKeyJWT, Certificate: cert, KeyID: "kid-1", RedirectURIs: []string{redirectURL}}}},
			set: func(srv *oauthtest.Server) map[string]string {
				return map[string]string{"oauth2.auth_url": srv.AuthURL(), "oauth2.token_url": srv.TokenURL(),
					"oauth2.client_id": "jwt-client", "oauth2.private_key": keyPEM, "oauth2.key_id": "kid-1", "oauth2.certificate": certPEM,
					"oauth2.redirect_url": redirectURL}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.mode+"/"+tt.how, func(t *testing.T) {
			o := tt.options
			o.Hub = rig.Tokens
			if o.Account == "" && len(o.Users) == 0 {
				o.Account = rig.User
			}
			srv := oauthtest.NewServer(t, o)
			data := t.TempDir()
			to := fmt.Sprintf("ops-%s-%s@example.test", tt.mode, tt.how)
			settings := map[string]string{
				"mail.from": rig.User, "mail.to": to, "smtp.host": rig.Host, "smtp.port": strconv.Itoa(rig.SubmissionPort),
				"smtp.ca_file": rig.CAFile, "smtp.auth": "oauth2", "oauth2.mode": tt.mode,
			}
			for k, v := range tt.set(srv) {
				settings[k] = v
			}
			for k, v := range settings {
				mustRun(t, nil, "--data", data, "config", "set", k, v)
			}
			out := authorize(t, srv, data, tt.how)
			if !strings.Contains(out, "ok: authorised as "+rig.User) {
				t.Errorf("authorize said:\n%s", out)
			}
			test := mustRun(t, nil, "--data", data, "test")
			if !regexp.MustCompile(`(?m)^auth: +(XOAUTH2|OAUTHBEARER) as ` + regexp.QuoteMeta(rig.User)).MatchString(test) {
				t.Errorf("mailagent test did not authenticate with a token:\n%s", test)
			}
			rig.WaitMail(t, func(m *mail.Message, raw []byte) bool { return strings.Contains(m.Header.Get("To"), to) }, 30*time.Second)
			status := mustRun(t, nil, "--data", data, "status")
			if !strings.Contains(status, "state:      ok") || !strings.Contains(status, "mode:       "+tt.mode) {
				t.Errorf("status after the mail:\n%s", status)
			}
		})
	}
}

// mustRun runs mailagent in-process and fails the test on a non-zero exit.
func mustRun(t *testing.T, stdin io.Reader, args ...string) string {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, stdin, &stdout, &stderr); code != 0 {
		t.Fatalf("mailagent %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// authorize runs "mailagent authorize" the way a technician at a terminal
// does: for "paste" it opens the printed address in the (test) browser and
// pastes back the address the browser ended up on; for "device" it enters
// the printed code on the (test) sign-in page.
func authorize(t *testing.T, srv *oauthtest.Server, data, how string) string {
	t.Helper()
	args := []string{"--data", data, "authorize"}
	switch how {
	case "paste":
		args = append(args, "--paste")
	case "device":
		args = append(args, "--device")
	}
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		code := run(context.Background(), args, stdinR, stdoutW, &stderr)
		stdoutW.Close()
		done <- code
	}()
	var out strings.Builder
	var once sync.Once
	sc := bufio.NewScanner(stdoutR)
	deviceCode := regexp.MustCompile(`enter the code (\S+)`)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		switch {
		case how == "paste" && strings.HasPrefix(line, "http"):
			once.Do(func() {
				redirect := srv.Authorize(t, line)
				go fmt.Fprintln(stdinW, redirect)
			})
		case how == "device" && deviceCode.MatchString(line):
			once.Do(func() { srv.ApproveDevice(deviceCode.FindStringSubmatch(line)[1]) })
		}
	}
	stdinW.Close()
	if code := <-done; code != 0 {
		t.Fatalf("mailagent authorize --%s: exit %d\nstdout:\n%s\nstderr:\n%s", how, code, out.String(), stderr.String())
	}
	return out.String()
}

func pemKey(t *testing.T, key *rsa.PrivateKey) string {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func pemCert(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}
