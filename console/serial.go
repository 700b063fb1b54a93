package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.bug.st/serial"
)

// reopenDelay is how long Serve waits before it opens the port again after
// it failed or went away (a USB serial adapter pulled out).
var reopenDelay = 10 * time.Second

// Serve runs console sessions on the serial port at baud (8N1) until ctx
// ends, one after the other: when a session ends with exit, the next
// begins. A port that cannot be opened or goes away is logged and tried
// again every reopenDelay; the agent runs on without it.
func Serve(ctx context.Context, port string, baud int, o Options, log *slog.Logger) {
	o.Where = "serial port " + port
	logged := false
	for ctx.Err() == nil {
		p, err := serial.Open(port, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
		if err != nil {
			if !logged {
				log.Warn("console: the serial port cannot be opened; trying again every "+reopenDelay.String(), "port", port, "err", err)
				logged = true
			}
		} else {
			logged = false
			log.Info("console: serving", "port", port, "baud", baud)
			err := serveOpen(ctx, p, o)
			if ctx.Err() != nil {
				return
			}
			log.Warn("console: the serial port went away; trying again every "+reopenDelay.String(), "port", port, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(reopenDelay):
		}
	}
}

// serveOpen runs sessions on an open port until ctx ends or the port
// fails; it closes the port.
func serveOpen(ctx context.Context, p serial.Port, o Options) error {
	var once sync.Once
	closePort := func() { once.Do(func() { p.Close() }) }
	defer closePort()
	stop := context.AfterFunc(ctx, closePort) // unblocks a Read
	defer stop()
	for {
		t := NewTerm(p, p, true)
		err := Run(ctx, t, o)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrNoLogin):
			fmt.Fprintln(t, "session ended")
		case err != nil:
			return err
		default:
			fmt.Fprintln(t, "session ended; press Enter for a new one")
			if _, err := t.ReadLine(false); err != nil && !errors.Is(err, ErrInterrupt) {
				return err
			}
		}
	}
}
