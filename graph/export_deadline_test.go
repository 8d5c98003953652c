package graph

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"referrals/graph/export"
	"referrals/graph/transport"
	"referrals/graph/transport/transporttest"
)

// tinySocketBuffers is the socket buffer size, each way, of the slow-reader
// tests: with the kernel's defaults on loopback (megabytes) a demo export
// would fit in the buffers and never wait for its reader.
const tinySocketBuffers = 4096

// slowExportServer serves e's exports over loopback with limits, on
// sockets with small send buffers, and reports on ended when an export's
// handler has returned (its stream slot given back).
func slowExportServer(t *testing.T, e *env, limits export.Limits, logs io.Writer) (addr string, ended <-chan struct{}) {
	t.Helper()
	auth, err := transport.NewAuth(t.Context(), transport.AuthOptions{Secret: transporttest.Secret})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	if logs != nil {
		logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	gql := NewExecutor(e.store, e.broker, logger, nil, Options{})
	exports := export.New(gql, logger)
	exports.Limits = limits
	stream := transport.New(gql, auth, transport.Options{Logger: logger}).Stream(exports)
	done := make(chan struct{}, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stream.ServeHTTP(w, r)
		done <- struct{}{}
	})}
	go func() { _ = srv.Serve(smallSendBuffers{ln}) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), done
}

// smallSendBuffers gives each accepted connection a small send buffer.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		_ = c.(*net.TCPConn).SetWriteBuffer(tinySocketBuffers)
	}
	return c, err
}

// requestExport opens a raw TCP connection with a small receive buffer
// (set before connecting, so the window offered is small from the start)
// and sends an export request as bearer.
func requestExport(t *testing.T, addr, bearer string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, tinySocketBuffers)
		})
	}}
	conn, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_, _ = io.WriteString(conn, "GET /export/referrals HTTP/1.1\r\nHost: "+addr+"\r\nAuthorization: Bearer "+bearer+"\r\n\r\n")
	return conn
}

// TestExportDeadlines: an export whose client stops reading ends once the
// client has taken less than ProgressBytes in ProgressInterval, giving
// back its connection and stream slot; a client that keeps up gets the
// whole file; an export running past MaxDuration ends after the page it
// is writing with an error line saying why (issue 21, item 5). The
// clients are raw TCP connections with small buffers.
func TestExportDeadlines(t *testing.T) {
	e := newEnv(t, demoSize)
	admin := transporttest.HS(t, jwt.MapClaims{"sub": "a", "role": "admin", "exp": transporttest.InAnHour()})
	t.Run("StalledReaderIsCut", func(t *testing.T) {
		logs := &syncBuffer{}
		addr, ended := slowExportServer(t, e, export.Limits{ProgressBytes: 1024, ProgressInterval: 200 * time.Millisecond, MaxDuration: time.Hour}, logs)
		conn := requestExport(t, addr, admin)
		status, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.Contains(status, " 200 ") {
			t.Fatalf("status line %q, %v", status, err)
		}
		// and reads nothing more
		select {
		case <-ended:
		case <-time.After(30 * time.Second):
			t.Fatal("the export still holds its connection and slot 30 s after its client stopped reading")
		}
		if !strings.Contains(logs.String(), "did not read it in time") {
			t.Errorf("the log does not say why the export ended:\n%s", logs)
		}
	})
	t.Run("ReaderKeepingUpGetsEverything", func(t *testing.T) {
		addr, ended := slowExportServer(t, e, export.Limits{ProgressBytes: 1024, ProgressInterval: 300 * time.Millisecond, MaxDuration: time.Hour}, nil)
		// 4 KiB each 10 ms, sixteen times the bound: the export takes
		// longer than one interval, so it passes only if each window
		// renews the deadline.
		rows := readCSV(t, readPaced(t, requestExport(t, addr, admin), 4096, 10*time.Millisecond))
		<-ended
		if len(rows) != demoSize+1 {
			t.Errorf("%d rows, want a header and %d referrals", len(rows), demoSize)
		}
	})
	t.Run("PastMaxDurationEndsWithAnErrorLine", func(t *testing.T) {
		addr, ended := slowExportServer(t, e, export.Limits{ProgressBytes: 1024, ProgressInterval: time.Hour, MaxDuration: time.Nanosecond}, nil)
		body := readPaced(t, requestExport(t, addr, admin), 1<<20, 0)
		<-ended
		r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\uFEFF"))))
		r.FieldsPerRecord = -1 // the error line is one cell
		rows, err := r.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		last := rows[len(rows)-1][0]
		if len(rows) != 1+100+1 || !strings.HasPrefix(last, "#ERROR COMPLEXITY_LIMIT") || !strings.Contains(last, "exports end after 1ns") {
			t.Errorf("%d rows ending %q, want the header, the first page and an error line", len(rows), last)
		}
	})
}

// readPaced reads an HTTP response from conn, size bytes each tick
// (at once when tick is 0), and returns its body, which must be whole.
func readPaced(t *testing.T, conn net.Conn, size int, tick time.Duration) []byte {
	t.Helper()
	var got bytes.Buffer
	buf := make([]byte, size)
	for {
		if tick > 0 {
			time.Sleep(tick) // a rate, not a wait for an event
		}
		n, err := conn.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", got.Len(), err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(&got), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("the export was cut after %d bytes: %v", len(body), err)
	}
	return body
}

// syncBuffer is a log written by the server's goroutines and read by the
// test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
