// Package runcmd runs the external token commands of Flyte's command and
// proxyCommand: without a shell, with its output kept up to a limit, and
// with nothing it started left running after a timeout or cancellation.
package runcmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"time"
)

// waitDelay is how long Run waits for the output pipes after the command
// exited or was killed: a child that kept them open (and left the process
// group) cannot hold a token request forever.
const waitDelay = 2 * time.Second

// Output is what a command printed, each stream cut at its limit.
type Output struct {
	Stdout, Stderr string
	// StdoutOverflow is set when the command printed more than the
	// limit to standard output.
	StdoutOverflow bool
}

// Error says why a run failed.
type Error struct {
	// Reason says it in words, such as "exited with status 1".
	Reason string
	// ExitCode is the command's exit status; -1 when it did not exit by
	// itself (it could not start, timed out or was killed).
	ExitCode int
	// Err is the cause, if any, such as exec.ErrNotFound or
	// context.DeadlineExceeded.
	Err error
}

func (e *Error) Error() string { return e.Reason }

// Run runs argv with env and standard input empty, keeping at most
// stdoutLimit and stderrLimit bytes of its output. It runs in a process
// group of its own (on Unix), and the end of ctx kills the whole group.
// A run that did not exit with status 0 returns an *Error, with what the
// command printed before that.
func Run(ctx context.Context, argv, env []string, stdoutLimit, stderrLimit int) (Output, error) {
	start := time.Now()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	stdout, stderr := cappedBuffer{limit: stdoutLimit}, cappedBuffer{limit: stderrLimit}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = waitDelay
	ownProcessGroup(cmd)
	output := func() Output {
		return Output{Stdout: stdout.text(), Stderr: stderr.text(), StdoutOverflow: stdout.overflowed()}
	}
	if err := cmd.Start(); err != nil {
		// exec's error names the path and the cause (not found,
		// permission denied), nothing the command printed.
		return Output{}, &Error{Reason: "could not be started", ExitCode: -1, Err: err}
	}
	err := cmd.Wait()
	// Whatever happened, nothing the command started may outlive a
	// timeout or a cancelled request.
	if ctx.Err() != nil {
		killProcessGroup(cmd)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			took := time.Since(start).Round(time.Millisecond)
			return output(), &Error{Reason: fmt.Sprintf("did not finish within %s and was killed", took), ExitCode: -1, Err: context.DeadlineExceeded}
		}
		return output(), &Error{Reason: "was stopped: the token request was cancelled", ExitCode: -1, Err: context.Cause(ctx)}
	}
	if err != nil {
		// The command failed, or exited but left a child holding its
		// output open (ErrWaitDelay): what it left running in its group
		// is ours to stop. (A helper that means to outlive it leaves the
		// group, as daemons do.)
		killProcessGroup(cmd)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// What the command printed before exiting counts.
		err = nil
	}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		if code := exitErr.ExitCode(); code >= 0 {
			return output(), &Error{Reason: fmt.Sprintf("exited with status %d", code), ExitCode: code}
		}
		// ExitError's text is the signal's name, never output.
		return output(), &Error{Reason: "was killed by a signal", ExitCode: -1, Err: errors.New(exitErr.String())}
	case err != nil:
		return output(), &Error{Reason: "could not be waited for", ExitCode: -1, Err: err}
	}
	return output(), nil
}

// cappedBuffer keeps the first limit bytes written to it and notes whether
// more came. exec writes to it from one goroutine and it is read after
// Wait, but a left-behind child can still write after ErrWaitDelay, so it
// locks.
type cappedBuffer struct {
	mu       sync.Mutex // guards the fields below
	buf      bytes.Buffer
	limit    int
	overflow bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.limit - c.buf.Len(); len(p) > room {
		c.buf.Write(p[:max(room, 0)])
		c.overflow = true
	} else {
		c.buf.Write(p)
	}
	return len(p), nil // keep draining: a blocked writer would hang the command
}

func (c *cappedBuffer) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func (c *cappedBuffer) overflowed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.overflow
}
