package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
	"unicode"

	"referrals/storage"

	"golang.org/x/text/unicode/norm"
)

type demoGen struct {
	rng    *rand.Rand
	anchor time.Time
}

// weighted is a demo value with how often it occurs relative to the others
// of its list: a real pipeline is uneven (most deals are small, Azure and
// Microsoft 365 are in most, a few countries bring most leads), and the
// README's examples each find a handful of referrals in it.
type weighted[T any] struct {
	v T
	w int
}

func (g *demoGen) pick(list []string) string { return list[g.rng.IntN(len(list))] }

// draw returns k distinct indexes of weights, each drawn in proportion to
// its weight among those left.
func (g *demoGen) draw(weights []int, k int) []int {
	taken := make([]bool, len(weights))
	var out []int
	for range min(k, len(weights)) {
		total := 0
		for i, w := range weights {
			if !taken[i] {
				total += w
			}
		}
		r := g.rng.IntN(total)
		for i, w := range weights {
			if taken[i] {
				continue
			}
			if r -= w; r < 0 {
				taken[i] = true
				out = append(out, i)
				break
			}
		}
	}
	return out
}

// drawOf returns k distinct values of list, drawn by weight.
func drawOf[T any](g *demoGen, list []weighted[T], k int) []T {
	weights := make([]int, len(list))
	for i, x := range list {
		weights[i] = x.w
	}
	var out []T
	for _, i := range g.draw(weights, k) {
		out = append(out, list[i].v)
	}
	return out
}

// one draws a single value of list by weight.
func one[T any](g *demoGen, list []weighted[T]) T { return drawOf(g, list, 1)[0] }

// place draws a customer's place by weight.
func (g *demoGen) place() demoPlace {
	weights := make([]int, len(demoPlaces))
	for i, p := range demoPlaces {
		weights[i] = p.weight
	}
	return demoPlaces[g.draw(weights, 1)[0]]
}

func (g *demoGen) id() string {
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", g.rng.Uint32(), g.rng.IntN(1<<16), g.rng.IntN(1<<12),
		0x8000|g.rng.IntN(1<<14), g.rng.Uint64()&(1<<48-1))
}

// tags draws between lo and hi distinct tag ids of a category, by weight.
func (g *demoGen) tags(c storage.TagCategory, lo, hi int) []string {
	var list []weighted[string]
	for _, id := range storage.CatalogIDs(c) {
		list = append(list, weighted[string]{id, max(1, demoTagWeights[c][id])})
	}
	return append([]string{}, drawOf(g, list, lo+g.rng.IntN(hi-lo+1))...)
}

// person makes a contact: an e-mail address from the name, spelt in
// ASCII, and a phone number of the pattern (# are digits).
func (g *demoGen) person(phonePattern string) (first, last, email, phone string) {
	first, last = g.pick(demoFirst), g.pick(demoLast)
	email = fmt.Sprintf("%s.%s@example.com", asciiLower(first), asciiLower(last))
	digits := []byte(phonePattern)
	for i, c := range digits {
		if c == '#' {
			digits[i] = byte('0' + g.rng.IntN(10))
		}
	}
	return first, last, email, string(digits)
}

// between returns a time drawn evenly from [from, to), to the second. It
// takes one number of the generator whatever the span, so the demo is the
// same whatever the day it is anchored to, only its dates move (Int64N
// takes more numbers for some spans than others, and spans of months
// differ by day).
func (g *demoGen) between(from, to time.Time) time.Time {
	f := g.rng.Float64()
	if !to.After(from) {
		return from.Truncate(time.Second)
	}
	return from.Add(time.Duration(f * float64(to.Sub(from)))).Truncate(time.Second)
}

// dealValue draws a deal value the way pipelines have them: a median of
// about 30,000, one deal in six above 100,000, whole hundreds from 1,000 to
// 2,000,000.
func (g *demoGen) dealValue() storage.Money {
	v := 30_000 * math.Exp(1.2*g.rng.NormFloat64())
	hundreds := int64(min(max(v, 1_000), 2_000_000) / 100)
	return storage.Money(hundreds * 100 * 100)
}

// status draws a referral's status by its age: the older it is, the
// likelier it is decided (Won, Lost) or Archived, and the likelier an
// undecided one is Active rather than still Pending.
func (g *demoGen) status(age time.Duration) storage.ReferralStatus {
	year := 365 * 24 * time.Hour
	if g.rng.Float64() < 0.85*float64(age)/float64(year) {
		return one(g, []weighted[storage.ReferralStatus]{{storage.ReferralWon, 4}, {storage.ReferralLost, 4}, {storage.ReferralArchived, 2}})
	}
	if g.rng.Float64() < 0.1+0.5*(1-float64(age)/float64(year)) {
		return storage.ReferralPending
	}
	return storage.ReferralActive
}

func (g *demoGen) referral(created time.Time) (storage.Referral, []storage.Participant) {
	status := g.status(g.anchor.Sub(created))
	// An open deal is expected to close within the next two quarters; a
	// decided one closed one to six months after it came in, and before
	// now.
	closing := g.between(g.anchor.AddDate(0, 1, 0), g.anchor.AddDate(0, 7, 0))
	if status != storage.ReferralPending && status != storage.ReferralActive {
		closing = g.between(created.AddDate(0, 1, 0), created.AddDate(0, 6, 0))
		closing = earliest(closing, g.anchor.Add(-24*time.Hour))
	}
	closing = closing.Truncate(24 * time.Hour)
	updated := g.between(created, earliest(created.AddDate(0, 1, 0), g.anchor))
	value := g.dealValue()
	place := g.place()
	addr := &storage.Address{
		AddressLine1: fmt.Sprintf("%d %s", 1+g.rng.IntN(400), place.street),
		City:         place.city, PostalCode: place.postal, Country: place.country,
	}
	if place.state != "" {
		addr.State = &place.state
	}
	if g.rng.IntN(3) == 0 {
		line2 := fmt.Sprintf("Floor %d", 1+g.rng.IntN(30))
		addr.AddressLine2 = &line2
	}
	var contacts []storage.Contact
	for range 1 + g.rng.IntN(2) {
		f, l, e, p := g.person(place.phone)
		contacts = append(contacts, storage.Contact{FirstName: f, LastName: l, Email: e, PhoneNumber: p})
	}
	notes := g.pick(demoNotes)
	r := storage.Referral{
		ID: g.id(), CreatedDateTime: created, UpdatedDateTime: updated, Version: 1,
		Status:         status,
		ReferralSource: one(g, demoSources),
		CustomerProfile: &storage.CustomerProfile{
			ID:   g.id(),
			Name: fmt.Sprintf("%s %s %s", g.pick(demoCompany), g.pick(demoTrade), g.pick(demoLegalForms[place.country])),
			Size: g.pick(demoSizes), Address: addr, Contacts: contacts,
		},
		Details: &storage.ReferralDetails{
			Notes: &notes, DealValue: &value, ClosingDate: &closing,
			Requirements: storage.Requirements{
				IndustryFocus: g.tags(storage.TagIndustryFocus, 1, 1),
				Products:      g.tags(storage.TagProducts, 1, 3),
				ServiceTypes:  g.tags(storage.TagServiceTypes, 0, 2),
				Solutions:     g.tags(storage.TagSolutions, 0, 3),
			},
		},
	}
	parts := g.participants(r.ID, created)
	for i := range parts {
		r.Participation = append(r.Participation, parts[i].Participation())
	}
	return r, parts
}

// participants makes 1-4 organizations: the first one took the referral,
// each later one was invited by an earlier one. An invitation still open
// a day after the anchor is mostly unanswered (none lapses on the day the
// demo is seeded); one that has expired was answered,
// or is recorded as Expired, as the expiry sweep would have left it.
func (g *demoGen) participants(referralID string, created time.Time) []storage.Participant {
	var parts []storage.Participant
	at := created
	for i, org := range drawOf(g, demoOrgs, one(g, []weighted[int]{{1, 35}, {2, 30}, {3, 20}, {4, 15}})) {
		expires := at.AddDate(0, 0, 14)
		loc := org.location
		p := storage.Participant{
			ID: g.id(), ReferralID: referralID, CreatedDateTime: at, ExpirationDateTime: &expires,
			OrganizationID: org.id, OrganizationName: org.name, LocationID: &loc,
			Status: storage.ParticipantAccepted,
		}
		p.ReferralView = "https://referrals.example.com/referrals/" + referralID + "?participant=" + p.ID
		if i > 0 {
			answered := []weighted[storage.ParticipantStatus]{{storage.ParticipantAccepted, 6}, {storage.ParticipantRejected, 2}, {storage.ParticipantExpired, 2}, {storage.ParticipantMissed, 1}}
			switch {
			case expires.After(g.anchor.Add(24 * time.Hour)):
				answered = []weighted[storage.ParticipantStatus]{{storage.ParticipantInvited, 6}, {storage.ParticipantAccepted, 3}, {storage.ParticipantRejected, 1}}
			case expires.After(g.anchor):
				// One left open would expire on the day the demo is seeded,
				// changing what it shows within hours: answered.
				answered = []weighted[storage.ParticipantStatus]{{storage.ParticipantAccepted, 3}, {storage.ParticipantRejected, 1}}
			}
			p.Status = one(g, answered)
			inviter := parts[g.rng.IntN(i)].ID
			p.InvitedByParticipantID = &inviter
		}
		for range 1 + g.rng.IntN(3) {
			f, l, e, ph := g.person(org.phone)
			p.Users = append(p.Users, storage.ParticipantUser{ID: g.id(), FirstName: f, LastName: l, Email: e, PhoneNumber: ph})
		}
		parts = append(parts, p)
		// The next one a few hours later, but not after the anchor, and
		// never at the same time (readers order them by creation).
		next := at.Add(time.Duration(1+g.rng.IntN(72)) * time.Hour)
		if next.After(g.anchor) {
			next = at.Add(max(time.Second, g.anchor.Sub(at)/2)).Truncate(time.Second)
		}
		at = next
	}
	return parts
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// asciiLower spells s in lower-case ASCII for an e-mail local part:
// accents dropped ("García" → "garcia", "Tomás" → "tomas"), letters
// without a decomposition spelt out ("ß" → "ss"), anything else left out
// ("O'Brien" → "obrien").
func asciiLower(s string) string {
	var b strings.Builder
	for _, c := range norm.NFD.String(s) {
		switch {
		case c >= 'a' && c <= 'z':
			b.WriteRune(c)
		case c >= 'A' && c <= 'Z':
			b.WriteRune(c + 'a' - 'A')
		default:
			b.WriteString(asciiSpelling[unicode.ToLower(c)])
		}
	}
	return b.String()
}
