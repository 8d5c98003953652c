package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// feedClient runs the npm graphql-ws client (.ci/feed-client, installed by
// `npm ci` there; CI does it) against base: it subscribes to
// referralChanged, after the event id after when not empty, and sends
// each event it receives ("TYPE referralId") and its id to the returned
// channels until it has count. The test fails where Node.js or the client
// is not installed (`bash .ci/setup` installs them).
func feedClient(t *testing.T, ctx context.Context, base string, count int, after string) (<-chan [2]string, *exec.Cmd) {
	t.Helper()
	dir, _ := filepath.Abs(".ci/feed-client")
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("the test runs the npm graphql-ws client and needs Node.js: run `bash .ci/setup`")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "graphql-ws")); err != nil {
		t.Fatal("the npm graphql-ws client is not installed: run `bash .ci/setup`")
	}
	args := []string{filepath.Join(dir, "subscribe.mjs"), "ws" + strings.TrimPrefix(base, "http") + "/query", itoa(count)}
	if after != "" {
		args = append(args, after)
	}
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Stderr = t.Output()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := make(chan [2]string, count)
	go func() {
		defer close(out)
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			var ev struct {
				ID, Type, ReferralID string
				Error                any
			}
			if err := json.Unmarshal(lines.Bytes(), &ev); err != nil || ev.Error != nil {
				out <- [2]string{"error " + lines.Text(), ""}
				continue
			}
			out <- [2]string{ev.Type + " " + ev.ReferralID, ev.ID}
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return out, cmd
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// receive reads the next event of a feed client, failing on an error or
// after a generous budget (the feed delivers in milliseconds).
func receive(t *testing.T, events <-chan [2]string) (string, string) {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok || strings.HasPrefix(ev[0], "error") {
			t.Fatalf("the feed client ended: %v", ev)
		}
		return ev[0], ev[1]
	case <-time.After(30 * time.Second):
		t.Fatal("the feed client received nothing")
	}
	return "", ""
}

// TestResumeAcrossRestart subscribes with the npm graphql-ws client,
// receives one change and disconnects; one change is made while it is
// away, the server is restarted on the same data directory, one more is
// made; resuming after the last id it received, the client gets exactly
// the two it missed, in order, then the next live change.
func TestResumeAcrossRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	first := startProcess(t, "--data-dir", dir, "--demo", "0")
	events, client := feedClient(t, ctx, first.URL, 1, "")
	waitForSubscriptions(t, first.URL, 1)
	seen := createReferral(t, context.Background(), first.URL, "", "Seen Ltd")
	got, lastID := receive(t, events)
	if got != "CREATED "+seen {
		t.Fatalf("first event %q, want CREATED %s", got, seen)
	}
	if err := client.Wait(); err != nil {
		t.Fatalf("the client did not stop after its event: %v", err)
	}
	waitForSubscriptions(t, first.URL, 0)
	missedBefore := createReferral(t, context.Background(), first.URL, "", "Missed Before Restart Ltd")
	_ = first.cmd.Process.Signal(syscall.SIGTERM)
	<-first.exited

	second := startProcess(t, "--data-dir", dir, "--demo", "0")
	missedAfter := createReferral(t, context.Background(), second.URL, "", "Missed After Restart Ltd")
	events, _ = feedClient(t, ctx, second.URL, 3, lastID)
	waitForSubscriptions(t, second.URL, 1)
	for _, want := range []string{"CREATED " + missedBefore, "CREATED " + missedAfter} {
		if got, _ := receive(t, events); got != want {
			t.Fatalf("resumed: got %q, want %q", got, want)
		}
	}
	live := createReferral(t, context.Background(), second.URL, "", "Live Ltd")
	if got, _ := receive(t, events); got != "CREATED "+live {
		t.Fatalf("then live: got %q, want CREATED %s", got, live)
	}
}

// TestForgedResumeIDIsRefused: the earlier form of event ids, base64 of
// `change:N`, which anyone could write for any N, resumes nothing now. The
// npm graphql-ws client passing it as `after` gets a BAD_USER_INPUT error;
// a raw SSE request with it as Last-Event-ID gets a `next` event holding
// the same error, then `complete`. Two changes exist, so the id names one
// the feed holds.
func TestForgedResumeIDIsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := startProcess(t, "--data-dir", t.TempDir(), "--demo", "0")
	createReferral(t, ctx, p.URL, "", "First Ltd")
	createReferral(t, ctx, p.URL, "", "Second Ltd")
	forged := base64.RawURLEncoding.EncodeToString([]byte("change:1"))

	events, client := feedClient(t, ctx, p.URL, 1, forged)
	if ev := <-events; !strings.HasPrefix(ev[0], "error") || !strings.Contains(ev[0], `"BAD_USER_INPUT"`) {
		t.Errorf("graphql-ws with after = %s: %q, want a BAD_USER_INPUT error", forged, ev[0])
	}
	_ = client.Wait()

	body := `{"query":"subscription { referralChanged { type referralId } }"}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/query", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", forged)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var frames []string
	for lines := bufio.NewScanner(resp.Body); lines.Scan(); {
		if line := lines.Text(); strings.HasPrefix(line, "event: ") || strings.HasPrefix(line, "data: ") {
			frames = append(frames, line)
		}
		if len(frames) == 3 || len(frames) == 2 && !strings.Contains(frames[1], "errors") {
			break // an error completes the stream; an event would not
		}
	}
	if len(frames) != 3 || frames[0] != "event: next" || !strings.Contains(frames[1], `"code":"BAD_USER_INPUT"`) ||
		!strings.Contains(frames[1], "Last-Event-ID") || frames[2] != "event: complete" {
		t.Errorf("SSE with Last-Event-ID = %s: %q, want next (BAD_USER_INPUT about Last-Event-ID), complete", forged, frames)
	}
}

// TestResumeOnAnotherProcess: an id handed out by one process resumes on
// another sharing the store, since the secret ids are sealed with is the
// database's.
func TestResumeOnAnotherProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := startProcess(t, "--data-dir", t.TempDir(), "--embedded-listen", "127.0.0.1:0", "--demo", "0")
	b := startProcess(t, "--mongodb-uri", a.EmbeddedURI, "--demo", "0")
	events, client := feedClient(t, ctx, a.URL, 1, "")
	waitForSubscriptions(t, a.URL, 1)
	createReferral(t, ctx, a.URL, "", "Seen On A Ltd")
	_, id := receive(t, events)
	_ = client.Wait()
	missed := createReferral(t, ctx, a.URL, "", "Missed Ltd")
	events, _ = feedClient(t, ctx, b.URL, 1, id)
	if got, _ := receive(t, events); got != "CREATED "+missed {
		t.Errorf("resumed on the other process: %q, want CREATED %s", got, missed)
	}
}
