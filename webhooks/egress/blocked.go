package egress

import "net/netip"

// blockedRange is one address range that deliveries may not reach, with the
// short name that error messages use for it.
type blockedRange struct {
	prefix netip.Prefix
	name   string
}

// blockedRanges lists the ranges Blocked refuses. The order matters where
// ranges nest: the first match names the address, so the cloud metadata
// addresses come before the link-local and ULA ranges that contain them,
// and the broadcast address before 240.0.0.0/4.
//
// For IPv6 the list names the special ranges so that messages say what an
// address is; anything outside global unicast (2000::/3) is refused as
// "reserved" by Blocked after the list, so a range left out here is refused
// all the same unless it is inside 2000::/3.
var blockedRanges = []blockedRange{
	// IPv4 (RFC 6890 and the IANA special-purpose registry).
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "CGNAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	// Azure's host endpoint (WireServer) has a public-looking address but
	// answers only inside Azure, where it hands out VM configuration: as
	// much a metadata service as 169.254.169.254.
	{netip.MustParsePrefix("168.63.129.16/32"), "cloud metadata"},

	// IPv6 (RFC 6890, RFC 4291 and the IANA special-purpose registry).
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64 (embeds IPv4)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "NAT64 (embeds IPv4)"},
	{netip.MustParsePrefix("100::/64"), "discard"},
	{netip.MustParsePrefix("2001::/32"), "Teredo (embeds IPv4)"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking"},
	{netip.MustParsePrefix("2001:10::/28"), "ORCHID (not routable)"},
	{netip.MustParsePrefix("2001:20::/28"), "ORCHIDv2 (not routable)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4 (embeds IPv4)"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (IPv6 ULA)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// globalUnicast is the only IPv6 block from which addresses are handed out
// for the public internet; everything else is special in some way.
var globalUnicast = netip.MustParsePrefix("2000::/3")

// Blocked reports whether addr may not be dialled without AllowPrivate, and
// a short name for the range that refuses it ("loopback", "private",
// "link-local", "cloud metadata", ...). A public address gives false, "".
//
// An IPv4 address written in IPv6 form, mapped (::ffff:a.b.c.d) or
// compatible (::a.b.c.d), reaches the same host as the IPv4 address, so it
// is judged by that address. A zone-scoped address (fe80::1%eth0) names an
// interface of this host's network and is refused whatever its range.
func Blocked(addr netip.Addr) (bool, string) {
	if !addr.IsValid() {
		return true, "invalid"
	}
	if addr.Zone() != "" {
		return true, "zone-scoped"
	}
	if addr.Is4In6() {
		if blocked, name := Blocked(addr.Unmap()); blocked {
			return true, "IPv4-mapped " + name
		}
		return false, ""
	}
	if v4, ok := compatibleIPv4(addr); ok {
		if blocked, name := Blocked(v4); blocked {
			return true, "IPv4-compatible " + name
		}
		return false, ""
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(addr) {
			return true, r.name
		}
	}
	if addr.Is6() && !globalUnicast.Contains(addr) {
		return true, "reserved"
	}
	return false, ""
}

// compatibleIPv4 returns the IPv4 address embedded in an IPv4-compatible
// IPv6 address (::a.b.c.d, RFC 4291 section 2.5.5.1, deprecated but still
// parsed and, on some hosts, routed). :: and ::1 are in the same /96 but
// are IPv6's own unspecified and loopback addresses, so they are left out.
func compatibleIPv4(addr netip.Addr) (netip.Addr, bool) {
	if !addr.Is6() || addr == netip.IPv6Unspecified() || addr == netip.IPv6Loopback() {
		return netip.Addr{}, false
	}
	b := addr.As16()
	for _, x := range b[:12] {
		if x != 0 {
			return netip.Addr{}, false
		}
	}
	return netip.AddrFrom4([4]byte(b[12:])), true
}
