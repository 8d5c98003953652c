package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium package, which .ci/setup installs.
const chromiumPath = "/usr/bin/chromium"

// browserDeadline bounds each step of a browser test, so that one whose
// condition never comes true fails instead of hanging. It is no measure
// of speed: a step takes well under a second here.
const browserDeadline = 30 * time.Second

// The GraphiQL elements the tests use.
const (
	queryEditor   = chromedp.CSS(".graphiql-query-editor .CodeMirror")
	executeButton = chromedp.CSS(".graphiql-execute-button")
)

// liveSubscription is what the tests subscribe to in the page.
const liveSubscription = `subscription Live { referralChanged { type referral { id customerProfile { name } } } }`

// TestPlaygroundInBrowser (issue 10, item 4) opens the playground in
// headless Chromium with every host but the server unreachable: GraphiQL
// renders with its example tabs, the explorer plugin and the docs list
// `referrals`, a query typed
// into the editor runs and its result shows, and a subscription started
// in the page receives the event of a mutation made meanwhile. No request
// leaves the server's origin, and no Content-Security-Policy violation or
// script error happens. With PLAYGROUND_SCREENSHOT=file.png it writes a
// screenshot of the query and its result there (docs/playground.png).
func TestPlaygroundInBrowser(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "5")
	b := openBrowser(t, base)
	examples, err := filepath.Glob("graph/playground/examples/*.graphql")
	if err != nil || len(examples) == 0 {
		t.Fatalf("example tabs: %v %v", examples, err)
	}

	b.do(t, "GraphiQL renders with the example tabs",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(queryEditor),
		await(fmt.Sprintf(`document.querySelectorAll('.graphiql-tab').length === %d`, len(examples))))

	b.do(t, "the explorer plugin lists referrals",
		chromedp.Click(chromedp.CSS(`[aria-label="Show GraphiQL Explorer"]`)),
		await(`document.querySelector('.graphiql-explorer-root')?.textContent.includes('referrals')`))

	b.do(t, "the documentation explorer lists referrals",
		chromedp.Click(chromedp.CSS(`[aria-label="Show Documentation Explorer"]`)),
		chromedp.Click(chromedp.Search(`//a[contains(@class, "graphiql-doc-explorer-type-name")][text()="Query"]`)),
		await(`[...document.querySelectorAll('.graphiql-doc-explorer-field-name')].some(e => e.textContent === 'referrals')`))

	b.do(t, "a query typed into the editor of a new tab runs and its result shows",
		chromedp.Click(chromedp.CSS(`[aria-label="New tab"]`)),
		await(fmt.Sprintf(`document.querySelectorAll('.graphiql-tab').length === %d`, len(examples)+1)),
		typeOperation("ThreeReferrals", `query ThreeReferrals { referrals(first: 3) { totalCount nodes { status customerProfile { name address { country } } details { dealValue } } } }`),
		chromedp.Click(chromedp.CSS(`[aria-label="Prettify query (Shift-Ctrl-P)"]`)),
		chromedp.Click(executeButton),
		await(`responseText().includes('"totalCount": 5')`))
	if path := os.Getenv("PLAYGROUND_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	b.do(t, "a subscription typed into the editor starts",
		typeOperation("Live", liveSubscription),
		chromedp.Click(executeButton))
	b.awaitSubscribers(t, base, "", 1)
	id := createReferral(t, b.ctx, base, "", "Browser Test Ltd")
	b.do(t, "the subscription receives the mutation's event",
		await(fmt.Sprintf(`responseText().includes(%q) && responseText().includes('"CREATED"')`, id)))

	b.assertClean(t)
}

// TestPlaygroundWithTokens (issue 10, item 3): when the server requires
// tokens, the page says how to send one and shows the headers editor, and
// the token put there reaches the server, over WebSocket too.
func TestPlaygroundWithTokens(t *testing.T) {
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "0", "--jwt-secret", edgeSecret, "--introspection", "true")
	b := openBrowser(t, base)
	token := adminToken(t)

	b.do(t, "the page says how to send the token, in the headers editor it shows",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("notice")),
		await(`document.getElementById('notice').textContent.includes('{"Authorization": "Bearer <token>"}')`),
		await(`headersText().includes('"Authorization": "Bearer <token>"')`))

	b.do(t, "a subscription sends the token of the headers editor",
		typeOperation("Live", liveSubscription),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`headersEditor().setValue(%q)`, `{"Authorization": "Bearer `+token+`"}`)),
		chromedp.Click(executeButton))
	b.awaitSubscribers(t, base, token, 1)
	id := createReferral(t, b.ctx, base, token, "Token Test Ltd")
	b.do(t, "the subscription receives the mutation's event",
		await(fmt.Sprintf(`responseText().includes(%q)`, id)))

	b.assertClean(t)
}

// browser is a headless Chromium tab that may reach only the server at
// origin, and records what it tried beyond.
type browser struct {
	ctx    context.Context
	origin *url.URL

	mu         sync.Mutex
	foreign    []string // requests to other origins, refused
	exceptions []string // uncaught script errors
}

// pageHelpers is evaluated in every document before its own scripts: it
// records Content-Security-Policy violations, and gives the conditions
// the tests await a way to read GraphiQL's editors (CodeMirror renders
// only the lines in view).
const pageHelpers = `
window.cspViolations = [];
document.addEventListener('securitypolicyviolation', e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));
window.responseText = () => document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() ?? '';
// The headers editor, when it is the one shown.
window.headersEditor = () => document.querySelector(
  'section.graphiql-editor-tool[aria-label="Headers"] .graphiql-editor:not(.hidden) .CodeMirror')?.CodeMirror;
window.headersText = () => headersEditor()?.getValue() ?? '';
`

// openBrowser starts Chromium for the server at base; it stops with the
// test. The test fails, saying how to install Chromium, when it is
// missing.
func openBrowser(t *testing.T, base string) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser tests need Chromium at %s: run `bash .ci/setup` (it installs Debian's chromium)", chromiumPath)
	}
	origin, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		// No name resolves: only the server's address is reachable.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(1440, 900),
	)
	ctx, cancel := context.WithCancel(context.Background())
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	ctx, cancelTab := chromedp.NewContext(ctx)
	b := &browser{ctx: ctx, origin: origin}
	// The first action binds the browser's life to its context: this one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	if err := chromedp.Listen(ctx, b.observe); err != nil {
		t.Fatal(err)
	}
	// Every request pauses until the test lets it through or fails it.
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	guarded := make(chan struct{})
	go func() {
		defer close(guarded)
		for ev, err := range paused {
			if err != nil {
				return
			}
			if b.check(ev.Request.URL) {
				_, _ = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
			} else {
				_, _ = chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonBlockedByClient})
			}
		}
	}()
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancel()
		<-guarded
	})
	for _, step := range []error{
		call(ctx, network.Enable, network.EnableParams{}),
		call(ctx, fetch.Enable, fetch.EnableParams{}),
		call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: pageHelpers}),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	return b
}

// call runs a protocol command whose result is of no interest.
func call[P, R any](ctx context.Context, cmd cdp.Command[P, R], params P) error {
	_, err := chromedp.Call(ctx, cmd, params)
	return err
}

// observe records the requests, WebSocket connections and script errors
// of the tab. It runs in the tab's event loop, in order, and returns at
// once.
func (b *browser) observe(ev any) {
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.check(ev.Request.URL)
	case *network.EventWebSocketCreated:
		b.check(ev.URL)
	case *runtime.EventExceptionThrown:
		b.mu.Lock()
		b.exceptions = append(b.exceptions, fmt.Sprintf("%s %s:%d", ev.ExceptionDetails.Text, ev.ExceptionDetails.URL, ev.ExceptionDetails.LineNumber))
		b.mu.Unlock()
	}
}

// check says whether raw is on the server's origin (for a WebSocket, its
// host), or a data: URL, and records it otherwise.
func (b *browser) check(raw string) bool {
	u, err := url.Parse(raw)
	if err == nil && (u.Scheme == "data" || (u.Host == b.origin.Host && (u.Scheme == b.origin.Scheme || u.Scheme == "ws"))) {
		return true
	}
	b.mu.Lock()
	b.foreign = append(b.foreign, raw)
	b.mu.Unlock()
	return false
}

// do runs the actions of one step, failing the test with the step's name.
func (b *browser) do(t *testing.T, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserDeadline)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(t, "%s: %v", step, err)
	}
}

// fail ends the test with what the page did that it should not have and
// what its response pane shows, then the message.
func (b *browser) fail(t *testing.T, format string, args ...any) {
	t.Helper()
	b.reportRecorded(t)
	ctx, cancel := context.WithTimeout(b.ctx, browserDeadline)
	defer cancel()
	if response, err := chromedp.Run(ctx, chromedp.Evaluate[string](`responseText()`)); err == nil {
		t.Logf("GraphiQL's response pane shows: %s", response)
	}
	t.Fatalf(format, args...)
}

// await waits until the JavaScript condition holds in the page, checked
// on every animation frame, never by a timer; browserDeadline bounds it.
func await(condition string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](condition, chromedp.WithPollingTimeout(0))
}

// typeOperation replaces the text of the query editor with op, typed as
// an input method would, and waits until GraphiQL has taken it in: it
// does so a moment after an edit (a debounce), and then names the tab
// after the operation. Running it before then would send the operation
// name of what the editor held before.
func typeOperation(name, op string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		return chromedp.Do(ctx,
			chromedp.Click(queryEditor),
			chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
			insertText(op),
			await(fmt.Sprintf(`document.querySelector('.graphiql-tab-active')?.textContent.includes(%q)`, name)))
	})
}

// insertText types text at the cursor, as an input method would.
func insertText(text string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, input.InsertText, input.InsertTextParams{Text: text})
		return err
	})
}

// assertClean fails the test for every policy violation, every request
// that left the origin and every script error.
func (b *browser) assertClean(t *testing.T) {
	t.Helper()
	violations, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`window.cspViolations`))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range violations {
		t.Errorf("Content-Security-Policy violation: %s", v)
	}
	b.reportRecorded(t)
}

// reportRecorded fails the test for every request that left the origin
// and every script error recorded so far.
func (b *browser) reportRecorded(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, u := range b.foreign {
		t.Errorf("the page requested %s, outside %s", u, b.origin)
	}
	for _, e := range b.exceptions {
		t.Errorf("script error: %s", e)
	}
}

// awaitSubscribers waits until the server serves n subscriptions (its
// graphql_subscriptions gauge): from then on, a change reaches them.
// token is an admin's, or "" in open mode.
func (b *browser) awaitSubscribers(t *testing.T, base, token string, n int) {
	t.Helper()
	header := map[string]string{}
	if token != "" {
		header["Authorization"] = "Bearer " + token
	}
	want := fmt.Sprintf("\ngraphql_subscriptions %d\n", n)
	deadline := time.After(browserDeadline)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, metrics := request(t, b.ctx, "GET", base+"/metrics", "", header); strings.Contains(metrics, want) {
			return
		}
		select {
		case <-deadline:
			b.fail(t, "the server never served %d subscription(s)", n)
		case <-tick.C:
		}
	}
}

// createReferral creates a referral in GB over HTTP, with token when not
// empty, and returns its id.
func createReferral(t *testing.T, ctx context.Context, base, token, name string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"query": `mutation($name: String!) { createReferral(input: {
			referralSource: PARTNER_LED, customerProfile: { name: $name, address: { addressLine1: "1 Stonegate", city: "York", country: "GB" } }
			details: { dealValue: "1000", closingDate: "2027-03-31T00:00:00Z" } }) { id } }`,
		"variables": map[string]any{"name": name},
	})
	header := map[string]string{"Content-Type": "application/json"}
	if token != "" {
		header["Authorization"] = "Bearer " + token
	}
	status, resp := request(t, ctx, "POST", base+"/query", string(body), header)
	var out struct {
		Data struct{ CreateReferral struct{ ID string } }
	}
	if err := json.Unmarshal([]byte(resp), &out); err != nil || status != 200 || out.Data.CreateReferral.ID == "" {
		t.Fatalf("createReferral: %d %s", status, resp)
	}
	return out.Data.CreateReferral.ID
}
