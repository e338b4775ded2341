//go:build !unix

package config

func openFiles() int { return fallbackOpenFiles }
