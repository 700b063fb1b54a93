package oauthtest

import (
	"fmt"
	"net/http"
	"strings"
)

// clientCredentials serves the client credentials grant (RFC 6749 §4.4):
// app-only tokens for the client's mailbox, never a refresh token. The lock
// is held.
func (s *Server) clientCredentials(q *req, c *Client) reply {
	if c.Auth == AuthNone {
		return s.bad(q, refusal{status: http.StatusUnauthorized, code: "invalid_client", desc: "client credentials grant for a public client",
			aad: 7000218, ms: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."})
	}
	if s.o.Flavour == Microsoft && q.tenant != s.o.Tenant {
		return s.bad(q, refusal{code: "invalid_request", desc: fmt.Sprintf("client credentials under /%s: the tenant ID or domain is needed", q.tenant),
			aad: 50059, ms: "No tenant-identifying information found in either the request or implied by any provided credentials."})
	}
	scope := q.form.Get("scope")
	if scope == "" {
		return s.bad(q, missing("scope"))
	}
	if s.o.Flavour == Microsoft {
		for _, w := range strings.Fields(scope) {
			if !strings.HasSuffix(w, "/.default") {
				return s.bad(q, refusal{code: "invalid_scope", desc: fmt.Sprintf("scope %q: client credentials need resource/.default", w),
					aad: 1002012, ms: fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)})
			}
			// A resource the tenant has no service principal for
			// (another cloud's host, a typo): AADSTS500011, invalid_resource
			// (learn.microsoft.com reference-error-codes). This tenant
			// knows Exchange Online and Graph of the global cloud.
			if res := strings.TrimSuffix(w, "/.default"); !knownResources[res] {
				return s.refuse(refusal{code: "invalid_resource", desc: fmt.Sprintf("resource %q not in the tenant", res),
					aad: 500011, ms: fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", res, s.o.Tenant)})
			}
		}
	}
	user := c.Mailbox
	if user == "" {
		user = c.ID
	}
	return s.issue(q, c.ID, user, scope, 0, false)
}

// knownResources are the resources (application ID URIs) of the Microsoft
// flavour's tenant.
var knownResources = map[string]bool{
	"https://outlook.office365.com": true,
	"https://outlook.office.com":    true,
	"https://graph.microsoft.com":   true,
}
