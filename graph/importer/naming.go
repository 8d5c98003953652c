package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/valyala/fastjson"

	"referrals/storage"
)

// specNames maps the specification's PascalCase names (Partner Center's
// Referral resource) onto the camelCase names of our records: the one
// table of the two namings. The same name means the same field at every
// level (Id of a referral, of its customer profile, of a tag).
var specNames = map[string]string{
	"Id": "id", "CreatedDateTime": "createdDateTime", "UpdatedDateTime": "updatedDateTime",
	"Status": "status", "ReferralSource": "referralSource", "CustomerProfile": "customerProfile",
	"Details": "details", "Participants": "participants",
	"Name": "name", "Address": "address", "Size": "size", "Contacts": "contacts",
	"AddressLine1": "addressLine1", "AddressLine2": "addressLine2", "City": "city", "State": "state",
	"PostalCode": "postalCode", "Country": "country",
	"FirstName": "firstName", "LastName": "lastName", "PhoneNumber": "phoneNumber", "Email": "email",
	"Notes": "notes", "DealValue": "dealValue", "ClosingDate": "closingDate", "Requirements": "requirements",
	"IndustryFocus": "industryFocus", "Products": "products", "ServiceTypes": "serviceTypes", "Solutions": "solutions",
	"OrganizationId": "organizationId", "OrganizationName": "organizationName", "ExpirationDateTime": "expirationDateTime",
	"LocationId": "locationId", "Users": "users", "InvitedByParticipantId": "invitedByParticipantId",
}

// ourNames maps each of our names to the specification's, or to "" for
// the fields the specification does not have (version, statusReason).
var ourNames = func() map[string]string {
	ours := map[string]string{"version": "", "statusReason": ""}
	for spec, name := range specNames {
		ours[name] = spec
	}
	return ours
}()

// naming is how a record names its fields.
type naming int

const (
	namingUnknown naming = iota // no field names yet
	namingOurs                  // camelCase, as the export writes them
	namingSpec                  // PascalCase, as the specification does
)

func (n naming) String() string {
	if n == namingSpec {
		return "PascalCase (the specification's)"
	}
	return "camelCase (the export's)"
}

// namer rewrites a record into our naming, one JSON token at a time, so
// that numbers (a deal value) keep their digits.
type namer struct {
	dec    *json.Decoder
	out    bytes.Buffer
	naming naming
	first  string // the first field name, which set the naming
	depth  int    // of the value being copied
}

// maxDepth bounds the nesting of a record: a referral nests 4 deep (a
// participant's users), and each level costs the namer a path, so a line
// of a hundred thousand brackets grew the server by gigabytes.
const maxDepth = 16

// toOurNames returns raw with its field names in our naming, and the
// naming it had. A name of neither naming, or a record that mixes both,
// is a CodeBadUserInput *storage.Error naming the field as given.
func toOurNames(raw []byte) ([]byte, naming, error) {
	if naming, ok := inOurNaming(raw); ok {
		return raw, naming, nil
	}
	n := &namer{dec: json.NewDecoder(bytes.NewReader(raw))}
	n.dec.UseNumber()
	if err := n.value(""); err != nil {
		return nil, n.naming, err
	}
	if _, err := n.dec.Token(); err != io.EOF {
		return nil, n.naming, bad("", "more than one JSON value: give one referral a line, or an element")
	}
	return n.out.Bytes(), n.naming, nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// value copies one JSON value at path.
func (n *namer) value(path string) error {
	tok, err := n.dec.Token()
	if err != nil {
		return bad("", "not a referral as the export writes it: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if d, ok := tok.(json.Delim); ok && (d == '{' || d == '[') {
		if n.depth++; n.depth > maxDepth {
			return bad(path, "is nested more than %d levels deep: a referral is not", maxDepth)
		}
		defer func() { n.depth-- }()
	}
	switch tok {
	case json.Delim('{'):
		return n.object(path)
	case json.Delim('['):
		n.out.WriteByte('[')
		for i := 0; n.dec.More(); i++ {
			if i > 0 {
				n.out.WriteByte(',')
			}
			if err := n.value(join(path, strconv.Itoa(i))); err != nil {
				return err
			}
		}
		_, _ = n.dec.Token()
		n.out.WriteByte(']')
		return nil
	}
	if num, ok := tok.(json.Number); ok {
		n.out.WriteString(num.String())
		return nil
	}
	b, _ := json.Marshal(tok)
	n.out.Write(b)
	return nil
}

// object copies the members of an object at path, renaming them.
func (n *namer) object(path string) error {
	n.out.WriteByte('{')
	for i := 0; n.dec.More(); i++ {
		tok, err := n.dec.Token()
		if err != nil {
			return bad("", "not a referral as the export writes it: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
		given := tok.(string)
		name, err := n.rename(path, given)
		if err != nil {
			return err
		}
		if i > 0 {
			n.out.WriteByte(',')
		}
		b, _ := json.Marshal(name)
		n.out.Write(b)
		n.out.WriteByte(':')
		if err := n.value(join(path, given)); err != nil {
			return err
		}
	}
	_, _ = n.dec.Token()
	n.out.WriteByte('}')
	return nil
}

// rename returns the name in our naming of the field given at path,
// checking that it is a name of a record and in the record's naming.
func (n *namer) rename(path, given string) (string, error) {
	if (given == "id" || given == "Id") && inTagList(path) {
		// The specification names a tag's id both ways (Id in its table,
		// id in its examples): either fits a record of either naming.
		return "id", nil
	}
	name, was := given, namingOurs
	if ours, ok := specNames[given]; ok {
		name, was = ours, namingSpec
	} else if _, ok := ourNames[given]; !ok {
		return "", bad(join(path, given), "is not a field of a referral: names are case-sensitive, in camelCase as the export writes them or in PascalCase as the specification does")
	}
	switch n.naming {
	case namingUnknown:
		n.naming, n.first = was, given
	case was:
	default:
		return "", bad(join(path, given), "is %s but the record's first field %q is %s: name every field of a record one way", was, n.first, n.naming)
	}
	return name, nil
}

// fieldOf returns err with the field it names, a path of our names, in
// the record's naming.
func (n naming) fieldOf(err error) error {
	var se *storage.Error
	if n != namingSpec || !errors.As(err, &se) {
		return err
	}
	for i, part := range se.Field {
		name, index, found := strings.Cut(part, "[") // participants[0]
		if spec := ourNames[name]; spec != "" && found {
			se.Field[i] = spec + "[" + index
		} else if spec != "" {
			se.Field[i] = spec
		}
	}
	return err
}

// parsers parse records for inOurNaming.
var parsers fastjson.ParserPool

// inOurNaming reports whether raw is one JSON object whose field names,
// at every level, are all ours, and so needs no renaming (an export's
// records): it reads them several times faster than the namer, which
// reads the others and says what is wrong with them. The naming is
// namingUnknown for an object with no fields.
func inOurNaming(raw []byte) (naming, bool) {
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(raw)
	if err != nil || v.Type() != fastjson.TypeObject {
		return namingUnknown, false
	}
	named, ours := false, true
	var walk func(v *fastjson.Value)
	walk = func(v *fastjson.Value) {
		switch v.Type() {
		case fastjson.TypeObject:
			o, _ := v.Object()
			o.Visit(func(key []byte, member *fastjson.Value) {
				if _, ok := ourNames[string(key)]; !ok || !ours {
					ours = false
					return
				}
				named = true
				walk(member)
			})
		case fastjson.TypeArray:
			for _, e := range v.GetArray() {
				walk(e)
			}
		}
	}
	walk(v)
	if !named {
		return namingUnknown, ours
	}
	return namingOurs, ours
}

// inTagList reports whether path is an element of a requirements list
// (Details.Requirements.Products.0), where a tag is an object in the
// specification's shape.
func inTagList(path string) bool {
	list, index, ok := cutLast(path)
	if !ok || strings.Trim(index, "0123456789") != "" {
		return false
	}
	parent, _, ok := cutLast(list)
	return ok && (parent == "details.requirements" || parent == "Details.Requirements")
}

// cutLast splits a dotted path at its last dot.
func cutLast(path string) (string, string, bool) {
	i := strings.LastIndexByte(path, '.')
	if i < 0 {
		return "", "", false
	}
	return path[:i], path[i+1:], true
}
