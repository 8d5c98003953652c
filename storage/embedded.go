package storage

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Embedded is an in-process FerretDB that keeps its data in SQLite files.
// The process reaches it through a Unix socket in a directory only its
// user may enter; it listens on TCP only when asked to.
type Embedded struct {
	db      *ferretdb.FerretDB
	sockDir string
	exposed bool
	done    chan struct{}
	stop    context.CancelFunc
}

// socketName is the file name of the embedded store's Unix socket. The
// driver takes a host ending in ".sock" for a socket path.
const socketName = "mongodb.sock"

// StartEmbedded starts FerretDB with its SQLite files in dir. FerretDB has
// no authentication, so by default it listens only on a Unix socket in a
// fresh directory of mode 0700 (FerretDB v1.24's embeddable API offers no
// connection that bypasses a listener). A non-empty listen ("127.0.0.1:27017";
// port 0 picks a free one) also exposes it on that TCP address, to anyone
// who can reach it. It logs through logger at error level only: FerretDB
// warns about routine client commands it does not implement (endSessions on
// every disconnect).
func StartEmbedded(dir, listen string, logger *slog.Logger) (*Embedded, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded store directory: %w", err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("embedded store directory: %w", err)
	}
	// A directory of its own rather than one in dir: a socket path must be
	// short (about 100 bytes), and no stale socket of a killed process can
	// be in the way.
	sockDir, err := os.MkdirTemp("", "referrals-store-")
	if err != nil {
		return nil, fmt.Errorf("embedded store socket directory: %w", err)
	}
	db, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen, Unix: filepath.Join(sockDir, socketName)},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    slog.New(errorsOnly{logger.Handler()}),
	})
	if err != nil {
		_ = os.RemoveAll(sockDir)
		return nil, fmt.Errorf("start embedded FerretDB: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	e := &Embedded{db: db, sockDir: sockDir, exposed: listen != "", done: make(chan struct{}), stop: stop}
	go func() {
		defer close(e.done)
		_ = db.Run(ctx) // returns only once ctx is cancelled
	}()
	return e, nil
}

// URI returns the MongoDB URI of the embedded store's Unix socket, for this
// process's own client.
func (e *Embedded) URI() string {
	return "mongodb://" + url.PathEscape(filepath.Join(e.sockDir, socketName)) + "/"
}

// ExposedURI returns the MongoDB URI of the TCP address the store listens
// on, or "" when it is not exposed.
func (e *Embedded) ExposedURI() string {
	if !e.exposed {
		return ""
	}
	return e.db.MongoDBURI() // the TCP one when there is a TCP listener
}

// Stop closes the listeners and the SQLite files and waits for both.
func (e *Embedded) Stop() {
	e.stop()
	<-e.done
	_ = os.RemoveAll(e.sockDir)
}

// errorsOnly passes on records of error level and above.
type errorsOnly struct{ slog.Handler }

func (h errorsOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError && h.Handler.Enabled(ctx, l)
}

func (h errorsOnly) WithAttrs(a []slog.Attr) slog.Handler { return errorsOnly{h.Handler.WithAttrs(a)} }
func (h errorsOnly) WithGroup(n string) slog.Handler      { return errorsOnly{h.Handler.WithGroup(n)} }
