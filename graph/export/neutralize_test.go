package export

import "testing"

// TestNeutralize: a formula sign behind what a spreadsheet skips or does
// not show (a space, a line break, NUL, a zero-width space, a byte order
// mark, a bidi control) is neutralized as one at the start is; text that
// only contains a sign later is left alone (issue 21, 'also' list).
func TestNeutralize(t *testing.T) {
	for _, tt := range []struct{ cell, want string }{
		{"=1+1", "'=1+1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{" =1+1", "' =1+1"},
		{"\n=1+1", "'\n=1+1"},
		{"\r\n-1", "'\r\n-1"},
		{"\x00=1+1", "'\x00=1+1"},
		{"\u200b=HYPERLINK(\"http://evil.example\")", "'\u200b=HYPERLINK(\"http://evil.example\")"},
		{"\ufeff+1", "'\ufeff+1"},
		{"\u202e@x", "'\u202e@x"},
		{" \u200b\n =x", "' \u200b\n =x"},
		{"", ""},
		{"Fourth Coffee", "Fourth Coffee"},
		{" Fourth Coffee", " Fourth Coffee"},
		{"A-1 = B", "A-1 = B"},
		{"\u200b", "\u200b"},
		{"'=x", "''=x"}, // an apostrophe of the value's own before a formula sign
		{"''-1", "'''-1"},
		{"'it's", "'it's"},
	} {
		if got := neutralize(tt.cell); got != tt.want {
			t.Errorf("neutralize(%q) = %q, want %q", tt.cell, got, tt.want)
		}
	}
}
