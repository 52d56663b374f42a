package flyteconfig_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/flyteauth/grpcauth/flyteconfig"
)

// ExampleLoad loads a Flyte config file, lets an environment
// variable override it, and shows where each value came from.
func ExampleLoad() {
	dir, err := os.MkdirTemp("", "grpcauth-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "config.yaml")
	err = os.WriteFile(path, []byte(`
admin:
  endpoint: dns:///flyte.example.com:443
  authType: ClientSecret
  clientId: my-client
  clientSecretLocation: /etc/secrets/my_secret
  scopes: [all]
logger:
  level: 4
`), 0o600)
	if err != nil {
		log.Fatal(err)
	}
	environment := map[string]string{
		"FLYTECTL_CONFIG":                 path,
		"FLYTE_CREDENTIALS_CLIENT_SECRET": "not-printed",
	}
	cfg, err := flyteconfig.Load(flyteconfig.Options{
		LookupEnv: func(name string) (string, bool) {
			v, ok := environment[name]
			return v, ok
		},
		HomeDir: dir,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range cfg.Settings() {
		if s.Source == "default" {
			continue
		}
		source := s.Source
		if source == cfg.File {
			source = "config.yaml"
		}
		fmt.Printf("%-21s %-30s %s\n", s.Key, s.Value, source)
	}
	// Output:
	// endpoint              dns:///flyte.example.com:443   config.yaml
	// authType              ClientSecret                   config.yaml
	// clientId              my-client                      config.yaml
	// clientSecretLocation  /etc/secrets/my_secret         config.yaml
	// scopes                all                            config.yaml
	// clientSecret          [REDACTED]                     env FLYTE_CREDENTIALS_CLIENT_SECRET
}
