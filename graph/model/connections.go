// Package model holds the GraphQL types that have no storage counterpart:
// connections, which keep their query so totalCount is read only when
// asked.
package model

import "referrals/storage"

// ReferralConnection is a page of referrals, which keeps the query that
// chose it for its totalCount.
type ReferralConnection struct {
	*storage.ReferralPage
}

// ParticipantConnection is a page of participants and the filter that chose it.
type ParticipantConnection struct {
	*storage.ParticipantPage
	Filter *storage.ParticipantFilter
}
