package storage

import (
	"math"
	"strconv"
	"strings"
)

// Money is an exact amount in hundredths (cents). It is stored as a BSON
// int64: exact, sortable and range-filterable on every MongoDB-compatible
// store, including those without Decimal128.
type Money int64

// maxMoneyUnits bounds the integer part so that the amount in cents fits
// an int64; at that bound the cents may be at most math.MaxInt64 % 100.
const maxMoneyUnits = math.MaxInt64 / 100

// ParseMoney reads a plain decimal such as "1250", "1250.5" or "-3.25" with
// at most two decimal places. Exponents, separators and more decimals are
// rejected rather than rounded: money is never silently changed.
func ParseMoney(s string) (Money, error) {
	invalid := Errorf(CodeBadUserInput, "%.40q is not a decimal amount with at most 2 decimal places", s)
	neg := strings.HasPrefix(s, "-")
	body := strings.TrimPrefix(s, "-")
	whole, frac, hasPoint := strings.Cut(body, ".")
	if whole == "" || len(frac) > 2 || (hasPoint && frac == "") || !allDigits(whole) || !allDigits(frac) {
		return 0, invalid
	}
	units, err := strconv.ParseInt(whole, 10, 64)
	cents := int64(0)
	if frac != "" {
		cents, _ = strconv.ParseInt((frac + "0")[:2], 10, 64)
	}
	if err != nil || units > maxMoneyUnits || (units == maxMoneyUnits && cents > math.MaxInt64%100) {
		return 0, Errorf(CodeBadUserInput, "%.40q is too large an amount: at most %d.%02d", s, maxMoneyUnits, math.MaxInt64%100)
	}
	m := units*100 + cents
	if neg {
		m = -m
	}
	return Money(m), nil
}

// String formats the amount with exactly two decimal places ("1250.50").
func (m Money) String() string {
	v := int64(m)
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return sign + strconv.FormatInt(v/100, 10) + "." + strconv.FormatInt(v%100/10, 10) + strconv.FormatInt(v%10, 10)
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
