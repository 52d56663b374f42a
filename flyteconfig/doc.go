// Package flyteconfig reads the Flyte configuration users already have
// into a grpcauth.Config, and says where each value came from.
//
// Load reads it, from where Options say (by default the process's
// environment and home directory), the way flytekit does: the admin section of the file named
// by FLYTECTL_CONFIG, else ~/.flyte/config.yaml, overridden by the FLYTE_*
// environment variables. It returns a *Loaded: the Config, the file it
// came from, Source (where a key's value came from: a file, "env NAME",
// "flag --name", "explicit" or "default"), Settings (a Setting for every
// key: its value and source, the secret and the credentials of URLs redacted), Set
// (how the command-line tool applies its flags) and Warnings (unknown keys
// with the nearest known one, deprecated keys, keys the chosen authType
// does not read). Keys lists the keys it knows, Flyte's names. A value that
// cannot be used is an *Error that names the file or variable, the key and
// the line, never a secret.
//
// `grpcauth config` shows what this package finds.
package flyteconfig
