package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain lets the test binary run as the server itself, so a test can
// start real server processes without building anything.
func TestMain(m *testing.M) {
	if os.Getenv("REFERRALS_TEST_SERVE") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// startProcess runs the server in a child process and returns its URL.
func startProcess(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "REFERRALS_TEST_SERVE=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("server process did not stop on SIGINT")
		}
	})
	addr := make(chan string, 1)
	go func() {
		serving := regexp.MustCompile(`msg=serving addr=(\S+)`)
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			if m := serving.FindStringSubmatch(lines.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatal("server process did not start")
	}
	return ""
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

// waitForSubscription waits until the server reports a live subscription.
func waitForSubscription(t *testing.T, base string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, metrics := httpGet(t, base+"/metrics"); strings.Contains(metrics, "\ngraphql_subscriptions 1\n") {
			return
		}
	}
	t.Fatalf("%s never reported its subscription", base)
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().String()
	ln.Close()
	a := startProcess(t, "--data-dir", t.TempDir(), "--embedded-listen", port, "--demo", "0")
	b := startProcess(t, "--mongodb-uri", "mongodb://"+port+"/", "--demo", "0")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	onA, onB := sseEvents(t, ctx, a), sseEvents(t, ctx, b)
	waitForSubscription(t, a)
	waitForSubscription(t, b)

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
