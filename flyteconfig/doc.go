// Package flyteconfig reads the Flyte configuration users already have
// into a grpcauth.Config, and says where each value came from.
//
// Load reads it from where Options say (by default the process's
// environment, working directory and home directory), the way flyte-sdk
// and flytekit do: the admin section of the first config file of
// flyte-sdk's search (./config.yaml, ./.flyte/config.yaml, the git root's
// .flyte/config.yaml, UCTL_CONFIG, FLYTECTL_CONFIG, ~/.union/config.yaml,
// ~/.flyte/config.yaml), overridden by an API key (FLYTE_API_KEY), then by
// flyte-sdk's FLYTE_ADMIN_* and flytekit's FLYTE_PLATFORM_* and
// FLYTE_CREDENTIALS_* variables, then by a Flyte 2 task pod's _U_*
// overrides. Endpoints may be URLs (http:// is plaintext, https:// TLS).
// It returns a *Loaded: the Config, the file it came from, the org an API
// key names, Source (where a key's value came from: a file, "env NAME",
// "flag --name", "explicit" or "default"), Settings (a Setting for every
// key: its value and source, the secret and the credentials of URLs
// redacted), Set (how the command-line tool applies its flags) and
// Warnings (unknown keys with the nearest known one, deprecated keys, keys
// the chosen authType does not read, variables that disagree). Keys lists
// the keys it knows, Flyte's names. A value that cannot be used is an
// *Error that names the file or variable, the key and the line, never a
// secret.
//
// `grpcauth config` shows what this package finds.
package flyteconfig
