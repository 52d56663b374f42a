package secretfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/flyteauth/grpcauth/internal/detach"
)

// ErrNotRegular reports a path that is not a regular file once symbolic
// links are followed: a directory, a named pipe, a device or a socket. It
// is never changed, so it is safe for concurrent use.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge reports a file larger than the limit given to Read. It is
// never changed, so it is safe for concurrent use.
var ErrTooLarge = errors.New("file too large")

// Read returns the content of the regular file at path, at most limit
// bytes. It opens the file without blocking and refuses anything but a
// regular file (symbolic links are followed), so a named pipe or a device
// such as /dev/zero is an error at once, wrapping ErrNotRegular; a larger
// file wraps ErrTooLarge. When ctx ends first, Read returns the context's
// error while the read, which the operating system may not let go of (a
// hung network file system), finishes in the background and closes the
// file. Errors name path and never include the content. It is safe for
// concurrent use.
func Read(ctx context.Context, path string, limit int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, context.Cause(ctx))
	}
	b, err := detach.Call(ctx, func() ([]byte, error) { return read(path, limit) })
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("reading %s: %w", path, context.Cause(ctx))
	}
	return b, err
}

func read(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, err // a *PathError: names the file and the reason
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is %s: %w", path, describe(info.Mode()), ErrNotRegular)
	}
	if info.Size() > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: %w", path, limit, ErrTooLarge)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		// It grew after Stat.
		return nil, fmt.Errorf("%s is larger than %d bytes: %w", path, limit, ErrTooLarge)
	}
	return b, nil
}

// describe names a file type that is not a regular file.
func describe(m fs.FileMode) string {
	switch t := m.Type(); {
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeCharDevice != 0:
		return "a character device"
	case t&fs.ModeDevice != 0:
		return "a device"
	}
	return "an irregular file"
}
