package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flyteauth/grpcauth"
	"github.com/flyteauth/grpcauth/configstore"
	"github.com/flyteauth/grpcauth/internal/redact"
	"github.com/flyteauth/grpcauth/internal/storeview"
)

const configSummary = `Usage: grpcauth config [flags]

Prints the configuration that 'grpcauth token' would use, and where each
value came from: the config file (--config, else the first found of
./config.yaml, ./.flyte/config.yaml, <git root>/.flyte/config.yaml,
$UCTL_CONFIG, $FLYTECTL_CONFIG, ~/.union/config.yaml, ~/.flyte/config.yaml),
an API key ($FLYTE_API_KEY), an environment variable, a flag, or the default.
The client secret is shown as [REDACTED], and URLs without their user
information and query. Warnings (unknown keys with the closest known one,
keys the chosen flow does not read, flows not supported yet) go to stderr;
they do not change the exit status.

Unless --offline is given, it then asks the endpoint which generation of
Flyte answers: Flyte 2 (flyteidl2.auth.AuthMetadataService) or Flyte 1
(flyteidl.service.AuthMetadataService), the way every other command finds
out by itself. Those two RPCs are anonymous: no token is requested.`

func runConfig(ctx context.Context, args []string, stdout, stderr io.Writer, env environment) int {
	fs := newFlagSet("config", configSummary, stderr)
	var cf configFlags
	cf.register(fs)
	offline := fs.Bool("offline", false, "do not ask the endpoint which generation of Flyte it runs")
	timeout := fs.Duration("timeout", 10*time.Second, "give up asking the endpoint after this `duration`")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	cfg, err := cf.load(fs, env)
	if err != nil {
		sayErr(stderr, "config", err)
		return exitFail
	}
	file := cfg.File
	if file == "" {
		file = "none"
	}
	fmt.Fprintf(stdout, "config file: %s\n\n", file)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE")
	for _, s := range cfg.Settings() {
		value := s.Value
		if value == "" {
			value = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Key, value, s.Source)
	}
	if err := tw.Flush(); err != nil {
		sayErr(stderr, "config", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "\nauthentication: %s\n", describeFlow(cfg.Config))
	switch flow, err := cfg.Config.AuthMode(); {
	case err == nil && flow == grpcauth.AuthTypeClientSecret:
		fmt.Fprintf(stdout, "client secret read from: %s\n", cfg.SecretSource())
	case err == nil && flow == "":
		fmt.Fprintln(stdout, "client secret: not used by the default browser login (Pkce)")
	case err == nil:
		fmt.Fprintf(stdout, "client secret: not used by %s\n", flow)
	}
	if cfg.Org != "" {
		fmt.Fprintf(stdout, "organisation: %s\n", redact.Clip(cfg.Org, 128))
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "grpcauth config: warning: %s\n", w)
	}
	if !*offline && cfg.Config.Endpoint != "" {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		server, flyte2 := probeServer(ctx, cfg.Config)
		fmt.Fprintf(stdout, "server: %s\n", server)
		if p := storeview.Problem(cfg.Config.AuthorizationHeader); flyte2 && p != "" {
			fmt.Fprintf(stderr, "grpcauth config: warning: %s\n", p)
		}
	}
	return exitOK
}

// probeServer says which AuthMetadataService the endpoint serves, as the
// auto store finds it out, and what went wrong if it could not tell; and
// whether it is Flyte 2's.
func probeServer(ctx context.Context, cfg grpcauth.Config) (what string, flyte2 bool) {
	c, err := grpcauth.New(cfg, grpcauth.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return "not asked: " + redact.Clip(err.Error(), 512), false
	}
	defer func() { _ = c.Close() }()
	store, err := configstore.NewRemote(c.Conn)
	if err != nil {
		return "not asked: " + redact.Clip(err.Error(), 512), false
	}
	_, err = store.GetClientConfig(ctx)
	switch found := configstore.ServiceOf(store); {
	case found == configstore.ServiceFlyte2:
		what, flyte2 = "Flyte 2 (it serves flyteidl2.auth.AuthMetadataService)", true
	case found == configstore.ServiceFlyte1:
		what = "Flyte 1 (it serves flyteidl.service.AuthMetadataService)"
	case err == nil:
		return "unknown", false
	default:
		return "unknown: " + redact.Clip(err.Error(), 512), false
	}
	if err != nil {
		what += "; its metadata: " + redact.Clip(err.Error(), 512)
	}
	return what, flyte2
}

// describeMode names the flow cfg selects, and why when no authType
// names it, for messages.
func describeMode(cfg grpcauth.Config) string {
	mode, _ := cfg.AuthMode()
	if strings.TrimSpace(cfg.AuthType) == "" && mode == grpcauth.AuthTypeClientSecret {
		return "client credentials (a clientId and no authType)"
	}
	return "authType " + mode
}

// describeFlow names the flow cfg selects, and says how to choose one when
// it selects none.
func describeFlow(cfg grpcauth.Config) string {
	flow, err := cfg.AuthMode()
	switch {
	case err != nil:
		return "unknown authType"
	case flow == "":
		return "Pkce by default (no authType, no clientId): a browser login with the client id FlyteAdmin advertises, started when a server asks for a token; admin.authType selects ClientSecret, Pkce, DeviceFlow or ExternalCommand"
	}
	return flow
}
