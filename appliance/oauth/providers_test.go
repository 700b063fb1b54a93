package oauth_test

// Provider rules (issue 13) against the strict test server: each test
// models what a real provider refuses, with the source in oauthtest.

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"

	"mailagent/appliance/oauth"
	"mailagent/appliance/oauthtest"
)

// deviceBox signs an exchange-mode box in with a device code at srv, the
// way agent.DeviceAuthorize does, and returns it.
func deviceBox(t *testing.T, srv *oauthtest.Server) *lcBox {
	t.Helper()
	cfg := exchangeConfig(srv)
	cl, err := oauth.NewClient(oauth.ClientOptions{Config: cfg, HTTP: srv.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), oauth.TokensFileName)
	src, err := oauth.NewSource(oauth.SourceOptions{Path: path, Grant: cl, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	da, err := cl.DeviceAuth(t.Context())
	if err != nil {
		t.Fatalf("DeviceAuth = %v", err)
	}
	srv.ApproveDevice(da.UserCode)
	tok, err := cl.DevicePoll(t.Context(), da)
	if err != nil {
		t.Fatalf("DevicePoll = %v", err)
	}
	if err := src.AuthorizedBy(t.Context(), tok, lcMailbox, oauth.GrantDeviceCode); err != nil {
		t.Fatalf("AuthorizedBy = %v", err)
	}
	return &lcBox{srv: srv, client: cl, src: src, path: path}
}

// TestDeviceCodeGrantRefreshesAsPublicClient: Entra treats a device-code
// grant as a public client's and refuses a refresh that presents the
// client secret (AADSTS700025), although the app has one; the box must
// keep refreshing, and the grant is recorded in tokens.toml.
func TestDeviceCodeGrantRefreshesAsPublicClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := deviceBox(t, microsoftServer(t, true))
		if g := b.flash(t).Grant; g != oauth.GrantDeviceCode {
			t.Errorf("tokens.toml grant = %q, want %q", g, oauth.GrantDeviceCode)
		}
		cur, err := b.src.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			next, err := b.src.Refresh(t.Context(), cur)
			if err != nil {
				t.Fatalf("refresh %d of the device-code grant: %v", i+1, err)
			}
			cur = next
		}
		if st := b.src.Status(); st.State != oauth.StateOK {
			t.Errorf("state %q after the refreshes, want ok", st.State)
		}
		b.checkNoViolations(t)
	})
}

// TestDeviceCodeNeedsPublicClientFlows: an app without "Allow public
// client flows" refuses the public device-code poll with AADSTS7000218;
// the hint names the switch and where it is.
func TestDeviceCodeNeedsPublicClientFlows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := oauthtest.NewServer(t, oauthtest.Options{
			Flavour: oauthtest.Microsoft, Account: lcMailbox, InProcess: true, NoPublicClientFlows: true,
			Clients: []oauthtest.Client{{ID: lcClientID, Secret: lcSecret, Auth: oauthtest.AuthPost, RedirectURIs: []string{lcRedirect}}},
		})
		cl, err := oauth.NewClient(oauth.ClientOptions{Config: exchangeConfig(srv), HTTP: srv.HTTPClient()})
		if err != nil {
			t.Fatal(err)
		}
		da, err := cl.DeviceAuth(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		srv.ApproveDevice(da.UserCode)
		_, err = cl.DevicePoll(t.Context(), da)
		var pe *oauth.ProviderError
		if !errors.As(err, &pe) || pe.Code != "invalid_client" {
			t.Fatalf("DevicePoll = %v, want invalid_client", err)
		}
		for _, want := range []string{"Allow public client flows", "Authentication → Advanced settings"} {
			if !strings.Contains(pe.Hint(), want) {
				t.Errorf("hint %q lacks %q", pe.Hint(), want)
			}
		}
		if strings.Contains(err.Error()+pe.Hint(), lcSecret) {
			t.Error("the client secret is in the error")
		}
	})
}
