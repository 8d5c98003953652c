package importer

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"referrals/storage"
)

// TestDecodeNamesTypeErrors: a value of the wrong JSON type is an error on
// its field, said in JSON's terms and in the record's naming, never in
// Go's (it read "cannot unmarshal string into Go struct field
// record.version of type int64").
func TestDecodeNamesTypeErrors(t *testing.T) {
	for _, c := range []struct{ line, field, message string }{
		{`{"id":"a","version":"x"}`, "version", "is a string: give an integer"},
		{`{"id":"a","version":1.5}`, "version", "is the number 1.5: give an integer"},
		{`{"id":"a","customerProfile":{"contacts":5}}`, "customerProfile.contacts", "is a number: give a list (a JSON array)"},
		{`{"id":"a","customerProfile":{"name":true}}`, "customerProfile.name", "is a boolean: give a string"},
		{`{"id":"a","customerProfile":[]}`, "customerProfile", "is an array: give an object"},
		{`{"Id":"a","CustomerProfile":{"Contacts":{}}}`, "CustomerProfile.Contacts", "is an object: give a list (a JSON array)"},
	} {
		_, id, _, err := decode([]byte(c.line))
		var se *storage.Error
		if !errors.As(err, &se) || strings.Join(se.Field, ".") != c.field || se.Message != c.message || id != "a" {
			t.Errorf("%s: got %v (id %q), want %q on %s", c.line, err, id, c.message, c.field)
		}
		if strings.Contains(err.Error(), "Go ") || strings.Contains(err.Error(), "struct") {
			t.Errorf("%s: %v names Go's types", c.line, err)
		}
	}
}

// TestDeepRecordsAreRefusedCheaply: a record nested deeper than a
// referral is is an error naming where, found after reading at most
// maxDepth levels: a line of 20,000 brackets allocates kilobytes, not the
// hundreds of megabytes a path per level cost (a line of 200,000 grew the
// server to 24 GB until the kernel killed it).
func TestDeepRecordsAreRefusedCheaply(t *testing.T) {
	for _, line := range []string{
		strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000),
		`{"id":"deep","details":{"notes":` + strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000) + `}}`,
		`{"Id":"deep","Details":` + strings.Repeat(`{"Notes":`, 20) + `1` + strings.Repeat("}", 21),
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, _, err := decode([]byte(line))
		runtime.ReadMemStats(&after)
		var se *storage.Error
		if !errors.As(err, &se) || !strings.Contains(se.Message, "nested more than 16 levels") {
			t.Errorf("%.40s…: got %v, want an error on nesting", line, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
			t.Errorf("%.40s…: decoding allocated %d MB", line, grew>>20)
		}
	}
}

// TestSpecTagsEitherWay: the specification names a tag's id "Id" in its
// table and "id" in its examples; a PascalCase record takes either (its
// own examples were refused as mixing namings).
func TestSpecTagsEitherWay(t *testing.T) {
	for _, tag := range []string{`{"Id":"Azure"}`, `{"id":"Azure"}`} {
		line := `{"Id":"t","CreatedDateTime":"2026-03-05T08:00:00Z","UpdatedDateTime":"2026-03-05T08:00:00Z","Status":"Pending","ReferralSource":"P2P",` +
			`"Details":{"Requirements":{"Products":[` + tag + `]}}}`
		rec, _, naming, err := decode([]byte(line))
		if err != nil || naming != namingSpec || len(rec.Referral.Details.Requirements.Products) != 1 || rec.Referral.Details.Requirements.Products[0] != "Azure" {
			t.Errorf("tag %s: %+v, %v", tag, rec, err)
		}
	}
	if _, _, _, err := decode([]byte(`{"Id":"t","Details":{"notes":"x"}}`)); err == nil {
		t.Error("a camelCase name elsewhere in a PascalCase record is still refused")
	}
}

// TestDecodeMessages: what an outside tester met: a record that is not an
// object named Go's types, a missing date was "\"\" is not an RFC 3339
// date-time", and P2P was offered twice.
func TestDecodeMessages(t *testing.T) {
	for _, c := range []struct{ line, field, message string }{
		{`[1]`, "", "is an array: give an object, one referral"},
		{`{"id":"a"}`, "createdDateTime", `is required: an RFC 3339 date-time such as "2026-03-01T09:30:00Z"`},
		{`{"id":"a","createdDateTime":"2026-03-01T09:30:00Z","updatedDateTime":"2026-03-01T09:30:00Z","status":"PENDING","referralSource":"p2p"}`, "referralSource",
			`"p2p" is not one of WEB_DIRECT, WebDirect, PARTNER_LED, PartnerLed, AGENT_LED, AgentLed, P2P (the API's names or the specification's; case-sensitive) nor a position of the specification's ReferralSource`},
	} {
		_, _, _, err := decode([]byte(c.line))
		var se *storage.Error
		if !errors.As(err, &se) || strings.Join(se.Field, ".") != c.field || se.Message != c.message {
			t.Errorf("%s: got %v, want %q on %q", c.line, err, c.message, c.field)
		}
	}
}

// TestDealValuesAsExactNumbers: a deal value written as a JSON number is
// read exactly however it is written, when it is whole cents (12345.670,
// 1.5e3 were refused), and refused, not rounded, when it is not; a huge
// exponent is refused without being computed.
func TestDealValuesAsExactNumbers(t *testing.T) {
	for number, want := range map[string]string{
		"12345.670": "12345.67", "1.5e3": "1500.00", "1E+2": "100.00", "0.10": "0.10", "9007199254740993.01": "9007199254740993.01",
		"10.005": "", "1e-3": "", "1e999999999": "", "1e21": "",
	} {
		line := `{"id":"m","createdDateTime":"2026-03-01T09:30:00Z","updatedDateTime":"2026-03-01T09:30:00Z","status":"PENDING","referralSource":"P2P",` +
			`"details":{"dealValue":` + number + `}}`
		rec, _, _, err := decode([]byte(line))
		switch {
		case want == "" && err == nil:
			t.Errorf("%s: read as %s, want refused", number, rec.Referral.Details.DealValue)
		case want != "" && (err != nil || rec.Referral.Details.DealValue.String() != want):
			t.Errorf("%s: %v, want %s", number, err, want)
		}
	}
}

// TestRecordsWithoutVersion: a record of either naming that gives no
// version is created at version 1 (a CSV without the version column
// failed every row with "must be at least 1, got 0").
func TestRecordsWithoutVersion(t *testing.T) {
	for _, line := range []string{
		`{"id":"v","createdDateTime":"2026-03-01T09:30:00Z","updatedDateTime":"2026-03-01T09:30:00Z","status":"PENDING","referralSource":"P2P"}`,
		`{"Id":"v","CreatedDateTime":"2026-03-01T09:30:00Z","UpdatedDateTime":"2026-03-01T09:30:00Z","Status":"Pending","ReferralSource":"P2P"}`,
	} {
		rec, _, _, err := decode([]byte(line))
		if err != nil || rec.Referral.Version != 1 {
			t.Errorf("%s: %+v, %v; want version 1", line, rec, err)
		}
	}
}

// TestHugeDealValuesAreTooLarge: a deal value written with an exponent
// past every amount (1e30, 1e400, 1e1000000) is refused as too large, as
// 1e19 is, not as a badly written decimal; the value is quoted at most 40
// characters long however long it is.
func TestHugeDealValuesAreTooLarge(t *testing.T) {
	for _, number := range []string{"1e19", "1e30", "1e400", "1e1000000", "-2.5E+99", strings.Repeat("9", 5000)} {
		line := `{"id":"m","createdDateTime":"2026-03-01T09:30:00Z","updatedDateTime":"2026-03-01T09:30:00Z","status":"PENDING","referralSource":"P2P",` +
			`"details":{"dealValue":` + number + `}}`
		_, _, _, err := decode([]byte(line))
		if err == nil || !strings.Contains(err.Error(), "too large an amount") || len(err.Error()) > 200 {
			t.Errorf("%.20s…: %.300v; want refused as too large, briefly", number, err)
		}
	}
}

// TestParticipantDetailsGiven: a record that names a participant's
// users, location, inviter or creation date, null or empty included,
// gives its participants' details, which are then compared with the
// stored ones; one that names none of them (an export of an earlier
// version) does not. Empty users stay given as empty.
func TestParticipantDetailsGiven(t *testing.T) {
	base := `{"id":"d","createdDateTime":"2026-03-01T09:30:00Z","updatedDateTime":"2026-03-01T09:30:00Z","status":"PENDING","referralSource":"P2P",` +
		`"participants":[{"id":"p","organizationId":"o","organizationName":"O","status":"ACCEPTED"%s}]}`
	for extra, want := range map[string]bool{
		"": false, `,"users":[]`: true, `,"locationId":null`: true, `,"invitedByParticipantId":null`: true, `,"createdDateTime":"2026-03-01T09:30:00Z"`: true,
	} {
		rec, _, _, err := decode([]byte(fmt.Sprintf(base, extra)))
		if err != nil || rec.ParticipantDetails != want {
			t.Errorf("participant with %q: details %v (%v), want %v", extra, rec != nil && rec.ParticipantDetails, err, want)
			continue
		}
		if extra == `,"users":[]` && (rec.Participants[0].Users == nil || len(rec.Participants[0].Users) != 0) {
			t.Errorf("users [] read as %#v, want empty and given", rec.Participants[0].Users)
		}
	}
}

// TestTagNamesAreRead: a tag of the specification's shape may carry its
// name beside its id; the id is imported, the name is the catalog's (it
// was refused as an unknown field).
func TestTagNamesAreRead(t *testing.T) {
	line := `{"Id":"t","CreatedDateTime":"2026-03-01T09:30:00Z","UpdatedDateTime":"2026-03-01T09:30:00Z","Status":"Pending","ReferralSource":"P2P",` +
		`"Details":{"Requirements":{"IndustryFocus":[{"Id":"Healthcare","Name":"HC"}]}}}`
	rec, _, _, err := decode([]byte(line))
	if err != nil || fmt.Sprint(rec.Referral.Details.Requirements.IndustryFocus) != "[Healthcare]" {
		t.Errorf("decode: %v, %v; want the tag Healthcare", rec, err)
	}
}

// TestParticipantUsersRefuseUnknownFields: a participant's user with a
// field users do not have (a record's name in the wrong place) is an
// error, as any other unknown field of a record is, not dropped.
func TestParticipantUsersRefuseUnknownFields(t *testing.T) {
	line := `{"id":"u","createdDateTime":"2026-03-01T09:30:00Z","updatedDateTime":"2026-03-01T09:30:00Z","status":"PENDING","referralSource":"P2P",` +
		`"participants":[{"id":"p","organizationId":"o","organizationName":"O","status":"ACCEPTED","users":[{"id":"1","firstName":"Jo","lastName":"Kim","city":"Oslo"}]}]}`
	if _, _, _, err := decode([]byte(line)); err == nil || !strings.Contains(err.Error(), "city") {
		t.Errorf("a user with a city: %v, want an error naming it", err)
	}
}
