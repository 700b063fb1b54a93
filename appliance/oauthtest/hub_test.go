package oauthtest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

func TestHubSeesIssuedTokens(t *testing.T) {
	hub := New(t)
	s := NewServer(t, Options{Hub: hub, Clients: []Client{{ID: "c", Secret: "s", Auth: AuthPost, Mailbox: "box@example.test"}}})
	// client credentials: an access token issued by s
	resp, err := http.PostForm(s.TokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"c"}, "client_secret": {"s"}, "scope": {"api/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	decodeJSON(t, resp, &body)
	if body.AccessToken == "" {
		t.Fatal("no access token")
	}
	active := func() bool {
		r, err := http.PostForm(hub.IntrospectURL(), url.Values{"token": {body.AccessToken}})
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Active   bool
			Username string
		}
		decodeJSON(t, r, &v)
		if v.Active && v.Username != "box@example.test" {
			t.Errorf("hub says the token is for %q", v.Username)
		}
		return v.Active
	}
	if !active() {
		t.Fatal("the hub does not know a token the server issued")
	}
	s.RevokeAll()
	if active() {
		t.Error("the hub still accepts a revoked token")
	}
}

func decodeJSON(t *testing.T, r *http.Response, v any) {
	t.Helper()
	defer r.Body.Close()
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
