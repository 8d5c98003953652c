package sqlplan

import (
	"database/sql/driver"
	"regexp"
	"sync"

	"modernc.org/sqlite"
)

// regexpFunction is the SQL function the planner matches $regex with:
// regexpFunction(value, pattern) is 1 where the string value matches the
// Go regular expression pattern, 0 otherwise (and for non-strings).
const regexpFunction = "referrals_regexp"

var registered = sync.OnceValue(func() error {
	return sqlite.RegisterDeterministicScalarFunction(regexpFunction, 2, matchRegexp)
})

// compiled caches the patterns of recent filters, each compiled once per
// query rather than once per row. It is emptied when full: patterns come
// from callers, and a cache of every one they send would grow without end.
var compiled struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}

// maxCompiled bounds compiled.
const maxCompiled = 256

// Register makes regexpFunction available to the SQLite connections opened
// after it; it is safe to call more than once.
func Register() error { return registered() }

func matchRegexp(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	s, ok := args[0].(string)
	pattern, _ := args[1].(string)
	if !ok {
		return int64(0), nil
	}
	compiled.Lock()
	re := compiled.m[pattern]
	if re == nil {
		var err error
		if re, err = regexp.Compile(pattern); err != nil {
			compiled.Unlock()
			return nil, err
		}
		if len(compiled.m) >= maxCompiled || compiled.m == nil {
			compiled.m = map[string]*regexp.Regexp{}
		}
		compiled.m[pattern] = re
	}
	compiled.Unlock()
	if re.MatchString(s) {
		return int64(1), nil
	}
	return int64(0), nil
}
