package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestMain lets the test binary run as the server itself, so a test can
// start real server processes without building anything.
func TestMain(m *testing.M) {
	if os.Getenv("REFERRALS_TEST_SERVE") == "1" {
		// The parent reads where it listens from the first line of stdout.
		os.Exit(serve(func(l listening) {
			b, _ := json.Marshal(map[string]string{"api": l.API.String(), "embeddedURI": l.EmbeddedURI})
			fmt.Println(string(b))
		}))
	}
	os.Exit(m.Run())
}

// serverProcess is a server running in a child process.
type serverProcess struct {
	URL         string
	EmbeddedURI string // "" unless --embedded-listen
	cmd         *exec.Cmd
	exited      chan struct{} // closed once the process has exited
}

// startProcess runs the server in a child process until the test ends.
// The child tells where it listens on its first line of stdout; its log
// goes to the test's output.
func startProcess(t *testing.T, args ...string) *serverProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "REFERRALS_TEST_SERVE=1")
	cmd.Stderr = t.Output()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{cmd: cmd, exited: make(chan struct{})}
	at := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		if lines.Scan() {
			at <- lines.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("server process did not stop on SIGINT")
		}
	})
	select {
	case line := <-at:
		var l struct{ API, EmbeddedURI string }
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("server process said %q: %v", line, err)
		}
		p.URL, p.EmbeddedURI = "http://"+l.API, l.EmbeddedURI
	case <-p.exited:
		t.Fatal("server process stopped before serving")
	}
	return p
}

// sseEvents subscribes to referralChanged over SSE and sends each event's
// referral id and type to the returned channel.
func sseEvents(t *testing.T, ctx context.Context, base string) <-chan string {
	t.Helper()
	body := `{"query":"subscription { referralChanged { type referralId } }"}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/query", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 16)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		lines := bufio.NewScanner(resp.Body)
		for lines.Scan() {
			if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
				var ev struct {
					Data struct {
						ReferralChanged struct{ Type, ReferralID string }
					}
				}
				_ = json.Unmarshal([]byte(data), &ev)
				out <- ev.Data.ReferralChanged.Type + " " + ev.Data.ReferralChanged.ReferralID
			}
		}
	}()
	return out
}

// waitForSubscriptions waits until the server reports n live subscriptions.
func waitForSubscriptions(t *testing.T, base string, n int) {
	t.Helper()
	want := fmt.Sprintf("\ngraphql_subscriptions %d\n", n)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, metrics := httpGet(t, base+"/metrics"); strings.Contains(metrics, want) {
			return
		}
	}
	t.Fatalf("%s never reported %d subscriptions", base, n)
}

func postQuery(t *testing.T, base, query string) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	resp, err := http.Post(base+"/query", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		Data   map[string]any
		Errors []any
	}
	if err := json.Unmarshal(b, &out); err != nil || len(out.Errors) > 0 {
		t.Fatalf("%s: %s", query, b)
	}
	return out.Data
}

// TestTwoProcessesSeeEveryChange starts two server processes on one store
// (the second on the first's --embedded-listen port) and checks a change
// made through either reaches subscribers on both.
func TestTwoProcessesSeeEveryChange(t *testing.T) {
	first := startProcess(t, "--data-dir", t.TempDir(), "--embedded-listen", "127.0.0.1:0", "--demo", "0")
	a := first.URL
	b := startProcess(t, "--mongodb-uri", first.EmbeddedURI, "--demo", "0").URL

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	onA, onB := sseEvents(t, ctx, a), sseEvents(t, ctx, b)
	waitForSubscriptions(t, a, 1)
	waitForSubscriptions(t, b, 1)

	created := postQuery(t, a, `mutation { createReferral(input: {referralSource: P2P, customerProfile: {name: "Two Process Ltd", address: {addressLine1: "1 Loop", city: "Oslo", country: "NO"}}}) { id } }`)
	id := created["createReferral"].(map[string]any)["id"].(string)
	postQuery(t, b, `mutation { changeReferralStatus(id: "`+id+`", expectedVersion: 1, status: ACTIVE) { version } }`)

	var wg sync.WaitGroup
	for name, events := range map[string]<-chan string{"A": onA, "B": onB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, want := range []string{"CREATED " + id, "STATUS_CHANGED " + id} {
				select {
				case got := <-events:
					if got != want {
						t.Errorf("subscriber on %s got %q, want %q", name, got, want)
					}
				case <-ctx.Done():
					t.Errorf("subscriber on %s did not get %q", name, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestShutdownEndsStreams sends SIGTERM to a server holding an SSE stream
// and a WebSocket subscription: both streams end, and the process exits
// with status 0 within 5 s.
func TestShutdownEndsStreams(t *testing.T) {
	p := startProcess(t, "--data-dir", t.TempDir(), "--demo", "0")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sse := sseEvents(t, ctx, p.URL)
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(p.URL, "http")+"/query", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	for _, m := range []string{`{"type":"connection_init"}`, `{"id":"1","type":"subscribe","payload":{"query":"subscription { referralChanged { type } }"}}`} {
		if err := ws.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	waitForSubscriptions(t, p.URL, 2)

	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not exit within 5 s of SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after %v, want 0", code, time.Since(start))
	}
	if _, open := <-sse; open {
		t.Error("the SSE stream delivered an event instead of ending")
	}
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Errorf("the WebSocket was not closed: %v", err)
			}
			break
		}
	}
}
