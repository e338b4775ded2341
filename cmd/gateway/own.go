package main

import (
	"context"
	"fmt"
	"net"
	"time"
)

// resolveTimeout bounds the lookup of a listen address given as a name.
const resolveTimeout = 5 * time.Second

// ownAddresses returns the addresses the gateway listens on, which guest
// code must never reach: every interface address for a wildcard listen
// address, the one it names for an IP, and every address a name resolves
// to (net.Listen picks one of them; guests are kept from all).
func ownAddresses(ctx context.Context, listen string) ([]string, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return []string{ip.String()}, nil
	}
	if host != "" && net.ParseIP(host) == nil {
		return resolveOwn(ctx, host)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok {
			out = append(out, ipnet.IP.String())
		}
	}
	return out, nil
}

// resolveOwn returns every address host resolves to, once each.
func resolveOwn(ctx context.Context, host string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("resolve listen host %s: %w", host, err)
	}
	var out []string
	seen := map[string]bool{}
	for _, a := range addrs {
		if s := a.IP.String(); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}
