package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// GenerateDemo returns n realistic referrals and their participants,
// created during the year before anchor. The same seed and anchor give the
// same data; SeedDemo anchors at the seeding day, so recent invitations are
// still open whenever a store is seeded.
func GenerateDemo(seed uint64, n int, anchor time.Time) ([]Referral, []Participant) {
	g := demoGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), anchor: anchor.UTC()}
	var refs []Referral
	var parts []Participant
	for range n {
		r, ps := g.referral()
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
	if err := s.InsertReferrals(ctx, refs, parts); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return false, nil // another instance seeded the same store first
		}
		return false, err
	}
	return true, nil
}

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
	if err := insertAll(ctx, s.due, dueEntries(open)); err != nil {
		return err
	}
	if err := insertAll(ctx, s.referrals, toAny(refs)); err != nil {
		return err
	}
	if err := insertAll(ctx, s.participants, toAny(parts)); err != nil {
		return err
	}
	return nil
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

type demoOrg struct{ id, name, location string }

var (
	demoOrgs = []demoOrg{
		{"5f0d7c1e-6a3b-4c1e-9a51-0b7e3c9d2a01", "Contoso Consulting", "Seattle"},
		{"8a4e2b9f-1c7d-4e3a-b6f2-7d9c0e1a3b02", "Fabrikam Cloud Services", "London"},
		{"c3b1a9e7-5d2f-4a8c-9e1b-2f6d4c8a0b03", "Northwind Solutions", "Munich"},
		{"1e9f3c7a-8b2d-4f6e-a0c5-9d3b7e1f2c04", "Adventure Works IT", "Sydney"},
		{"7b2c8e4f-0a9d-4c3b-8e7f-1a5c9d2e6b05", "Tailspin Systems", "Toronto"},
		{"2d6a0f8b-3e1c-4b9d-a7e2-5c0f8b3d9a06", "Wide World Partners", "Bangalore"},
		{"9c5e1b3d-7f0a-4e2c-b8d6-3a9e5c1b7f07", "Litware Digital", "Paris"},
		{"4f8b2d6e-9c3a-4d1f-a5b7-8e2c6f0a4d08", "Proseware Group", "Tokyo"},
		{"6e0c4a8f-2b5d-4f9e-b3a1-7c4e0a6f2b09", "Trey Research", "São Paulo"},
		{"0a7d3f9c-4e8b-4a2d-9f6c-1b7d3a9e5c10", "Woodgrove Advisory", "Amsterdam"},
		{"b1f5c9a3-6d0e-4b7f-8c2a-4e0b6d2f8a11", "Alpine Ski Digital", "Denver"},
		{"e4a8d2f6-1b9c-4e5a-a3d7-0f5b9c1e7d12", "Lucerne Publishing Tech", "Zurich"},
	}
	demoFirst   = []string{"Ana", "Ben", "Chen", "Dana", "Elif", "Farah", "Gustavo", "Hiro", "Ines", "Jonas", "Kavya", "Liam", "Maya", "Nikolai", "Olivia", "Priya", "Quentin", "Rosa", "Sven", "Tomás", "Uma", "Viktor", "Wen", "Yusuf", "Zoe"}
	demoLast    = []string{"Alvarez", "Becker", "Chowdhury", "Dubois", "Eriksen", "Fischer", "García", "Hansen", "Ito", "Jansen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "O'Brien", "Patel", "Rossi", "Schmidt", "Tanaka", "Walsh"}
	demoCompany = []string{"Blue Harbor", "Cedar Ridge", "Silver Lake", "Granite Peak", "Maple Leaf", "Red Rock", "Evergreen", "Summit", "Riverbend", "Lighthouse", "Ironwood", "Golden Gate", "Oakmont", "Starlight", "Bright Path"}
	demoTrade   = []string{"Logistics", "Health", "Bank", "Foods", "Manufacturing", "Retail", "Energy", "Hotels", "Education Trust", "Media", "Pharma", "Insurance", "Motors", "Farms", "Airlines"}
	demoSuffix  = []string{"Inc.", "Ltd", "GmbH", "S.A.", "LLC", "Pty Ltd", "AG", "KK", "BV", "Group"}
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
)

type demoPlace struct{ country, city, state, postal, street string }

var demoPlaces = []demoPlace{
	{"US", "Seattle", "WA", "98101", "Pine Street"},
	{"US", "Austin", "TX", "78701", "Congress Avenue"},
	{"US", "Boston", "MA", "02110", "Atlantic Avenue"},
	{"GB", "London", "", "EC2A 4NE", "Old Street"},
	{"GB", "Manchester", "", "M1 1AE", "Market Street"},
	{"DE", "Munich", "Bavaria", "80331", "Marienplatz"},
	{"DE", "Hamburg", "Hamburg", "20095", "Mönckebergstraße"},
	{"FR", "Lyon", "", "69002", "Rue de la République"},
	{"IN", "Bengaluru", "Karnataka", "560001", "MG Road"},
	{"AU", "Melbourne", "VIC", "3000", "Collins Street"},
	{"CA", "Vancouver", "BC", "V6B 1A1", "Granville Street"},
	{"JP", "Osaka", "Osaka", "530-0001", "Umeda"},
	{"BR", "São Paulo", "SP", "01310-100", "Avenida Paulista"},
	{"NL", "Utrecht", "", "3511 AA", "Oudegracht"},
}

func (g *demoGen) pick(list []string) string { return list[g.rng.IntN(len(list))] }

func (g *demoGen) id() string {
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", g.rng.Uint32(), g.rng.IntN(1<<16), g.rng.IntN(1<<12),
		0x8000|g.rng.IntN(1<<14), g.rng.Uint64()&(1<<48-1))
}

// tags draws between lo and hi distinct tag ids of a category.
func (g *demoGen) tags(c TagCategory, lo, hi int) []string {
	ids := catalogIDs[c]
	n := lo + g.rng.IntN(hi-lo+1)
	out := []string{}
	for _, i := range g.rng.Perm(len(ids))[:n] {
		out = append(out, ids[i])
	}
	return out
}

func (g *demoGen) person() (first, last, email, phone string) {
	first, last = g.pick(demoFirst), g.pick(demoLast)
	email = fmt.Sprintf("%s.%s@example.com", asciiLower(first), asciiLower(last))
	phone = fmt.Sprintf("+1 555 %03d %04d", g.rng.IntN(1000), g.rng.IntN(10000))
	return
}

func (g *demoGen) referral() (Referral, []Participant) {
	created := g.anchor.Add(-time.Duration(g.rng.Int64N(int64(365 * 24 * time.Hour)))).Truncate(time.Second)
	updated := created.Add(time.Duration(g.rng.Int64N(int64(30 * 24 * time.Hour)))).Truncate(time.Second)
	closing := created.AddDate(0, 1+g.rng.IntN(9), 0).Truncate(24 * time.Hour)
	value := Money(100_000 + g.rng.Int64N(50_000_000))
	statuses := []ReferralStatus{ReferralPending, ReferralActive, ReferralActive, ReferralWon, ReferralLost, ReferralArchived}
	place := demoPlaces[g.rng.IntN(len(demoPlaces))]
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
		f, l, e, p := g.person()
		contacts = append(contacts, Contact{FirstName: f, LastName: l, Email: e, PhoneNumber: p})
	}
	notes := g.pick(demoNotes)
	r := Referral{
		ID: g.id(), CreatedDateTime: created, UpdatedDateTime: updated, Version: 1,
		Status:         statuses[g.rng.IntN(len(statuses))],
		ReferralSource: referralSourcePositions[g.rng.IntN(len(referralSourcePositions))],
		CustomerProfile: &CustomerProfile{
			ID:   g.id(),
			Name: fmt.Sprintf("%s %s %s", g.pick(demoCompany), g.pick(demoTrade), g.pick(demoSuffix)),
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
// each later one was invited by an earlier one.
func (g *demoGen) participants(referralID string, created time.Time) []Participant {
	invitedStatuses := []ParticipantStatus{ParticipantInvited, ParticipantAccepted, ParticipantAccepted, ParticipantRejected, ParticipantExpired, ParticipantMissed}
	var parts []Participant
	at := created
	for i, oi := range g.rng.Perm(len(demoOrgs))[:1+g.rng.IntN(4)] {
		org := demoOrgs[oi]
		expires := at.AddDate(0, 0, 14)
		loc := org.location
		p := Participant{
			ID: g.id(), ReferralID: referralID, CreatedDateTime: at, ExpirationDateTime: &expires,
			OrganizationID: org.id, OrganizationName: org.name, LocationID: &loc,
			Status: ParticipantAccepted,
		}
		p.ReferralView = "https://referrals.example.com/referrals/" + referralID + "?participant=" + p.ID
		if i > 0 {
			p.Status = invitedStatuses[g.rng.IntN(len(invitedStatuses))]
			inviter := parts[g.rng.IntN(i)].ID
			p.InvitedByParticipantID = &inviter
		}
		for range 1 + g.rng.IntN(3) {
			f, l, e, ph := g.person()
			p.Users = append(p.Users, ParticipantUser{ID: g.id(), FirstName: f, LastName: l, Email: e, PhoneNumber: ph})
		}
		parts = append(parts, p)
		at = at.Add(time.Duration(1+g.rng.IntN(72)) * time.Hour)
	}
	return parts
}

// asciiLower lower-cases s and drops what does not belong in an e-mail
// local part ("O'Brien" → "obrien", "Tomás" → "toms").
func asciiLower(s string) string {
	var b []byte
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z':
			b = append(b, byte(c))
		case c >= 'A' && c <= 'Z':
			b = append(b, byte(c)+'a'-'A')
		}
	}
	return string(b)
}
