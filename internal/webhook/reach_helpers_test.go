package webhook

// The attack tests reach the options they need through these, so that the
// same tests run against the webhook package before and after Reach.

// allowingPrivate is o as callbacks.allow_private=true configures it.
func allowingPrivate(o Options) Options {
	o.Reach.AllowPrivate = true
	return o
}

// validatePrivate is the submission check with callbacks.allow_private=true.
func validatePrivate(u string) error {
	return ValidateCallbackURL(u, Reach{AllowPrivate: true})
}

// privateDialer is the dialer with callbacks.allow_private=true.
func privateDialer() *dialer {
	return newDialer(nil, Reach{AllowPrivate: true})
}

// causeOf is the full error an attempt leaves for the gateway's log.
func causeOf(a Attempt) error {
	return a.Cause
}
