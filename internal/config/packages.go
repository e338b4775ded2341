package config

import (
	"path/filepath"
	"time"
)

// PackagesConfig configures the npm dependencies of executions.
type PackagesConfig struct {
	Enabled        bool          `mapstructure:"enabled"`
	NPM            string        `mapstructure:"npm"`
	Registry       string        `mapstructure:"registry"`
	Token          Secret        `mapstructure:"token"`
	Allow          []string      `mapstructure:"allow"`
	Deny           []string      `mapstructure:"deny"`
	MaxPackages    int           `mapstructure:"max_packages"`
	MaxBytes       int64         `mapstructure:"max_bytes"`
	ResolveTimeout time.Duration `mapstructure:"resolve_timeout"`
	Refresh        time.Duration `mapstructure:"refresh"`
	Offline        bool          `mapstructure:"offline"`
	CacheDir       string        `mapstructure:"cache_dir"`
	CacheMaxBytes  int64         `mapstructure:"cache_max_bytes"`
}

// PackagesDir is where resolved dependencies are kept: packages.cache_dir,
// else packages/ beside storage.path (the data directory), else
// data/packages.
func (c *Config) PackagesDir() string {
	switch {
	case c.Packages.CacheDir != "":
		return c.Packages.CacheDir
	case c.Storage.Path != "":
		return filepath.Join(filepath.Dir(c.Storage.Path), "packages")
	}
	return filepath.Join("data", "packages")
}

// CallbacksConfig configures webhooks: the records POSTed to the
// callbackUrl of async executions when they end.
type CallbacksConfig struct {
	Secret       Secret        `mapstructure:"secret"`
	AllowPrivate bool          `mapstructure:"allow_private"`
	AllowCIDRs   []string      `mapstructure:"allow_cidrs"`
	Timeout      time.Duration `mapstructure:"timeout"`
	MaxRetryTime time.Duration `mapstructure:"max_retry_time"`
}

// StorageConfig says where execution records and the async queue live.
type StorageConfig struct {
	Path      string        `mapstructure:"path"`
	URL       Secret        `mapstructure:"url"` // may hold a password
	Retention time.Duration `mapstructure:"retention"`
	Workers   int           `mapstructure:"workers"`
	MaxQueued int           `mapstructure:"max_queued"`
	// MaxQueuedPerKey bounds one key's queued executions; 0: derived (see
	// Config.MaxQueuedPerKey).
	MaxQueuedPerKey int `mapstructure:"max_queued_per_key"`
	// MaxBytesPerKey bounds the bytes one key's records take; 0: derived
	// (see Config.MaxStoredBytesPerKey).
	MaxBytesPerKey int64 `mapstructure:"max_bytes_per_key"`
	// MaxScriptBytesPerKey bounds the bytes one key's stored scripts take.
	MaxScriptBytesPerKey int64 `mapstructure:"max_script_bytes_per_key"`
	// MaxFileBytes bounds the SQLite file; 0: no bound.
	MaxFileBytes int64 `mapstructure:"max_file_bytes"`
}
