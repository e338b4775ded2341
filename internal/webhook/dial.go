package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/dynamic-workers/gateway/internal/egress"
)

// ErrRefusedAddress is wrapped by every connection refused because it
// would reach a non-public address.
var ErrRefusedAddress = errors.New("callback refused")

// Resolver looks up a host's addresses; *net.Resolver is one. Tests give
// their own to make a name resolve where they want.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// dialer connects deliveries. It resolves the host itself and checks every
// address it got before connecting to any, then checks the address again
// in the socket's Control hook, just before connect(2): the address
// checked is the address connected to, so a name that resolves to a public
// address once and to a private one the next time (DNS rebinding) gains
// nothing.
type dialer struct {
	resolver     Resolver
	allowPrivate bool
	net          net.Dialer
	// connect makes the connection to an address already checked; it is
	// net.Dialer.DialContext, or a test's seam.
	connect func(ctx context.Context, network, addr string) (net.Conn, error)
}

func newDialer(r Resolver, allowPrivate bool) *dialer {
	if r == nil {
		r = net.DefaultResolver
	}
	d := &dialer{resolver: r, allowPrivate: allowPrivate}
	d.net.Control = d.control
	d.connect = d.net.DialContext
	return d
}

// DialContext is the transport's dial function.
func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	addrs, err := d.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, a := range addrs {
		c, err := d.connect(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// resolve returns host's addresses, refusing them all if any is not public
// (a mixed answer is a sign of someone aiming at the private one).
func (d *dialer) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if !d.allowPrivate {
		// Spellings such as 2130706433 or 0x7f.1 are names to a resolver
		// but addresses to browsers and to some resolvers: refuse them.
		if err := egress.CheckHost(host); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRefusedAddress, err)
		}
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = d.resolver.LookupNetIP(ctx, "ip", host); err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%s has no addresses", host)
	}
	if d.allowPrivate {
		return addrs, nil
	}
	for _, a := range addrs {
		if err := checkAddr(a); err != nil {
			return nil, err
		}
	}
	return addrs, nil
}

// control runs just before the socket connects.
func (d *dialer) control(_, address string, _ syscall.RawConn) error {
	if d.allowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read %q", ErrRefusedAddress, address)
	}
	return checkAddr(ap.Addr())
}

func checkAddr(a netip.Addr) error {
	if err := egress.CheckHost(a.WithZone("").String()); err != nil {
		return fmt.Errorf("%w: %w", ErrRefusedAddress, err)
	}
	return nil
}
