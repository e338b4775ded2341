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
	resolver Resolver
	reach    Reach
	net      net.Dialer
	// connect makes the connection to an address already checked; it is
	// net.Dialer.DialContext, or a test's seam.
	connect func(ctx context.Context, network, addr string) (net.Conn, error)
}

func newDialer(r Resolver, reach Reach) *dialer {
	if r == nil {
		r = net.DefaultResolver
	}
	d := &dialer{resolver: r, reach: reach}
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

// resolve returns host's addresses, refusing them all if any is one the
// reach does not allow (a mixed answer is a sign of someone aiming at
// it). Its errors say in a tenantError what the tenant may read.
func (d *dialer) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if err := d.reach.checkHost(host); err != nil {
		return nil, hostRefused(err)
	}
	if a, isAddr, _ := egress.ParseHost(host); isAddr {
		// Spellings such as 2130706433 or 0x7f.1 are names to a resolver
		// but addresses to browsers and to some resolvers: connect to the
		// address checked.
		return []netip.Addr{a}, nil
	}
	addrs, err := d.resolver.LookupNetIP(ctx, "ip", host)
	if err == nil && len(addrs) == 0 {
		err = fmt.Errorf("%s has no addresses", host)
	}
	if err != nil {
		return nil, &tenantError{text: textUnresolved, err: err}
	}
	for _, a := range addrs {
		if err := d.reach.checkAddr(a); err != nil {
			return nil, &tenantError{text: textNameRefused, err: fmt.Errorf("%s: %w", host, err)}
		}
	}
	return addrs, nil
}

// control runs just before the socket connects.
func (d *dialer) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read %q", ErrRefusedAddress, address)
	}
	if err := d.reach.checkAddr(ap.Addr()); err != nil {
		return &tenantError{text: textNameRefused, err: err}
	}
	return nil
}
