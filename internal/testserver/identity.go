package testserver

// The IdentityService of both generations, modelled on their servers:
// FlyteAdmin's UserInfo (flyteadmin/auth: user_info_provider.go,
// authzserver/claims_verifier.go, identity_context.go) and Flyte 2's
// (runs/service: identity_service.go, identity.go). The request and answer
// messages are the same in both, so one pair (internal/userinfopb) serves
// both paths.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/flyteauth/grpcauth/internal/userinfopb"
)

// Method paths of UserInfo on each generation.
const (
	Flyte1UserInfoMethod = "/flyteidl.service.IdentityService/UserInfo"
	Flyte2UserInfoMethod = "/flyteidl2.auth.IdentityService/UserInfo"
)

// Flyte2NoIdentity is the message of Flyte 2's Unauthenticated answer
// when it finds no identity on the request.
const Flyte2NoIdentity = "no authenticated identity on request (missing or untrusted identity headers)"

// The headers Flyte 2 reads the caller from by default (AWS ALB's).
const (
	flyte2ClaimsJWTHeader = "X-Amzn-Oidc-Data"
	flyte2SubjectHeader   = "X-Amzn-Oidc-Identity"
)

var identityServiceDesc = grpc.ServiceDesc{
	ServiceName: "flyteidl.service.IdentityService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "UserInfo", Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(userinfopb.UserInfoRequest)
		if err := dec(in); err != nil {
			return nil, err
		}
		handle := func(ctx context.Context, _ any) (any, error) { return srv.(*AdminServer).userInfo(ctx) }
		if interceptor == nil {
			return handle(ctx, in)
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: Flyte1UserInfoMethod}, handle)
	}}},
	Metadata: "flyteidl/service/identity.proto",
}

// WithBlanketAuthorization adds FlyteAdmin's BlanketAuthorization, the
// unary interceptor of every FlyteAdmin with auth on: a call whose token
// validated is refused with Unauthenticated "authenticated user doesn't
// have required scope" unless the token carries the scope "all" (which
// FlyteAdmin grants a user's token that names no client and no scope).
// Calls without a valid token pass it (the auth check, before it, decides
// about those), as do streams.
func WithBlanketAuthorization() AdminOption {
	return func(c *adminConfig) error { c.blanket = true; return nil }
}

// blanketAuthorization is FlyteAdmin's auth.BlanketAuthorization.
func (s *AdminServer) blanketAuthorization(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get(s.headerKey)
	if s.validator == nil || len(v) != 1 || !hasBearerPrefix(v[0]) {
		return handler(ctx, req)
	}
	info, err := s.validator.Validate(ctx, strings.TrimSpace(v[0][len(bearerPrefix):]))
	if err != nil || slices.Contains(info.Scopes, "all") || (info.ClientID == "" && len(info.Scopes) == 0) {
		return handler(ctx, req)
	}
	s.rejected.Add(1)
	return nil, status.Error(codes.Unauthenticated, "authenticated user doesn't have required scope")
}

// userInfo answers as FlyteAdmin does: the call passes its auth
// interceptor like any other, then the answer is built from the claims of
// a token that validated: the "user_info" claim's fields, "email", the
// subject, and every claim as additional_claims; with validation off and a
// token that does not validate, the answer is empty. FlyteAdmin only takes
// JWTs; for one of the TokenServer's opaque tokens the fake stands in the
// claims a JWT of that token would carry (sub and client_id the client,
// scp, aud). A fake without a validator takes any token as valid.
// FlyteAdmin's scope check is WithBlanketAuthorization's.
func (s *AdminServer) userInfo(ctx context.Context) (*userinfopb.UserInfoResponse, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	md, _ := metadata.FromIncomingContext(ctx)
	var token string
	if v := md.Get(s.headerKey); len(v) == 1 && hasBearerPrefix(v[0]) {
		token = strings.TrimSpace(v[0][len(bearerPrefix):])
	}
	var claims map[string]any
	switch {
	case token == "":
	case s.validator == nil:
		claims = jwtClaims(token)
	default:
		if info, err := s.validator.Validate(ctx, token); err == nil {
			if claims = jwtClaims(token); claims == nil {
				claims = map[string]any{"sub": info.ClientID, "client_id": info.ClientID, "scp": toAny(info.Scopes), "aud": info.Audience}
			}
		}
	}
	out := &userinfopb.UserInfoResponse{}
	if raw, ok := claims["user_info"].(map[string]any); ok {
		b, _ := json.Marshal(raw)
		var ui struct {
			Subject           string `json:"subject"`
			Name              string `json:"name"`
			PreferredUsername string `json:"preferred_username"`
			GivenName         string `json:"given_name"`
			FamilyName        string `json:"family_name"`
			Email             string `json:"email"`
			Picture           string `json:"picture"`
		}
		_ = json.Unmarshal(b, &ui)
		out = &userinfopb.UserInfoResponse{Subject: ui.Subject, Name: ui.Name, PreferredUsername: ui.PreferredUsername,
			GivenName: ui.GivenName, FamilyName: ui.FamilyName, Email: ui.Email, Picture: ui.Picture}
	}
	if email, ok := claims["email"].(string); ok {
		out.Email = email
	}
	if out.Subject == "" {
		out.Subject, _ = claims["sub"].(string)
	}
	if len(claims) > 0 {
		st, err := structpb.NewStruct(claims)
		if err == nil {
			out.AdditionalClaims = st
		}
	}
	return out, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// SetTrustIdentityHeaders sets Flyte 2's trustForwardedIdentityHeaders
// (default true): when false, UserInfo answers Unauthenticated to every
// caller, as Flyte 2 does.
func (s *ConnectServer) SetTrustIdentityHeaders(on bool) { s.distrustIdentity.Store(!on) }

// flyte2UserInfo answers as Flyte 2's runs service does. The fake's
// ingress checks the token as for any call; the service itself then reads
// the caller from the ALB headers, else from the claims of a JWT bearer
// token in Authorization (sub, email, given_name, family_name), and
// answers Unauthenticated when it finds none or does not trust the
// headers. (Flyte 2 also asks the identity provider's userinfo endpoint
// when one is configured; the fake has none.)
func (s *ConnectServer) flyte2UserInfo(ctx context.Context, req *connect.Request[userinfopb.UserInfoRequest]) (*connect.Response[userinfopb.UserInfoResponse], error) {
	if err := s.authorize(ctx, req.Header()); err != nil {
		return nil, err
	}
	noIdentity := connect.NewError(connect.CodeUnauthenticated, errors.New(Flyte2NoIdentity))
	if s.distrustIdentity.Load() {
		return nil, noIdentity
	}
	c := flyte2Caller(req.Header())
	if c == nil {
		return nil, noIdentity
	}
	return connect.NewResponse(&userinfopb.UserInfoResponse{
		Subject:    c.Sub,
		Name:       strings.TrimSpace(c.GivenName + " " + c.FamilyName),
		GivenName:  c.GivenName,
		FamilyName: c.FamilyName,
		Email:      c.Email,
	}), nil
}

// flyte2Claims are the claims Flyte 2 reads of a caller's JWT; a claim
// of another type makes the JWT name nobody, as in Flyte 2.
type flyte2Claims struct {
	Sub        string `json:"sub"`
	Email      string `json:"email"`
	GivenName  string `json:"given_name"`
	FamilyName string `json:"family_name"`
}

// flyte2Caller is the caller as Flyte 2 finds it in h: the ALB claims
// JWT, else the ALB subject header, else the bearer JWT; nil for nobody.
func flyte2Caller(h http.Header) *flyte2Claims {
	fromJWT := func(token string) *flyte2Claims {
		payload := jwtPayload(token)
		var c flyte2Claims
		if payload == nil || json.Unmarshal(payload, &c) != nil || c.Sub == "" {
			return nil
		}
		return &c
	}
	if c := fromJWT(h.Get(flyte2ClaimsJWTHeader)); c != nil {
		return c
	}
	if sub := strings.TrimSpace(h.Get(flyte2SubjectHeader)); sub != "" {
		return &flyte2Claims{Sub: sub}
	}
	if v := h.Get("Authorization"); hasBearerPrefix(v) {
		return fromJWT(strings.TrimSpace(v[len(bearerPrefix):]))
	}
	return nil
}

// jwtPayload is the decoded payload of a JWT, read without verifying it,
// as both servers do behind the component that verified it; nil for
// anything else. Padded and unpadded base64url are both read, as Flyte 2
// does.
func jwtPayload(token string) []byte {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		if payload, err = base64.URLEncoding.DecodeString(parts[1]); err != nil {
			return nil
		}
	}
	return payload
}

// jwtClaims are a JWT's claims, read without verifying it; nil for
// anything else.
func jwtClaims(token string) map[string]any {
	var claims map[string]any
	if payload := jwtPayload(token); payload == nil || json.Unmarshal(payload, &claims) != nil {
		return nil
	}
	return claims
}
