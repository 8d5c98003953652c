package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
	"golang.org/x/text/unicode/norm"
)

// GenerateDemo returns n realistic referrals and their participants,
// created during the year before anchor, oldest first and evenly spread
// over it, as a pipeline fills. The same seed gives the same referrals
// whatever the anchor (statuses, sources, amounts, names, tags,
// participants); only their dates move with it. SeedDemo anchors at the
// seeding day, so recent invitations are still open whenever a store is
// seeded.
func GenerateDemo(seed uint64, n int, anchor time.Time) ([]Referral, []Participant) {
	g := demoGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), anchor: anchor.UTC()}
	var refs []Referral
	var parts []Participant
	year := 365 * 24 * time.Hour
	start := g.anchor.Add(-year)
	for i := range n {
		// The i-th of n equal slices of the year.
		from := start.Add(time.Duration(float64(year) * float64(i) / float64(n)))
		to := start.Add(time.Duration(float64(year) * float64(i+1) / float64(n)))
		r, ps := g.referral(g.between(from, to))
		refs = append(refs, r)
		parts = append(parts, ps...)
	}
	return refs, parts
}

// SeedDemo fills an empty store with GenerateDemo(seed, n). A store that
// already holds a referral is left untouched; it reports whether it wrote.
func (s *Store) SeedDemo(ctx context.Context, seed uint64, n int) (bool, error) {
	if n <= 0 {
		return false, nil
	}
	// One document is enough to tell, and cheap everywhere: a count reads
	// the whole collection on stores that index only _id.
	err := s.referrals.FindOne(ctx, bson.D{}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return false, fmt.Errorf("look for referrals: %w", err)
	}
	refs, parts := GenerateDemo(seed, n, s.Now().Truncate(24*time.Hour))
	bulk := s.planner != nil && n >= bulkLoad
	if bulk {
		// A bulk load: FerretDB writes the documents alone, and the read
		// planner's indexes and side tables are then built in one sorted
		// pass each, rather than kept row by row through random B-tree
		// inserts. Nothing selects meanwhile: the server seeds before it
		// serves, and the store's files are this process's.
		if err := s.dropPlanner(ctx); err != nil {
			return false, err
		}
	}
	err = s.InsertReferrals(ctx, refs, parts)
	if bulk {
		var openErr error
		if s.planner, openErr = s.opts.Embedded.openPlanner(ctx, s.db.Name()); openErr != nil {
			return false, errors.Join(err, openErr)
		}
	}
	if err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return false, nil // another instance seeded the same store first
		}
		return false, err
	}
	return true, nil
}

// bulkLoad is the number of demo referrals from which seeding builds the
// read planner's schema after the documents rather than with them.
const bulkLoad = 5000

// insertBatch is how many documents one insert command of InsertReferrals
// carries: each is one transaction on the embedded store, which holds its
// write lock meanwhile, so requests wait at most one batch.
const insertBatch = 500

// InsertReferrals writes referrals and participants as they are, and lists
// the open invitations among them in invitationDue.
func (s *Store) InsertReferrals(ctx context.Context, refs []Referral, parts []Participant) error {
	open := make([]*Participant, len(parts))
	for i := range parts {
		open[i] = &parts[i]
	}
	// Concurrently: the store writes one batch at a time, and meanwhile
	// the next is encoded (a third of seeding's time at 10,000).
	var g errgroup.Group
	g.Go(func() error { return insertAll(ctx, s.due, dueEntries(open)) })
	g.Go(func() error { return insertAll(ctx, s.referrals, toAny(refs)) })
	g.Go(func() error { return insertAll(ctx, s.participants, toAny(parts)) })
	return g.Wait()
}

// insertAll inserts docs insertBatch at a time.
func insertAll(ctx context.Context, coll *mongo.Collection, docs []any) error {
	for batch := range slices.Chunk(docs, insertBatch) {
		if _, err := coll.InsertMany(ctx, batch); err != nil {
			return fmt.Errorf("insert %s: %w", coll.Name(), err)
		}
	}
	return nil
}

func toAny[T any](docs []T) []any {
	out := make([]any, len(docs))
	for i := range docs {
		out[i] = docs[i]
	}
	return out
}

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

// demoOrg is a partner organization: its users' phone numbers follow
// phone, a pattern whose # are digits.
type demoOrg struct{ id, name, location, phone string }

var (
	demoOrgs = []weighted[demoOrg]{
		{demoOrg{"5f0d7c1e-6a3b-4c1e-9a51-0b7e3c9d2a01", "Contoso Consulting", "Seattle", "+1 206 555 01##"}, 6},
		{demoOrg{"8a4e2b9f-1c7d-4e3a-b6f2-7d9c0e1a3b02", "Fabrikam Cloud Services", "London", "+44 20 7946 0###"}, 12},
		{demoOrg{"c3b1a9e7-5d2f-4a8c-9e1b-2f6d4c8a0b03", "Northwind Solutions", "Munich", "+49 89 #### ####"}, 11},
		{demoOrg{"1e9f3c7a-8b2d-4f6e-a0c5-9d3b7e1f2c04", "Adventure Works IT", "Sydney", "+61 2 9### ####"}, 10},
		{demoOrg{"7b2c8e4f-0a9d-4c3b-8e7f-1a5c9d2e6b05", "Tailspin Systems", "Toronto", "+1 416 555 01##"}, 9},
		{demoOrg{"2d6a0f8b-3e1c-4b9d-a7e2-5c0f8b3d9a06", "Wide World Partners", "Bangalore", "+91 80 #### ####"}, 9},
		{demoOrg{"9c5e1b3d-7f0a-4e2c-b8d6-3a9e5c1b7f07", "Litware Digital", "Paris", "+33 1 ## ## ## ##"}, 8},
		{demoOrg{"4f8b2d6e-9c3a-4d1f-a5b7-8e2c6f0a4d08", "Proseware Group", "Tokyo", "+81 3 #### ####"}, 7},
		{demoOrg{"6e0c4a8f-2b5d-4f9e-b3a1-7c4e0a6f2b09", "Trey Research", "São Paulo", "+55 11 9#### ####"}, 6},
		{demoOrg{"0a7d3f9c-4e8b-4a2d-9f6c-1b7d3a9e5c10", "Woodgrove Advisory", "Amsterdam", "+31 20 ### ####"}, 6},
		{demoOrg{"b1f5c9a3-6d0e-4b7f-8c2a-4e0b6d2f8a11", "Alpine Ski Digital", "Denver", "+1 303 555 01##"}, 5},
		{demoOrg{"e4a8d2f6-1b9c-4e5a-a3d7-0f5b9c1e7d12", "Lucerne Publishing Tech", "Zurich", "+41 44 ### ## ##"}, 4},
	}
	demoFirst   = []string{"Ana", "Ben", "Chen", "Dana", "Elif", "Farah", "Gustavo", "Hiro", "Ines", "Jonas", "Kavya", "Liam", "Maya", "Nikolai", "Olivia", "Priya", "Quentin", "Rosa", "Sven", "Tomás", "Uma", "Viktor", "Wen", "Yusuf", "Zoe"}
	demoLast    = []string{"Alvarez", "Becker", "Chowdhury", "Dubois", "Eriksen", "Fischer", "García", "Hansen", "Ito", "Jansen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "O'Brien", "Patel", "Rossi", "Schmidt", "Tanaka", "Walsh"}
	demoCompany = []string{"Blue Harbor", "Cedar Ridge", "Silver Lake", "Granite Peak", "Maple Leaf", "Red Rock", "Evergreen", "Summit", "Riverbend", "Lighthouse", "Ironwood", "Golden Gate", "Oakmont", "Starlight", "Bright Path"}
	demoTrade   = []string{"Logistics", "Health", "Bank", "Foods", "Manufacturing", "Retail", "Energy", "Hotels", "Education Trust", "Media", "Pharma", "Insurance", "Motors", "Farms", "Airlines"}
	demoSizes   = []string{"1-9", "10-49", "50-249", "250-999", "1000-4999", "5000+"}
	demoNotes   = []string{
		"Customer wants to move their on-premises file servers to the cloud before the lease ends.",
		"Asked for a proof of concept with two departments first.",
		"Budget approved for this fiscal year; decision maker is the CIO.",
		"Evaluating two other vendors; price is the main concern.",
		"Needs help with licensing consolidation after an acquisition.",
		"Interested in a managed service contract rather than a one-off project.",
		"Security audit found gaps; looking for identity and device management.",
		"Wants training for 40 staff alongside the rollout.",
		"Existing partner relationship ended; looking for a new partner quickly.",
		"Pilot planned for next quarter, full rollout depends on results.",
	}
	demoSources = []weighted[ReferralSource]{{SourcePartnerLed, 40}, {SourceWebDirect, 25}, {SourceAgentLed, 20}, {SourceP2P, 15}}
	// demoTagWeights weighs the catalog's tags; a tag not named has weight 1.
	demoTagWeights = map[TagCategory]map[string]int{
		TagIndustryFocus: {"Healthcare": 14, "Financial Services": 14, "Manufacturing": 13, "Retail & Consumer Goods": 12,
			"Government": 9, "Education": 8, "Services": 8, "Communications & Media": 6, "Travel & Transportation": 4,
			"Power & Utilities": 4, "Wholesale & Distribution": 3, "Hospitality": 2, "Public Safety and National Security": 2},
		TagProducts: {"Azure": 25, "Microsoft365": 20, "Teams": 15, "Dynamics365Enterprise": 8, "Dynamics365Business": 6,
			"PowerBI": 6, "SQL": 4, "EnterpriseMobilityAndSecurity": 4, "SharePoint": 3, "Windows": 3, "Office": 2},
		TagServiceTypes: {"DeploymentOrMigration": 10, "ConsultingAndProfessional": 8, "ManagedServices": 6, "Licensing": 5,
			"Integration": 4, "ProjectServices": 3, "LearningAndCertification": 2},
		TagSolutions: {"CloudMigration": 10, "AdvancedAnalytics": 6, "ArtificialIntelligence": 6, "ThreatProtection": 5,
			"IdentityandAccessManagement": 5, "Dynamics365forSales": 5, "BackupDisasterRecovery": 4, "DataWarehouse": 4,
			"MachineLearning": 3, "InternetofThings": 3, "DevOps": 3, "SQLServerUpgrade": 3},
	}
)

// demoPlace is a customer address, with how often customers are there.
type demoPlace struct {
	country, city, state, postal, street string
	phone                                string // a pattern whose # are digits
	weight                               int
}

var demoPlaces = []demoPlace{
	{"US", "Seattle", "WA", "98101", "Pine Street", "+1 206 555 01##", 12},
	{"US", "Austin", "TX", "78701", "Congress Avenue", "+1 512 555 01##", 10},
	{"US", "Boston", "MA", "02110", "Atlantic Avenue", "+1 617 555 01##", 8},
	{"GB", "London", "", "EC2A 4NE", "Old Street", "+44 20 7946 0###", 10},
	{"GB", "Manchester", "", "M1 1AE", "Market Street", "+44 161 496 0###", 4},
	{"DE", "Munich", "Bavaria", "80331", "Marienplatz", "+49 89 #### ####", 7},
	{"DE", "Hamburg", "Hamburg", "20095", "Mönckebergstraße", "+49 40 #### ####", 5},
	{"FR", "Lyon", "", "69002", "Rue de la République", "+33 4 72 ## ## ##", 7},
	{"IN", "Bengaluru", "Karnataka", "560001", "MG Road", "+91 80 #### ####", 8},
	{"AU", "Melbourne", "VIC", "3000", "Collins Street", "+61 3 9### ####", 7},
	{"CA", "Vancouver", "BC", "V6B 1A1", "Granville Street", "+1 604 555 01##", 7},
	{"JP", "Osaka", "Osaka", "530-0001", "Umeda", "+81 6 #### ####", 6},
	{"BR", "São Paulo", "SP", "01310-100", "Avenida Paulista", "+55 11 9#### ####", 5},
	{"NL", "Utrecht", "", "3511 AA", "Oudegracht", "+31 30 ### ####", 4},
}

// demoLegalForms are the company suffixes of each country's customers.
var demoLegalForms = map[string][]string{
	"US": {"Inc.", "LLC", "Corp."}, "GB": {"Ltd", "plc"}, "DE": {"GmbH", "AG"}, "FR": {"SAS", "SA"},
	"IN": {"Pvt Ltd", "Ltd"}, "AU": {"Pty Ltd"}, "CA": {"Inc.", "Ltd"}, "JP": {"KK", "Co., Ltd."},
	"BR": {"Ltda.", "S.A."}, "NL": {"B.V.", "N.V."},
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
func (g *demoGen) tags(c TagCategory, lo, hi int) []string {
	var list []weighted[string]
	for _, id := range catalogIDs[c] {
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
func (g *demoGen) dealValue() Money {
	v := 30_000 * math.Exp(1.2*g.rng.NormFloat64())
	hundreds := int64(min(max(v, 1_000), 2_000_000) / 100)
	return Money(hundreds * 100 * 100)
}

// status draws a referral's status by its age: the older it is, the
// likelier it is decided (Won, Lost) or Archived, and the likelier an
// undecided one is Active rather than still Pending.
func (g *demoGen) status(age time.Duration) ReferralStatus {
	year := 365 * 24 * time.Hour
	if g.rng.Float64() < 0.85*float64(age)/float64(year) {
		return one(g, []weighted[ReferralStatus]{{ReferralWon, 4}, {ReferralLost, 4}, {ReferralArchived, 2}})
	}
	if g.rng.Float64() < 0.1+0.5*(1-float64(age)/float64(year)) {
		return ReferralPending
	}
	return ReferralActive
}

func (g *demoGen) referral(created time.Time) (Referral, []Participant) {
	status := g.status(g.anchor.Sub(created))
	// An open deal is expected to close within the next two quarters; a
	// decided one closed one to six months after it came in, and before
	// now.
	closing := g.between(g.anchor.AddDate(0, 1, 0), g.anchor.AddDate(0, 7, 0))
	if status != ReferralPending && status != ReferralActive {
		closing = g.between(created.AddDate(0, 1, 0), created.AddDate(0, 6, 0))
		closing = earliest(closing, g.anchor.Add(-24*time.Hour))
	}
	closing = closing.Truncate(24 * time.Hour)
	updated := g.between(created, earliest(created.AddDate(0, 1, 0), g.anchor))
	value := g.dealValue()
	place := g.place()
	addr := &Address{
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
	var contacts []Contact
	for range 1 + g.rng.IntN(2) {
		f, l, e, p := g.person(place.phone)
		contacts = append(contacts, Contact{FirstName: f, LastName: l, Email: e, PhoneNumber: p})
	}
	notes := g.pick(demoNotes)
	r := Referral{
		ID: g.id(), CreatedDateTime: created, UpdatedDateTime: updated, Version: 1,
		Status:         status,
		ReferralSource: one(g, demoSources),
		CustomerProfile: &CustomerProfile{
			ID:   g.id(),
			Name: fmt.Sprintf("%s %s %s", g.pick(demoCompany), g.pick(demoTrade), g.pick(demoLegalForms[place.country])),
			Size: g.pick(demoSizes), Address: addr, Contacts: contacts,
		},
		Details: &ReferralDetails{
			Notes: &notes, DealValue: &value, ClosingDate: &closing,
			Requirements: Requirements{
				IndustryFocus: g.tags(TagIndustryFocus, 1, 1),
				Products:      g.tags(TagProducts, 1, 3),
				ServiceTypes:  g.tags(TagServiceTypes, 0, 2),
				Solutions:     g.tags(TagSolutions, 0, 3),
			},
		},
	}
	parts := g.participants(r.ID, created)
	for i := range parts {
		r.Participation = append(r.Participation, participationOf(&parts[i]))
	}
	return r, parts
}

// participants makes 1-4 organizations: the first one took the referral,
// each later one was invited by an earlier one. An invitation still open
// a day after the anchor is mostly unanswered (none lapses on the day the
// demo is seeded); one that has expired was answered,
// or is recorded as Expired, as the expiry sweep would have left it.
func (g *demoGen) participants(referralID string, created time.Time) []Participant {
	var parts []Participant
	at := created
	for i, org := range drawOf(g, demoOrgs, one(g, []weighted[int]{{1, 35}, {2, 30}, {3, 20}, {4, 15}})) {
		expires := at.AddDate(0, 0, 14)
		loc := org.location
		p := Participant{
			ID: g.id(), ReferralID: referralID, CreatedDateTime: at, ExpirationDateTime: &expires,
			OrganizationID: org.id, OrganizationName: org.name, LocationID: &loc,
			Status: ParticipantAccepted,
		}
		p.ReferralView = "https://referrals.example.com/referrals/" + referralID + "?participant=" + p.ID
		if i > 0 {
			answered := []weighted[ParticipantStatus]{{ParticipantAccepted, 6}, {ParticipantRejected, 2}, {ParticipantExpired, 2}, {ParticipantMissed, 1}}
			switch {
			case expires.After(g.anchor.Add(24 * time.Hour)):
				answered = []weighted[ParticipantStatus]{{ParticipantInvited, 6}, {ParticipantAccepted, 3}, {ParticipantRejected, 1}}
			case expires.After(g.anchor):
				// One left open would expire on the day the demo is seeded,
				// changing what it shows within hours: answered.
				answered = []weighted[ParticipantStatus]{{ParticipantAccepted, 3}, {ParticipantRejected, 1}}
			}
			p.Status = one(g, answered)
			inviter := parts[g.rng.IntN(i)].ID
			p.InvitedByParticipantID = &inviter
		}
		for range 1 + g.rng.IntN(3) {
			f, l, e, ph := g.person(org.phone)
			p.Users = append(p.Users, ParticipantUser{ID: g.id(), FirstName: f, LastName: l, Email: e, PhoneNumber: ph})
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

// asciiSpelling spells the letters that do not decompose into an ASCII
// letter and accents.
var asciiSpelling = map[rune]string{'ß': "ss", 'æ': "ae", 'ø': "o", 'œ': "oe", 'ł': "l", 'đ': "d", 'ı': "i", 'þ': "th"}
