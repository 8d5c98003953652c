// Package egress holds the only way webhook deliveries leave the process:
// a check for the URLs users register (Policy.CheckURL), the address
// ranges deliveries may not reach (Blocked), and an HTTP client
// (Policy.Client) that re-checks every address it actually dials, so that
// a name which was public at registration and points at this network at
// delivery (DNS rebinding) is still refused. Together they keep a webhook
// URL from being used for server-side request forgery.
//
// The package imports only the standard library.
package egress

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxURLLength is the longest URL CheckURL accepts, in bytes.
const maxURLLength = 2048

// maxEcho is how many bytes of user input an error message repeats, so that
// an error about a 2 KiB URL does not carry the URL back in full.
const maxEcho = 100

// ErrBlocked is wrapped by the errors that refuse a destination because of
// its address: CheckURL's for a blocked address, and the Client's for a
// dial to one.
var ErrBlocked = errors.New("destination not allowed")

// Policy decides which destinations are allowed. The zero Policy is the
// production one: https only, public addresses only, the system resolver
// and the system's root certificates.
type Policy struct {
	// AllowPrivate permits http URLs and every address range Blocked
	// refuses (for development and tests). Off by default.
	AllowPrivate bool
	// Resolver looks host names up; nil means net.DefaultResolver. Tests
	// pass a fake so that no test does real DNS.
	Resolver Resolver
	// RootCAs are the certificate authorities the Client trusts; nil means
	// the system's. Tests pass the pool of an httptest TLS server.
	RootCAs *x509.CertPool
}

// Resolver is the part of *net.Resolver the package uses.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

func (p Policy) resolver() Resolver {
	if p.Resolver == nil {
		return net.DefaultResolver
	}
	return p.Resolver
}

// urlError is CheckURL's error: a sentence for an API user, which may wrap
// ErrBlocked or the lookup failure behind it for callers that look with
// errors.Is, without that error's text (a resolver's message can name
// internal DNS servers) showing up in the sentence.
type urlError struct {
	msg string
	err error
}

func (e *urlError) Error() string { return e.msg }
func (e *urlError) Unwrap() error { return e.err }

func refuse(format string, args ...any) error {
	return &urlError{msg: "url: " + fmt.Sprintf(format, args...)}
}

// CheckURL validates a URL a user registers for deliveries.
//
// Without AllowPrivate the scheme must be https, and the host (a name or an
// IP literal) must resolve, with every address it resolves to public (see
// Blocked): a name with one private address among public ones would be
// delivered to the private one some of the time. With AllowPrivate, http
// is allowed too, any address is, and the name is not looked up.
//
// Either way the URL must be at most maxURLLength bytes, have a host and no
// user:password@ part, no fragment (a fragment is never sent, so one is
// most likely a mistake), and a port, if given, from 1 to 65535.
//
// The error's message is a sentence for an API user saying what is wrong.
// An address that is refused gives an error that wraps ErrBlocked.
func (p Policy) CheckURL(ctx context.Context, raw string) error {
	if raw == "" {
		return refuse("is empty; give the https URL to deliver webhooks to")
	}
	if len(raw) > maxURLLength {
		return refuse("is %d bytes long; the limit is %d bytes", len(raw), maxURLLength)
	}
	// Looked for in the raw text because url.Parse leaves Fragment empty
	// for a bare trailing "#".
	if strings.Contains(raw, "#") {
		return refuse("must not contain a fragment (the part from #); it is never sent to the server")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which Error would repeat in full
		}
		return refuse("is not a valid URL (%s)", clip(err.Error()))
	}
	if err := p.checkScheme(u.Scheme); err != nil {
		return err
	}
	if u.User != nil {
		return refuse("must not contain a user name or password (the user:password@ part)")
	}
	if u.Host == "" {
		return refuse("has no host; write it as https://host/path")
	}
	if err := checkPort(u); err != nil {
		return err
	}
	host := u.Hostname()
	addr, err := netip.ParseAddr(host)
	isIP := err == nil
	if !isIP {
		if err := checkName(host); err != nil {
			return err
		}
	}
	if p.AllowPrivate {
		return nil
	}
	if isIP {
		if blocked, name := Blocked(addr); blocked {
			return &urlError{
				msg: fmt.Sprintf("url: %s is %s %s address; webhooks are delivered to public addresses only",
					clip(host), article(name), name),
				err: ErrBlocked,
			}
		}
		return nil
	}
	return p.checkResolved(ctx, host)
}

func (p Policy) checkScheme(scheme string) error {
	switch {
	case scheme == "https":
		return nil
	case scheme == "http" && p.AllowPrivate:
		return nil
	case scheme == "http":
		return refuse("scheme http is not allowed; webhooks are delivered over https only")
	case scheme == "":
		return refuse("has no scheme; it must start with https://")
	default:
		// url.Parse accepts only letters, digits and +-. in a scheme, so it
		// is safe to repeat, once clipped.
		return refuse("scheme %q is not supported; use https", clip(scheme))
	}
}

// checkPort refuses a port outside 1..65535. url.Parse has already made
// sure the port is digits; an empty one ("host:") is refused too, as a
// likely typo rather than a request for the default.
func checkPort(u *url.URL) error {
	if !strings.HasSuffix(u.Host, ":") && u.Port() == "" {
		return nil
	}
	port := u.Port()
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || len(port) > 5 {
		return refuse("port %q is not valid; use a number from 1 to 65535", clip(port))
	}
	return nil
}

// checkName refuses a host that is not an IP literal and not a plausible
// DNS name. Besides catching typos, it keeps out the numeric forms that
// some resolvers turn into addresses ("127.1", "2130706433", "0x7f.0.0.1")
// by insisting that the last label starts with a letter, as every top-level
// domain does. A name with non-ASCII letters must be given in its xn-- form
// so that the name checked here is the name the transport looks up.
func checkName(host string) error {
	for i := 0; i < len(host); i++ {
		if host[i] >= utf8.RuneSelf {
			return refuse("host %q has non-ASCII characters; write it in its xn-- (punycode) form", clip(host))
		}
	}
	bad := refuse("host %q is not a valid host name", clip(host))
	name := strings.TrimSuffix(host, ".")
	if name == "" || len(name) > 253 {
		return bad
	}
	labels := strings.Split(name, ".")
	for _, label := range labels {
		if label == "" || len(label) > 63 {
			return bad
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !isLetter(c) && !('0' <= c && c <= '9') && c != '-' && c != '_' {
				return bad
			}
		}
	}
	if !isLetter(labels[len(labels)-1][0]) {
		return bad
	}
	return nil
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// checkResolved looks host up and refuses it unless every address is public.
func (p Policy) checkResolved(ctx context.Context, host string) error {
	addrs, err := p.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return &urlError{
			msg: fmt.Sprintf("url: host %q cannot be resolved; check the name", clip(host)),
			err: err,
		}
	}
	for _, addr := range addrs {
		if blocked, name := Blocked(addr); blocked {
			return &urlError{
				// The address itself is not named: the message would
				// otherwise map this network's internal names for anyone
				// who may register a webhook.
				msg: fmt.Sprintf("url: host %q resolves to %s %s address; webhooks are delivered to public addresses only",
					clip(host), article(name), name),
				err: ErrBlocked,
			}
		}
	}
	return nil
}

// clip shortens user input that goes into a message to at most maxEcho
// bytes, cutting on a rune boundary and marking the cut.
func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// article is "a" or "an" for the range names Blocked gives, which are
// fixed, so the first letter (and "un" other than "uni") is enough.
func article(name string) string {
	if name == "" {
		return "a"
	}
	switch name[0] {
	case 'a', 'e', 'i', 'o', 'A', 'E', 'I', 'O':
		return "an"
	}
	if strings.HasPrefix(name, "un") && !strings.HasPrefix(name, "uni") {
		return "an"
	}
	return "a"
}
