package oauth

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"

	"mailagent/appliance/config"
)

// fakeGrant is a provider that rotates refresh tokens and revokes the grant
// when an old one is reused (RFC 9700's strictest policy).
type fakeGrant struct {
	t         *testing.T
	mu        sync.Mutex
	live      string // the one live refresh token
	n         int
	refreshes int
	obtains   int
	fail      []error       // errors for the next requests
	hold      chan struct{} // if not nil, each refresh waits for it
	held      int           // refreshes that have waited for hold
	ttl       time.Duration
	noRT      bool
}

func (f *fakeGrant) next() (*oauth2.Token, error) {
	f.n++
	tok := &oauth2.Token{AccessToken: fmt.Sprintf("at-%d", f.n), Expiry: time.Now().Add(f.ttl)}
	if !f.noRT {
		f.live = fmt.Sprintf("rt-%d", f.n)
		tok.RefreshToken = f.live
	}
	return tok, nil
}

func (f *fakeGrant) Refresh(ctx context.Context, rt string) (*oauth2.Token, error) {
	if f.hold != nil {
		f.mu.Lock()
		f.held++
		f.mu.Unlock()
		<-f.hold
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshes++
	if len(f.fail) > 0 {
		err := f.fail[0]
		f.fail = f.fail[1:]
		return nil, err
	}
	if rt != f.live {
		f.t.Errorf("refresh token %q reused (live: %q)", rt, f.live)
		f.live = ""
		return nil, &ProviderError{Op: "refresh", Code: "invalid_grant", Description: "token reused", Reauth: true}
	}
	return f.next()
}

func (f *fakeGrant) Obtain(ctx context.Context) (*oauth2.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.obtains++
	if len(f.fail) > 0 {
		err := f.fail[0]
		f.fail = f.fail[1:]
		return nil, err
	}
	return f.next()
}

func (f *fakeGrant) count() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refreshes, f.obtains
}

func sourceConfig(mode string, keep bool) *config.Config {
	c := config.Config{}
	c.OAuth2.Mode, c.OAuth2.ClientID, c.OAuth2.KeepAccessToken = mode, "client-1", keep
	c.SMTP.User = "alarm@example.test"
	return &c
}

// newSource makes a Source over g with an authorised grant on flash.
func newSource(t *testing.T, g *fakeGrant, mode string, keep bool) (*Source, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), TokensFileName)
	if g.ttl == 0 {
		g.ttl = time.Hour
	}
	s, err := NewSource(SourceOptions{Path: path, Grant: g, Config: sourceConfig(mode, keep)})
	if err != nil {
		t.Fatal(err)
	}
	if config.Modes[0].Name == mode || mode == "gmail" {
		g.mu.Lock()
		tok, _ := g.next()
		g.mu.Unlock()
		if err := s.Authorized(context.Background(), tok, "alarm@example.test"); err != nil {
			t.Fatal(err)
		}
	}
	return s, path
}

func onFlash(t *testing.T, path string) Tokens {
	t.Helper()
	f, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	return f.Tokens
}

func TestRotationKeepsTheLastRefreshToken(t *testing.T) {
	g := &fakeGrant{t: t}
	s, path := newSource(t, g, "exchange", false)
	ctx := context.Background()
	for i := range 50 {
		cur, err := s.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// the server refuses the token: a forced refresh
		next, err := s.Refresh(ctx, cur)
		if err != nil {
			t.Fatalf("forced refresh %d: %v", i, err)
		}
		if next == cur {
			t.Fatalf("forced refresh %d returned the refused token", i)
		}
		if got := onFlash(t, path).RefreshToken.Reveal(); got != g.live {
			t.Fatalf("after refresh %d tokens.toml holds %q, the live one is %q", i, got, g.live)
		}
	}
	if r, _ := g.count(); r != 50 {
		t.Errorf("%d refreshes, want 50", r)
	}
	f := onFlash(t, path)
	if f.AccessToken.IsSet() {
		t.Error("the access token was written although keep_access_token is off")
	}
	if f.State != StateOK || f.Mode != "exchange" || f.Account != "alarm@example.test" {
		t.Errorf("tokens.toml = %+v", f)
	}
}

// TestConcurrentSendersRefreshOnce holds the refresh until all 20 senders
// are blocked, one in the refresh and the others queued behind it, then
// lets it go: one refresh, one token for all.
func TestConcurrentSendersRefreshOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &fakeGrant{t: t, ttl: -time.Minute} // every token comes back expired…
		s, _ := newSource(t, g, "exchange", false)
		g.ttl = time.Hour // …except the next one
		g.hold = make(chan struct{})
		var wg sync.WaitGroup
		var returned atomic.Int32
		tokens := make([]string, 20)
		for i := range 20 {
			wg.Go(func() {
				tok, err := s.Token(context.Background())
				if err != nil {
					t.Error(err)
				}
				tokens[i] = tok
				returned.Add(1)
			})
		}
		// Every sender is blocked now (the bubble says so): the one that
		// refreshes in the held request, none returned, so the other 19
		// are queued behind it.
		synctest.Wait()
		g.mu.Lock()
		held := g.held
		g.mu.Unlock()
		if held != 1 || returned.Load() != 0 {
			t.Fatalf("with the refresh held: %d senders in it and %d returned, want 1 and none; the others must queue", held, returned.Load())
		}
		close(g.hold)
		wg.Wait()
		if r, _ := g.count(); r != 1 {
			t.Errorf("%d refreshes for 20 concurrent senders, want 1", r)
		}
		for _, tok := range tokens {
			if tok != tokens[0] {
				t.Errorf("senders got different tokens: %q", tokens)
				break
			}
		}
	})
}

func TestInvalidGrantStopsRequests(t *testing.T) {
	g := &fakeGrant{t: t, ttl: -time.Minute}
	s, path := newSource(t, g, "exchange", false)
	g.fail = []error{&ProviderError{Op: "refresh", Code: "invalid_grant", Description: "AADSTS700082: The refresh token has expired due to inactivity.",
		Codes: []int{700082}, Reauth: true, Fix: "authorise again"}}
	_, err := s.Token(context.Background())
	var re *ReauthError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "AADSTS700082") || re.Hint() != "authorise again" {
		t.Fatalf("Token = %v, want a ReauthError with the provider's code and hint", err)
	}
	f := onFlash(t, path)
	if f.State != StateReauthRequired || !strings.Contains(f.LastError, "invalid_grant: AADSTS700082") || f.LastHint == "" {
		t.Errorf("tokens.toml = state %q, last_error %q, hint %q", f.State, f.LastError, f.LastHint)
	}
	if !f.RefreshToken.IsSet() {
		t.Error("the refresh token was discarded")
	}
	before, _ := g.count()
	for range 10 {
		if _, err := s.Token(context.Background()); !errors.As(err, &re) {
			t.Fatalf("Token = %v, want ReauthError", err)
		}
		if err := s.KeepAlive(context.Background(), time.Hour); !errors.As(err, &re) {
			t.Fatalf("KeepAlive = %v, want ReauthError", err)
		}
	}
	if after, _ := g.count(); after != before {
		t.Errorf("%d token requests after invalid_grant, want none", after-before)
	}
	// a new source from the same file knows it too
	s2, err := NewSource(SourceOptions{Path: path, Grant: g, Config: sourceConfig("exchange", false)})
	if err != nil {
		t.Fatal(err)
	}
	if st := s2.Status(); st.State != StateReauthRequired || st.Hint == "" {
		t.Errorf("Status after restart = %+v", st)
	}
	// re-authorisation brings it back
	g.mu.Lock()
	g.ttl = time.Hour
	tok, _ := g.next()
	g.mu.Unlock()
	if err := s.Authorized(context.Background(), tok, "alarm@example.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(context.Background()); err != nil {
		t.Errorf("Token after re-authorisation = %v", err)
	}
}

func TestTransientFailureKeepsTokensAndBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &fakeGrant{t: t, ttl: 10 * time.Minute}
		s, path := newSource(t, g, "exchange", false)
		rt := onFlash(t, path).RefreshToken.Reveal()
		ctx := context.Background()
		unavailable := &ProviderError{Op: "refresh", Status: 503, Transient: true}
		g.fail = []error{unavailable, unavailable, unavailable}
		requests := func() int { r, _ := g.count(); return r }

		time.Sleep(6 * time.Minute) // inside the refresh-ahead window, still alive
		if tok, err := s.Token(ctx); err != nil || tok != "at-1" {
			t.Fatalf("Token during an outage = %q, %v; want the still-valid token", tok, err)
		}
		time.Sleep(10 * time.Second) // within the backoff: no request
		if tok, err := s.Token(ctx); err != nil || tok != "at-1" || requests() != 1 {
			t.Fatalf("Token within the backoff = %q, %v after %d requests", tok, err, requests())
		}
		time.Sleep(4 * time.Minute) // expired; the backoff is over
		if _, err := s.Token(ctx); err == nil || requests() != 2 {
			t.Fatalf("Token with an expired token = %v after %d requests; want an error after 2", err, requests())
		}
		if _, err := s.Token(ctx); err == nil || requests() != 2 {
			t.Fatalf("Token within the second backoff = %v after %d requests; want an error and no request", err, requests())
		}
		f := onFlash(t, path)
		if f.RefreshToken.Reveal() != rt || f.State != StateError || !strings.Contains(f.LastError, "503") {
			t.Errorf("after 503s: refresh token %q (want %q), state %q, last error %q", f.RefreshToken.Reveal(), rt, f.State, f.LastError)
		}
		time.Sleep(backoffMax)
		if _, err := s.Token(ctx); err == nil {
			t.Fatal("third failure: Token succeeded")
		}
		time.Sleep(backoffMax)
		if _, err := s.Token(ctx); err != nil {
			t.Fatalf("Token after the server came back = %v", err)
		}
		if st := onFlash(t, path).State; st != StateOK {
			t.Errorf("state after recovery = %q", st)
		}
	})
}

func TestRefreshAheadAndKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &fakeGrant{t: t, ttl: time.Hour}
		s, _ := newSource(t, g, "exchange", false)
		ctx := context.Background()
		time.Sleep(54 * time.Minute)
		if _, err := s.Token(ctx); err != nil {
			t.Fatal(err)
		}
		if r, _ := g.count(); r != 0 {
			t.Fatalf("refreshed %d times 6 minutes before expiry, want 0", r)
		}
		time.Sleep(2 * time.Minute) // 4 minutes left: inside DefaultAhead
		if _, err := s.Token(ctx); err != nil {
			t.Fatal(err)
		}
		if r, _ := g.count(); r != 1 {
			t.Fatalf("refreshes 4 minutes before expiry = %d, want 1", r)
		}
		// keep-alive: checked hourly, refreshes once a day while idle
		for range 47 {
			time.Sleep(time.Hour)
			if err := s.KeepAlive(ctx, 24*time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		if r, _ := g.count(); r != 2 {
			t.Errorf("refreshes after 47 idle hours with a 24h keep-alive = %d, want 2 (1 ahead + 1 keep-alive)", r)
		}
	})
}

func TestInteractiveGrantWithoutRefreshToken(t *testing.T) {
	for _, mode := range []string{"gmail", "exchange"} {
		t.Run(mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), TokensFileName)
			s, err := NewSource(SourceOptions{Path: path, Grant: &fakeGrant{t: t}, Config: sourceConfig(mode, false)})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Authorized(context.Background(), &oauth2.Token{AccessToken: "at", Expiry: time.Now().Add(time.Hour)}, "alarm@example.test")
			if !errors.Is(err, ErrNoRefreshToken) || hintOf(err) == "" {
				t.Fatalf("Authorized without a refresh token = %v (hint %q)", err, hintOf(err))
			}
			if st := s.Status(); st.State == StateOK || st.Hint == "" {
				t.Errorf("Status = %+v, want not ok with a hint", st)
			}
			if st := onFlash(t, path).State; st != StateError {
				t.Errorf("tokens.toml state = %q, want error", st)
			}
		})
	}
}

func TestNonInteractiveModesObtain(t *testing.T) {
	g := &fakeGrant{t: t, noRT: true}
	s, path := newSource(t, g, "microsoft-app", false)
	if _, err := s.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, o := g.count(); o != 1 {
		t.Errorf("%d obtains, want 1", o)
	}
	// nothing durable changed after the first grant: no further writes
	f1 := onFlash(t, path)
	g.ttl = -time.Minute
	s.Refresh(context.Background(), "at-1")
	if f2 := onFlash(t, path); f2.Obtained != f1.Obtained || f2.RefreshToken.IsSet() {
		t.Errorf("tokens.toml changed: %+v -> %+v", f1, f2)
	}
}

func TestTokensOfAnotherModeAreNotUsed(t *testing.T) {
	g := &fakeGrant{t: t}
	_, path := newSource(t, g, "exchange", false)
	s, err := NewSource(SourceOptions{Path: path, Grant: g, Config: sourceConfig("gmail", false)})
	if err != nil {
		t.Fatal(err)
	}
	var re *ReauthError
	if _, err := s.Token(context.Background()); !errors.As(err, &re) || !strings.Contains(err.Error(), "mode exchange") {
		t.Errorf("Token with tokens of another mode = %v", err)
	}
}

func TestKeepAccessToken(t *testing.T) {
	g := &fakeGrant{t: t}
	s, path := newSource(t, g, "exchange", true)
	tok, err := s.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f := onFlash(t, path); f.AccessToken.Reveal() != tok || f.Expiry.IsZero() {
		t.Errorf("keep_access_token: tokens.toml access token %q, want %q", f.AccessToken.Reveal(), tok)
	}
}

func TestTwoProcessesShareTheNewestRefreshToken(t *testing.T) {
	g := &fakeGrant{t: t}
	s1, path := newSource(t, g, "exchange", false)
	s2, err := NewSource(SourceOptions{Path: path, Grant: g, Config: sourceConfig("exchange", false)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 5 {
		// each "process" in turn refreshes; the other's memory is stale
		for _, s := range []*Source{s1, s2} {
			cur, _ := s.Token(ctx)
			if _, err := s.Refresh(ctx, cur); err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		}
	}
	if got := onFlash(t, path).RefreshToken.Reveal(); got != g.live {
		t.Errorf("tokens.toml holds %q, live is %q", got, g.live)
	}
}
