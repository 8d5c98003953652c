package graph

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"referrals/graph/transport"
	"referrals/graph/transport/transporttest"
	"referrals/storage"
)

// resumeLogSize is how many changes of referrals the partner does not see
// BenchmarkResumeCatchUp records between the partner's event and the next.
const resumeLogSize = 3000

// BenchmarkResumeCatchUp measures the cheapest hostile request against the
// change log: a partner resumes over SSE, with resumeLogSize changes it may
// not see recorded since, after the oldest event it holds (id=held), or
// after a forged id of the first change (id=forged), and waits for the
// first answer: the next event it may see, or an error. cpu-ms/op is the
// process's CPU (the embedded store runs in it) per resume.
//
//	go test ./graph -run '^$' -bench BenchmarkResumeCatchUp -benchtime 5x
func BenchmarkResumeCatchUp(b *testing.B) {
	e := newEnv(b, 20)
	auth, err := transport.NewAuth(b.Context(), transport.AuthOptions{Secret: transporttest.Secret})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(newHandler(e.store, e.broker, auth, Options{}, transport.Options{}))
	defer srv.Close()
	open := openReferrals(e.referrals)
	seen := open[0]
	org := seen.Participation[0].OrganizationID
	i := slices.IndexFunc(open, func(r storage.Referral) bool {
		return !slices.ContainsFunc(r.Participation, func(p storage.Participation) bool { return p.OrganizationID == org })
	})
	if i < 0 {
		b.Fatal("every open demo referral is the partner's")
	}
	unseen := open[i]
	bearer := transporttest.Token(b, []byte(transporttest.Secret), jwt.SigningMethodHS256, jwt.MapClaims{"sub": "bench", "role": "partner", "org": org, "exp": time.Now().Add(time.Hour).Unix()})
	admin := storage.WithCaller(context.Background(), storage.Caller{Subject: "bench", Role: storage.RoleAdmin})
	notes := "bench"
	update := func(r *storage.Referral) {
		got, err := e.store.UpdateReferral(admin, r.ID, r.Version, storage.ReferralPatch{Details: &storage.DetailsInput{Notes: &notes}})
		if err != nil {
			b.Fatal(err)
		}
		r.Version = got.Version
	}

	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	live, stop := context.WithCancel(ctx)
	events := partnerSSE(b, live, srv.URL, bearer, "")
	for e.broker.Subscribers() != 1 {
		time.Sleep(5 * time.Millisecond)
	}
	update(&seen)
	held := <-events
	stop()
	if held.id == "" {
		b.Fatalf("the partner's event has no id: %+v", held)
	}
	for range resumeLogSize {
		update(&unseen)
	}
	update(&seen)

	for name, id := range map[string]string{"id=held": held.id, "id=forged": base64.RawURLEncoding.EncodeToString([]byte("change:1"))} {
		b.Run(name, func(b *testing.B) {
			var cpu time.Duration
			var answer string
			for b.Loop() {
				before := processCPU()
				ctx, stop := context.WithCancel(ctx)
				ev := <-partnerSSE(b, ctx, srv.URL, bearer, id)
				stop()
				cpu += processCPU() - before
				answer = ev.answer
			}
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
			b.Logf("%d changes since the partner's event; a resume answers %s", resumeLogSize+1, answer)
		})
	}
}

// processCPU is the CPU this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sseAnswer is one SSE `next` event of a referralChanged subscription: its
// `id:` line, and what it said ("CREATED <referral id>", or an error code).
type sseAnswer struct{ id, answer string }

// partnerSSE subscribes to referralChanged over SSE with bearer, resuming
// after lastEventID when it is not empty, and sends each `next` event to
// the returned channel, closed when the stream ends.
func partnerSSE(tb testing.TB, ctx context.Context, url, bearer, lastEventID string) <-chan sseAnswer {
	tb.Helper()
	body := `{"query":"subscription { referralChanged { type referralId } }"}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+bearer)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	out := make(chan sseAnswer, 16)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		lines := bufio.NewScanner(resp.Body)
		id := ""
		for lines.Scan() {
			if v, ok := strings.CutPrefix(lines.Text(), "id: "); ok {
				id = v
			}
			if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
				var p struct {
					Data struct {
						ReferralChanged struct{ Type, ReferralID string }
					}
					Errors []gqlError
				}
				_ = json.Unmarshal([]byte(data), &p)
				a := sseAnswer{id: id, answer: p.Data.ReferralChanged.Type + " " + p.Data.ReferralChanged.ReferralID}
				if len(p.Errors) > 0 {
					a.answer = fmt.Sprint(p.Errors[0].Extensions["code"])
				}
				out <- a
				id = ""
			}
		}
	}()
	return out
}
