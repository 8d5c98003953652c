package egress

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// Tests send traffic to loopback only. Names that stand for public hosts
// are answered by fakeResolver and are never dialled.

// fakeResolver answers from a map and records the names asked for. A name
// not in the map is not found, as a real resolver would say.
type fakeResolver struct {
	mu    sync.Mutex
	hosts map[string][]netip.Addr
	asked []string
}

func newResolver(hosts map[string][]string) *fakeResolver {
	r := &fakeResolver{hosts: map[string][]netip.Addr{}}
	for host, addrs := range hosts {
		r.set(host, addrs...)
	}
	return r
}

// set changes what host resolves to, as a DNS record change would.
func (r *fakeResolver) set(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	list := []netip.Addr{}
	for _, a := range addrs {
		list = append(list, netip.MustParseAddr(a))
	}
	r.hosts[host] = list
}

func (r *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, host)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A trailing dot (a fully qualified name) is the same name.
	addrs, ok := r.hosts[strings.TrimSuffix(host, ".")]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, Server: "10.0.0.53:53", IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range addrs {
		if network == "ip" || network == "ip4" && a.Unmap().Is4() || network == "ip6" && a.Is6() && !a.Is4In6() {
			out = append(out, a)
		}
	}
	return out, nil
}

func (r *fakeResolver) askedFor() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.asked...)
}

// noResolver fails the test if anything is looked up.
type noResolver struct{ t *testing.T }

func (r noResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.t.Errorf("unexpected lookup of %q", host)
	return nil, errors.New("no lookups in this test")
}

// countingServer starts a loopback HTTP server (TLS if tls) that answers
// 200 "ok" and counts the requests that reach it.
func countingServer(t *testing.T, tls bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	hits := new(atomic.Int64)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	})
	srv := httptest.NewUnstartedServer(h)
	// Tests make handshakes fail on purpose; keep the server from logging them.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, hits
}

func serverPort(srv *httptest.Server) string {
	return strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
}

// serverPool is the certificate pool that trusts srv's certificate, which
// covers 127.0.0.1, ::1, example.com and *.example.com.
func serverPool(srv *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}

func TestBlocked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		name string // "" for a public address
	}{
		// 0.0.0.0/8
		{"0.0.0.0", "unspecified"},
		{"0.255.255.255", "unspecified"},
		{"1.0.0.0", ""},
		// 127.0.0.0/8
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"126.255.255.255", ""},
		{"128.0.0.0", ""},
		// 10.0.0.0/8
		{"10.0.0.5", "private"},
		{"10.255.255.255", "private"},
		{"9.255.255.255", ""},
		{"11.0.0.0", ""},
		// 172.16.0.0/12
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		// 192.168.0.0/16
		{"192.168.1.1", "private"},
		{"192.168.255.255", "private"},
		{"192.167.255.255", ""},
		{"192.169.0.0", ""},
		// 169.254.0.0/16, with the metadata address named apart
		{"169.254.0.1", "link-local"},
		{"169.254.169.254", "cloud metadata"},
		{"169.254.169.253", "link-local"},
		{"169.254.255.255", "link-local"},
		{"169.253.255.255", ""},
		{"169.255.0.0", ""},
		// 100.64.0.0/10
		{"100.64.0.0", "CGNAT"},
		{"100.100.100.200", "CGNAT"},
		{"100.127.255.255", "CGNAT"},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		// 224.0.0.0/4, 240.0.0.0/4, 255.255.255.255
		{"224.0.0.1", "multicast"},
		{"239.255.255.255", "multicast"},
		{"223.255.255.255", ""},
		{"240.0.0.1", "reserved"},
		{"255.255.255.254", "reserved"},
		{"255.255.255.255", "broadcast"},
		// 192.0.0.0/24
		{"192.0.0.8", "IETF protocol assignment"},
		{"192.0.0.255", "IETF protocol assignment"},
		{"191.255.255.255", ""},
		// 198.18.0.0/15
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"198.17.255.255", ""},
		{"198.20.0.0", ""},
		// documentation
		{"192.0.2.1", "documentation"},
		{"198.51.100.7", "documentation"},
		{"203.0.113.9", "documentation"},
		{"192.0.3.0", ""},
		{"198.51.101.0", ""},
		{"203.0.114.0", ""},
		// extras
		{"192.88.99.1", "6to4 relay anycast"},
		{"168.63.129.16", "cloud metadata"},
		{"168.63.129.17", ""},

		// IPv6
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"fc00::1", "unique local (IPv6 ULA)"},
		{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique local (IPv6 ULA)"},
		{"fd00:ec2::254", "cloud metadata"},
		{"fd00:ec2::253", "unique local (IPv6 ULA)"},
		{"fe80::1", "link-local"},
		{"febf:ffff::1", "link-local"},
		{"fec0::1", "site-local"},
		{"ff02::1", "multicast"},
		{"ff0e::1", "multicast"},
		{"64:ff9b::a00:5", "NAT64 (embeds IPv4)"},
		{"64:ff9b::808:808", "NAT64 (embeds IPv4)"}, // even with a public IPv4 inside
		{"64:ff9b:1::1", "NAT64 (embeds IPv4)"},
		{"2001:db8::1", "documentation"},
		{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
		{"3fff::1", "documentation"},
		{"100::1", "discard"},
		{"100::ffff:ffff:ffff:ffff", "discard"},
		{"100:0:0:1::", "reserved"}, // past 100::/64, still outside 2000::/3
		{"2001::1", "Teredo (embeds IPv4)"},
		{"2001:2::1", "benchmarking"},
		{"2002:7f00:1::1", "6to4 (embeds IPv4)"},
		{"5f00::1", "reserved"},
		{"4000::1", "reserved"},
		{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"2001:db9::", ""},

		// IPv4 in IPv6 form, judged by the IPv4 address
		{"::ffff:127.0.0.1", "IPv4-mapped loopback"},
		{"::ffff:10.0.0.5", "IPv4-mapped private"},
		{"::ffff:169.254.169.254", "IPv4-mapped cloud metadata"},
		{"::ffff:0.0.0.0", "IPv4-mapped unspecified"},
		{"::ffff:8.8.8.8", ""},
		{"::127.0.0.1", "IPv4-compatible loopback"},
		{"::10.0.0.5", "IPv4-compatible private"},
		{"::2", "IPv4-compatible unspecified"},
		{"::8.8.8.8", ""},

		// zones
		{"fe80::1%eth0", "zone-scoped"},
		{"2606:4700:4700::1111%eth0", "zone-scoped"},

		// public
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001:82b::200e", ""},
	}
	for _, tt := range tests {
		blocked, name := Blocked(netip.MustParseAddr(tt.addr))
		if blocked != (tt.name != "") || name != tt.name {
			t.Errorf("Blocked(%s) = %v, %q; want %v, %q", tt.addr, blocked, name, tt.name != "", tt.name)
		}
	}
	if blocked, name := Blocked(netip.Addr{}); !blocked || name != "invalid" {
		t.Errorf("Blocked(zero Addr) = %v, %q; want true, \"invalid\"", blocked, name)
	}
}

// checkResolver answers CheckURL's lookups.
func checkResolver() *fakeResolver {
	return newResolver(map[string][]string{
		"public.example.com":   {"8.8.8.8", "2606:4700:4700::1111"},
		"mixed.example.com":    {"8.8.8.8", "10.0.0.5", "1.1.1.1"},
		"metadata.example.com": {"169.254.169.254"},
		"mapped.example.com":   {"::ffff:127.0.0.1"},
		"localhost":            {"127.0.0.1", "::1"},
		"empty.example.com":    {},
	})
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	long := "https://public.example.com/"
	long += strings.Repeat("a", maxURLLength-len(long))
	tests := []struct {
		name         string
		allowPrivate bool
		url          string
		want         string // a part of the message; "" when accepted
		blocked      bool   // the error wraps ErrBlocked
	}{
		{"public name", false, "https://public.example.com/hooks", "", false},
		{"public name with port and query", false, "https://public.example.com:8443/hooks?x=1", "", false},
		{"lowest port", false, "https://public.example.com:1/", "", false},
		{"highest port", false, "https://public.example.com:65535/", "", false},
		{"trailing dot", false, "https://public.example.com./", "", false},
		{"public IPv4 literal", false, "https://8.8.8.8/hooks", "", false},
		{"public IPv6 literal", false, "https://[2606:4700:4700::1111]:443/", "", false},
		{"longest", false, long, "", false},

		{"empty", false, "", "url: is empty", false},
		{"too long", false, long + "a", "url: is 2049 bytes long; the limit is 2048 bytes", false},
		{"http", false, "http://public.example.com/", "url: scheme http is not allowed; webhooks are delivered over https only", false},
		{"ftp", false, "ftp://public.example.com/", `url: scheme "ftp" is not supported; use https`, false},
		{"ftp with AllowPrivate", true, "ftp://127.0.0.1/", `scheme "ftp" is not supported`, false},
		{"javascript", false, "javascript:alert(1)", `scheme "javascript" is not supported`, false},
		{"no scheme", false, "public.example.com/hooks", "has no scheme", false},
		{"userinfo", false, "https://user:secret@public.example.com/", "must not contain a user name or password", false},
		{"user only", false, "https://user@public.example.com/", "must not contain a user name or password", false},
		{"userinfo with AllowPrivate", true, "http://user:secret@127.0.0.1/", "must not contain a user name or password", false},
		{"no host", false, "https:///hooks", "url: has no host", false},
		{"opaque", false, "https:public.example.com", "url: has no host", false},
		{"port 0", false, "https://public.example.com:0/", `url: port "0" is not valid; use a number from 1 to 65535`, false},
		{"port too big", false, "https://public.example.com:65536/", `port "65536" is not valid`, false},
		{"port way too big", false, "https://public.example.com:99999999999999999999/", "is not valid", false},
		{"empty port", false, "https://public.example.com:/", `port "" is not valid`, false},
		{"port not a number", false, "https://public.example.com:https/", "is not a valid URL (invalid port", false},
		{"fragment", false, "https://public.example.com/hooks#part", "must not contain a fragment", false},
		{"empty fragment", false, "https://public.example.com/hooks#", "must not contain a fragment", false},
		{"fragment with AllowPrivate", true, "http://127.0.0.1/#x", "must not contain a fragment", false},
		{"space in host", false, "https://public example.com/", "is not a valid URL", false},
		{"control character", false, "https://public.example.com/\x00", "is not a valid URL", false},
		{"empty label", false, "https://public..example.com/", `host "public..example.com" is not a valid host name`, false},
		{"bad character", false, "https://pub!ic.example.com/", "is not a valid host name", false},
		{"short IPv4 form", false, "https://127.1/", `host "127.1" is not a valid host name`, false},
		{"decimal IPv4 form", false, "https://2130706433/", "is not a valid host name", false},
		{"hex IPv4 form", false, "https://0x7f000001/", "is not a valid host name", false},
		{"octal IPv4 form", false, "https://0177.0.0.1/", "is not a valid host name", false},
		{"octal IPv4 form with AllowPrivate", true, "http://0177.0.0.1/", "is not a valid host name", false},
		{"non-ASCII name", false, "https://bücher.example/", "write it in its xn-- (punycode) form", false},
		{"punycode name", false, "https://xn--bcher-kva.example/", "cannot be resolved", false},

		{"IPv4 literal, private", false, "https://10.0.0.5/hooks", "url: 10.0.0.5 is a private address; webhooks are delivered to public addresses only", true},
		{"IPv6 literal, loopback", false, "https://[::1]:8443/", "url: ::1 is a loopback address", true},
		{"IPv6 literal, mapped", false, "https://[::ffff:169.254.169.254]/", "is an IPv4-mapped cloud metadata address", true},
		{"IPv6 literal, zone", false, "https://[fe80::1%25eth0]/", "is a zone-scoped address", true},
		{"IPv6 literal, ULA", false, "https://[fd12:3456::1]/", "is a unique local (IPv6 ULA) address", true},
		{"IPv6 literal, unspecified", false, "https://[::]/", "is an unspecified address", true},
		{"bracketed IPv4 literal", false, "https://[127.0.0.1]/", "is not a valid URL", false},

		{"mixed public and private", false, "https://mixed.example.com/", `url: host "mixed.example.com" resolves to a private address; webhooks are delivered to public addresses only`, true},
		{"metadata name", false, "https://metadata.example.com/latest/", "resolves to a cloud metadata address", true},
		{"mapped loopback answer", false, "https://mapped.example.com/", "an IPv4-mapped loopback address", true},
		{"localhost", false, "https://localhost/", "resolves to a loopback address", true},
		{"unknown name", false, "https://nowhere.example.com/", `url: host "nowhere.example.com" cannot be resolved`, false},
		{"no addresses", false, "https://empty.example.com/", "cannot be resolved", false},

		{"AllowPrivate loopback http", true, "http://127.0.0.1:8080/x", "", false},
		{"AllowPrivate private https", true, "https://10.0.0.5/", "", false},
		{"AllowPrivate IPv6 zone", true, "http://[fe80::1%25eth0]:8080/", "", false},
		{"AllowPrivate unknown name", true, "http://hooks.internal:8080/", "", false},
		{"AllowPrivate bad port", true, "http://127.0.0.1:0/", "is not valid", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := checkResolver()
			p := Policy{AllowPrivate: tt.allowPrivate, Resolver: res}
			err := p.CheckURL(context.Background(), tt.url)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v; want nil", tt.url, err)
				}
			} else {
				if err == nil {
					t.Fatalf("CheckURL(%q) = nil; want an error with %q", tt.url, tt.want)
				}
				msg := err.Error()
				if !strings.Contains(msg, tt.want) {
					t.Errorf("CheckURL(%q) = %q; want it to contain %q", tt.url, msg, tt.want)
				}
				// A name's addresses are not told: that would map the
				// network's internal names for whoever registers webhooks.
				for _, a := range regexp.MustCompile(`\d+\.\d+\.\d+\.\d+`).FindAllString(msg, -1) {
					if !strings.Contains(tt.url, a) {
						t.Errorf("CheckURL(%q) = %q names %s, an address the name resolves to", tt.url, msg, a)
					}
				}
				if !strings.HasPrefix(msg, "url: ") {
					t.Errorf("message %q does not start with \"url: \"", msg)
				}
				if errors.Is(err, ErrBlocked) != tt.blocked {
					t.Errorf("errors.Is(%v, ErrBlocked) = %v; want %v", err, !tt.blocked, tt.blocked)
				}
			}
			// A literal is never looked up, nor is any name with AllowPrivate.
			literal := false
			if u, err := url.Parse(tt.url); err == nil {
				_, err := netip.ParseAddr(u.Hostname())
				literal = err == nil
			}
			if tt.allowPrivate || literal {
				if asked := res.askedFor(); len(asked) != 0 {
					t.Errorf("CheckURL(%q) looked up %q", tt.url, asked)
				}
			}
		})
	}
}

// TestCheckURLBlockedLiterals gives CheckURL an IP literal from every range
// Blocked refuses.
func TestCheckURLBlockedLiterals(t *testing.T) {
	t.Parallel()
	literals := []string{
		"0.0.0.0", "0.1.2.3", "127.0.0.1", "127.1.2.3", "10.0.0.5", "172.16.0.1", "172.31.255.255",
		"192.168.1.1", "169.254.1.1", "169.254.169.254", "100.64.0.1", "100.127.255.255",
		"224.0.0.1", "239.1.2.3", "240.0.0.1", "255.255.255.255", "192.0.0.8", "198.18.0.1",
		"198.19.1.1", "192.0.2.1", "198.51.100.1", "203.0.113.1", "168.63.129.16",
		"::", "::1", "fc00::1", "fd00::1", "fe80::1", "ff02::1", "64:ff9b::7f00:1",
		"64:ff9b:1::a00:1", "2001:db8::1", "100::1", "fd00:ec2::254", "::ffff:127.0.0.1",
		"::ffff:10.0.0.1", "::127.0.0.1",
	}
	p := Policy{Resolver: noResolver{t}}
	for _, lit := range literals {
		addr := netip.MustParseAddr(lit)
		_, name := Blocked(addr)
		host := lit
		if addr.Is6() {
			host = "[" + lit + "]"
		}
		err := p.CheckURL(context.Background(), "https://"+host+"/hooks")
		want := fmt.Sprintf("url: %s is %s %s address; webhooks are delivered to public addresses only", lit, article(name), name)
		if err == nil || err.Error() != want || !errors.Is(err, ErrBlocked) {
			t.Errorf("CheckURL(%s) = %v; want %q wrapping ErrBlocked", host, err, want)
		}
	}
}

// TestCheckURLMessagesAreShort makes sure long input is not repeated in
// full in a message.
func TestCheckURLMessagesAreShort(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 1500)
	urls := []string{
		"https://" + long + ".com/",
		"https://" + long + ".example.com/", // a label over 63 bytes
		"https://public.example.com:" + strings.Repeat("9", 1500) + "/",
		"https://public.example.com:" + strings.Repeat("x", 1500) + "/",
		long + "://public.example.com/",
		"https://" + strings.Repeat("ü", 700) + "/",
		"https://" + strings.Repeat("a.", 700) + "com/",
		"https://public.example.com/" + strings.Repeat("a", 3000),
	}
	p := Policy{Resolver: checkResolver()}
	for _, u := range urls {
		err := p.CheckURL(context.Background(), u)
		if err == nil {
			t.Errorf("CheckURL(%.40q...) = nil; want an error", u)
			continue
		}
		if msg := err.Error(); len(msg) > 250 || !utf8.ValidString(msg) {
			t.Errorf("message is %d bytes (valid UTF-8: %v): %.300q", len(msg), utf8.ValidString(msg), msg)
		}
	}
}

// TestCheckURLLookupError: the message hides the resolver's own error
// (which can name internal DNS servers) but the error wraps it.
func TestCheckURLLookupError(t *testing.T) {
	t.Parallel()
	p := Policy{Resolver: checkResolver()}
	err := p.CheckURL(context.Background(), "https://nowhere.example.com/")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("CheckURL error %v does not wrap the *net.DNSError", err)
	}
	if err != nil && strings.Contains(err.Error(), "10.0.0.53") {
		t.Errorf("message %q names the DNS server", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = p.CheckURL(ctx, "https://public.example.com/")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("CheckURL with a cancelled context = %v; want it to wrap context.Canceled", err)
	}
}

// TestClientRefusesRebinding registers a name while it resolves to a
// public address, then points it at the loopback server: the client must
// refuse the dial, and the server must see nothing.
func TestClientRefusesRebinding(t *testing.T) {
	srv, hits := countingServer(t, true)
	res := newResolver(map[string][]string{"hooks.example.com": {"8.8.8.8"}})
	target := "https://hooks.example.com:" + serverPort(srv) + "/deliver"

	if err := (Policy{Resolver: res}).CheckURL(context.Background(), target); err != nil {
		t.Fatalf("CheckURL at registration = %v", err)
	}
	res.set("hooks.example.com", "127.0.0.1")

	t.Run("blocked", func(t *testing.T) {
		c := Policy{Resolver: res, RootCAs: serverPool(srv)}.Client(5 * time.Second)
		resp, err := c.Post(target, "application/json", strings.NewReader(`{"event":"test"}`))
		if err == nil {
			resp.Body.Close()
			t.Fatalf("POST %s succeeded (%s); want it refused", target, resp.Status)
		}
		if !errors.Is(err, ErrBlocked) {
			t.Errorf("error %v does not wrap ErrBlocked", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "127.0.0.1") || !strings.Contains(msg, "loopback") {
			t.Errorf("error %q does not name the address and its range", msg)
		}
		if n := hits.Load(); n != 0 {
			t.Errorf("server got %d requests; want 0", n)
		}
		if asked := res.askedFor(); len(asked) < 2 || asked[len(asked)-1] != "hooks.example.com" {
			t.Errorf("resolver was asked for %q; want the client to look up hooks.example.com", asked)
		}
	})

	t.Run("AllowPrivate", func(t *testing.T) {
		c := Policy{AllowPrivate: true, Resolver: res, RootCAs: serverPool(srv)}.Client(5 * time.Second)
		resp, err := c.Post(target, "application/json", strings.NewReader(`{"event":"test"}`))
		if err != nil {
			t.Fatalf("POST %s with AllowPrivate: %v", target, err)
		}
		body := ReadSnippet(resp.Body)
		if resp.StatusCode != http.StatusOK || body != "ok" {
			t.Errorf("got %s %q; want 200 \"ok\"", resp.Status, body)
		}
		if n := hits.Load(); n != 1 {
			t.Errorf("server got %d requests; want 1", n)
		}
	})
}

// TestClientRefusesLoopbackLiterals: a URL with a loopback IP literal is
// refused without a lookup and without reaching the server.
func TestClientRefusesLoopbackLiterals(t *testing.T) {
	t.Parallel()
	srv, hits := countingServer(t, false)
	urls := []string{srv.URL + "/deliver"}
	// Also over IPv6 where the host has ::1.
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		srv6 := httptest.NewUnstartedServer(srv.Config.Handler)
		srv6.Listener.Close()
		srv6.Listener = ln
		srv6.Start()
		t.Cleanup(srv6.Close)
		urls = append(urls, srv6.URL+"/deliver")
	}
	c := Policy{Resolver: noResolver{t}}.Client(5 * time.Second)
	for _, u := range urls {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Errorf("GET %s succeeded; want it refused", u)
			continue
		}
		if !errors.Is(err, ErrBlocked) || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("GET %s: %v; want a loopback error wrapping ErrBlocked", u, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("servers got %d requests; want 0", n)
	}
}

// TestClientRefusesEveryAddress: when every address of a name is blocked,
// none is dialled.
func TestClientRefusesEveryAddress(t *testing.T) {
	t.Parallel()
	srv, hits := countingServer(t, false)
	res := newResolver(map[string][]string{"hooks.example.com": {"::ffff:127.0.0.1", "127.0.0.1", "::1"}})
	c := Policy{Resolver: res}.Client(5 * time.Second)
	resp, err := c.Get("http://hooks.example.com:" + serverPort(srv) + "/")
	if err == nil {
		resp.Body.Close()
		t.Fatal("request succeeded; want it refused")
	}
	if !errors.Is(err, ErrBlocked) {
		t.Errorf("error %v does not wrap ErrBlocked", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server got %d requests; want 0", n)
	}
}

// TestClientTriesAddressesInTurn: when the first address refuses the
// connection, the next one is dialled.
func TestClientTriesAddressesInTurn(t *testing.T) {
	t.Parallel()
	srv, hits := countingServer(t, false)
	// The server listens on 127.0.0.1 only, so 127.0.0.2 refuses.
	res := newResolver(map[string][]string{"hooks.example.com": {"127.0.0.2", "127.0.0.1"}})
	c := Policy{AllowPrivate: true, Resolver: res}.Client(5 * time.Second)
	resp, err := c.Get("http://hooks.example.com:" + serverPort(srv) + "/")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	ReadSnippet(resp.Body)
	if n := hits.Load(); n != 1 {
		t.Errorf("server got %d requests; want 1", n)
	}
}

// TestCheckDialled calls the dialer's Control hook directly with the
// addresses a dial could report.
func TestCheckDialled(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{
		"127.0.0.1:80", "10.1.2.3:443", "169.254.169.254:80", "[::1]:443", "[::ffff:127.0.0.1]:80",
		"[fe80::1%eth0]:80", "[fd00:ec2::254]:80", "0.0.0.0:80", "not an address", "",
	} {
		if err := checkDialled("tcp", addr, nil); !errors.Is(err, ErrBlocked) {
			t.Errorf("checkDialled(%q) = %v; want ErrBlocked", addr, err)
		}
	}
	for _, addr := range []string{"8.8.8.8:443", "[2606:4700:4700::1111]:443", "[::ffff:1.1.1.1]:443"} {
		if err := checkDialled("tcp", addr, nil); err != nil {
			t.Errorf("checkDialled(%q) = %v; want nil", addr, err)
		}
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	second, secondHits := countingServer(t, false)
	for _, code := range []int{301, 302, 303, 307, 308} {
		first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, second.URL+"/elsewhere", code)
		}))
		t.Cleanup(first.Close)
		c := Policy{AllowPrivate: true}.Client(5 * time.Second)
		resp, err := c.Post(first.URL, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatalf("%d: POST: %v", code, err)
		}
		ReadSnippet(resp.Body)
		if resp.StatusCode != code || resp.Header.Get("Location") != second.URL+"/elsewhere" {
			t.Errorf("got %s, Location %q; want %d to the second server", resp.Status, resp.Header.Get("Location"), code)
		}
	}
	if n := secondHits.Load(); n != 0 {
		t.Errorf("redirect target got %d requests; want 0", n)
	}
}

// TestClientIgnoresProxyEnvironment points the proxy variables at a
// listener that counts connections. The target is a name, not a loopback
// literal, because the environment's proxy is never used for loopback
// literals anyway. (net/http reads the variables once per process, so the
// settings' check below is what holds if something read them earlier.)
func TestClientIgnoresProxyEnvironment(t *testing.T) {
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var proxied atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := proxy.Accept()
			if err != nil {
				return
			}
			proxied.Add(1)
			conn.Close()
		}
	}()
	t.Cleanup(func() { proxy.Close(); wg.Wait() })
	proxyURL := "http://" + proxy.Addr().String()
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"} {
		t.Setenv(v, proxyURL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")

	srv, hits := countingServer(t, false)
	res := newResolver(map[string][]string{"hooks.example.com": {"127.0.0.1"}})
	c := Policy{AllowPrivate: true, Resolver: res}.Client(5 * time.Second)
	resp, err := c.Get("http://hooks.example.com:" + serverPort(srv) + "/")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	ReadSnippet(resp.Body)
	if n := hits.Load(); n != 1 {
		t.Errorf("target got %d requests; want 1", n)
	}
	if n := proxied.Load(); n != 0 {
		t.Errorf("proxy got %d connections; want 0", n)
	}
	if c.Transport.(*http.Transport).Proxy != nil {
		t.Error("Transport.Proxy is set; want nil")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// hangingServer starts a loopback server whose handler runs first, then
// waits until the test ends (or the client goes away).
func hangingServer(t *testing.T, first func(http.ResponseWriter)) *httptest.Server {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first(w)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	// Cleanups run last first: release the handlers, then close.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv
}

func TestClientTimeout(t *testing.T) {
	t.Parallel()
	c := Policy{AllowPrivate: true}.Client(200 * time.Millisecond)

	t.Run("no headers", func(t *testing.T) {
		t.Parallel()
		srv := hangingServer(t, func(http.ResponseWriter) {})
		resp, err := c.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
			t.Fatal("GET succeeded; want a timeout")
		}
		if !isTimeout(err) {
			t.Errorf("GET: %v; want a timeout", err)
		}
	})

	t.Run("body never ends", func(t *testing.T) {
		t.Parallel()
		srv := hangingServer(t, func(w http.ResponseWriter) {
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
		})
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		if !isTimeout(err) {
			t.Errorf("reading the body: %v; want a timeout", err)
		}
	})
}

// TestClientHTTPS checks the TLS path: the caller's roots are trusted, and
// nothing else is.
func TestClientHTTPS(t *testing.T) {
	t.Parallel()
	srv, hits := countingServer(t, true)

	c := Policy{AllowPrivate: true, RootCAs: serverPool(srv)}.Client(5 * time.Second)
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET %s: %v", srv.URL, err)
	}
	ReadSnippet(resp.Body)
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("response TLS state %+v; want TLS 1.2 or later", resp.TLS)
	}

	// The server's certificate is not signed by a system root.
	c = Policy{AllowPrivate: true}.Client(5 * time.Second)
	resp, err = c.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("GET without the server's root succeeded; want a certificate error")
	}
	var certErr *tls.CertificateVerificationError
	if !errors.As(err, &certErr) {
		t.Errorf("GET without the server's root: %v; want a certificate error", err)
	}

	// A name the certificate does not cover is refused too.
	res := newResolver(map[string][]string{"hooks.example.org": {"127.0.0.1"}})
	c = Policy{AllowPrivate: true, Resolver: res, RootCAs: serverPool(srv)}.Client(5 * time.Second)
	resp, err = c.Get("https://hooks.example.org:" + serverPort(srv) + "/")
	if err == nil {
		resp.Body.Close()
		t.Fatal("GET to a name the certificate does not cover succeeded")
	}
	if !errors.As(err, &certErr) {
		t.Errorf("GET to a name the certificate does not cover: %v; want a certificate error", err)
	}

	if n := hits.Load(); n != 1 {
		t.Errorf("server got %d requests; want 1", n)
	}
}

func TestClientSettings(t *testing.T) {
	t.Parallel()
	c := Policy{}.Client(7 * time.Second)
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("Transport is %T; want *http.Transport", c.Transport)
	}
	if c.Timeout != 7*time.Second {
		t.Errorf("Timeout = %v; want 7s", c.Timeout)
	}
	if tr.Proxy != nil {
		t.Error("Proxy is set; want nil")
	}
	if tr.DialContext == nil || tr.DialTLSContext != nil || tr.Dial != nil || tr.DialTLS != nil {
		t.Error("want DialContext, and no other dial function")
	}
	if tr.MaxIdleConnsPerHost != 2 || tr.IdleConnTimeout != 90*time.Second {
		t.Errorf("MaxIdleConnsPerHost %d, IdleConnTimeout %v; want 2, 90s", tr.MaxIdleConnsPerHost, tr.IdleConnTimeout)
	}
	if tr.TLSClientConfig == nil || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 ||
		tr.TLSClientConfig.RootCAs != nil || tr.TLSClientConfig.InsecureSkipVerify {
		t.Errorf("TLS config %+v; want TLS 1.2 minimum and the system roots", tr.TLSClientConfig)
	}
	if c.CheckRedirect == nil || c.CheckRedirect(nil, nil) != http.ErrUseLastResponse {
		t.Error("CheckRedirect does not return http.ErrUseLastResponse")
	}
}

// TestClientReusesConnections: after ReadSnippet the connection goes back
// to the pool, so two deliveries use one connection.
func TestClientReusesConnections(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, strings.Repeat("x", 10<<10))
	}))
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := Policy{AllowPrivate: true}.Client(5 * time.Second)
	for range 2 {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		if s := ReadSnippet(resp.Body); len(s) != 1024 {
			t.Errorf("snippet is %d bytes; want 1024", len(s))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("server saw %d connections; want 1", n)
	}
}

// body is an io.ReadCloser that counts what is read from it.
type body struct {
	r      io.Reader
	read   int
	closed bool
}

func newBody(s string) *body { return &body{r: strings.NewReader(s)} }

func (b *body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

func (b *body) Close() error { b.closed = true; return nil }

func TestReadSnippet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"short", "hello", "hello"},
		{"empty", "", ""},
		{"5 KiB", strings.Repeat("a", 5<<10), strings.Repeat("a", 1024)},
		{"exactly 1 KiB", strings.Repeat("b", 1024), strings.Repeat("b", 1024)},
		{"invalid UTF-8", "ok\xff\xfeok", "ok\uFFFDok"},
		{"valid multibyte", "prix: 5 €", "prix: 5 €"},
		{"rune cut by the limit", strings.Repeat("a", 1023) + "€ and more", strings.Repeat("a", 1023)},
		{"cut incomplete rune at end of short body", "abc\xe2\x82", "abc\uFFFD"},
	}
	for _, tt := range tests {
		b := newBody(tt.in)
		if got := ReadSnippet(b); got != tt.want {
			t.Errorf("%s: ReadSnippet = %.60q (%d bytes); want %.60q (%d bytes)", tt.name, got, len(got), tt.want, len(tt.want))
		}
		if !b.closed {
			t.Errorf("%s: body not closed", tt.name)
		}
		if b.read != len(tt.in) {
			t.Errorf("%s: read %d of %d bytes; want all (drained)", tt.name, b.read, len(tt.in))
		}
	}

	// Replacement characters are longer than the bytes they replace; the
	// result stays within 1 KiB and valid.
	got := ReadSnippet(newBody(strings.Repeat("a\xff", 2048)))
	if len(got) > 1024 || !utf8.ValidString(got) || !strings.HasPrefix(got, "a\uFFFDa\uFFFD") {
		t.Errorf("ReadSnippet of mixed invalid bytes = %d bytes, valid %v; want at most 1024, valid", len(got), utf8.ValidString(got))
	}

	// A long body is drained by at most 64 KiB past the snippet.
	b := newBody(strings.Repeat("z", 1<<20))
	ReadSnippet(b)
	if b.read != 1024+64<<10 || !b.closed {
		t.Errorf("long body: read %d bytes, closed %v; want %d, true", b.read, b.closed, 1024+64<<10)
	}

	if got := ReadSnippet(nil); got != "" {
		t.Errorf("ReadSnippet(nil) = %q", got)
	}
}
