package main

// TestDocs runs the examples of README.md and docs/*.md. Each file's
// fenced code blocks run in order against a fresh server of its own (an
// empty data directory, the default 200 demo referrals, open development
// mode: what `go run .` serves). The info string after the opening fence
// says what a block is:
//
//	```graphql              a GraphQL request to /query; it must answer without errors.
//	                        A subscription is sent over SSE and stays open while the
//	                        file's later blocks run; it must receive an event by the
//	                        end of the file, without errors.
//	```graphql error=CODE   it must answer with an error whose extensions.code is CODE.
//	```json variables       the variables of the graphql block just before it;
//	                        "$today" and "$today+Nd" stand for dates, as in the
//	                        playground's example tabs (playground.RelativeDates).
//	```sh                   a shell example: it must call curl against
//	                        http://localhost:8080, which is replaced by the test
//	                        server's address; it runs with bash (set -eo pipefail)
//	                        in a temporary directory holding docs/, and must exit 0.
//	```json response        what the graphql or sh block before it answers or prints
//	```text response        (JSON is compared as JSON, text line by line).
//	```graphql norun        shown, not run: it cannot run in a test (a go run, a
//	```sh norun             systemd command, a MongoDB URI, a long benchmark, a
//	                        host name to resolve). Counted and listed with -v; each
//	                        `go test` line in one must name a package that exists
//	                        and patterns that match its tests, benchmarks or fuzz
//	                        targets.
//	```go, ```ini, ```json, ```text   an illustration (code, a unit file, a
//	                        payload, log lines): not run, counted.
//
// A block without an info string, or with one not listed here, fails the
// test, so that no example is skipped silently.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"referrals/graph/playground"
)

// docBlock is one fenced code block of a Markdown file.
type docBlock struct {
	file string
	line int    // of the opening fence
	info string // the info string: "graphql", "sh norun", "json response", …
	body string
}

func (b docBlock) String() string { return fmt.Sprintf("%s:%d (```%s)", b.file, b.line, b.info) }

// docFiles are the Markdown files whose examples TestDocs runs.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("docs/*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("docs/*.md: %v %v", files, err)
	}
	return append([]string{"README.md"}, files...)
}

// readBlocks returns the fenced code blocks of a Markdown file.
func readBlocks(t *testing.T, file string) []docBlock {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []docBlock
	var open *docBlock
	var indent string
	for i, line := range strings.Split(string(src), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if open == nil {
			if strings.HasPrefix(trimmed, "```") {
				indent = line[:len(line)-len(trimmed)]
				open = &docBlock{file: file, line: i + 1, info: strings.TrimSpace(strings.TrimPrefix(trimmed, "```"))}
			}
			continue
		}
		if trimmed == "```" {
			blocks = append(blocks, *open)
			open = nil
			continue
		}
		open.body += strings.TrimPrefix(line, indent) + "\n"
	}
	if open != nil {
		t.Fatalf("%s: unclosed fence", open)
	}
	return blocks
}

// docCounts says what TestDocs did with the blocks it read.
type docCounts struct{ graphql, sh, responses, notRun, illustrations int }

func TestDocs(t *testing.T) {
	var total docCounts
	for _, file := range docFiles(t) {
		t.Run(file, func(t *testing.T) {
			c := runDocFile(t, file)
			total.graphql += c.graphql
			total.sh += c.sh
			total.responses += c.responses
			total.notRun += c.notRun
			total.illustrations += c.illustrations
		})
	}
	t.Logf("ran %d GraphQL and %d shell examples, compared %d responses; %d blocks marked norun, %d illustrations",
		total.graphql, total.sh, total.responses, total.notRun, total.illustrations)
	if total.graphql == 0 || total.sh == 0 || total.responses == 0 {
		t.Errorf("found too few examples: %+v", total)
	}
}

// runDocFile runs one file's examples against a fresh server.
func runDocFile(t *testing.T, file string) docCounts {
	var c docCounts
	blocks := readBlocks(t, file)
	var base string
	server := func() string {
		if base == "" {
			base = startServer(t, "--data-dir", t.TempDir())
		}
		return base
	}
	var subscriptions []*docSubscription
	for i := 0; i < len(blocks); i++ {
		b := blocks[i]
		// next returns the block after i when its info string is info.
		next := func(info string) *docBlock {
			if i+1 < len(blocks) && blocks[i+1].info == info {
				i++
				return &blocks[i]
			}
			return nil
		}
		kind, opts, _ := strings.Cut(b.info, " ")
		switch {
		case b.info == "":
			t.Errorf("%s: a block without an info string: say what it is (see docs_test.go)", b)
		case opts == "norun" && (kind == "graphql" || kind == "sh"):
			c.notRun++
			t.Logf("not run: %s", b)
			checkGoTestCommands(t, b)
		case kind == "graphql" && (opts == "" || strings.HasPrefix(opts, "error=")):
			c.graphql++
			wantCode, _ := strings.CutPrefix(opts, "error=")
			var vars map[string]any
			if v := next("json variables"); v != nil {
				if err := json.Unmarshal([]byte(playground.RelativeDates(v.body, time.Now())), &vars); err != nil {
					t.Errorf("%s: %v", v, err)
				}
			}
			if strings.HasPrefix(strings.TrimSpace(b.body), "subscription") {
				s := subscribe(t, server(), b, vars, wantCode)
				if wantCode == "" {
					subscriptions = append(subscriptions, s)
				}
				continue
			}
			body := graphqlRequest(t, server(), b, vars, wantCode)
			if r := next("json response"); r != nil {
				c.responses++
				sameResponse(t, b, *r, body)
			}
		case b.info == "sh":
			c.sh++
			out := runShell(t, server(), b)
			if r := next("json response"); r != nil {
				c.responses++
				sameResponse(t, b, *r, out)
			} else if r := next("text response"); r != nil {
				c.responses++
				sameResponse(t, b, *r, out)
			}
		case opts == "" && slices.Contains([]string{"go", "ini", "json", "text"}, kind):
			c.illustrations++
		default:
			t.Errorf("%s: an info string docs_test.go does not know, or a response or variables block after no example", b)
		}
	}
	for _, s := range subscriptions {
		s.await(t)
	}
	return c
}

// graphqlRequest posts the block's document with vars and checks that it
// answers without errors, or with wantCode. It returns the body.
func graphqlRequest(t *testing.T, base string, b docBlock, vars map[string]any, wantCode string) string {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"query": b.body, "variables": vars})
	resp, err := http.Post(base+"/query", "application/json", bytes.NewReader(req))
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var got struct {
		Data   any
		Errors []struct {
			Message    string
			Extensions struct{ Code string }
		}
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Errorf("%s: status %d, body %.300s: %v", b, resp.StatusCode, body, err)
		return string(body)
	}
	checkErrors(t, b, wantCode, got.Data, got.Errors)
	return string(body)
}

// checkErrors: no errors and some data when wantCode is empty, else an
// error coded wantCode.
func checkErrors(t *testing.T, b docBlock, wantCode string, data any, errs []struct {
	Message    string
	Extensions struct{ Code string }
}) {
	t.Helper()
	if wantCode == "" {
		if len(errs) > 0 || data == nil {
			t.Errorf("%s: errors %+v, want data and none", b, errs)
		}
		return
	}
	for _, e := range errs {
		if e.Extensions.Code == wantCode {
			return
		}
	}
	t.Errorf("%s: errors %+v, want one coded %s", b, errs, wantCode)
}

// docSubscription is a subscription example open over SSE.
type docSubscription struct {
	b      docBlock
	events chan string // the data of each `next` event
	cancel context.CancelFunc
}

// subscribe opens the block's subscription over SSE. With wantCode it
// checks the first event holds that error; else it returns once the
// server serves the subscription, so the changes made after it reach it.
func subscribe(t *testing.T, base string, b docBlock, vars map[string]any, wantCode string) *docSubscription {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &docSubscription{b: b, events: make(chan string, 16), cancel: cancel}
	before := subscriptionsServed(t, base)
	body, _ := json.Marshal(map[string]any{"query": b.body, "variables": vars})
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	go func() {
		defer resp.Body.Close()
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			if e, ok := strings.CutPrefix(line, "event: "); ok {
				event = e
			}
			if d, ok := strings.CutPrefix(line, "data: "); ok && event == "next" {
				s.events <- d
			}
		}
	}()
	if wantCode != "" {
		s.await(t, wantCode)
		cancel()
		return s
	}
	deadline := time.Now().Add(10 * time.Second)
	for subscriptionsServed(t, base) <= before {
		select {
		case d := <-s.events:
			t.Fatalf("%s: an event before any change: %.300s", b, d)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the server never served the subscription", b)
		}
	}
	return s
}

// await waits for the subscription's first event and checks it: without
// errors, or with an error coded wantCode.
func (s *docSubscription) await(t *testing.T, wantCode ...string) {
	t.Helper()
	defer s.cancel()
	select {
	case d, ok := <-s.events:
		if !ok {
			t.Errorf("%s: the stream ended without an event", s.b)
			return
		}
		var got struct {
			Data   any
			Errors []struct {
				Message    string
				Extensions struct{ Code string }
			}
		}
		if err := json.Unmarshal([]byte(d), &got); err != nil {
			t.Errorf("%s: event %.300s: %v", s.b, d, err)
			return
		}
		checkErrors(t, s.b, strings.Join(wantCode, ""), got.Data, got.Errors)
	case <-time.After(10 * time.Second):
		t.Errorf("%s: no event within 10 s: the examples after it in the file make no change it receives", s.b)
	}
}

// subscriptionsServed reads the graphql_subscriptions gauge.
func subscriptionsServed(t *testing.T, base string) int {
	t.Helper()
	_, metrics := httpGet(t, base+"/metrics")
	n := -1
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, "graphql_subscriptions "); ok {
			fmt.Sscan(v, &n)
		}
	}
	if n < 0 {
		t.Fatal("/metrics has no graphql_subscriptions")
	}
	return n
}

// runShell runs a sh block against the server at base and returns what
// it printed.
func runShell(t *testing.T, base string, b docBlock) string {
	t.Helper()
	if !strings.Contains(b.body, "curl") || !strings.Contains(b.body, "http://localhost:8080/") {
		t.Errorf("%s: a sh example must call curl against http://localhost:8080 (mark others norun)", b)
		return ""
	}
	docs, err := filepath.Abs("docs")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(docs, filepath.Join(dir, "docs")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -eo pipefail\n"+strings.ReplaceAll(b.body, "http://localhost:8080", base))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TOKEN=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Errorf("%s: %v\nstdout: %.500s\nstderr: %.500s", b, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// sameResponse compares what an example answered with the response block
// shown after it: as JSON values when the block is JSON (one value or one
// a line), else as text, line by line, trailing spaces aside.
func sameResponse(t *testing.T, b, shown docBlock, got string) {
	t.Helper()
	if strings.HasPrefix(shown.info, "json") {
		want, err1 := jsonValues(shown.body)
		have, err2 := jsonValues(got)
		if err1 != nil {
			t.Errorf("%s: %v", shown, err1)
		} else if err2 != nil || !reflect.DeepEqual(want, have) {
			t.Errorf("%s answered\n%s\nwhich is not what %s shows:\n%s", b, got, shown, shown.body)
		}
		return
	}
	norm := func(s string) string {
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			lines = append(lines, strings.TrimRight(l, " \t\r"))
		}
		return strings.Join(lines, "\n")
	}
	if norm(got) != norm(shown.body) {
		t.Errorf("%s printed\n%s\nwhich is not what %s shows:\n%s", b, got, shown, shown.body)
	}
}

// jsonValues decodes every JSON value of s.
func jsonValues(s string) ([]any, error) {
	d := json.NewDecoder(strings.NewReader(s))
	var out []any
	for {
		var v any
		if err := d.Decode(&v); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

var (
	goTestLine = regexp.MustCompile(`go test ([^\n]*)`)
	goTestArg  = regexp.MustCompile(`'[^']*'|"[^"]*"|\S+`)
)

// checkGoTestCommands: each `go test` command of a block that is not run
// names a package directory that exists, and its -run, -bench and -fuzz
// patterns match a test, benchmark or fuzz target declared there.
func checkGoTestCommands(t *testing.T, b docBlock) {
	t.Helper()
	for _, m := range goTestLine.FindAllStringSubmatch(b.body, -1) {
		args := goTestArg.FindAllString(strings.SplitN(m[1], "#", 2)[0], -1)
		pkg := "."
		funcs := map[string][]string{}
		for i, a := range args {
			if strings.HasPrefix(a, "./") || a == "." {
				pkg = strings.TrimSuffix(a, "/...")
			}
			prefix := map[string]string{"-run": "Test", "-bench": "Benchmark", "-fuzz": "Fuzz"}[a]
			if prefix == "" || i+1 >= len(args) {
				continue
			}
			pattern := strings.Trim(args[i+1], `'"`)
			if pattern == "^$" || pattern == "." {
				continue
			}
			funcs[prefix] = append(funcs[prefix], strings.Split(pattern, "/")[0])
		}
		declared := testFuncs(t, pkg)
		if declared == nil {
			t.Errorf("%s: `go test %s`: no test files in %s", b, m[1], pkg)
			continue
		}
		for prefix, patterns := range funcs {
			for _, p := range patterns {
				re, err := regexp.Compile(p)
				if err != nil {
					t.Errorf("%s: `go test %s`: %v", b, m[1], err)
					continue
				}
				if !slices.ContainsFunc(declared, func(name string) bool { return strings.HasPrefix(name, prefix) && re.MatchString(name) }) {
					t.Errorf("%s: `go test %s`: no %s… in %s matches %q", b, m[1], prefix, pkg, p)
				}
			}
		}
	}
}

// testFuncs lists the top-level functions of a directory's test files.
func testFuncs(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
	var names []string
	for _, f := range files {
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil {
				names = append(names, fn.Name.Name)
			}
		}
	}
	return names
}

// TestDocsConfiguration: the README's configuration table has a row for
// every flag, naming its environment variable.
func TestDocsConfiguration(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	fs, _, _ := newFlags(&config{demo: -1})
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		row := fmt.Sprintf("\n| `--%s` | `%s` |", f.Name, envNames[f.Name])
		if !strings.Contains(string(readme), row) {
			t.Errorf("the README's configuration table has no row starting %q", strings.TrimSpace(row))
		}
	})
	if n < 20 {
		t.Errorf("%d flags", n)
	}
}

// TestLayout holds docs/development.md's table of packages against the
// code: every package has a row, and imports of this module exactly the
// packages its row names ("all below": every package after it; "none":
// none), each of which comes after it in the table, so that no import
// runs back up.
func TestLayout(t *testing.T) {
	doc, err := os.ReadFile("docs/development.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(doc), "\n## Layout\n")
	if !ok {
		t.Fatal("docs/development.md has no Layout section")
	}
	var order []string
	listed := map[string][]string{}
	cell := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(layout, "\n") {
		cols := strings.Split(line, " | ")
		if !strings.HasPrefix(line, "| `") || len(cols) != 3 {
			continue
		}
		pkg := cell.FindStringSubmatch(cols[0])[1]
		if pkg == "." {
			pkg = ""
		}
		order = append(order, pkg)
		imports := strings.TrimSuffix(cols[2], " |")
		switch imports {
		case "none":
			listed[pkg] = []string{}
		case "all below":
			listed[pkg] = nil // filled in once the order is known
		default:
			for _, m := range cell.FindAllStringSubmatch(imports, -1) {
				listed[pkg] = append(listed[pkg], m[1])
			}
		}
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}:{{join .Imports \" \"}}", "./...").Output()
	if err != nil {
		t.Fatal(err)
	}
	actual := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, imports, _ := strings.Cut(line, ":")
		pkg := strings.TrimPrefix(strings.TrimPrefix(path, "referrals"), "/")
		actual[pkg] = []string{}
		for _, imp := range strings.Fields(imports) {
			if local, ok := strings.CutPrefix(imp, "referrals/"); ok {
				actual[pkg] = append(actual[pkg], local)
			}
		}
	}
	testOnly := map[string]bool{"storage/storagetest": true, "storage/embedded/embeddedtest": true,
		"graph/transport/transporttest": true, "internal/testclock": true}
	position := map[string]int{}
	for i, pkg := range order {
		position[pkg] = i
	}
	for pkg, imports := range actual {
		i, ok := position[pkg]
		switch {
		case testOnly[pkg]:
			continue
		case !ok:
			t.Errorf("package %q has no row in docs/development.md's Layout", pkg)
			continue
		}
		want := listed[pkg]
		if want == nil { // all below
			for _, other := range order[i+1:] {
				if slices.Contains(imports, other) {
					want = append(want, other)
				}
			}
		}
		got := slices.Sorted(slices.Values(imports))
		wantSorted := slices.Sorted(slices.Values(want))
		if !slices.Equal(got, wantSorted) {
			t.Errorf("package %q imports %v; its Layout row says %v", pkg, got, wantSorted)
		}
		for _, imp := range imports {
			if j, ok := position[imp]; ok && j <= i {
				t.Errorf("package %q imports %q, which comes before it in the Layout: an import running back up", pkg, imp)
			}
		}
	}
}
