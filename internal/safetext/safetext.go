// Package safetext prepares untrusted text (Prometheus queries and values,
// image names from Git, reasons, messages of remote servers) for places a
// person reads: commit messages, pull requests, errors in status, events and
// logs.
//
// It has no dependency besides the standard library so that every package
// that shows such text uses the same definitions: of what a reader cannot
// see (Clean, Line, Defang), of how text is cut to a length (Truncate, the
// one truncation of the module), and of what of a URL must not be shown
// (RedactURL, its one URL redaction).
package safetext

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Replacement stands in for a character that would be invisible or would
// reorder the text around it. It is visible on purpose: a reader should see
// that something was there.
const Replacement = '\uFFFD'

// Clean returns s as valid UTF-8 in which every character a reader cannot
// see is Replacement and every other control or space character is a plain
// space. Line feeds are kept; Line flattens them too.
//
// Invisible means: format characters (Cf: the bidi overrides and isolates
// U+202A-202E and U+2066-2069, ZWSP, ZWJ, soft hyphen, BOM, tag
// characters), private-use and unassigned code points, variation
// selectors, the other default-ignorable code points (Hangul fillers,
// U+034F) and U+2800 BRAILLE PATTERN BLANK. These are what Trojan-source
// reordering and look-alike blank text are made of.
func Clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case unicode.IsControl(r) || unicode.IsSpace(r):
			return ' '
		case invisible(r):
			return Replacement
		}
		return r
	}, strings.ToValidUTF8(s, string(Replacement)))
}

func invisible(r rune) bool {
	// IsGraphic is false for Cf, Co, Cn (and Cc, Zl, Zp, handled before).
	return !unicode.IsGraphic(r) ||
		unicode.In(r, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point) ||
		r == '\u2800'
}

// Line is Clean with line breaks flattened to spaces, trimmed and cut to at
// most n runes (n <= 0: no limit), so that the text stays on one line and
// cannot add a Git trailer or a markdown block.
func Line(s string, n int) string {
	return Truncate(strings.TrimSpace(strings.ReplaceAll(Clean(s), "\n", " ")), n)
}

// Ellipsis marks text that Truncate cut.
const Ellipsis = "…"

// Truncate cuts s to at most n runes, the last being Ellipsis when anything
// was cut. It never splits a UTF-8 sequence. n <= 0 means no limit.
func Truncate(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for range n - 1 {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i] + Ellipsis
}

// Mention and link look-alikes that Defang puts in.
const (
	// At replaces an '@' that could mention a user or team, or make an
	// e-mail link: FULLWIDTH COMMERCIAL AT reads the same and GitHub
	// does not resolve it.
	At = '\uFF20'
	// Hash replaces a '#' that could reference an issue or pull request
	// (FULLWIDTH NUMBER SIGN).
	Hash = '\uFF03'
)

// digestAfterAt matches what follows the '@' of an image digest
// ("app@sha256:0123..."), the one '@' untrusted text legitimately holds.
var digestAfterAt = regexp.MustCompile(`^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]`)

// Defang stops GitHub (and other forges) from turning untrusted text into
// notifications or links, wherever it is shown, code spans included, so
// that no rendering rule has to be relied on:
//
//   - "@name", "@org/team" and "user@host" get At, so no one is pinged and
//     no mailto link appears; the '@' of an image digest after a name
//     ("app@sha256:...") is kept, as it can be neither.
//   - "#123" gets Hash, so no issue or pull request is cross-referenced.
//   - "scheme://" becomes "scheme[:]//" and a "www." that starts a word
//     becomes "www[.]", so no autolink is made.
//
// Apply it after Clean or Line: a zero-width character between '@' and a
// name would otherwise hide the mention from Defang but not from a reader.
func Defang(s string) string {
	if !strings.ContainsAny(s, "@#:.") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	prev := rune(-1)
	for i, r := range s {
		rest := s[i+utf8.RuneLen(r):]
		switch {
		case r == '@' && startsAlnum(rest) && !(isAlnum(prev) && digestAfterAt.MatchString(rest)):
			b.WriteRune(At)
		case r == '#' && rest != "" && rest[0] >= '0' && rest[0] <= '9':
			b.WriteRune(Hash)
		case r == ':' && strings.HasPrefix(rest, "//"):
			b.WriteString("[:]")
		case r == '.' && i >= 3 && strings.EqualFold(s[i-3:i], "www") && !isAlnum(runeBefore(s, i-3)):
			b.WriteString("[.]")
		default:
			b.WriteRune(r)
		}
		prev = r
	}
	return b.String()
}

func startsAlnum(s string) bool { return s != "" && isAlnum(rune(s[0])) }

func isAlnum(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}

// runeBefore returns the rune that ends before byte offset i of s, or -1.
func runeBefore(s string, i int) rune {
	if i <= 0 {
		return -1
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return r
}
