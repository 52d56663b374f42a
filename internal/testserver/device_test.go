package testserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/internal/testserver"
)

const deviceClient = "cli"

func newDeviceServer(t *testing.T, opts ...testserver.DeviceOption) *testserver.DeviceServer {
	t.Helper()
	s, err := testserver.NewDeviceServer(append([]testserver.DeviceOption{testserver.WithDeviceClient(deviceClient)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// devicePost sends form to u and decodes the JSON answer.
func devicePost(t *testing.T, s *testserver.DeviceServer, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := s.HTTPClient().PostForm(u, form)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func TestDeviceServerGrant(t *testing.T) {
	clock := testserver.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s := newDeviceServer(t, testserver.WithDeviceClock(clock.Now), testserver.WithDeviceCodeLifetime(time.Minute))

	status, da := devicePost(t, s, s.DeviceAuthorizationURL(), url.Values{"client_id": {deviceClient}, "scope": {"a b"}, "audience": {"aud"}})
	require.Equal(t, http.StatusOK, status)
	userCode := da["user_code"].(string)
	assert.Regexp(t, `^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`, userCode)
	assert.Equal(t, s.VerificationURL()+"?user_code="+userCode, da["verification_uri_complete"])
	assert.EqualValues(t, 60, da["expires_in"])
	assert.EqualValues(t, 5, da["interval"])
	assert.Equal(t, []string{userCode}, s.UserCodes())
	assert.Equal(t, "aud", s.LastAuthorizationRequest().Form.Get("audience"))

	poll := url.Values{"client_id": {deviceClient}, "grant_type": {testserver.DeviceCodeGrantType}, "device_code": {da["device_code"].(string)}}
	status, ans := devicePost(t, s, s.TokenURL(), poll)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "authorization_pending", ans["error"])

	s.SlowDown(1)
	_, ans = devicePost(t, s, s.TokenURL(), poll)
	assert.Equal(t, "slow_down", ans["error"])

	require.NoError(t, s.Approve(userCode))
	require.Error(t, s.Approve("NOPE-NOPE"))
	clock.Advance(10 * time.Second)
	status, tok := devicePost(t, s, s.TokenURL(), poll)
	require.Equal(t, http.StatusOK, status)
	access := tok["access_token"].(string)
	info, err := s.Validate(context.Background(), access)
	require.NoError(t, err)
	assert.Equal(t, testserver.TokenInfo{ClientID: deviceClient, Scopes: []string{"a", "b"}, Audience: "aud", ExpiresAt: clock.Now().Add(time.Hour)}, info)

	_, ans = devicePost(t, s, s.TokenURL(), poll)
	assert.Equal(t, "invalid_grant", ans["error"], "a device code yields one token")

	polls := s.Polls()
	require.Len(t, polls, 4)
	assert.Equal(t, []string{"authorization_pending", "slow_down", "token", "invalid_grant"},
		[]string{polls[0].Answer, polls[1].Answer, polls[2].Answer, polls[3].Answer})
	assert.Equal(t, 10*time.Second, polls[2].At.Sub(polls[1].At), "polls are stamped by the server's clock")

	refresh := url.Values{"client_id": {deviceClient}, "grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}}
	status, again := devicePost(t, s, s.TokenURL(), refresh)
	require.Equal(t, http.StatusOK, status)
	assert.NotEqual(t, access, again["access_token"])
	_, ans = devicePost(t, s, s.TokenURL(), refresh)
	assert.Equal(t, "invalid_grant", ans["error"], "refresh tokens rotate")
	assert.Equal(t, int64(1), s.Refreshes())
	assert.Equal(t, int64(2), s.Issued())

	s.RevokeRefreshTokens()
	refresh.Set("refresh_token", again["refresh_token"].(string))
	_, ans = devicePost(t, s, s.TokenURL(), refresh)
	assert.Equal(t, "invalid_grant", ans["error"])

	clock.Advance(2 * time.Hour)
	_, err = s.Validate(context.Background(), access)
	assert.ErrorIs(t, err, testserver.ErrTokenInvalid)
}

func TestDeviceServerRefusals(t *testing.T) {
	s := newDeviceServer(t, testserver.WithDeviceInterval(0))
	status, ans := devicePost(t, s, s.DeviceAuthorizationURL(), url.Values{"client_id": {"stranger"}})
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, "invalid_client", ans["error"])

	status, ans = devicePost(t, s, s.DeviceAuthorizationURL(), url.Values{"client_id": {deviceClient}, "client_secret": {"x"}})
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "invalid_request", ans["error"])

	_, da := devicePost(t, s, s.DeviceAuthorizationURL(), url.Values{"client_id": {deviceClient}})
	assert.NotContains(t, da, "interval", "WithDeviceInterval(0) leaves interval out")

	require.NoError(t, s.Deny(da["user_code"].(string)))
	_, ans = devicePost(t, s, s.TokenURL(), url.Values{"client_id": {deviceClient}, "grant_type": {testserver.DeviceCodeGrantType}, "device_code": {da["device_code"].(string)}})
	assert.Equal(t, "access_denied", ans["error"])

	_, ans = devicePost(t, s, s.TokenURL(), url.Values{"client_id": {deviceClient}, "grant_type": {"password"}})
	assert.Equal(t, "unsupported_grant_type", ans["error"])

	resp, err := s.HTTPClient().Get(s.TokenURL())
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	for name, opt := range map[string]testserver.DeviceOption{
		"client":   testserver.WithDeviceClient(""),
		"interval": testserver.WithDeviceInterval(1500 * time.Millisecond),
		"life":     testserver.WithDeviceCodeLifetime(0),
		"token":    testserver.WithDeviceTokenLifetime(-1),
		"clock":    testserver.WithDeviceClock(nil),
	} {
		_, err := testserver.NewDeviceServer(opt)
		assert.Error(t, err, name)
	}
	assert.True(t, strings.HasSuffix(s.TokenURL(), testserver.DeviceTokenPath))
}
