package flyteconfig_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyteauth/grpcauth/flyteconfig"
)

// apiKey encodes an API key as flyte-sdk's tests build one.
func apiKey(endpoint, clientID, secret, org string) string {
	return base64.StdEncoding.EncodeToString([]byte(endpoint + ":" + clientID + ":" + secret + ":" + org))
}

const keySecret = "k3y-S3cr3t-xyzzy"

func TestAPIKeyGivesEndpointAndClientCredentials(t *testing.T) {
	key := apiKey("tenant.flyte.example", "app-id", keySecret, "tenant")
	l, err := loadIsolated(t, flyteconfig.Options{LookupEnv: env{"FLYTE_API_KEY": key}.lookup})
	require.NoError(t, err)
	c := l.Config
	assert.Equal(t, "tenant.flyte.example", c.Endpoint)
	assert.False(t, c.Insecure)
	assert.Equal(t, "app-id", c.ClientID)
	assert.Equal(t, keySecret, c.ClientSecret)
	assert.Equal(t, "ClientSecret", c.AuthType)
	assert.Equal(t, "tenant", l.Org)
	for _, k := range []string{"endpoint", "clientId", "clientSecret", "authType"} {
		assert.Equal(t, "env FLYTE_API_KEY", l.Source(k), k)
	}
	mode, err := c.AuthMode()
	require.NoError(t, err)
	assert.Equal(t, "ClientSecret", mode)

	// Neither the key nor its secret shows in what can be printed.
	b, err := json.Marshal(l)
	require.NoError(t, err)
	for _, text := range []string{fmt.Sprintf("%v %+v %#v %s", l, l, l, l), string(b), l.SecretSource()} {
		assert.NotContains(t, text, keySecret)
		assert.NotContains(t, text, key)
	}
}

func TestAPIKeyVariablesAndTheirOrder(t *testing.T) {
	user := apiKey("user.example", "user-app", keySecret, "None")
	eager := apiKey("eager.example", "eager-app", keySecret, "")
	mounted := apiKey("mounted.example", "mounted-app", keySecret, "org")
	tests := []struct {
		name     string
		env      env
		endpoint string
		source   string
	}{
		{"FLYTE_API_KEY", env{"FLYTE_API_KEY": user}, "user.example", "env FLYTE_API_KEY"},
		{"in a task pod", env{"_UNION_EAGER_API_KEY": eager}, "eager.example", "env _UNION_EAGER_API_KEY"},
		{"mounted as a secret", env{"EAGER_API_KEY": mounted}, "mounted.example", "env EAGER_API_KEY"},
		{"the user's key first", env{"FLYTE_API_KEY": user, "_UNION_EAGER_API_KEY": eager, "EAGER_API_KEY": mounted}, "user.example", "env FLYTE_API_KEY"},
		{"then the pod's", env{"_UNION_EAGER_API_KEY": eager, "EAGER_API_KEY": mounted}, "eager.example", "env _UNION_EAGER_API_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := loadIsolated(t, flyteconfig.Options{LookupEnv: tt.env.lookup})
			require.NoError(t, err)
			assert.Equal(t, tt.endpoint, l.Config.Endpoint)
			assert.Equal(t, tt.source, l.Source("clientId"))
		})
	}
	l, err := loadIsolated(t, flyteconfig.Options{LookupEnv: env{"FLYTE_API_KEY": user}.lookup})
	require.NoError(t, err)
	assert.Empty(t, l.Org, `an org of "None" is no org`)
}

// flyte-sdk's decoder splits at the first three colons, so an endpoint
// with a scheme or a port came out as "dns" or "https"; these keys keep it.
func TestAPIKeyWithAnEndpointURLOrPort(t *testing.T) {
	tests := []struct {
		endpoint, want string
		insecure       bool
	}{
		{"dns:///flyte.example:443", "dns:///flyte.example:443", false},
		{"https://flyte.example", "flyte.example", false},
		{"http://localhost:8090", "localhost:8090", true},
		{"flyte.example:8443", "flyte.example:8443", false},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			l, err := loadIsolated(t, flyteconfig.Options{LookupEnv: env{"FLYTE_API_KEY": apiKey(tt.endpoint, "id", keySecret, "org")}.lookup})
			require.NoError(t, err)
			assert.Equal(t, tt.want, l.Config.Endpoint)
			assert.Equal(t, tt.insecure, l.Config.Insecure)
			assert.Equal(t, "id", l.Config.ClientID)
			assert.Equal(t, keySecret, l.Config.ClientSecret)
			assert.Equal(t, "org", l.Org)
		})
	}
}

// A secret with a colon splits as flyte-sdk splits it: part of it may end
// in the org, never in the endpoint, which errors and grpcauth config
// print.
func TestAPIKeyWithAColonInTheSecret(t *testing.T) {
	l, err := loadIsolated(t, flyteconfig.Options{LookupEnv: env{"FLYTE_API_KEY": apiKey("flyte.example", "id", "se:cret", "org")}.lookup})
	require.NoError(t, err)
	assert.Equal(t, "flyte.example", l.Config.Endpoint)
	assert.Equal(t, "id", l.Config.ClientID)
	assert.NotContains(t, l.Config.Endpoint, "cret")
}

func TestMalformedAPIKeyIsAClearErrorWithoutTheKey(t *testing.T) {
	tests := []struct {
		name, key, want string
	}{
		{"not base64", "!!" + keySecret + "!!", "not base64"},
		{"three fields", base64.StdEncoding.EncodeToString([]byte("flyte.example:id:" + keySecret)), "got 3 of those 4 fields"},
		{"no secret", apiKey("flyte.example", "id", "", "org"), "client secret is empty"},
		{"no client id", apiKey("flyte.example", "", keySecret, "org"), "client id is empty"},
		{"no endpoint", apiKey("", "id", keySecret, "org"), "endpoint is empty"},
		{"an endpoint with a path", apiKey("https://flyte.example/api", "id", keySecret, "org"), "without path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadIsolated(t, flyteconfig.Options{LookupEnv: env{"FLYTE_API_KEY": tt.key}.lookup})
			require.Error(t, err)
			var ce *flyteconfig.Error
			require.True(t, errors.As(err, &ce))
			assert.Equal(t, "env FLYTE_API_KEY", ce.Source)
			assert.Contains(t, err.Error(), tt.want)
			text := fmt.Sprintf("%v %+v %#v", err, err, err)
			assert.NotContains(t, text, keySecret)
			assert.NotContains(t, text, tt.key)
		})
	}
}

func TestFlyteSDKEnvironmentNames(t *testing.T) {
	e := env{
		"FLYTE_ADMIN_ENDPOINT":             "dns:///sdk.example:443",
		"FLYTE_ADMIN_INSECURESKIPVERIFY":   "true",
		"FLYTE_ADMIN_CACERTFILEPATH":       "/etc/ca.pem",
		"FLYTE_ADMIN_HTTPPROXYURL":         "http://proxy.example:3128",
		"FLYTE_CONSOLE_ENDPOINT":           "https://console.example",
		"FLYTE_ADMIN_CLIENTID":             "sdk-app",
		"FLYTE_ADMIN_CLIENTSECRETLOCATION": "/etc/secret",
		"FLYTE_ADMIN_SCOPES":               "all,offline",
		"FLYTE_ADMIN_AUTHTYPE":             "ClientSecret",
		"FLYTE_ADMIN_PROXYCOMMAND":         "iap-token,--audience,flyte",
	}
	l, err := loadIsolated(t, flyteconfig.Options{LookupEnv: e.lookup})
	require.NoError(t, err)
	c := l.Config
	assert.Equal(t, "dns:///sdk.example:443", c.Endpoint)
	assert.True(t, c.InsecureSkipVerify)
	assert.Equal(t, "/etc/ca.pem", c.CACertFilePath)
	assert.Equal(t, "http://proxy.example:3128", c.HTTPProxyURL)
	assert.Equal(t, "sdk-app", c.ClientID)
	assert.Equal(t, "/etc/secret", c.ClientSecretLocation)
	assert.Equal(t, []string{"all", "offline"}, c.Scopes)
	assert.Equal(t, "ClientSecret", c.AuthType)
	assert.Equal(t, []string{"iap-token", "--audience", "flyte"}, c.ProxyCommand)
	assert.Equal(t, "env FLYTE_ADMIN_CLIENTID", l.Source("clientId"))
	assert.Empty(t, l.Warnings())

	// flytekit's name wins where both set a key, and says so.
	e["FLYTE_PLATFORM_URL"] = "kit.example:443"
	e["FLYTE_CREDENTIALS_CLIENT_ID"] = "sdk-app" // the same value: no warning
	l, err = loadIsolated(t, flyteconfig.Options{LookupEnv: e.lookup})
	require.NoError(t, err)
	assert.Equal(t, "kit.example:443", l.Config.Endpoint)
	assert.Equal(t, "env FLYTE_PLATFORM_URL", l.Source("endpoint"))
	assert.Equal(t, []string{"FLYTE_PLATFORM_URL and FLYTE_ADMIN_ENDPOINT are both set, differently: FLYTE_PLATFORM_URL (flytekit's name) wins"}, l.Warnings())

	// The names override the API key's parts.
	e = env{"FLYTE_API_KEY": apiKey("key.example", "key-app", keySecret, "org"), "FLYTE_ADMIN_ENDPOINT": "override.example:443"}
	l, err = loadIsolated(t, flyteconfig.Options{LookupEnv: e.lookup})
	require.NoError(t, err)
	assert.Equal(t, "override.example:443", l.Config.Endpoint)
	assert.Equal(t, "key-app", l.Config.ClientID)
}

// A task's pod carries _U_* overrides (flyte-sdk's init_in_cluster): they
// win over everything else.
func TestInClusterOverrides(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "config.yaml", "admin:\n  endpoint: dns:///file.example:443\n  insecure: false\n")
	e := env{
		"FLYTE_PLATFORM_URL":      "kit.example:443",
		"_U_EP_OVERRIDE":          "flyte-binary.flyte.svc:8090",
		"_U_INSECURE":             "true",
		"_U_INSECURE_SKIP_VERIFY": "true",
		"_U_ORG_NAME":             "tenant",
	}
	l, err := loadIsolated(t, flyteconfig.Options{File: file, LookupEnv: e.lookup})
	require.NoError(t, err)
	assert.Equal(t, "flyte-binary.flyte.svc:8090", l.Config.Endpoint)
	assert.True(t, l.Config.Insecure)
	assert.True(t, l.Config.InsecureSkipVerify)
	assert.Equal(t, "tenant", l.Org)
	assert.Equal(t, "env _U_EP_OVERRIDE", l.Source("endpoint"))
}

func TestEndpointForms(t *testing.T) {
	tests := []struct {
		in, want string
		insecure bool
		wantErr  string
	}{
		{in: "dns:///flyte.example:443", want: "dns:///flyte.example:443"},
		{in: "flyte.example:443", want: "flyte.example:443"},
		{in: "flyte.example", want: "flyte.example"},
		{in: "https://flyte.example", want: "flyte.example"},
		{in: "https://flyte.example:8443/", want: "flyte.example:8443"},
		{in: "HTTP://localhost:8090", want: "localhost:8090", insecure: true},
		{in: "https://flyte.example/console", wantErr: "without path"},
		{in: "https://user:pw@flyte.example", wantErr: "without path, query or user"},
		{in: "ftp://flyte.example", wantErr: "want host:port, dns:///host:port, http://host:port or https://host"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			dir := t.TempDir()
			file := writeFile(t, dir, "config.yaml", "admin:\n  endpoint: "+tt.in+"\n  insecure: true\n")
			l, err := loadIsolated(t, flyteconfig.Options{File: file})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.NotContains(t, err.Error(), "user:pw", "no credentials of a URL in the error")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, l.Config.Endpoint)
			target, err := l.Config.Target()
			require.NoError(t, err, "the root package takes what the loader gives")
			assert.Equal(t, tt.want, target)
			switch {
			case tt.insecure:
				assert.True(t, l.Config.Insecure)
				assert.Equal(t, "the scheme of the endpoint ("+file+")", l.Source("insecure"))
			case tt.want != tt.in && tt.in[:5] == "https":
				assert.False(t, l.Config.Insecure, "https:// means TLS, whatever insecure said")
			default:
				assert.True(t, l.Config.Insecure, "without a scheme, insecure decides")
			}

			// The same from the environment and from Set.
			l, err = loadIsolated(t, flyteconfig.Options{LookupEnv: env{"FLYTE_ADMIN_ENDPOINT": tt.in}.lookup})
			require.NoError(t, err)
			assert.Equal(t, tt.want, l.Config.Endpoint)
			require.NoError(t, l.Set("endpoint", tt.in, "flag --endpoint"))
			assert.Equal(t, tt.want, l.Config.Endpoint)
		})
	}
}

// The file search is flyte-sdk's: ./config.yaml, ./.flyte/config.yaml,
// <git root>/.flyte/config.yaml, UCTL_CONFIG, FLYTECTL_CONFIG,
// ~/.union/config.yaml, ~/.flyte/config.yaml; the first that exists is read.
func TestConfigFileSearchOrder(t *testing.T) {
	cfgFor := func(name string) string { return "admin:\n  endpoint: " + name + ":443\n" }
	type files struct{ cwd, dotFlyte, gitRoot, uctl, flytectl, union, home bool }
	all := files{true, true, true, true, true, true, true}
	tests := []struct {
		name string
		have files
		want string
	}{
		{"./config.yaml first", all, "cwd"},
		{"then ./.flyte/config.yaml", files{dotFlyte: true, gitRoot: true, uctl: true, flytectl: true, union: true, home: true}, "dotflyte"},
		{"then the git root's .flyte/config.yaml", files{gitRoot: true, uctl: true, flytectl: true, union: true, home: true}, "gitroot"},
		{"then UCTL_CONFIG", files{uctl: true, flytectl: true, union: true, home: true}, "uctl"},
		{"then FLYTECTL_CONFIG", files{flytectl: true, union: true, home: true}, "flytectl"},
		{"then ~/.union/config.yaml", files{union: true, home: true}, "union"},
		{"then ~/.flyte/config.yaml", files{home: true}, "home"},
		{"none", files{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, home, elsewhere := t.TempDir(), t.TempDir(), t.TempDir()
			require.NoError(t, os.Mkdir(filepath.Join(repo, ".git"), 0o755))
			cwd := filepath.Join(repo, "src", "project")
			require.NoError(t, os.MkdirAll(cwd, 0o755))
			e := env{}
			if tt.have.cwd {
				writeFile(t, cwd, "config.yaml", cfgFor("cwd"))
			}
			if tt.have.dotFlyte {
				writeFile(t, cwd, ".flyte/config.yaml", cfgFor("dotflyte"))
			}
			if tt.have.gitRoot {
				writeFile(t, repo, ".flyte/config.yaml", cfgFor("gitroot"))
			}
			if tt.have.uctl {
				e["UCTL_CONFIG"] = writeFile(t, elsewhere, "uctl.yaml", cfgFor("uctl"))
			}
			if tt.have.flytectl {
				e["FLYTECTL_CONFIG"] = writeFile(t, elsewhere, "flytectl.yaml", cfgFor("flytectl"))
			}
			if tt.have.union {
				writeFile(t, home, ".union/config.yaml", cfgFor("union"))
			}
			if tt.have.home {
				writeFile(t, home, ".flyte/config.yaml", cfgFor("home"))
			}
			l, err := flyteconfig.Load(flyteconfig.Options{Dir: cwd, HomeDir: home, LookupEnv: e.lookup})
			require.NoError(t, err)
			if tt.want == "" {
				assert.Empty(t, l.File)
				assert.Empty(t, l.Config.Endpoint)
				return
			}
			assert.Equal(t, tt.want+":443", l.Config.Endpoint)
			assert.Equal(t, l.File, l.Source("endpoint"))
		})
	}
}

// A file found before the variables that name one is read, and a warning
// says that the named file was not.
func TestConfigFileFoundBeforeFLYTECTL_CONFIGSaysSo(t *testing.T) {
	cwd := t.TempDir()
	local := writeFile(t, cwd, ".flyte/config.yaml", "admin:\n  endpoint: local:443\n")
	named := writeFile(t, t.TempDir(), "flytectl.yaml", "admin:\n  endpoint: named:443\n")
	l, err := flyteconfig.Load(flyteconfig.Options{Dir: cwd, HomeDir: t.TempDir(), LookupEnv: env{"FLYTECTL_CONFIG": named}.lookup})
	require.NoError(t, err)
	assert.Equal(t, local, l.File)
	assert.Equal(t, []string{"FLYTECTL_CONFIG names " + named + ", but " + local + " comes first in the search and was read instead"}, l.Warnings())

	// A named file that is missing is still an error when it is reached.
	_, err = flyteconfig.Load(flyteconfig.Options{Dir: t.TempDir(), HomeDir: t.TempDir(), LookupEnv: env{"UCTL_CONFIG": "/no/such/uctl.yaml"}.lookup})
	require.ErrorContains(t, err, "/no/such/uctl.yaml: cannot read the config file named by UCTL_CONFIG")
}
