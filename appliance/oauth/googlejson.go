package oauth

// Google's downloaded JSON files: the OAuth client ("web" or "installed")
// for mode gmail, and the service-account key for google-service-account.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"mailagent/appliance/config"
)

// googleClientJSON is Google's downloaded OAuth client file.
type googleClientJSON struct {
	Web       *googleClient `json:"web"`
	Installed *googleClient `json:"installed"`
	Type      string        `json:"type"`
}

type googleClient struct {
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	AuthURI      string   `json:"auth_uri"`
	TokenURI     string   `json:"token_uri"`
	RedirectURIs []string `json:"redirect_uris"`
}

// googleServiceAccountJSON is Google's service-account key file.
type googleServiceAccountJSON struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	ClientID     string `json:"client_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	TokenURI     string `json:"token_uri"`
}

// ImportGoogleClient sets mode gmail and the client of Google's
// downloaded OAuth client JSON ("web" or "installed"): client_id,
// client_secret, the auth and token URIs when they differ from the gmail
// preset, and redirect_url from the first usable redirect URI (the retired
// out-of-band URIs are skipped). Other keys are left as they are. Errors
// never quote the file.
func ImportGoogleClient(c *config.Config, data []byte) error {
	var f googleClientJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("import google client: not Google's client JSON: %w", jsonError(err))
	}
	gc := f.Web
	if gc == nil {
		gc = f.Installed
	}
	switch {
	case gc == nil && f.Type == "service_account":
		return errors.New("import google client: this is a service-account key: import it with google-service-account")
	case gc == nil:
		return errors.New(`import google client: the file has no "web" or "installed" client: download it from Google Cloud console > APIs & Services > Credentials`)
	case gc.ClientID == "":
		return errors.New("import google client: the file has no client_id")
	case gc.ClientSecret == "":
		return errors.New("import google client: the file has no client_secret")
	}
	preset, _ := config.LookupMode("gmail")
	c.OAuth2.Mode = preset.Name
	c.OAuth2.ClientID = gc.ClientID
	c.OAuth2.ClientSecret = config.NewSecret(gc.ClientSecret)
	c.OAuth2.AuthURL = unlessPreset(gc.AuthURI, preset.AuthURL)
	c.OAuth2.TokenURL = unlessPreset(gc.TokenURI, preset.TokenURL)
	for _, r := range gc.RedirectURIs {
		if strings.HasPrefix(r, "http://") || strings.HasPrefix(r, "https://") {
			c.OAuth2.RedirectURL = r
			break
		}
	}
	return nil
}

// ImportGoogleServiceAccount sets mode google-service-account and the key
// of Google's service-account JSON: client_email, client_id (the ID to
// allow in domain-wide delegation), private_key_id, private_key, and the
// token URI when it differs from the preset. oauth2.subject (the mailbox
// to send as) is left as it is. Errors never quote the file.
func ImportGoogleServiceAccount(c *config.Config, data []byte) error {
	var f googleServiceAccountJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("import google service account: not a service-account key: %w", jsonError(err))
	}
	switch {
	case f.Type == "" && f.ClientEmail == "":
		return errors.New("import google service account: not a service-account key (no type): download a JSON key from Google Cloud console > IAM & Admin > Service accounts > Keys")
	case f.Type != "service_account":
		return fmt.Errorf("import google service account: the file is of type %q, not service_account", oneLine(f.Type, 40))
	case f.ClientEmail == "":
		return errors.New("import google service account: the file has no client_email")
	case f.PrivateKey == "":
		return errors.New("import google service account: the file has no private_key")
	}
	if _, err := parsePrivateKey(f.PrivateKey); err != nil {
		return fmt.Errorf("import google service account: private_key: %w", err)
	}
	preset, _ := config.LookupMode("google-service-account")
	c.OAuth2.Mode = preset.Name
	c.OAuth2.ClientEmail = f.ClientEmail
	c.OAuth2.ClientID = f.ClientID
	c.OAuth2.PrivateKeyID = f.PrivateKeyID
	c.OAuth2.PrivateKey = config.NewSecret(f.PrivateKey)
	c.OAuth2.TokenURL = unlessPreset(f.TokenURI, preset.TokenURL)
	return nil
}

// unlessPreset returns v, or "" when it is the preset (so the file keeps
// only what differs).
func unlessPreset(v, preset string) string {
	if v == preset {
		return ""
	}
	return v
}

// jsonError keeps the position of a JSON error and drops any value it
// might quote.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Errorf("field %s has the wrong type", te.Field)
	}
	return errors.New("unreadable JSON")
}
