//go:build race

package grpcauth_test

const raceEnabled = true
