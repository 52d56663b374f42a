package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

const configSummary = `Usage: grpcauth config [flags]

Prints the configuration that 'grpcauth token' would use, and where each
value came from: the config file (--config, else $FLYTECTL_CONFIG, else
~/.flyte/config.yaml), an environment variable, a flag, or the default.
The client secret is shown as [REDACTED].`

func runConfig(args []string, stdout, stderr io.Writer, env environment) int {
	fs := newFlagSet("config", configSummary, stderr)
	var cf configFlags
	cf.register(fs)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	cfg, err := cf.load(fs, env)
	if err != nil {
		fmt.Fprintf(stderr, "grpcauth config: %v\n", err)
		return exitFail
	}
	file := cfg.File()
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
		fmt.Fprintf(stderr, "grpcauth config: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "\nclient secret read from: %s\n", cfg.ClientSecretSource())
	return exitOK
}
