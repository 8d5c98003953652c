package storage

import (
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// statsDimension describes how one dimension is grouped: the document path
// whose values group it, whether that is a list (a referral then counts
// once in the group of each distinct element), how a stored value reads
// (enums may be stored by position) and where it goes in a StatsKey.
type statsDimension struct {
	path string
	list bool
	read func(bson.RawValue) (string, error)
	set  func(*StatsKey, string)
	// order is the order of the values when sorting by key (lexical when
	// nil); an enum's is the order of its stored positions.
	order []string
}

func readString(v bson.RawValue) (string, error) {
	s, ok := v.StringValueOK()
	if !ok {
		return "", fmt.Errorf("a grouped value is BSON %s, not a string", v.Type)
	}
	return s, nil
}

func readEnum[E ~string](positions []E) func(bson.RawValue) (string, error) {
	return func(v bson.RawValue) (string, error) {
		var e E
		err := unmarshalEnum(&e, positions, byte(v.Type), v.Value)
		return string(e), err
	}
}

func names[E ~string](values []E) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

func setString(f func(*StatsKey) **string) func(*StatsKey, string) {
	return func(k *StatsKey, v string) { *f(k) = &v }
}

var statsDimensions = map[StatsDimension]statsDimension{
	DimStatus: {path: "status", read: readEnum(referralStatusPositions), order: names(referralStatusPositions),
		set: func(k *StatsKey, v string) { s := ReferralStatus(v); k.Status = &s }},
	DimReferralSource: {path: "referralSource", read: readEnum(referralSourcePositions), order: names(referralSourcePositions),
		set: func(k *StatsKey, v string) { s := ReferralSource(v); k.ReferralSource = &s }},
	DimCustomerCountry: {path: "customerProfile.address.country", read: readString,
		set: setString(func(k *StatsKey) **string { return &k.CustomerCountry })},
	DimIndustryFocus: {path: "details.requirements.industryFocus", list: true, read: readString,
		set: setString(func(k *StatsKey) **string { return &k.IndustryFocus })},
	DimProducts: {path: "details.requirements.products", list: true, read: readString,
		set: setString(func(k *StatsKey) **string { return &k.Products })},
	DimServiceTypes: {path: "details.requirements.serviceTypes", list: true, read: readString,
		set: setString(func(k *StatsKey) **string { return &k.ServiceTypes })},
	DimSolutions: {path: "details.requirements.solutions", list: true, read: readString,
		set: setString(func(k *StatsKey) **string { return &k.Solutions })},
	DimParticipantOrganization: {path: "participation.organizationId", list: true, read: readString,
		set: setString(func(k *StatsKey) **string { return &k.ParticipantOrganizationID })},
	DimParticipantStatus: {path: "participation.status", list: true, read: readEnum(participantStatusPositions), order: names(participantStatusPositions),
		set: func(k *StatsKey, v string) { s := ParticipantStatus(v); k.ParticipantStatus = &s }},
	DimCreatedMonth: {path: "periods.createdMonth", read: readString,
		set: setString(func(k *StatsKey) **string { return &k.CreatedMonth })},
	DimCreatedQuarter: {path: "periods.createdQuarter", read: readString,
		set: setString(func(k *StatsKey) **string { return &k.CreatedQuarter })},
	DimClosingMonth: {path: "periods.closingMonth", read: readString,
		set: setString(func(k *StatsKey) **string { return &k.ClosingMonth })},
	DimClosingQuarter: {path: "periods.closingQuarter", read: readString,
		set: setString(func(k *StatsKey) **string { return &k.ClosingQuarter })},
}

// statsSource is one field of the group key the store returns, and the
// dimensions (indexes in the query's GroupBy) it fills.
type statsSource struct {
	path string
	dims []int
	// values reads the field of one row: the alternatives of the values of
	// its dimensions (one for a single value, one per distinct element of
	// a list, none for an empty list).
	values func(bson.RawValue) ([][]*string, error)
	// positions are an enum's values by the position they may be stored
	// as; nil for other values.
	positions []string
}

// statsSources plans the group key of dims. Organization and participant
// status together come from the same participation entry ("org/Status"),
// so a referral counts under each organization with that organization's
// status, not under every pair.
func statsSources(dims []StatsDimension) ([]statsSource, error) {
	var sources []statsSource
	seen := map[StatsDimension]bool{}
	org, status := slices.Index(dims, DimParticipantOrganization), slices.Index(dims, DimParticipantStatus)
	for i, d := range dims {
		def, ok := statsDimensions[d]
		if !ok {
			return nil, badInput(fmt.Sprintf("groupBy[%d]", i), "%q is not a statistics dimension", string(d))
		}
		if seen[d] {
			return nil, badInput(fmt.Sprintf("groupBy[%d]", i), "%s is named twice", string(d))
		}
		seen[d] = true
		switch {
		case org >= 0 && status >= 0 && i == status:
			// filled with the organization
		case org >= 0 && status >= 0 && i == org:
			readStatus := statsDimensions[DimParticipantStatus].read
			sources = append(sources, statsSource{path: "participation.orgStatus", dims: []int{org, status},
				values: listValues(func(v bson.RawValue) ([]*string, error) {
					s, err := readString(v)
					// The status, one of a fixed set, follows the last "/".
					cut := strings.LastIndexByte(s, '/')
					orgID, st := s[:max(cut, 0)], s[cut+1:]
					if err == nil && cut < 0 {
						err = fmt.Errorf("participation entry %q is not organization/status", s)
					}
					if err == nil {
						st, err = readStatus(bson.RawValue{Type: bson.TypeString, Value: bsonString(st)})
					}
					return []*string{&orgID, &st}, err
				})})
		case def.list:
			sources = append(sources, statsSource{path: def.path, dims: []int{i}, positions: def.order, values: listValues(func(v bson.RawValue) ([]*string, error) {
				s, err := def.read(v)
				return []*string{&s}, err
			})})
		default:
			sources = append(sources, statsSource{path: def.path, dims: []int{i}, values: func(v bson.RawValue) ([][]*string, error) {
				if v.IsZero() || v.Type == bson.TypeNull {
					return [][]*string{{nil}}, nil
				}
				s, err := def.read(v)
				return [][]*string{{&s}}, err
			}})
		}
	}
	return sources, nil
}

// StatsListDimensions is how many lists a grouping by dims splits the
// referrals by (organization and participant status together are one):
// each reads every matching referral's elements once more.
func StatsListDimensions(dims []StatsDimension) int {
	n := 0
	for _, d := range dims {
		if statsDimensions[d].list && !(d == DimParticipantStatus && slices.Contains(dims, DimParticipantOrganization)) {
			n++
		}
	}
	return n
}

// bsonString encodes s as a BSON string value.
func bsonString(s string) []byte {
	_, b, _ := bson.MarshalValue(s)
	return b
}

// listValues reads a list field, one alternative per distinct element; a
// missing or null list has none.
func listValues(read func(bson.RawValue) ([]*string, error)) func(bson.RawValue) ([][]*string, error) {
	return func(v bson.RawValue) ([][]*string, error) {
		arr, ok := v.ArrayOK()
		if !ok {
			if v.IsZero() || v.Type == bson.TypeNull {
				return nil, nil
			}
			one, err := read(v) // a single value stored where a list belongs
			return [][]*string{one}, err
		}
		elems, err := arr.Values()
		if err != nil {
			return nil, err
		}
		var out [][]*string
		seen := map[string]bool{}
		for _, e := range elems {
			vals, err := read(e)
			if err != nil {
				return nil, err
			}
			id := keyString(vals)
			if !seen[id] {
				seen[id] = true
				out = append(out, vals)
			}
		}
		return out, nil
	}
}

// keyString identifies a combination of values (nil included) in a map.
func keyString(vals []*string) string {
	var b strings.Builder
	for _, v := range vals {
		if v == nil {
			b.WriteString("\x01")
		} else {
			b.WriteString("\x02" + *v)
		}
		b.WriteByte(0)
	}
	return b.String()
}
