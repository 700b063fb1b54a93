package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"mailagent/appliance/config"
	"mailagent/appliance/internal/flash"
)

// Grant is what the token lifecycle needs from a mode; *Client is one.
type Grant interface {
	// Refresh trades a refresh token for new tokens.
	Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error)
	// Obtain gets tokens without a person (password, client credentials,
	// JWT bearer); interactive modes return an error.
	Obtain(ctx context.Context) (*oauth2.Token, error)
}

// grantRefresher is a Grant that refreshes each grant the way it was
// obtained (Tokens.Grant); *Client is one.
type grantRefresher interface {
	RefreshGrant(ctx context.Context, refreshToken, grant string) (*oauth2.Token, error)
}

// SourceOptions configures a Source. Zero values take the defaults named.
type SourceOptions struct {
	// Path is tokens.toml.
	Path string
	// FS is the file system Path is on; nil means flash.OS.
	FS flash.FS
	// Grant gets and refreshes tokens.
	Grant Grant
	// Config is the configuration with defaults filled in: the mode, the
	// client ID, keep_access_token, keepalive_interval, secret_expires.
	Config *config.Config
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives state changes; nil discards them.
	Log *slog.Logger
	// Ahead is how long before expiry an access token is refreshed; 0 means
	// DefaultAhead.
	Ahead time.Duration
}

// DefaultAhead is how long before its expiry an access token is replaced:
// long enough for an SMTP session that starts just before.
const DefaultAhead = 5 * time.Minute

// Backoff bounds after transient failures (network, 5xx, timeouts).
const (
	backoffMin = 30 * time.Second
	backoffMax = 30 * time.Minute
)

// Source keeps the tokens of one mode alive and hands out access tokens. It
// implements submit.TokenSource and submit.Refresher.
//
// Rules it keeps:
//   - one token request at a time: concurrent callers wait for the one in
//     flight and share its result (providers rotate refresh tokens and may
//     revoke the grant when an old one is reused);
//   - a rotated refresh token is on flash before the access token that came
//     with it is handed out; if it cannot be saved, the access token is not
//     used;
//   - a dead grant (invalid_grant and friends) moves the state to
//     reauth_required and stops all token requests until a new
//     authorisation; its provider code and a hint are kept;
//   - a transient failure (network, 5xx, timeout) discards nothing: the
//     next try waits with exponential backoff and jitter;
//   - tokens.toml is written only when a durable field changes.
type Source struct {
	o       SourceOptions
	lock    chan struct{} // single flight
	mode    config.Mode
	tok     Tokens
	damaged error // tokens.toml was damaged; its good copy is used
	// failures counts transient failures since the last success; retryAt is
	// when the next token request may go out.
	failures int
	retryAt  time.Time
}

// NewSource loads tokens.toml and returns a Source for the configured mode.
// Tokens made for another mode or client are not used: the state says a new
// authorisation is needed.
func NewSource(o SourceOptions) (*Source, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FS == nil {
		o.FS = flash.OS
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Ahead == 0 {
		o.Ahead = DefaultAhead
	}
	mode, ok := config.LookupMode(o.Config.OAuth2.Mode)
	if !ok {
		return nil, fmt.Errorf("oauth2.mode %q is not a mode", o.Config.OAuth2.Mode)
	}
	s := &Source{o: o, lock: make(chan struct{}, 1), mode: mode}
	f, err := LoadTokensFS(o.FS, o.Path)
	var damaged *flash.DamagedError
	switch {
	case errors.As(err, &damaged):
		// Damaged without a good copy to use: no tokens, said so in
		// Status. A non-interactive mode makes a new grant, an
		// interactive one needs a person, and either saves over it.
		o.Log.Error("tokens unreadable; starting without", "err", err)
		s.damaged = err
	case err != nil:
		return nil, err
	default:
		s.tok = f.Tokens
		if f.Damaged != nil {
			s.damaged = f.Damaged
		}
	}
	t := &s.tok
	if (t.Mode != "" && t.Mode != mode.Name) || (t.ClientID != "" && t.ClientID != o.Config.OAuth2.ClientID) {
		*t = Tokens{State: StateReauthRequired, LastError: fmt.Sprintf("the tokens in %s were made for mode %s, client %s", TokensFileName, t.Mode, t.ClientID)}
	}
	return s, nil
}

func (s *Source) acquire(ctx context.Context) error {
	select {
	case s.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Source) release() { <-s.lock }

// usable reports whether the access token can be handed out now: set and
// not within Ahead of its expiry (an unknown expiry counts as usable).
func (s *Source) usable() bool {
	t := &s.tok
	return t.AccessToken.IsSet() && (t.Expiry.IsZero() || s.o.Now().Add(s.o.Ahead).Before(t.Expiry))
}

// alive reports whether the access token still works, even inside the
// refresh-ahead window.
func (s *Source) alive() bool {
	t := &s.tok
	return t.AccessToken.IsSet() && (t.Expiry.IsZero() || s.o.Now().Before(t.Expiry))
}

// Token returns an access token, refreshing it first when it is near its
// expiry.
func (s *Source) Token(ctx context.Context) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	if s.usable() {
		return s.tok.AccessToken.Reveal(), nil
	}
	return s.renew(ctx, s.usable)
}

// Refresh gets a new access token because the server refused refused. When
// another caller has replaced that token meanwhile, the new one is returned
// without a token request.
func (s *Source) Refresh(ctx context.Context, refused string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	fresh := func() bool { return s.usable() && s.tok.AccessToken.Reveal() != refused }
	if fresh() {
		return s.tok.AccessToken.Reveal(), nil
	}
	return s.renew(ctx, fresh)
}

// KeepAlive refreshes the grant when it has not been used for interval, so
// an inactivity expiry never bites and a revoked grant is found before an
// alarm needs it. It does nothing while re-authorisation is required.
func (s *Source) KeepAlive(ctx context.Context, interval time.Duration) error {
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	if s.tok.State == StateReauthRequired {
		return s.reauthError()
	}
	recent := func() bool { return !s.tok.Refreshed.IsZero() && s.o.Now().Sub(s.tok.Refreshed) < interval }
	if recent() {
		return nil
	}
	_, err := s.renew(ctx, recent)
	return err
}

// renew gets new tokens; the caller holds the lock. It also holds the data
// directory's lock for the request, so that another mailagent process (the
// agent and a "mailagent test" beside it) never refreshes at the same time,
// and takes over what that process may have saved meanwhile.
// done, checked after that, says whether the request is still needed.
func (s *Source) renew(ctx context.Context, done func() bool) (string, error) {
	unlock, err := lockDir(ctx, s.o.FS, filepath.Dir(s.o.Path))
	if err != nil {
		return "", err
	}
	defer unlock()
	s.adopt()
	if done() && s.tok.State != StateReauthRequired {
		return s.tok.AccessToken.Reveal(), nil
	}
	t := &s.tok
	now := s.o.Now()
	if t.State == StateReauthRequired {
		return "", s.reauthError()
	}
	if now.Before(s.retryAt) {
		if s.alive() {
			return t.AccessToken.Reveal(), nil
		}
		return "", &TokenError{Msg: fmt.Sprintf("the token server failed (%s); next try at %s", t.LastError, s.retryAt.UTC().Format(time.RFC3339)),
			Fix: "mail waits and goes out once the token server answers again", Temp: true}
	}
	var nt *oauth2.Token
	obtained := false // a new grant from the credentials
	switch {
	case t.RefreshToken.IsSet():
		if g, ok := s.o.Grant.(grantRefresher); ok {
			nt, err = g.RefreshGrant(ctx, t.RefreshToken.Reveal(), t.Grant)
		} else {
			nt, err = s.o.Grant.Refresh(ctx, t.RefreshToken.Reveal())
		}
		if err != nil && !s.mode.Interactive && isReauth(err) {
			// A password, client credential or key can make a new grant.
			s.o.Log.Info("refresh token refused; obtaining a new grant", "mode", s.mode.Name)
			nt, err = s.o.Grant.Obtain(ctx)
			obtained = true
		}
	case !s.mode.Interactive:
		nt, err = s.o.Grant.Obtain(ctx)
		obtained = true
	case t.AccessToken.IsSet() && s.alive():
		return "", &TokenError{Msg: "the server refused the access token, and there is no refresh token to get another",
			Fix: "authorise the box (mailagent authorize) or place a new access token in " + TokensFileName}
	case t.AccessToken.IsSet():
		return "", &TokenError{Msg: fmt.Sprintf("the access token expired at %s and there is no refresh token", t.Expiry.UTC().Format(time.RFC3339)),
			Fix: "authorise the box (mailagent authorize) or place a new access token in " + TokensFileName}
	default:
		return "", &TokenError{Msg: "the box is not authorised yet: no token in " + TokensFileName,
			Fix: "authorise the box with \"mailagent authorize\" (or on the web page)"}
	}
	if err != nil {
		return s.failed(ctx, err)
	}
	if g, ok := s.o.Grant.(interface{ ObtainGrant() string }); ok && obtained {
		t.Grant = g.ObtainGrant()
	}
	return s.accept(nt)
}

// failed records a failed token request.
func (s *Source) failed(ctx context.Context, err error) (string, error) {
	t := &s.tok
	now := s.o.Now()
	switch {
	case isReauth(err):
		t.State, t.LastError, t.LastHint, t.LastErrorAt = StateReauthRequired, describe(err), hintOf(err), now.UTC().Truncate(time.Second)
		s.o.Log.Error("grant refused: re-authorisation required", "mode", s.mode.Name, "err", t.LastError)
		if serr := s.save(); serr != nil {
			s.o.Log.Error("tokens not saved", "err", serr)
		}
		return "", s.reauthError()
	case isTransient(err) || ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		s.failures++
		s.retryAt = now.Add(backoff(s.failures))
		s.o.Log.Warn("token request failed; trying again later", "mode", s.mode.Name, "err", err, "retry_at", s.retryAt)
		if t.State != StateError {
			t.State, t.LastError, t.LastHint, t.LastErrorAt = StateError, describe(err), hintOf(err), now.UTC().Truncate(time.Second)
			if serr := s.save(); serr != nil {
				s.o.Log.Error("tokens not saved", "err", serr)
			}
		}
		if s.alive() {
			return t.AccessToken.Reveal(), nil
		}
		return "", err
	}
	return "", err
}

// adopt takes over the durable state another process saved since this one
// last looked: a newer refresh token, a new authorisation, a state change.
func (s *Source) adopt() {
	f, err := LoadTokensFS(s.o.FS, s.o.Path)
	if err != nil || f.Missing {
		return
	}
	ft, t := f.Tokens, &s.tok
	if ft.Mode != s.mode.Name || ft.ClientID != s.o.Config.OAuth2.ClientID {
		return
	}
	if ft.RefreshToken.Reveal() == t.RefreshToken.Reveal() && ft.State == t.State && ft.Obtained.Equal(t.Obtained) {
		if ft.AccessToken.IsSet() && ft.AccessToken.Reveal() != t.AccessToken.Reveal() {
			t.AccessToken, t.TokenType, t.Expiry = ft.AccessToken, ft.TokenType, ft.Expiry
		}
		return
	}
	access, typ, expiry := t.AccessToken, t.TokenType, t.Expiry
	*t = ft
	if !ft.AccessToken.IsSet() {
		t.AccessToken, t.TokenType, t.Expiry = access, typ, expiry
	}
	s.failures, s.retryAt = 0, time.Time{}
}

// lockDir takes the data directory's lock, waiting for ctx: an exclusive
// flock on the directory itself (flash.Lock), which another process's
// Source takes too.
func lockDir(ctx context.Context, fsys flash.FS, dir string) (unlock func(), err error) {
	return flash.Lock(ctx, fsys, dir)
}

// accept takes new tokens: durable changes are saved before the access
// token is handed out.
func (s *Source) accept(nt *oauth2.Token) (string, error) {
	t := &s.tok
	now := s.o.Now().UTC().Truncate(time.Second)
	durable := t.State != StateOK
	if nt.RefreshToken != "" && nt.RefreshToken != t.RefreshToken.Reveal() {
		t.RefreshToken = config.NewSecret(nt.RefreshToken)
		durable = true
	}
	if s.o.Config.OAuth2.KeepAccessToken {
		durable = true
	}
	if t.Obtained.IsZero() {
		t.Obtained = now
		durable = true
	}
	t.AccessToken, t.TokenType, t.Expiry = config.NewSecret(nt.AccessToken), "Bearer", nt.Expiry.UTC()
	t.Mode, t.ClientID, t.Refreshed = s.mode.Name, s.o.Config.OAuth2.ClientID, now
	if t.Account == "" {
		t.Account = s.o.Config.SMTP.User
	}
	if sc, ok := nt.Extra("scope").(string); ok && sc != "" {
		t.Scopes = strings.Fields(sc)
	}
	t.State, t.LastError, t.LastHint, t.LastErrorAt = StateOK, "", "", time.Time{}
	s.failures, s.retryAt = 0, time.Time{}
	if durable {
		if err := s.save(); err != nil {
			// Not by a later call either: the next one refreshes again,
			// with the newest refresh token, the one a rotating server
			// takes next.
			t.AccessToken, t.TokenType, t.Expiry = config.Secret{}, "", time.Time{}
			return "", fmt.Errorf("new tokens could not be saved, so they are not used: %w", err)
		}
	}
	return t.AccessToken.Reveal(), nil
}

// Authorized stores the tokens of a new authorisation by account. An
// interactive grant without a refresh token is refused (and recorded): it
// would stop working within the hour.
func (s *Source) Authorized(ctx context.Context, nt *oauth2.Token, account string) error {
	return s.AuthorizedBy(ctx, nt, account, "")
}

// AuthorizedBy is Authorized for a grant obtained the way grant says
// (GrantDeviceCode, …), which is recorded in tokens.toml: its refreshes
// authenticate the way that grant needs.
func (s *Source) AuthorizedBy(ctx context.Context, nt *oauth2.Token, account, grant string) error {
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	t := &s.tok
	now := s.o.Now().UTC().Truncate(time.Second)
	if s.mode.Interactive && nt.RefreshToken == "" {
		nerr := noRefreshTokenError(s.mode)
		t.State, t.LastError, t.LastHint, t.LastErrorAt = StateError, nerr.Error(), nerr.Hint(), now
		if err := s.save(); err != nil {
			s.o.Log.Error("tokens not saved", "err", err)
		}
		return nerr
	}
	*t = Tokens{Account: account, Obtained: now, Grant: grant}
	t.RefreshToken = config.NewSecret(nt.RefreshToken)
	_, err := s.accept(nt)
	return err
}

// AuthorizationFailed records the failure of an interactive authorisation
// that would leave the box without a lasting grant: an answer without a
// refresh token (err wraps ErrNoRefreshToken), which stops working with its
// access token. The state becomes error, with err and its hint, so that
// status shows the fix. The tokens kept so far stay (taken over from
// tokens.toml first, in case another process rotated them): a grant that
// still works makes the state ok again at its next refresh. Other failures
// (a mistyped address, a declined sign-in) say nothing about the grant in
// place and are not recorded.
func (s *Source) AuthorizationFailed(ctx context.Context, err error) {
	if !errors.Is(err, ErrNoRefreshToken) {
		return
	}
	if err := s.acquire(ctx); err != nil {
		return
	}
	defer s.release()
	unlock, lerr := lockDir(ctx, s.o.FS, filepath.Dir(s.o.Path))
	if lerr != nil {
		s.o.Log.Error("failed authorisation not recorded", "err", lerr)
		return
	}
	defer unlock()
	s.adopt()
	t := &s.tok
	t.State, t.LastError, t.LastHint, t.LastErrorAt = StateError, describe(err), hintOf(err), s.o.Now().UTC().Truncate(time.Second)
	s.o.Log.Error("authorisation gave no refresh token", "mode", s.mode.Name, "err", t.LastError)
	if serr := s.save(); serr != nil {
		s.o.Log.Error("tokens not saved", "err", serr)
	}
}

// save writes tokens.toml: the access token only when it is to be kept.
func (s *Source) save() error {
	f := s.tok
	if !s.o.Config.OAuth2.KeepAccessToken {
		f.AccessToken, f.TokenType, f.Expiry = config.Secret{}, "", time.Time{}
	}
	if err := SaveTokensFS(s.o.FS, s.o.Path, &f); err != nil {
		return err
	}
	s.damaged = nil
	return nil
}

func (s *Source) reauthError() error {
	fix := s.tok.LastHint
	if fix == "" {
		fix = "authorise the box again (mailagent authorize, or Authorise on the web page)"
	}
	return &ReauthError{Mode: s.mode.Name, LastError: s.tok.LastError, Fix: fix}
}

// backoff is the wait after n consecutive transient failures: 30 s doubling
// up to 30 min, with ±20 % jitter so boxes do not retry in step.
func backoff(n int) time.Duration {
	d := backoffMin
	for i := 1; i < n && d < backoffMax; i++ {
		d *= 2
	}
	d = min(d, backoffMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// ReauthError means the grant is dead and a person must authorise again.
type ReauthError struct {
	Mode, LastError, Fix string
}

func (e *ReauthError) Error() string {
	if e.LastError == "" {
		return "re-authorisation required"
	}
	return "re-authorisation required: " + e.LastError
}

// Hint says what to do.
func (e *ReauthError) Hint() string { return e.Fix }

// SecretWarning is the last client-secret expiry warning given, in days
// before the expiry (0: none).
func (s *Source) SecretWarning() int {
	s.lock <- struct{}{}
	defer s.release()
	return s.tok.SecretWarning
}

// SetSecretWarning records that the warning for days before the expiry was
// given (0 starts over), on flash.
func (s *Source) SetSecretWarning(days int) error {
	s.lock <- struct{}{}
	defer s.release()
	if s.tok.SecretWarning == days {
		return nil
	}
	s.tok.SecretWarning = days
	return s.save()
}

// Status is the token state for status displays.
type Status struct {
	Mode, Account, State string
	HasRefreshToken      bool
	Expiry               time.Time // of the access token in memory
	Obtained, Refreshed  time.Time
	LastError, Hint      string
	LastErrorAt          time.Time
	RetryAt              time.Time
	Damaged              string // tokens.toml was damaged and its good copy used
}

// Status reports the token state without any request.
func (s *Source) Status() Status {
	select {
	case s.lock <- struct{}{}:
		defer s.release()
	case <-time.After(5 * time.Second):
		return Status{Mode: s.mode.Name, State: "busy"}
	}
	t := s.tok
	st := Status{
		Mode: s.mode.Name, Account: t.Account, State: t.State, HasRefreshToken: t.RefreshToken.IsSet(),
		Expiry: t.Expiry, Obtained: t.Obtained, Refreshed: t.Refreshed,
		LastError: t.LastError, LastErrorAt: t.LastErrorAt, RetryAt: s.retryAt,
	}
	if st.State == "" {
		st.State = StateOK
		if !t.RefreshToken.IsSet() && !t.AccessToken.IsSet() && s.mode.Interactive {
			st.State = "not_authorised"
		}
	}
	st.Hint = t.LastHint
	if s.damaged != nil {
		st.Damaged = s.damaged.Error()
	}
	return st
}

func isReauth(err error) bool {
	var pe *ProviderError
	return errors.As(err, &pe) && pe.Reauth
}

func isTransient(err error) bool {
	var pe *ProviderError
	if errors.As(err, &pe) {
		return pe.Transient
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// describe is what status shows of a failure: the provider's code and
// description when there are, else the error. What a server sent may be
// any bytes; tokens.toml keeps text (UTF-8) only, so others become U+FFFD.
func describe(err error) string {
	var pe *ProviderError
	if errors.As(err, &pe) && pe.Code != "" {
		d := pe.Code
		if pe.Description != "" {
			d += ": " + pe.Description
		}
		if pe.ClockSkew != 0 {
			d += " (the system clock is " + skewWords(pe.ClockSkew) + ")"
		}
		return strings.ToValidUTF8(d, "\uFFFD")
	}
	return strings.ToValidUTF8(err.Error(), "\uFFFD")
}

func hintOf(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return strings.ToValidUTF8(h.Hint(), "\uFFFD")
	}
	return ""
}

// noRefreshTokenError is the error for an interactive grant that came back
// without a refresh token, with the fix for the mode's provider.
func noRefreshTokenError(m config.Mode) *TokenError {
	fix := "authorise again; the authorisation must ask for offline access"
	switch {
	case m.Name == "gmail":
		fix = "Google sends a refresh token only when the user consents: authorise again (mailagent asks with access_type=offline and prompt=consent); if it stays without one, remove the app at https://myaccount.google.com/permissions and authorise again"
	case m.Microsoft:
		fix = "the scopes must include offline_access: unset oauth2.scopes to use the preset, or add offline_access, then authorise again"
	}
	return &TokenError{Msg: "the authorisation returned no refresh token, so the box would stop sending within the hour", Fix: fix, Err: ErrNoRefreshToken}
}
