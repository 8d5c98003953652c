package storage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Embedded is an in-process FerretDB that keeps its data in SQLite files and
// speaks the MongoDB wire protocol on a TCP address.
type Embedded struct {
	db   *ferretdb.FerretDB
	done chan struct{}
	stop context.CancelFunc
}

// StartEmbedded starts FerretDB with its SQLite files in dir, listening on
// listen ("127.0.0.1:0" picks a free loopback port). It logs through logger
// at error level only: FerretDB warns about routine client commands it
// does not implement (endSessions on every disconnect).
func StartEmbedded(dir, listen string, logger *slog.Logger) (*Embedded, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded store directory: %w", err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("embedded store directory: %w", err)
	}
	db, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    slog.New(errorsOnly{logger.Handler()}),
	})
	if err != nil {
		return nil, fmt.Errorf("start embedded FerretDB: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	e := &Embedded{db: db, done: make(chan struct{}), stop: stop}
	go func() {
		defer close(e.done)
		_ = db.Run(ctx) // returns only once ctx is cancelled
	}()
	return e, nil
}

// URI returns the MongoDB URI of the embedded store.
func (e *Embedded) URI() string { return e.db.MongoDBURI() }

// Stop closes the listener and the SQLite files and waits for both.
func (e *Embedded) Stop() {
	e.stop()
	<-e.done
}

// errorsOnly passes on records of error level and above.
type errorsOnly struct{ slog.Handler }

func (h errorsOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError && h.Handler.Enabled(ctx, l)
}

func (h errorsOnly) WithAttrs(a []slog.Attr) slog.Handler { return errorsOnly{h.Handler.WithAttrs(a)} }
func (h errorsOnly) WithGroup(n string) slog.Handler      { return errorsOnly{h.Handler.WithGroup(n)} }
