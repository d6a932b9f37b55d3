package safetext

import (
	"slices"
	"strings"
)

// RedactURL removes the user info from every URL and scp-like address in s,
// which may be one URL or a message that quotes some, so that the result can
// be logged, quoted in an error or shown in status without a credential in
// it: a password, a token as the user name (https://TOKEN@host), and an SSH
// login too (ssh://git@host, git@host:path), which is no secret where it
// belongs but may be a token pasted in the wrong place. Nothing else
// changes: nothing is parsed or re-encoded, so an unparsable URL is redacted
// too, and redacting twice changes nothing more.
//
// The user info of a URL is what comes before the last '@' of its authority
// (after "://", up to a '/', a quote or white space). That of an scp-like
// address, and so of any word of s, is what comes before the last '@' ahead
// of the word's first ':' or '/'. So an image named by digest without a
// registry path ("app@sha256:...") reads as an address and loses its name,
// while "ghcr.io/acme/app@sha256:..." stays whole.
func RedactURL(s string) string {
	cuts := append(authorityCuts(s), wordCuts(s)...)
	if len(cuts) == 0 {
		return s
	}
	slices.SortFunc(cuts, func(a, b [2]int) int { return a[0] - b[0] })
	var out strings.Builder
	out.Grow(len(s))
	done := 0
	// An authority and a word can share their user info ("a@b://u@h"),
	// so cuts may overlap.
	for _, c := range cuts {
		if c[0] > done {
			out.WriteString(s[done:c[0]])
		}
		done = max(done, c[1])
	}
	out.WriteString(s[done:])
	return out.String()
}

// delimiters end an authority and a word; words end at brackets and
// commas too, so that "(git@host:o/r)" loses only its login.
const (
	delimiters     = "\"'` \t\r\n"
	wordDelimiters = delimiters + "<>()[]{},;"
)

// authorityCuts are the byte ranges of the user info of every "scheme://"
// authority in s, each with its '@'.
func authorityCuts(s string) [][2]int {
	var cuts [][2]int
	for i := 0; ; {
		j := strings.Index(s[i:], "://")
		if j < 0 {
			return cuts
		}
		start := i + j + len("://")
		auth := s[start:]
		if end := strings.IndexAny(auth, "/"+delimiters); end >= 0 {
			auth = auth[:end]
		}
		if at := strings.LastIndexByte(auth, '@'); at >= 0 {
			cuts = append(cuts, [2]int{start, start + at + 1})
		}
		i = start
	}
}

// wordCuts are the byte ranges of the user info of every word of s read as
// an scp-like address (user@host:path), each with its '@'.
func wordCuts(s string) [][2]int {
	var cuts [][2]int
	for start := 0; start < len(s); {
		end := strings.IndexAny(s[start:], wordDelimiters)
		if end < 0 {
			end = len(s)
		} else {
			end += start
		}
		word := s[start:end]
		if i := strings.IndexAny(word, ":/"); i >= 0 {
			word = word[:i]
		}
		if at := strings.LastIndexByte(word, '@'); at >= 0 {
			cuts = append(cuts, [2]int{start, start + at + 1})
		}
		start = end + 1
	}
	return cuts
}
