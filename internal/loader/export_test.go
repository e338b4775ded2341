package loader

// ShimURL returns the URL of one running shim, and the secret the gateway
// signs its calls with, for tests that call the shim directly.
func (l *Local) ShimURL() (url, secret string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.slots {
		if s.proc != nil {
			return s.proc.url, l.secret
		}
	}
	return "", l.secret
}
