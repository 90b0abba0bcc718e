//go:build !unix

package main

import "errors"

func benchSignalProfile(int, bool) error {
	return errors.New("--cpuprofile needs a Unix system")
}
