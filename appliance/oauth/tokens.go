// Package oauth gets and keeps the OAuth2 tokens mailagent authenticates
// with. This file holds tokens.toml, the token state on flash.
package oauth

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"mailagent/appliance/config"
	"mailagent/appliance/internal/flash"
)

// TokensFileName is the token file in the data directory.
const TokensFileName = "tokens.toml"

// Tokens is the content of tokens.toml: the OAuth2 state of the box. An
// access token may also be placed there by hand or by a provisioning script.
//
// The file is written only when a durable field changes: a new or rotated
// refresh token, a new authorisation, a change of state, a secret-expiry
// warning given. The access token is written only when
// oauth2.keep_access_token is set; otherwise it lives in memory.
type Tokens struct {
	// AccessToken is the current access token, if kept.
	AccessToken config.Secret `toml:"access_token,omitempty"`
	// TokenType is the access token's type; only "Bearer" is used for mail.
	TokenType string `toml:"token_type,omitempty"`
	// Expiry is when the access token stops working (RFC 3339); zero means
	// unknown.
	Expiry time.Time `toml:"expiry,omitempty"`
	// RefreshToken gets new access tokens.
	RefreshToken config.Secret `toml:"refresh_token,omitempty"`

	// Mode and ClientID are the oauth2.mode and oauth2.client_id the grant
	// was made for; tokens of another mode or client are not used.
	Mode     string `toml:"mode,omitempty"`
	ClientID string `toml:"client_id,omitempty"`
	// Grant is how the grant was obtained (GrantDeviceCode, …); it decides
	// how the client authenticates when it refreshes. "" (files written
	// before it was recorded) authenticates as the mode does.
	Grant string `toml:"grant,omitempty"`
	// Account is who authorised (the mailbox the token sends as).
	Account string `toml:"account,omitempty"`
	// Scopes are the scopes granted.
	Scopes []string `toml:"scopes,omitempty"`
	// Obtained is when the grant was made (authorisation).
	Obtained time.Time `toml:"obtained,omitempty"`
	// Refreshed is when the refresh token last changed or was last proven
	// live by a keep-alive.
	Refreshed time.Time `toml:"refreshed,omitempty"`
	// State is "ok", "reauth_required" or "error" ("" is ok).
	State string `toml:"state,omitempty"`
	// LastError is the provider's error code and description of the last
	// failure, and LastErrorAt when it happened.
	LastError   string    `toml:"last_error,omitempty"`
	LastErrorAt time.Time `toml:"last_error_at,omitempty"`
	// LastHint says what to do about LastError.
	LastHint string `toml:"last_hint,omitempty"`
	// SecretWarning is the last client-secret expiry warning given, in days
	// before the expiry (30, 7, 1); 0 for none yet.
	SecretWarning int `toml:"secret_warning,omitzero"`
}

// How a grant was obtained (Tokens.Grant).
const (
	GrantDeviceCode        = "device_code"
	GrantAuthorizationCode = "authorization_code"
	GrantPassword          = "password"
	GrantClientCredentials = "client_credentials"
	GrantJWTBearer         = "jwt_bearer"
)

// Token states.
const (
	StateOK             = "ok"
	StateReauthRequired = "reauth_required"
	StateError          = "error"
)

// DecodeTokens reads a tokens.toml document strictly: unknown keys and wrong
// types are errors naming the key.
func DecodeTokens(data []byte) (Tokens, error) {
	var t Tokens
	md, err := toml.Decode(string(data), &t)
	if err != nil {
		return Tokens{}, config.ParseError(string(data), err, "access_token", "refresh_token")
	}
	var errs []error
	for _, k := range md.Undecoded() {
		errs = append(errs, fmt.Errorf("unknown key %q", k.String()))
	}
	if t.TokenType != "" && !strings.EqualFold(t.TokenType, "bearer") {
		errs = append(errs, fmt.Errorf("token_type %q: only Bearer tokens can be used for mail", t.TokenType))
	}
	return t, errors.Join(errs...)
}

// Encode writes t as a tokens.toml document. It fails for a string that
// is not UTF-8, which no TOML file can hold.
func (t *Tokens) Encode() ([]byte, error) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(t); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// TokensFile is the result of loading tokens.toml.
type TokensFile struct {
	Tokens  Tokens
	Path    string
	Missing bool
	// Damaged is set when the file is damaged (it does not parse, is cut
	// short, or is empty or missing while its good copy is not) and the
	// last good copy was used instead.
	Damaged *flash.DamagedError
	// GoodDamaged is set when the file is sound and its good copy is not;
	// the next save makes it again.
	GoodDamaged *flash.DamagedError
	// Empty is true when the file is empty and has no good copy.
	Empty bool
}

// LoadTokens reads tokens.toml at path, falling back to its last good copy
// when it is damaged. Without a good copy to use, the error is a
// *flash.DamagedError.
func LoadTokens(path string) (*TokensFile, error) { return LoadTokensFS(flash.OS, path) }

// LoadTokensFS is LoadTokens on the file system fsys.
func LoadTokensFS(fsys flash.FS, path string) (*TokensFile, error) {
	l, err := flash.LoadDecoded(fsys, path, decodeTokensFile)
	if err != nil {
		return nil, err
	}
	return &TokensFile{Tokens: l.Value, Path: path, Missing: l.Missing, Damaged: l.Damaged, GoodDamaged: l.GoodDamaged, Empty: l.Empty}, nil
}

// decodeTokensFile is the check and decoder of LoadTokens: the end marks
// (config.CheckMarks), then the strict DecodeTokens. SaveTokens reads back
// what it would write with it too.
func decodeTokensFile(data []byte) (Tokens, error) {
	if err := config.CheckMarks(TokensFileName, data); err != nil {
		return Tokens{}, err
	}
	return DecodeTokens(data)
}

// SaveTokens writes t to path through the flash store. What it writes is
// read back first, as LoadTokens reads it, and must give t again; when it
// does not (a string that is not UTF-8, a token type Load refuses), it is
// an error naming the fields, and nothing is written.
func SaveTokens(path string, t *Tokens) error { return SaveTokensFS(flash.OS, path, t) }

// SaveTokensFS is SaveTokens on the file system fsys.
func SaveTokensFS(fsys flash.FS, path string, t *Tokens) error {
	data, err := tokensBytes(t)
	if err != nil {
		return fmt.Errorf("save %s: %w; nothing was written", path, err)
	}
	return flash.Save(fsys, path, data)
}

// tokensBytes is what SaveTokens writes for t: Encode between the end
// marks, checked to read back as t.
func tokensBytes(t *Tokens) ([]byte, error) {
	doc, err := t.Encode()
	if err != nil {
		return nil, err
	}
	return config.ReadBack(TokensFileName, doc, decodeTokensFile, func(back *Tokens) []string { return differingTokens(t, back) })
}

// differingTokens lists the toml names of the fields that differ in a
// and b: times by their instant, empty and nil lists alike.
func differingTokens(a, b *Tokens) []string {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	var out []string
	for i := range va.NumField() {
		fa, fb := va.Field(i).Interface(), vb.Field(i).Interface()
		var same bool
		switch x := fa.(type) {
		case time.Time:
			same = x.Equal(fb.(time.Time))
		case []string:
			same = slices.Equal(x, fb.([]string))
		default:
			same = reflect.DeepEqual(fa, fb)
		}
		if !same {
			name, _, _ := strings.Cut(va.Type().Field(i).Tag.Get("toml"), ",")
			out = append(out, name)
		}
	}
	return out
}

// TokenError says why there is no usable token, with what to do.
type TokenError struct {
	Msg  string
	Fix  string
	Err  error // a sentinel to match with errors.Is, if any
	Temp bool  // a later try may succeed without anyone doing anything
}

// Temporary reports whether a later try may succeed by itself.
func (e *TokenError) Temporary() bool { return e.Temp }

func (e *TokenError) Error() string { return e.Msg }

// Unwrap returns Err.
func (e *TokenError) Unwrap() error { return e.Err }

// Hint says what the administrator should do.
func (e *TokenError) Hint() string { return e.Fix }
