package storage

import (
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ReferralStatus is the stage of a referral, stored by its specification name.
type ReferralStatus string

// The referral statuses, in the specification's order.
const (
	ReferralPending  ReferralStatus = "Pending"
	ReferralActive   ReferralStatus = "Active"
	ReferralWon      ReferralStatus = "Won"
	ReferralLost     ReferralStatus = "Lost"
	ReferralArchived ReferralStatus = "Archived"
)

// referralStatusPositions lists the statuses by integer position. The
// specification gives Lost and Archived both position 3; we read 3 as Lost
// and 4 as Archived.
var referralStatusPositions = []ReferralStatus{ReferralPending, ReferralActive, ReferralWon, ReferralLost, ReferralArchived}

// UnmarshalBSONValue reads a status stored by name or by integer position.
func (s *ReferralStatus) UnmarshalBSONValue(t byte, data []byte) error {
	return unmarshalEnum(s, referralStatusPositions, t, data)
}

// MarshalBSONValue stores the status by name, refusing anything else.
func (s ReferralStatus) MarshalBSONValue() (byte, []byte, error) {
	return marshalEnum(s, referralStatusPositions)
}

// ReferralSource tells where a referral came from, stored by its specification name.
type ReferralSource string

// The referral sources, in the specification's order.
const (
	SourceWebDirect  ReferralSource = "WebDirect"
	SourcePartnerLed ReferralSource = "PartnerLed"
	SourceAgentLed   ReferralSource = "AgentLed"
	SourceP2P        ReferralSource = "P2P"
)

var referralSourcePositions = []ReferralSource{SourceWebDirect, SourcePartnerLed, SourceAgentLed, SourceP2P}

// UnmarshalBSONValue reads a source stored by name or by integer position.
func (s *ReferralSource) UnmarshalBSONValue(t byte, data []byte) error {
	return unmarshalEnum(s, referralSourcePositions, t, data)
}

// MarshalBSONValue stores the source by name, refusing anything else.
func (s ReferralSource) MarshalBSONValue() (byte, []byte, error) {
	return marshalEnum(s, referralSourcePositions)
}

// ParticipantStatus is the state of one organization's participation.
type ParticipantStatus string

// The participant statuses, in the specification's order.
const (
	ParticipantInvited  ParticipantStatus = "Invited"
	ParticipantAccepted ParticipantStatus = "Accepted"
	ParticipantRejected ParticipantStatus = "Rejected"
	ParticipantExpired  ParticipantStatus = "Expired"
	ParticipantMissed   ParticipantStatus = "Missed"
)

var participantStatusPositions = []ParticipantStatus{ParticipantInvited, ParticipantAccepted, ParticipantRejected, ParticipantExpired, ParticipantMissed}

// UnmarshalBSONValue reads a status stored by name or by integer position.
func (s *ParticipantStatus) UnmarshalBSONValue(t byte, data []byte) error {
	return unmarshalEnum(s, participantStatusPositions, t, data)
}

// MarshalBSONValue stores the status by name, refusing anything else.
func (s ParticipantStatus) MarshalBSONValue() (byte, []byte, error) {
	return marshalEnum(s, participantStatusPositions)
}

// TagCategory names one of the four requirement catalogs.
type TagCategory string

// The tag categories, named as the specification's requirement fields.
const (
	TagIndustryFocus TagCategory = "IndustryFocus"
	TagProducts      TagCategory = "Products"
	TagServiceTypes  TagCategory = "ServiceTypes"
	TagSolutions     TagCategory = "Solutions"
)

// tagCategories lists every category in catalog order.
var tagCategories = []TagCategory{TagIndustryFocus, TagProducts, TagServiceTypes, TagSolutions}

// unmarshalEnum decodes a string name or an integer position into *dst.
// Anything else is an error: a document the API cannot describe truthfully
// fails loudly rather than showing a blank or wrong value.
func unmarshalEnum[E ~string](dst *E, positions []E, t byte, data []byte) error {
	v := bson.RawValue{Type: bson.Type(t), Value: data}
	if name, ok := v.StringValueOK(); ok {
		if !slices.Contains(positions, E(name)) {
			return fmt.Errorf("unknown enum name %q", name)
		}
		*dst = E(name)
		return nil
	}
	var pos int64
	switch {
	case v.Type == bson.TypeInt32:
		pos = int64(v.Int32())
	case v.Type == bson.TypeInt64:
		pos = v.Int64()
	case v.Type == bson.TypeDouble && v.Double() == float64(int64(v.Double())):
		pos = int64(v.Double())
	default:
		return fmt.Errorf("enum stored as BSON %s", v.Type)
	}
	if pos < 0 || pos >= int64(len(positions)) {
		return fmt.Errorf("enum position %d out of range", pos)
	}
	*dst = positions[pos]
	return nil
}

// marshalEnum encodes v as its name. A value that is not one of names is
// refused, so no write path can store a value the API cannot read back
// (the writes check their input first and say which field is wrong; this
// is the last line).
func marshalEnum[E ~string](v E, names []E) (byte, []byte, error) {
	if !slices.Contains(names, v) {
		return 0, nil, fmt.Errorf("refusing to store %q: not one of %v", string(v), names)
	}
	t, data, err := bson.MarshalValue(string(v))
	return byte(t), data, err
}

// checkEnum returns a CodeBadUserInput error naming arg when v is not one
// of names, and nil otherwise.
func checkEnum[E ~string](arg string, v E, names []E) error {
	if slices.Contains(names, v) {
		return nil
	}
	return badInput(arg, "%q is not one of %v", string(v), names)
}

// checkEnums is checkEnum for each value of a list argument.
func checkEnums[E ~string](arg string, values []E, names []E) error {
	for i, v := range values {
		if err := checkEnum(fmt.Sprintf("%s[%d]", arg, i), v, names); err != nil {
			return err
		}
	}
	return nil
}

// storedForms returns the values a query must match for the given enum
// values: each name and its integer position, since both may be stored.
func storedForms[E ~string](values []E, positions []E) bson.A {
	out := make(bson.A, 0, 2*len(values))
	for _, v := range values {
		out = append(out, string(v))
		for i, p := range positions {
			if p == v {
				out = append(out, int32(i))
			}
		}
	}
	return out
}
