package testserver

import (
	"net/http"
)

// Revocation (RFC 7009), the discovery document that names it, and the
// revocation of a whole login when a refresh token is used twice.

// revokeFamily revokes every token of a login; s.mu is held.
func (s *AuthorizationServer) revokeFamily(family string) {
	for rt, g := range s.refresh {
		if g.family == family {
			delete(s.refresh, rt)
		}
	}
	for access, f := range s.families {
		if f == family {
			delete(s.tokens, access)
		}
	}
}

// serveRevoke revokes the token in the form (RFC 7009 §2.1): a refresh
// token with its whole login, an access token alone. It answers 200 for a
// token it does not know too (§2.2).
func (s *AuthorizationServer) serveRevoke(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	if err := parseForm(r); err != nil {
		writeOAuthError(w, http.StatusBadRequest, oauthInvalidRequest, err.Error())
		return
	}
	if _, known := s.clients[r.PostForm.Get("client_id")]; !known {
		writeOAuthError(w, http.StatusUnauthorized, oauthInvalidClient, "unknown client")
		return
	}
	token := r.PostForm.Get("token")
	s.mu.Lock()
	if g, ok := s.refresh[token]; ok {
		s.revokeFamily(g.family)
		s.revocations.Add(1)
	} else if _, ok := s.tokens[token]; ok {
		delete(s.tokens, token)
		s.revocations.Add(1)
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// serveDiscovery answers the OpenID Connect discovery document: the
// server's endpoints, its revocation endpoint among them.
func (s *AuthorizationServer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                 s.srv.URL,
		"authorization_endpoint": s.AuthorizeURL(),
		"token_endpoint":         s.TokenURL(),
		"revocation_endpoint":    s.srv.URL + RevokePath,
	})
}

// Revocations returns how many tokens the revocation endpoint revoked.
func (s *AuthorizationServer) Revocations() int64 { return s.revocations.Load() }

// Issuer returns the server's issuer identifier: its base URL.
func (s *AuthorizationServer) Issuer() string { return s.srv.URL }

// RefreshReuses returns how many times a used refresh token came back, each
// of which revoked a whole login.
func (s *AuthorizationServer) RefreshReuses() int64 { return s.reuses.Load() }

type codeTokenResponse struct {
	tokenResponse
	RefreshToken string `json:"refresh_token"`
}
