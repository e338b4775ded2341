package packages

// Dir is the cache's directory, for tests.
func (m *Manager) Dir() string { return m.o.Dir }
