// Package limit bounds what a peer on the network can take from the box:
// tries at a password (Attempts, a token bucket per client) and
// connections (Listener, at most so many at once and per client, the
// quiet and idle ones closed first to make room, and an Accept that
// outlives running out of file descriptors).
//
// A client is its IP address, an IPv6 one cut to its /64 (Client), since
// one host on IPv6 commonly holds a whole /64.
package limit

import (
	"net"
	"net/netip"
)

// Client is the client remote counts as: its IP, IPv6 cut to its /64. remote
// is "ip:port" (an http.Request's RemoteAddr) or a bare IP; the zero Addr
// when it is neither.
func Client(remote string) netip.Addr {
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(remote); err != nil {
		return netip.Addr{}
	}
	return clientIP(a)
}

// ClientOf is the client of a connection's remote address; the zero Addr
// for one without an IP (a unix socket).
func ClientOf(addr net.Addr) netip.Addr {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return clientIP(a.AddrPort().Addr())
	case *net.UDPAddr:
		return clientIP(a.AddrPort().Addr())
	case nil:
		return netip.Addr{}
	}
	return Client(addr.String())
}

func clientIP(a netip.Addr) netip.Addr {
	if !a.IsValid() {
		return a
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		a = p.Addr()
	}
	return a
}
