package console

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// read returns the next line: one typed ahead while a command ran, or one
// it asks the input goroutine for. A line asked for while a command ran
// and not yet typed is taken as it is.
func (s *session) read(ctx context.Context, hidden bool) (string, error) {
	if len(s.typeahead) > 0 {
		line := s.typeahead[0]
		s.typeahead = s.typeahead[1:]
		return line, nil
	}
	if s.ended != nil {
		return "", s.ended
	}
	if !s.outstanding {
		s.reqs <- hidden
		s.outstanding = true
	}
	select {
	case in := <-s.lines:
		s.outstanding = false
		if in.err != nil && !errors.Is(in.err, ErrInterrupt) {
			s.ended = in.err // the input goroutine has stopped
		}
		return in.line, in.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// ask prints prompt and reads a line without echo.
func (s *session) ask(ctx context.Context, prompt string) (string, error) {
	fmt.Fprint(s.t, prompt)
	line, err := s.read(ctx, true)
	if !s.t.raw {
		fmt.Fprintln(s.t) // a raw line has had its line end echoed
	}
	return line, err
}

// errInterrupted is what a command stopped with Ctrl-C answers.
var errInterrupted = errors.New("interrupted: the command was stopped")

// shared runs a command shared with the command line. While it runs the
// input is still read: Ctrl-C stops it, and the lines typed are kept in
// order, given to it when it reads (a pasted address) and otherwise run
// as the next commands. The end of the input is the end of its input and,
// once it is done, of the session.
func (s *session) shared(ctx context.Context, args ...string) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := &chanReader{ctx: cctx, want: make(chan struct{}), lines: make(chan string)}
	done := make(chan error, 1)
	go func() { done <- s.o.Command(cctx, args, in, s.t) }()
	interrupted, wanting, closed := false, false, false
	for {
		if wanting && len(s.typeahead) > 0 {
			select {
			case in.lines <- s.typeahead[0]:
				s.typeahead = s.typeahead[1:]
			case <-cctx.Done(): // stopped before it took the line: the line stays
			}
			wanting = false
			continue
		}
		if wanting && s.ended != nil {
			if !closed {
				close(in.lines) // the end of its input
				closed = true
			}
			wanting = false
		}
		if !s.outstanding && s.ended == nil {
			s.reqs <- false
			s.outstanding = true
		}
		var lines chan input // nil, never ready, once the input ended
		if s.ended == nil {
			lines = s.lines
		}
		select {
		case err := <-done:
			if interrupted && errors.Is(err, context.Canceled) {
				return errInterrupted
			}
			return err
		case <-in.want:
			wanting = true
		case ev := <-lines:
			s.outstanding = false
			switch {
			case errors.Is(ev.err, ErrInterrupt):
				interrupted = true
				cancel()
			case ev.err != nil:
				s.ended = ev.err
			default:
				s.typeahead = append(s.typeahead, ev.line)
			}
		}
	}
}

// chanReader is a shared command's input: it asks the session for a line
// on want and gets it on lines (closed at the end of the input).
type chanReader struct {
	ctx   context.Context
	want  chan struct{}
	lines chan string
	rest  []byte
}

func (r *chanReader) Read(p []byte) (int, error) {
	if len(r.rest) == 0 {
		select {
		case r.want <- struct{}{}:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
		select {
		case line, ok := <-r.lines:
			if !ok {
				return 0, io.EOF
			}
			r.rest = []byte(line + "\n")
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}
