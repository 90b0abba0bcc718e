package storage

// IsRetryable exposes isRetryable to the external tests.
var IsRetryable = isRetryable
