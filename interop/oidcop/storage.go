package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// errNotHere answers the parts of op.Storage that the device grant, the
// refresh grant and introspection never reach (the browser login, JWT
// profile, sessions).
var errNotHere = errors.New("oidcop: not supported by this test provider")

// accessToken is what the storage keeps of an issued access token; the
// token the client holds is the provider's encryption of "id:subject".
type accessToken struct {
	clientID string
	subject  string
	scopes   []string
	audience []string
	expires  time.Time
}

// refreshToken is a refresh token's grant. Each is used once: a refresh
// replaces it (rotation).
type refreshToken struct {
	clientID string
	subject  string
	scopes   []string
	audience []string
	authTime time.Time
	amr      []string
}

// deviceGrant is one device authorization and what the person decided.
type deviceGrant struct {
	deviceCode string
	state      op.DeviceAuthorizationState
}

// storage is an in-memory op.Storage with the device grant. It is safe
// for concurrent use.
type storage struct {
	clients map[string]*client // read-only after newStorage
	users   map[string]string  // username -> password; read-only
	key     *signingKey        // read-only

	mu       sync.Mutex // guards the fields below
	lifetime time.Duration
	access   map[string]*accessToken  // by token id
	refresh  map[string]*refreshToken // by the refresh token itself
	devices  map[string]*deviceGrant  // by user code
	byDevice map[string]string        // device code -> user code
	stats    stats
}

// stats are the counters the tests read from /testing/stats.
type stats struct {
	DeviceAuthorizations int `json:"device_authorizations"`
	Approvals            int `json:"approvals"`
	AccessTokens         int `json:"access_tokens"`
	Refreshes            int `json:"refreshes"`
	DevicePolls          int `json:"device_polls"`
}

func newStorage(clients []*client, users map[string]string, lifetime time.Duration) (*storage, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	s := &storage{
		clients:  make(map[string]*client, len(clients)),
		users:    users,
		key:      &signingKey{id: "oidcop-1", key: key},
		lifetime: lifetime,
		access:   make(map[string]*accessToken),
		refresh:  make(map[string]*refreshToken),
		devices:  make(map[string]*deviceGrant),
		byDevice: make(map[string]string),
	}
	for _, c := range clients {
		s.clients[c.id] = c
	}
	return s, nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// --- the device grant (op.DeviceAuthorizationStorage) ---

func (s *storage) StoreDeviceAuthorization(_ context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.devices[userCode]; taken {
		return op.ErrDuplicateUserCode
	}
	s.devices[userCode] = &deviceGrant{
		deviceCode: deviceCode,
		state:      op.DeviceAuthorizationState{ClientID: clientID, Scopes: scopes, Expires: expires},
	}
	s.byDevice[deviceCode] = userCode
	s.stats.DeviceAuthorizations++
	return nil
}

func (s *storage) GetDeviceAuthorizatonState(_ context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.DevicePolls++
	g, ok := s.devices[s.byDevice[deviceCode]]
	if !ok || g.state.ClientID != clientID {
		return nil, errors.New("unknown device code")
	}
	state := g.state // a copy: the provider reads it after we unlock
	if state.Done {
		// A device code yields one token: forget it once it did.
		delete(s.devices, s.byDevice[deviceCode])
		delete(s.byDevice, deviceCode)
	}
	return &state, nil
}

// userCodeState is what the verification pages show about a user code.
func (s *storage) userCodeState(userCode string) (op.DeviceAuthorizationState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.devices[userCode]
	if !ok || time.Now().After(g.state.Expires) {
		return op.DeviceAuthorizationState{}, errors.New("unknown or expired code")
	}
	return g.state, nil
}

// decide records the person's answer for userCode.
func (s *storage) decide(userCode, subject string, allow bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.devices[userCode]
	if !ok || time.Now().After(g.state.Expires) {
		return errors.New("unknown or expired code")
	}
	if allow {
		g.state.Done = true
		g.state.Subject = subject
		g.state.AuthTime = time.Now()
		g.state.AMR = []string{"pwd"}
		s.stats.Approvals++
	} else {
		g.state.Denied = true
	}
	return nil
}

func (s *storage) checkPassword(username, password string) error {
	want, ok := s.users[username]
	if !ok || want != password {
		return errors.New("wrong username or password")
	}
	return nil
}

// --- tokens (op.AuthStorage) ---

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, exp := s.newAccessLocked(req, clientOf(req))
	return id, exp, nil
}

func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clientID := clientOf(req)
	if current != "" {
		if _, ok := s.refresh[current]; !ok {
			return "", "", time.Time{}, errors.New("refresh token already used")
		}
		delete(s.refresh, current)
		s.stats.Refreshes++
	}
	id, exp := s.newAccessLocked(req, clientID)
	rt := randomID() + randomID()
	grant := &refreshToken{clientID: clientID, subject: req.GetSubject(), scopes: req.GetScopes(), audience: req.GetAudience()}
	if r, ok := req.(op.RefreshTokenRequest); ok {
		grant.authTime, grant.amr = r.GetAuthTime(), r.GetAMR()
	}
	if d, ok := req.(*op.DeviceAuthorizationState); ok {
		grant.authTime, grant.amr = d.AuthTime, d.AMR
	}
	s.refresh[rt] = grant
	return id, rt, exp, nil
}

func (s *storage) newAccessLocked(req op.TokenRequest, clientID string) (string, time.Time) {
	id := randomID()
	exp := time.Now().Add(s.lifetime)
	s.access[id] = &accessToken{
		clientID: clientID, subject: req.GetSubject(),
		scopes: slices.Clone(req.GetScopes()), audience: slices.Clone(req.GetAudience()), expires: exp,
	}
	s.stats.AccessTokens++
	return id, exp
}

// clientOf is the client a token request is for.
func clientOf(req op.TokenRequest) string {
	switch r := req.(type) {
	case *op.DeviceAuthorizationState:
		return r.ClientID
	case op.RefreshTokenRequest:
		return r.GetClientID()
	}
	return ""
}

func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.refresh[token]
	if !ok {
		return nil, errors.New("unknown, used or revoked refresh token")
	}
	return &refreshRequest{grant: *g}, nil
}

func (s *storage) GetRefreshTokenInfo(_ context.Context, clientID, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.refresh[token]
	if !ok || g.clientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return g.subject, token, nil
}

func (s *storage) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.access[tokenOrID]; ok && t.clientID == clientID {
		delete(s.access, tokenOrID)
	}
	if g, ok := s.refresh[tokenOrID]; ok && g.clientID == clientID {
		delete(s.refresh, tokenOrID)
	}
	return nil
}

// expireAccessTokens makes every access token issued so far expired, as
// if their lifetime had passed; refresh tokens stay valid.
func (s *storage) expireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := time.Now().Add(-time.Second)
	for _, t := range s.access {
		t.expires = past
	}
}

// revokeRefreshTokens forgets every refresh token: their next use gets
// invalid_grant.
func (s *storage) revokeRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.refresh)
}

func (s *storage) snapshot() stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// --- clients and introspection (op.OPStorage) ---

func (s *storage) GetClientByClientID(_ context.Context, clientID string) (op.Client, error) {
	c, ok := s.clients[clientID]
	if !ok {
		return nil, fmt.Errorf("unknown client %q", clientID)
	}
	return c, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, clientID, secret string) error {
	c, ok := s.clients[clientID]
	if !ok || c.secret == "" || c.secret != secret {
		return errors.New("unknown client or wrong secret")
	}
	return nil
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, introspector string) error {
	if c, ok := s.clients[introspector]; !ok || !c.resourceServer {
		return errors.New("only a resource server may introspect")
	}
	s.mu.Lock()
	t, ok := s.access[tokenID]
	var tok accessToken
	if ok {
		tok = *t
	}
	s.mu.Unlock()
	switch {
	case !ok:
		return errors.New("unknown token")
	case tok.subject != subject:
		return errors.New("subject mismatch")
	case !time.Now().Before(tok.expires):
		return errors.New("token expired")
	}
	resp.Subject = tok.subject
	resp.ClientID = tok.clientID
	resp.Scope = tok.scopes
	resp.Audience = tok.audience
	resp.Expiration = oidc.FromTime(tok.expires)
	return nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.access[tokenID]
	if !ok || t.subject != subject || !time.Now().Before(t.expires) {
		return errors.New("token not active")
	}
	info.Subject = subject
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotHere
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errNotHere
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{&publicKey{s.key}}, nil
}

func (s *storage) Health(context.Context) error { return nil }

// --- the browser login, which these tests do not use ---

func (s *storage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, errNotHere
}
func (s *storage) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotHere
}
func (s *storage) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotHere
}
func (s *storage) SaveAuthCode(context.Context, string, string) error     { return errNotHere }
func (s *storage) DeleteAuthRequest(context.Context, string) error        { return errNotHere }
func (s *storage) TerminateSession(context.Context, string, string) error { return errNotHere }

// refreshRequest is a refresh token's grant as the provider asks for it.
type refreshRequest struct{ grant refreshToken }

func (r *refreshRequest) GetAMR() []string            { return r.grant.amr }
func (r *refreshRequest) GetAudience() []string       { return r.grant.audience }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.grant.authTime }
func (r *refreshRequest) GetClientID() string         { return r.grant.clientID }
func (r *refreshRequest) GetScopes() []string         { return r.grant.scopes }
func (r *refreshRequest) GetSubject() string          { return r.grant.subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.grant.scopes = s }

// signingKey is the provider's RSA key, which signs nothing these tests
// ask for (access tokens are opaque) but which discovery publishes.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ k *signingKey }

func (p *publicKey) ID() string                         { return p.k.id }
func (p *publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p *publicKey) Use() string                        { return "sig" }
func (p *publicKey) Key() any                           { return &p.k.key.PublicKey }
