package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"referrals/graph/importer"
	"referrals/storage"
)

// importMedia is the Content-Type of a file to import, by its extension.
var importMedia = map[string]string{
	".jsonl": importer.MediaNDJSON, ".ndjson": importer.MediaNDJSON,
	".json": importer.MediaJSON, ".csv": importer.MediaCSV,
}

// importCommand is `referrals import [--url URL] [--token T] [--dry-run]
// [--overwrite] FILE`: it posts FILE to the server's POST
// /import/referrals, prints each record in error or skipped and the
// summary on out, and, when progress is a
// terminal, a progress bar there. It returns the exit status: 0 when every
// record was imported (or would be, in a dry run), 1 when a record failed,
// the server refused the file or the import did not complete, 2 for a
// mistake on the command line.
func importCommand(ctx context.Context, args []string, getenv func(string) string, out, progress io.Writer, terminal bool) int {
	fs := flag.NewFlagSet("referrals import", flag.ContinueOnError)
	base := fs.String("url", "", "the server's base URL (env REFERRALS_URL; default http://localhost:8080)")
	token := fs.String("token", "", "an administrator's bearer token (env REFERRALS_TOKEN; none for a server in open development mode)")
	dryRun := fs.Bool("dry-run", false, "validate and report each record without writing anything")
	overwrite := fs.Bool("overwrite", false, "update stored referrals that differ whatever their updatedDateTime (mode=overwrite)")
	fs.SetOutput(progress)
	fs.Usage = func() {
		fmt.Fprintln(progress, "usage: referrals import [--url URL] [--token T] [--dry-run] [--overwrite] FILE (.jsonl, .ndjson, .json or .csv)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(status int, format string, a ...any) int {
		fmt.Fprintf(progress, "import: "+format+"\n", a...)
		return status
	}
	if fs.NArg() != 1 {
		return fail(2, "give one FILE to import")
	}
	name := fs.Arg(0)
	media, ok := importMedia[strings.ToLower(filepath.Ext(name))]
	if !ok {
		return fail(2, "%s: the extension says neither JSON Lines (.jsonl, .ndjson), JSON (.json) nor CSV (.csv)", name)
	}
	if *base == "" {
		*base = getenv("REFERRALS_URL")
	}
	if *base == "" {
		*base = "http://localhost:8080"
	}
	if *token == "" {
		*token = getenv("REFERRALS_TOKEN")
	}
	file, err := os.Open(name)
	if err != nil {
		return fail(1, "%v", err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return fail(1, "%v", err)
	}
	target := strings.TrimSuffix(*base, "/") + "/import/referrals"
	query := url.Values{}
	if *dryRun {
		query.Set("dryRun", "true")
	}
	if *overwrite {
		query.Set("mode", "overwrite")
	}
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var body io.Reader = file
	var bar *progressbar.ProgressBar
	if terminal {
		bar = progressbar.NewOptions64(info.Size(),
			progressbar.OptionSetWriter(progress), progressbar.OptionShowBytes(true), progressbar.OptionShowTotalBytes(true),
			progressbar.OptionSetPredictTime(true), progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish(),
			progressbar.OptionSetDescription("0 records"), progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionSetRenderBlankState(true))
		r := progressbar.NewReader(file, bar)
		body = &r
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, body)
	if err != nil {
		return fail(2, "--url: %v", err)
	}
	req.ContentLength = info.Size()
	req.Header.Set("Content-Type", media)
	if *token != "" { // none for a server in open development mode
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail(1, "%v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return fail(1, "the server refused the file: %s %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return printReports(resp.Body, out, bar)
}

// printReports prints the records in error or skipped and the summary of
// an import's response, and returns the exit status.
func printReports(body io.Reader, out io.Writer, bar *progressbar.ProgressBar) int {
	lines := bufio.NewScanner(body)
	lines.Buffer(make([]byte, 0, 64<<10), 1<<20)
	start, records := time.Now(), 0
	var sum *importer.Summary
	for lines.Scan() {
		var rep struct {
			importer.Report
			importer.Summary
		}
		if err := json.Unmarshal(lines.Bytes(), &rep); err != nil {
			fmt.Fprintf(out, "import: the server answered %.200q, not a report: %v\n", lines.Text(), err)
			return 1
		}
		if rep.Outcome == "" {
			sum = &rep.Summary
			break
		}
		records++
		if bar != nil {
			bar.Describe(fmt.Sprintf("%d records, %.0f/s", records, float64(records)/max(time.Since(start).Seconds(), 1e-3)))
		}
		if rep.Outcome != importer.OutcomeError && rep.Outcome != string(storage.ImportSkipped) {
			continue
		}
		if bar != nil {
			_ = bar.Clear()
		}
		at := fmt.Sprintf("line %d", rep.Line)
		if rep.Index != nil {
			at += fmt.Sprintf(" (element %d)", *rep.Index)
		}
		if rep.ID != "" {
			at += " " + rep.ID
		}
		what := rep.Code // an error's code and field, or "skipped"
		if rep.Outcome != importer.OutcomeError {
			what = rep.Outcome
		}
		if rep.Field != "" {
			what += " " + rep.Field
		}
		fmt.Fprintf(out, "%s: %s: %s\n", at, what, rep.Message)
	}
	if bar != nil {
		_ = bar.Finish()
	}
	if sum == nil {
		err := lines.Err()
		if err == nil {
			err = errors.New("the response ended before its summary")
		}
		fmt.Fprintf(out, "import: %v: the import may not have finished; import the file again to finish it\n", err)
		return 1
	}
	s := sum.Summary
	verb := "imported"
	if s.DryRun {
		verb = "dry run, nothing written"
	}
	fmt.Fprintf(out, "%s: %d created, %d updated, %d unchanged, %d skipped, %d errors, of %d lines\n",
		verb, s.Created, s.Updated, s.Unchanged, s.Skipped, s.Error, s.Lines)
	if !s.Complete {
		fmt.Fprintln(out, "the import stopped before the end of the file (see the last error)")
		return 1
	}
	if s.Error > 0 {
		return 1
	}
	return 0
}
