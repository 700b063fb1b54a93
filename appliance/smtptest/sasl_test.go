package smtptest

import (
	"strings"
	"testing"
)

var xoauth2Seeds = []string{
	"user=alarm@example.test\x01auth=Bearer tok\x01\x01",
	"user=alarm@example.test\x01auth=bearer tok\x01\x01",
	"auth=Bearer x\x01\x01",
	"user=a\x01auth=Basic x\x01\x01",
	"user=a\x01auth=Bearer x\x01",
	"user=\x01auth=Bearer x\x01\x01",
	"",
}

var bearerSeeds = []string{
	"n,a=alarm@example.test,\x01host=127.0.0.1\x01port=587\x01auth=Bearer tok\x01\x01",
	"n,a=a=2Cb=3Dc,\x01auth=Bearer tok\x01\x01",
	"y,a=x,\x01auth=Bearer tok\x01\x01",
	"n,,\x01auth=Bearer tok\x01\x01",
	"p=tls-unique,a=x,\x01auth=Bearer tok\x01\x01",
	"n,a=al=arm,\x01auth=Bearer tok\x01\x01",
	"n,a=x,\x01\x01",
	"n,a=x,",
	"n,a=x,\x01auth=Bearer tok\x01",
	"n,a=x,\x01bad\x01auth=Bearer tok\x01\x01",
}

func TestParseXOAuth2(t *testing.T) {
	user, token, why := parseXOAuth2([]byte(xoauth2Seeds[0]))
	if user != "alarm@example.test" || token != "tok" || why != "" {
		t.Errorf("parseXOAuth2 = %q, %q, %q", user, token, why)
	}
	for _, s := range xoauth2Seeds[2:] {
		if _, _, why := parseXOAuth2([]byte(s)); why == "" {
			t.Errorf("parseXOAuth2(%q) accepted", s)
		}
	}
}

func TestParseOAuthBearer(t *testing.T) {
	tests := []struct {
		in   string
		want bearerMessage
	}{
		{bearerSeeds[0], bearerMessage{user: "alarm@example.test", host: "127.0.0.1", port: "587", token: "tok"}},
		{bearerSeeds[1], bearerMessage{user: "a,b=c", token: "tok"}},
		{bearerSeeds[2], bearerMessage{user: "x", token: "tok"}},
	}
	for _, tt := range tests {
		if got, why := parseOAuthBearer([]byte(tt.in)); got != tt.want || why != "" {
			t.Errorf("parseOAuthBearer(%q) = %+v, %q; want %+v", tt.in, got, why, tt.want)
		}
	}
	for _, s := range bearerSeeds[3:] {
		if _, why := parseOAuthBearer([]byte(s)); why == "" {
			t.Errorf("parseOAuthBearer(%q) accepted", s)
		}
	}
}

func FuzzParseXOAuth2(f *testing.F) {
	for _, s := range xoauth2Seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		user, token, why := parseXOAuth2(b)
		if why != "" {
			return
		}
		if user == "" || token == "" || strings.ContainsFunc(token, isControl) {
			t.Fatalf("accepted user %q token %q", user, token)
		}
		// What is accepted parses the same when rebuilt.
		u2, t2, why := parseXOAuth2([]byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01"))
		if why != "" || u2 != user || t2 != token {
			t.Fatalf("rebuilt %q %q: %q %q %q", user, token, u2, t2, why)
		}
	})
}

func FuzzParseOAuthBearer(f *testing.F) {
	for _, s := range bearerSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, why := parseOAuthBearer(b)
		if why != "" {
			return
		}
		if m.user == "" || m.token == "" || strings.ContainsFunc(m.token, isControl) {
			t.Fatalf("accepted %+v", m)
		}
	})
}
