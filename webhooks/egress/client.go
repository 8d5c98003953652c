package egress

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Connection limits for deliveries. Keep-alives save a TLS handshake per
// delivery to a busy endpoint, but an idle connection holds a socket here
// and at the user's server, so few are kept and not for long.
const (
	maxIdleConnsPerHost = 2
	maxIdleConns        = 100
	idleConnTimeout     = 90 * time.Second
	// connectTimeout caps one connection attempt, so that when a name has
	// several addresses, one that drops packets does not use up the whole
	// delivery timeout before the next is tried.
	connectTimeout = 10 * time.Second
	// maxResponseHeaderBytes bounds what a receiver can make us buffer
	// before the body; a webhook answer needs few headers.
	maxResponseHeaderBytes = 64 << 10
)

// Client returns an *http.Client for deliveries. timeout bounds a whole
// attempt: connecting, TLS, sending, the response headers and reading the
// body.
//
// Every connection goes through the client's own dialer, which looks the
// host up with p.Resolver (the transport does no DNS of its own) and dials
// the addresses in turn. Without AllowPrivate each address is checked
// again, by Blocked, in the dialer's Control hook, that is, on the address
// actually being dialled, just before connect: a name that resolved to a
// public address when it was registered and resolves to 127.0.0.1 now is
// refused, with an error that wraps ErrBlocked and names the address.
//
// The client uses no proxy (the environment's HTTP_PROXY is ignored, as a
// proxy would do the dialling out of our sight), does not follow
// redirects (a 3xx comes back as the response, since its Location was
// never checked), and verifies certificates against p.RootCAs or the
// system's roots, with TLS 1.2 at least.
//
// Each call makes a new connection pool: make one Client and reuse it.
func (p Policy) Client(timeout time.Duration) *http.Client {
	d := &dialer{resolver: p.resolver(), allowPrivate: p.AllowPrivate}
	transport := &http.Transport{
		Proxy:       nil,
		DialContext: d.DialContext,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			RootCAs:    p.RootCAs,
		},
		// A custom DialContext turns HTTP/2 off unless asked for.
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           maxIdleConns,
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		IdleConnTimeout:        idleConnTimeout,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// dialer resolves host names with resolver and dials the addresses one by
// one, refusing blocked ones unless allowPrivate.
type dialer struct {
	resolver     Resolver
	allowPrivate bool
}

// DialContext is the transport's dial function; address is host:port.
func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	addrs, err := d.lookup(ctx, network, host)
	if err != nil {
		return nil, err
	}
	nd := &net.Dialer{Timeout: connectTimeout}
	if !d.allowPrivate {
		nd.Control = checkDialled
	}
	var first error
	for _, addr := range addrs {
		// Unmapped so that ::ffff:a.b.c.d, which some resolvers return for
		// IPv4 answers, is dialled over IPv4.
		target := net.JoinHostPort(addr.Unmap().String(), port)
		conn, err := nd.DialContext(ctx, network, target)
		if err == nil {
			return conn, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// lookup returns host's addresses: the address itself for an IP literal,
// else what the resolver says.
func (d *dialer) lookup(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if addr, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{addr}, nil
	}
	ipNetwork := "ip"
	switch network {
	case "tcp4":
		ipNetwork = "ip4"
	case "tcp6":
		ipNetwork = "ip6"
	}
	addrs, err := d.resolver.LookupNetIP(ctx, ipNetwork, host)
	if err != nil {
		return nil, fmt.Errorf("egress: looking up %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("egress: looking up %s: no addresses", host)
	}
	return addrs, nil
}

// checkDialled is the net.Dialer Control hook: it runs after the socket is
// made and before it connects, with the address being connected to, so
// nothing can change the destination between this check and the connect.
// An address it cannot parse is refused: the check fails closed.
func checkDialled(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: cannot check address %q: %w", address, ErrBlocked)
	}
	if blocked, name := Blocked(ap.Addr()); blocked {
		return fmt.Errorf("egress: %s is %s %s address: %w", ap.Addr(), article(name), name, ErrBlocked)
	}
	return nil
}

// Limits for ReadSnippet.
const (
	snippetMax = 1 << 10
	drainMax   = 64 << 10
)

// ReadSnippet reads at most 1 KiB of a response body for a delivery log,
// then reads and discards at most 64 KiB more, so that a short body ends
// and the connection can be reused while a long one cannot hold the
// delivery up, and closes the body. The result is valid UTF-8, invalid
// bytes replaced by U+FFFD, and at most 1 KiB long; a character cut by the
// 1 KiB limit is dropped rather than replaced.
func ReadSnippet(body io.ReadCloser) string {
	if body == nil {
		return ""
	}
	defer body.Close()
	buf, _ := io.ReadAll(io.LimitReader(body, snippetMax))
	_, _ = io.Copy(io.Discard, io.LimitReader(body, drainMax))
	if len(buf) == snippetMax {
		buf = trimPartialRune(buf)
	}
	s := strings.ToValidUTF8(string(buf), "\uFFFD")
	// Replacements are longer than the bytes they replace.
	if len(s) > snippetMax {
		s = string(trimPartialRune([]byte(s[:snippetMax])))
	}
	return s
}

// trimPartialRune drops an incomplete UTF-8 sequence from the end of b.
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}
