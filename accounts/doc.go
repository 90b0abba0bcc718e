// Package accounts owns the people who sign in: username normalization,
// password hashing (argon2id), user creation and password checks.
//
// The admin API and the CLI create users through it; the sign-in pages will
// check passwords through it. It imports storage.
package accounts
