package web

import (
	"strings"
	"unicode"
)

// maxDeviceText caps an unrecognised user agent shown on the account page.
const maxDeviceText = 60

// describeDevice turns a User-Agent into a short readable form such as
// "Firefox on Windows", for people to recognise their devices. It knows
// the common browsers and systems only; anything else is shown as the
// (cleaned, shortened) user agent itself.
func describeDevice(ua string) string {
	ua = strings.TrimSpace(ua)
	if ua == "" {
		return "Unknown device"
	}
	browser, system := uaBrowser(ua), uaSystem(ua)
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case system != "":
		return "Browser on " + system
	}
	clean := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, ua)
	if r := []rune(clean); len(r) > maxDeviceText {
		return string(r[:maxDeviceText]) + "…"
	}
	return clean
}

// uaBrowser: order matters, since most browsers also claim to be the ones
// they derive from (Edge says Chrome and Safari, Chrome says Safari).
func uaBrowser(ua string) string {
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"},
		{"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
		{"Vivaldi/", "Vivaldi"}, {"YaBrowser/", "Yandex Browser"},
		{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
		{"CriOS/", "Chrome"}, {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"},
		{"Safari/", "Safari"},
		{"curl/", "curl"}, {"Wget/", "Wget"}, {"okhttp/", "OkHttp"},
		{"python-requests/", "Python Requests"}, {"Go-http-client/", "Go HTTP client"},
	} {
		if strings.Contains(ua, b.token) {
			return b.name
		}
	}
	return ""
}

func uaSystem(ua string) string {
	for _, o := range []struct{ token, name string }{
		{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"},
		{"CrOS", "ChromeOS"}, {"Windows", "Windows"},
		{"Macintosh", "macOS"}, {"Mac OS X", "macOS"},
		{"Linux", "Linux"}, {"FreeBSD", "FreeBSD"},
	} {
		if strings.Contains(ua, o.token) {
			return o.name
		}
	}
	return ""
}
