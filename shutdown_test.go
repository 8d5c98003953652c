package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"referrals/storage"
	"referrals/storage/demo"
	"referrals/storage/embedded"
)

// sweepStopReferrals is the size of the store TestStopDuringExpirySweep
// stops a sweep on. An expiry cut short used to be undone by an update
// that reads every participant on the embedded store: at this size that
// held a stopping server 7 to 12 s here, past the test's bound.
const sweepStopReferrals = 20_000

// TestStopDuringExpirySweep starts the server on an embedded store whose
// open invitations are all past their expiration, waits until the expiry
// sweep has expired one (its change reaches a subscriber) and is halfway
// through the write of another, and stops the server: run returns within
// 5 s although the sweep is not done, and no expiry is left half written.
func TestStopDuringExpirySweep(t *testing.T) {
	dir := t.TempDir()
	due := seedDueInvitations(t, dir, sweepStopReferrals)
	if len(due) < 4*50 { // several of the sweep's batches (expireBatch)
		t.Fatalf("only %d invitations due; the sweep would have too little to do", len(due))
	}
	addr, stop, done, runErr := serveUntilStopped(t, t.Output(), "--data-dir", dir, "--demo", "0")
	base := "http://" + addr

	streamCtx, endStream := context.WithTimeout(context.Background(), time.Minute)
	defer endStream()
	events := sseEvents(t, streamCtx, base)
	if ev, ok := <-events; !ok || !strings.HasPrefix(ev, "PARTICIPANT_CHANGED ") {
		t.Fatalf("first event %q (stream open: %v), want an expiry of the sweep", ev, ok)
	}
	// With the stream ended, no request is left for the shutdown to wait
	// for: the stop reaches the sweep at once.
	endStream()
	for range events {
	}
	waitForExpiryWrite(t)

	stopWithin5s(t, stop, done, runErr)
	checkExpiries(t, dir, due)
}

// waitForExpiryWrite returns once the sweep of this process is halfway
// through the write of an expiry: it has claimed the invitation and is
// updating the participant, with the referral's copy still to update. A
// stop at that moment cuts into the write. Only the goroutines' stacks
// show it; the test fails if it does not come within a minute.
func waitForExpiryWrite(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); runtime.Gosched() {
		if participantUpdateUnderWay(buf[:runtime.Stack(buf, true)]) {
			return
		}
	}
	t.Fatal("the sweep was not seen writing an expiry within a minute")
}

// participantUpdateUnderWay reports whether a goroutine in stacks is the
// sweep (ExpireInvitations) in the participant's update of an expiry: in
// a driver call made by settleInvitation itself, the storage function
// innermost on its stack.
func participantUpdateUnderWay(stacks []byte) bool {
	for g := range strings.SplitSeq(string(stacks), "\n\n") {
		if !strings.Contains(g, "storage.(*Store).ExpireInvitations(") {
			continue
		}
		for line := range strings.SplitSeq(g, "\n") {
			if strings.HasPrefix(line, "referrals/storage.") {
				if strings.HasPrefix(line, "referrals/storage.(*Store).settleInvitation(") {
					return true
				}
				break
			}
		}
	}
	return false
}

// seedDueInvitations fills the store in dir with n demo referrals dated
// so that every invitation they leave open expired an hour ago or more,
// and returns those invitations.
func seedDueInvitations(t *testing.T, dir string, n int) []storage.Participant {
	t.Helper()
	now := time.Now().UTC()
	// The demo leaves open only invitations that expire after its anchor,
	// 14 days after they were made at the latest.
	refs, parts := demo.Generate(demoSeed, n, now.Add(-15*24*time.Hour))
	s, closeStore := openStore(t, dir)
	defer closeStore()
	if err := s.Prepare(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertReferrals(t.Context(), refs, parts); err != nil {
		t.Fatal(err)
	}
	var due []storage.Participant
	for _, p := range parts {
		if p.Status == storage.ParticipantInvited && p.EffectiveStatus(now) == storage.ParticipantExpired {
			due = append(due, p)
		}
	}
	return due
}

// checkExpiries checks, on the stopped store in dir, that the sweep
// expired some of due but not all, and that each of due reads the same in
// its participant record and in its referral's participation: an expiry
// written halfway would not.
func checkExpiries(t *testing.T, dir string, due []storage.Participant) {
	t.Helper()
	s, closeStore := openStore(t, dir)
	defer closeStore()
	admin := storage.WithCaller(t.Context(), storage.Caller{Subject: "test", Role: storage.RoleAdmin})
	ids, referralIDs := make([]string, len(due)), make([]string, len(due))
	for i, p := range due {
		ids[i], referralIDs[i] = p.ID, p.ReferralID
	}
	parts, err := s.ParticipantsByID(admin, ids)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := s.ReferralsByID(admin, referralIDs)
	if err != nil {
		t.Fatal(err)
	}
	expired := 0
	for _, id := range ids {
		p := parts[id]
		if p.Status == storage.ParticipantExpired {
			expired++
		}
		for _, e := range refs[p.ReferralID].Participation {
			if e.ParticipantID == id && e.Status != p.Status {
				t.Errorf("participant %s is %s, its referral's entry %s: a write left half done", id, p.Status, e.Status)
			}
		}
	}
	if expired == 0 || expired == len(due) {
		t.Errorf("the sweep expired %d of %d invitations before the stop; want it stopped mid-sweep", expired, len(due))
	}
}

// openStore starts the embedded store in dir, which no server may be
// using, and connects to it; closeStore disconnects and stops it.
func openStore(t *testing.T, dir string) (s *storage.Store, closeStore func()) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	embedded, err := embedded.Start(dir, "", logger)
	if err != nil {
		t.Fatal(err)
	}
	// Reads by id go by _id one at a time, as Prepare would find.
	s, err = storage.Connect(t.Context(), storage.Options{URI: embedded.URI(), Database: "referrals",
		Embedded: embedded, Logger: logger, Pushdown: storage.PushdownIDOnly})
	if err != nil {
		embedded.Stop()
		t.Fatal(err)
	}
	return s, func() {
		_ = s.Close(context.Background())
		embedded.Stop()
	}
}

// TestStopWithARequestInFlight stops a server while a request is in
// flight that will not finish by itself soon: a POST whose client sent
// its headers and part of its body (the server waits up to 30 s for the
// rest). run returns within 5 s, having closed that connection after the
// grace period; before, the stop waited for such a request up to 30 s.
// (Exports and subscriptions are streams, ended at once.)
func TestStopWithARequestInFlight(t *testing.T) {
	var logs syncBuffer
	addr, stop, done, runErr := serveUntilStopped(t, &logs, "--data-dir", t.TempDir(), "--demo", "0")

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"query": "{ referrals { totalCount } }"}`
	if _, err := fmt.Fprintf(conn, "POST /query HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		addr, len(body), body[:10]); err != nil {
		t.Fatal(err)
	}
	// A request answered on a second connection, opened after the first,
	// lets the server accept the first and start its handler (which then
	// waits for the body). Had it not yet, the stop would wait for the new
	// connection just the same: the assertions below hold either way.
	if resp, err := http.Post("http://"+addr+"/query", "application/json", strings.NewReader(`{"query": "{ __typename }"}`)); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}

	stopWithin5s(t, stop, done, runErr)
	if !strings.Contains(logs.String(), "requests still in flight after the grace period") {
		t.Errorf("the stop did not say it cancelled a request in flight:\n%s", logs.String())
	}
	// The client's connection is closed, its request unanswered.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("the request in flight was answered (%d bytes, %v), want its connection closed", n, err)
	}
}

// serveUntilStopped runs the server with args, logging to logs, and
// returns where it listens, the stop that cancels it, a channel closed
// when run returns, and run's error then. The test's cleanup stops it
// too.
func serveUntilStopped(t *testing.T, logs io.Writer, args ...string) (addr string, stop func(), done <-chan struct{}, runErr *error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	at := make(chan listening, 1)
	var err error
	go func() {
		defer close(finished)
		err = run(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), func(string) string { return "" },
			slog.New(slog.NewTextHandler(logs, nil)), func(l listening) { at <- l })
	}()
	t.Cleanup(func() { cancel(); <-finished })
	select {
	case l := <-at:
		return l.API.String(), cancel, finished, &err
	case <-finished:
		t.Fatalf("server stopped: %v", err)
	}
	return "", nil, nil, nil
}

// stopWithin5s stops the server run is serving (stop cancels its context,
// done closes when run returns with *runErr) and fails unless run returned
// without an error within 5 s.
func stopWithin5s(t *testing.T, stop func(), done <-chan struct{}, runErr *error) {
	t.Helper()
	stop()
	stopped := time.Now()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		<-done
		t.Errorf("run returned %v after the stop, want within 5 s", time.Since(stopped).Round(time.Millisecond))
	}
	if *runErr != nil {
		t.Errorf("shutdown: %v", *runErr)
	}
}

// TestStopDuringAnExport stops a server while a client reads an export:
// the file ends with an error line saying the server is shutting down,
// not silently short (before, the export stopped at its next page and the
// response ended cleanly, a truncated file looking complete).
func TestStopDuringAnExport(t *testing.T) {
	addr, stop, done, runErr := serveUntilStopped(t, t.Output(), "--data-dir", t.TempDir(), "--demo", "2000")
	base := "http://" + addr
	req, _ := http.NewRequest(http.MethodGet, base+"/export/referrals", nil)
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(nil, 1<<20)
	if !lines.Scan() {
		t.Fatalf("no first line: %v", lines.Err())
	}
	go stopWithin5s(t, stop, done, runErr)
	n, last := 1, ""
	for lines.Scan() {
		n, last = n+1, lines.Text()
	}
	if n > 2000 {
		t.Fatalf("the whole export (%d lines) came before the stop; export more to test it", n)
	}
	if !strings.Contains(last, `"SHUTTING_DOWN"`) || !strings.Contains(last, "incomplete") {
		t.Errorf("after %d lines the file ends with %.300s, want an error line with SHUTTING_DOWN", n, last)
	}
}
